"""Every core in the page: a window's B streams split across k Web Workers on shared memory, inside Pyodide.

The Pyodide worker computes the first slice of streams itself (``wasm``); k - 1 helper workers, started by
``start`` (kernels/shards.js), compute the others with their own instance of the same WebAssembly kernels. Each
slice's loss is scaled by the whole window's 1 / (B·T), so the slices' gradients add up to the window's gradient
(up to float32 summation order: tests/test_wasm_flat.py on the kernels, tests/browser/test_shards.py in
Chromium). Then one clip and one Adam update, as for one worker (``engines.sharded``).

Shared memory needs a cross-origin isolated page (the site's service worker makes it so from the second visit,
docs/deploy.md). Without it, with one core, or natively, training stays on one worker; ``workers()`` says how
many run and, as data, why not more (the page words it).
"""

from __future__ import annotations

import sys
from importlib import resources
from typing import NamedTuple

import numpy as np

from . import flat, wasm, wasm_module
from ..cells import CELL_NAMES
from ..errors import TinyRNNError

HOST_FILE = "kernels/shards.js"
START_TIMEOUT_MS = 20_000  # a helper that has not started by then is left out
MAX_WORKERS = 16  # this worker and 15 helpers: the room kernels/shards.js's control words have (MAX_HELPERS)
STEP_TIMEOUT_MS = 20_000  # a helper that has not answered a window by then stops training with a message


class ShardError(TinyRNNError, RuntimeError):
    """A helper worker failed or did not answer; training on one worker still works."""


class Workers(NamedTuple):
    """How many workers share a window (1: the Pyodide worker alone), why not more ("" when helpers run: one of
    ``NOT_STARTED``, ``NOT_ISOLATED``, ``ONE_WANTED``, ``NO_SHARED_MEMORY`` or what failed) and the cores the browser reports (0: not asked)."""

    count: int
    reason: str
    cores: int

    NOT_STARTED = "no helper workers were asked for"
    NOT_ISOLATED = "not cross-origin isolated"
    ONE_WANTED = "one worker wanted"  # ?workers=1, or one core here
    NO_SHARED_MEMORY = "no SharedArrayBuffer in Web Workers"  # isolated, yet no shared memory (WebKitGTK)


class _Pool:
    """The started helpers (``host``: the JS object of kernels/shards.js) and why there are not more."""

    def __init__(self):
        self.host = None
        self.helpers = 0
        self.cores = 0
        self.reason = "" if sys.platform != "emscripten" else Workers.NOT_STARTED  # natively there are no Web Workers
        self.shape = None  # the (cell, T, B, H, V) the shared buffer is laid out for
        self.gathered = None  # (helpers, n) float32: the helpers' gradients, copied here by the host's collect()
        self.to_js = self.module = None  # Pyodide's to_js and Emscripten module (whose HEAPU8 is the heap now)

    def fail(self, error: Exception) -> None:
        """After a helper failed: stop them all; training goes on with one worker, and ``workers()`` says why."""
        if self.host is not None:
            self.host.stop()
        self.host, self.helpers, self.shape = None, 0, None
        self.reason = f"a helper worker failed ({error})"

    @property
    def workers(self) -> int:
        return self.helpers + 1


POOL = _Pool()


def workers() -> Workers:
    """How many workers train a window here, and why not more (as data: the page words it)."""
    return Workers(POOL.workers, POOL.reason, POOL.cores)


