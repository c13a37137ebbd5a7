"""Every core in the page: a window's B streams split across k Web Workers on shared memory, inside Pyodide.

The Pyodide worker computes the first slice of streams itself (``wasm_flat``); k - 1 helper workers, started by
``start`` (kernels/shards.js), compute the others with their own instance of the same WebAssembly kernels. Each
slice's loss is scaled by the whole window's 1 / (B·T), so the slices' gradients add up to the window's gradient
(up to float32 summation order: tests/test_wasm_flat.py on the kernels, tests/browser/test_shards.py in
Chromium). Then one clip and one Adam update, as for one worker (``flat.FlatTrainer``).

Shared memory needs a cross-origin isolated page (the site's service worker makes it so from the second visit,
docs/deploy.md). Without it, with one core, for B = 1 or for the gated cells, training stays on one worker;
``status()`` says which, in words the page shows.
"""

from __future__ import annotations

import sys
from importlib import resources

import numpy as np

from . import flat, wasm_flat, wasm_kernels
from .errors import TinyRNNError

HOST_FILE = "kernels/shards.js"
START_TIMEOUT_MS = 20_000  # a helper that has not started by then is left out
MAX_WORKERS = 16  # this worker and 15 helpers: the room kernels/shards.js's control words have (MAX_HELPERS)
STEP_TIMEOUT_MS = 20_000  # a helper that has not answered a window by then stops training with a message


class ShardError(TinyRNNError, RuntimeError):
    """A helper worker failed or did not answer; training on one worker still works."""


class _Pool:
    """The started helpers (``host``: the JS object of kernels/shards.js) and what the page is told about them."""

    def __init__(self):
        self.host = None
        self.helpers = 0
        self.reason = "one worker"  # until start() is asked for more
        self.shape = None  # the (T, B, H, V) the shared buffer is laid out for
        self.to_js = self.module = None  # Pyodide's to_js and Emscripten module (whose HEAPU8 is the heap now)

    def fail(self, error: Exception) -> None:
        """After a helper failed: stop them all; training goes on with one worker, and ``status()`` says why."""
        if self.host is not None:
            self.host.stop()
        self.host, self.helpers, self.shape = None, 0, None
        self.reason = f"one worker: a helper worker failed ({error})"

    @property
    def workers(self) -> int:
        return self.helpers + 1


POOL = _Pool()


