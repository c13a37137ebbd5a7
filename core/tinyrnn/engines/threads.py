"""BLAS bounded to one thread while the library's own hot loop runs (``threadpoolctl``).

A step's products are small (H = 128: 128 × 128 times B): spread over BLAS's threads they wait on each other and
on everything else the machine runs, 3-25x slower than one thread (docs/performance.md). ``blas_threads()`` limits
BLAS for the time of a step or a ``Trainer.run`` and restores the caller's setting after; nested uses cost a
counter, and the outermost one decides (the CLI's ``--threads N`` opens one with N). Inside Pyodide numpy has no
threaded BLAS, and threadpoolctl is neither needed nor loaded.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

THREADS = 1  # BLAS threads while training, unless an outer blas_threads(n) says otherwise

_controller = None  # threadpoolctl's ThreadpoolController, made once (it scans the loaded libraries)
_depth = 0  # how many blas_threads() are open: only the outermost one limits and restores


def _blas_controller():
    global _controller
    if _controller is None and sys.platform != "emscripten":
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextmanager
def blas_threads(threads: int | None = THREADS):
    """BLAS limited to ``threads`` inside the block (None: left as it is), unless an outer ``blas_threads`` already
    decided; the caller's limits come back afterwards."""
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    controller = _blas_controller() if threads is not None else None
    limiter = controller.limit(limits=threads, user_api="blas") if controller is not None else None
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        if limiter is not None:
            limiter.restore_original_limits()