def bounds(B: int, k: int) -> list[tuple[int, int]]:
    """k contiguous slices [b0, b1) of B streams, as even as they can be (the first ones are never larger)."""
    k = max(1, min(k, B))
    cuts = [round(i * B / k) for i in range(k + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(k)]


async def start(workers_wanted: int | None = None) -> Workers:
    """Start ``workers_wanted`` - 1 helpers (default: one per core the browser reports); returns ``workers()``.
    Outside Pyodide, without cross-origin isolation or without the kernels, nothing starts. Never raises: a
    failure to start leaves one worker, and ``workers().reason`` says why. Trainers made afterwards use them."""
    if sys.platform != "emscripten" or wasm.ACTIVE is None:  # natively: numpy (or the native kernels)
        return workers()
    import pyodide_js  # only inside Pyodide
    from js import navigator, self as js_self
    from pyodide.code import run_js
    from pyodide.ffi import to_js

    cores = POOL.cores = int(getattr(navigator, "hardwareConcurrency", 1) or 1)
    wanted = max(1, min(int(workers_wanted) if workers_wanted else cores, MAX_WORKERS))
    if not getattr(js_self, "crossOriginIsolated", False):
        POOL.reason = Workers.NOT_ISOLATED
        return workers()
    if wanted < 2:
        POOL.reason = Workers.ONE_WANTED
        return workers()
    if getattr(js_self, "SharedArrayBuffer", None) is None:  # WebKitGTK: isolated, but no shared memory in workers
        POOL.reason = Workers.NO_SHARED_MEMORY
        return workers()
    if POOL.host is not None:
        POOL.host.stop()
    POOL.host, POOL.helpers, POOL.shape = None, 0, None
    try:
        host = run_js(resources.files(__package__).joinpath(HOST_FILE).read_text())
        helpers = int(await host.start(wanted - 1, to_js(wasm_module.wasm_bytes()), START_TIMEOUT_MS))
    except Exception as exc:  # noqa: BLE001 - one worker still trains; workers() says why
        POOL.reason = f"the helper workers did not start ({type(exc).__name__}: {exc})"
        return workers()
    POOL.host, POOL.helpers = (host if helpers else None), helpers
    POOL.to_js, POOL.module = to_js, pyodide_js._module
    POOL.reason = "" if helpers else "no helper worker started"
    return workers()


class ShardedWindow:
    """One window of any cell split across the pool by streams: the first slice here (a ``WasmWindow``), the others
    on the helpers. ``forward`` runs everything (the helpers compute their backward pass at once), ``backward``
    returns the summed gradient; ``h_last`` is the whole window's last state (B, S)."""

    def __init__(self, pool, kernels, layout, inputs, targets, h0):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        B, T = flat.check_window(layout, inputs, targets, h0)
        self.pool, self.kernels, self.layout, self.scale = pool, kernels, layout, 1.0 / (B * T)
        self.bounds = bounds(B, pool.workers)
        self.inputs = np.ascontiguousarray(inputs, dtype=np.int32)
        self.targets = np.ascontiguousarray(targets, dtype=np.int32)
        self.h0 = np.ascontiguousarray(h0, dtype=np.float32)
        b1 = self.bounds[0][1]
        self.local = kernels.window(layout, self.inputs[:b1], self.targets[:b1], self.h0[:b1], self.scale)
        self.hs_last = np.empty((B, layout.S), np.float32)
        self.dh0 = None  # dL/dh0 is not gathered from the helpers (the trainer does not use it)
        self.grad = None

    @property
    def h_last(self) -> np.ndarray:
        return self.hs_last

    def forward(self, flat_params) -> float:
        flat.check_flat(flat_params, self.layout)
        pool, host, at = self.pool, self.pool.host, wasm_module.address
        B, T = self.inputs.shape
        L = self.layout
        cell = CELL_NAMES.index(L.cell)
        shape = (cell, T, B, L.H, L.V)
        try:
            if pool.shape != shape:
                host.configure(cell, T, B, L.H, L.S, L.V, L.size, pool.to_js(self.bounds), STEP_TIMEOUT_MS)
                pool.shape = shape
                pool.gathered = np.empty((len(self.bounds) - 1, L.size), np.float32)
            host.post(pool.module, at(flat_params), at(self.inputs), at(self.targets), at(self.h0), self.scale)
            total = self.local.forward(flat_params)
            grad = self.local.backward(flat_params)  # this window's own buffer; the helpers' gradients are added to it
            b1 = self.bounds[0][1]
            self.hs_last[:b1] = self.local.h_last
            total += float(host.collect(pool.module, at(pool.gathered), at(self.hs_last), STEP_TIMEOUT_MS))
        except Exception as exc:  # a JavaScript error from the host (a helper failed or timed out)
            raise ShardError(f"training on {pool.workers} workers failed: {exc}") from exc
        for helper_grad in pool.gathered:  # in the helpers' order, as one float32 sum
            self.kernels.add_into(grad, helper_grad)
        self.grad = grad
        return total

    def backward(self, flat_params) -> np.ndarray:
        return self.grad