def bounds(B: int, k: int) -> list[tuple[int, int]]:
    """k contiguous slices [b0, b1) of B streams, as even as they can be (the first ones are never larger)."""
    k = max(1, min(k, B))
    cuts = [round(i * B / k) for i in range(k + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(k)]


async def start(workers: int | None = None) -> str:
    """Start ``workers`` - 1 helpers (default: one per core the browser reports); returns ``status()``.
    Outside Pyodide, without cross-origin isolation or without the kernels, nothing starts. Never raises: a
    failure to start leaves one worker, and ``status()`` says why."""
    if sys.platform != "emscripten" or wasm_flat.ACTIVE is None:  # natively: numpy (or the native kernels)
        return status()
    import pyodide_js  # only inside Pyodide
    from js import navigator, self as js_self
    from pyodide.code import run_js
    from pyodide.ffi import to_js

    cores = int(getattr(navigator, "hardwareConcurrency", 1) or 1)
    wanted = max(1, min(int(workers) if workers else cores, MAX_WORKERS))
    if not getattr(js_self, "crossOriginIsolated", False):
        POOL.reason = ("one worker: this page is not cross-origin isolated yet (it is from the first load after this "
                       "browser has saved the site for offline use, usually within a minute: reload then)")
        return status()
    if wanted < 2:
        POOL.reason = f"one worker ({cores} core{'s' if cores != 1 else ''} here)"
        return status()
    if getattr(js_self, "SharedArrayBuffer", None) is None:  # WebKitGTK: isolated, but no shared memory in workers
        POOL.reason = "one worker: this browser offers no SharedArrayBuffer to Web Workers"
        return status()
    if POOL.host is not None:
        POOL.host.stop()
    POOL.host, POOL.helpers, POOL.shape = None, 0, None
    try:
        host = run_js(resources.files("tinyrnn").joinpath(HOST_FILE).read_text())
        helpers = int(await host.start(wanted - 1, to_js(wasm_kernels.wasm_bytes()), START_TIMEOUT_MS))
    except Exception as exc:  # noqa: BLE001 - one worker still trains; status() says why
        POOL.reason = f"one worker: the helper workers did not start ({type(exc).__name__}: {exc})"
        return status()
    POOL.host, POOL.helpers = (host if helpers else None), helpers
    POOL.to_js, POOL.module = to_js, pyodide_js._module
    POOL.reason = "" if helpers else "one worker: no helper worker started"
    return status()


def status(trainer=None) -> str:
    """What computes training, for the page: "k workers (shared memory)" or "one worker: why"; with a ``trainer``,
    what computes that trainer's steps (the gated cells and one stream stay on one worker)."""
    if not POOL.helpers:
        return POOL.reason
    shared = f"{POOL.workers} workers (shared memory)"
    if trainer is None or isinstance(trainer.fast_path, ShardedTrainer):
        return shared
    config = trainer.config
    why = ("the gated cells train on one worker" if config.cell != "rnn"
           else "one stream (batch size 1) is not split" if config.batch_size < 2
           else "this model's settings train on one worker (float32, Adam, the fused engine, no clipping by value "
                "can use more)" if not flat.applies(config)
           else "this model was made before the helpers started")
    return f"one worker: {why}; {shared} for the tanh RNN"


class ShardedWindow:
    """One window split across the pool: the first slice here (a ``WasmWindow``), the others on the helpers.
    ``forward`` runs everything (the helpers compute their backward pass at once), ``backward`` returns the sum."""

    def __init__(self, pool, kernels, layout, inputs, targets, h0):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        B, T = flat.check_window(layout, inputs, targets, h0)
        self.pool, self.layout, self.scale = pool, layout, 1.0 / (B * T)
        self.bounds = bounds(B, pool.workers)
        self.inputs = np.ascontiguousarray(inputs, dtype=np.int32)
        self.targets = np.ascontiguousarray(targets, dtype=np.int32)
        self.h0 = np.ascontiguousarray(h0, dtype=np.float32)
        b1 = self.bounds[0][1]
        self.local = kernels.window(layout, self.inputs[:b1], self.targets[:b1], self.h0[:b1], self.scale)
        self.hs_last = np.empty((B, layout.H), np.float32)
        self.dh0 = None  # dL/dh0 is not gathered from the helpers (the trainer does not use it)
        self.grad = None

    @property
    def h_last(self) -> np.ndarray:
        return self.hs_last

    def forward(self, flat_params) -> float:
        flat.check_flat(flat_params, self.layout)
        pool, host, at = self.pool, self.pool.host, wasm_kernels.address
        B, T = self.inputs.shape
        shape = (T, B, self.layout.H, self.layout.V)
        try:
            if pool.shape != shape:
                host.configure(T, B, self.layout.H, self.layout.V, self.layout.size, pool.to_js(self.bounds),
                               STEP_TIMEOUT_MS)
                pool.shape = shape
            host.post(pool.module, at(flat_params), at(self.inputs), at(self.targets), at(self.h0), self.scale)
            total = self.local.forward(flat_params)
            grad = self.local.backward(flat_params)  # this window's own buffer; collect() adds the helpers' gradients into it
            b1 = self.bounds[0][1]
            self.hs_last[:b1] = self.local.h_last
            total += float(host.collect(pool.module, at(grad), at(self.hs_last), STEP_TIMEOUT_MS))
        except Exception as exc:  # a JavaScript error from the host (a helper failed or timed out)
            raise ShardError(f"training on {pool.workers} workers failed: {exc}") from exc
        self.grad = grad
        return total

    def backward(self, flat_params) -> np.ndarray:
        return self.grad


class ShardedTrainer(flat.FlatTrainer):
    """``FlatTrainer`` whose windows are split across the pool's workers (windows of one stream are not)."""

    def __init__(self, layout, optimizer, clip_norm, kernels, pool=POOL):
        super().__init__(layout, optimizer, clip_norm, kernels)
        self.pool = pool

    @property
    def backend(self) -> str:
        return f"{self.kernels.name}, {status()}"

    def window_gradient(self, flat_params, inputs, targets, hidden):
        if self.pool.host is None or np.shape(inputs)[0] < 2:
            return super().window_gradient(flat_params, inputs, targets, hidden)
        window = ShardedWindow(self.pool, self.kernels, self.layout, inputs, targets, hidden)
        try:
            return flat.window_loss_and_grad(flat_params, window)
        except ShardError as exc:  # never lose the step: the same window on this worker alone, and say so
            self.pool.fail(exc.__cause__ or exc)
            return super().window_gradient(flat_params, inputs, targets, hidden)


def flat_trainer(config, model_config, optimizer):
    """The browser's flat trainer: sharded when helpers run and the window has streams to split, else
    ``wasm_flat.flat_trainer`` (None where the flat path does not apply)."""
    single = wasm_flat.flat_trainer(config, model_config, optimizer)
    if single is None or POOL.host is None or config.batch_size < 2:
        return single
    return ShardedTrainer(single.layout, optimizer, config.clip_norm, single.kernels)
