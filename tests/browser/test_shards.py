"""Training on k Web Workers (engines.workers, the sharded engine) in Chromium, for every cell (tanh RNN, GRU, LSTM):
the same loss and gradients as one worker, up to float32 summation order; the fallback to one worker without
isolation or when a helper dies, which loses no step; with the helpers started by the Pyodide worker itself or, as
on the site, by the page.

A small harness (bench/worker_harness.py) runs a Python script in Pyodide in a Web Worker, as the app does,
with the built site's own Pyodide and wheels. The harness's server sends COOP/COEP itself (the shipped site gets
them from its service worker: tests/browser/test_isolation*.py), or, for the fallback, does not.
"""

from __future__ import annotations

import pytest

from bench.worker_harness import harness_server, run_script

pytestmark = pytest.mark.browser

CELLS = ("rnn", "gru", "lstm")

COMMON = r'''
import asyncio
import json
import numpy as np
import tinyrnn
from tinyrnn import engines
from tinyrnn.engines import flat, wasm, workers

TEXT = "the quick brown fox jumps over the lazy dog; " * 400
def config(**kw):
    return tinyrnn.TrainConfig(**{"hidden_size": 32, "seq_len": 16, "batch_size": 8, "lr": 1e-2, "clip_norm": 0.5,
                                  "eval_every": 10**6, **kw})

def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-30))

def one_worker(cfg):
    """A trainer made while the pool is hidden: the kernel engine on this worker alone."""
    host, workers.POOL.host = workers.POOL.host, None
    try:
        return tinyrnn.Trainer(TEXT, cfg)
    finally:
        workers.POOL.host = host

def random_window(cell, H, B, T, V=30, seed=0):
    """(layout, float32 flat params, inputs, targets, state0 (B, S)) of a ``cell`` model."""
    rng = np.random.default_rng(seed)
    params = tinyrnn.init_params(tinyrnn.ModelConfig(V, H, cell), seed=seed)
    params = {k: v + 0.05 * rng.standard_normal(v.shape) for k, v in params.items()}
    layout = flat.FlatLayout(H, V, cell)
    state0 = (0.5 * rng.standard_normal((B, layout.S))).astype(np.float32)
    return layout, layout.flatten(params), rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T)), state0

def run(kernels, layout, flat_params, inputs, targets, state0):
    """(mean loss, flat gradient, last state) of one window on a kernel set."""
    window = kernels.window(layout, inputs, targets, state0, 1.0 / inputs.size)
    loss = window.forward(flat_params) / inputs.size
    return loss, window.backward(flat_params).copy(), np.array(window.h_last)
'''

SAME_GRADIENTS = COMMON + r'''
started = await workers.start(WORKERS)
out = {"workers": list(started), "cases": [], "train": {}}
sharded_kernels = engines.ShardedKernels(wasm.ACTIVE, workers.POOL)
for cell in ("rnn", "gru", "lstm"):  # every cell's window split across the workers, against one worker
    for H, B, T in [(32, 8, 16), (128, 16, 25), (24, 5, 3), (16, 2, 1)]:
        layout, flat_params, inputs, targets, state0 = random_window(cell, H, B, T, seed=H + B)
        a = run(sharded_kernels, layout, flat_params, inputs, targets, state0)
        b = run(wasm.ACTIVE, layout, flat_params, inputs, targets, state0)
        p64 = {k: v.astype(np.float64) for k, v in layout.views(flat_params).items()}
        ref = tinyrnn.loss_and_grads(p64, inputs, targets, state0.astype(np.float64), engine="autograd", cell=cell)
        out["cases"].append({
            "cell": cell, "shape": [H, B, T], "configured": list(workers.POOL.shape or ()),
            "loss": abs(a[0] - b[0]) / b[0], "grad": rel(a[1], b[1]),
            "h_last_equal": bool(np.array_equal(a[2], b[2])), "h_last_shape": list(a[2].shape),
            "loss_ref": abs(a[0] - ref.loss) / ref.loss, "grad_ref": rel(a[1], layout.flatten(ref.grads)),
        })
for cell in ("rnn", "gru", "lstm"):  # training: the sharded engine follows the one-worker kernel engine
    cfg = config(cell=cell)
    sharded, single = tinyrnn.Trainer(TEXT, cfg), one_worker(cfg)
    pairs = [(sharded.step(), single.step()) for _ in range(20)]
    out["train"][cell] = {
        "engines": [sharded.engine_choice.engine, sharded.engine_choice.workers, single.engine_choice.engine],
        "loss": max(abs(x.train_loss - y.train_loss) / y.train_loss for x, y in pairs),
        "first_loss": pairs[0][0].train_loss, "last_loss": pairs[-1][0].train_loss,
        "params": max(rel(sharded.params[k], single.params[k]) for k in single.params),
        "checkpoint_loads": tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(sharded.state())).config.cell,
    }
b1 = tinyrnn.Trainer(TEXT, config(batch_size=1)).engine_choice
out["b1"] = [b1.engine, list(b1.not_faster)]
json.dumps(out)
'''

HELPER_DIES = COMMON + r'''
workers.STEP_TIMEOUT_MS = 1500
out = {}
for cell in ("rnn", "gru", "lstm"):
    started = await workers.start(2)
    trainer = tinyrnn.Trainer(TEXT, config(cell=cell))
    choice = trainer.engine_choice
    layout, flat_params, inputs, targets, state0 = random_window(cell, 32, 8, 16, seed=5)
    sharded_kernels = engines.ShardedKernels(wasm.ACTIVE, workers.POOL)
    split = run(sharded_kernels, layout, flat_params, inputs, targets, state0)
    before = [trainer.step().train_loss for _ in range(3)]
    workers.POOL.host.helpers[0].terminate()  # the helper is gone: the next window cannot finish there
    await asyncio.sleep(3.0)  # Chromium ends a worker that is running (asleep in Atomics.wait) after 2 s
    after = [trainer.step().train_loss for _ in range(3)]  # the same step again on one worker, never lost
    single = run(wasm.ACTIVE, layout, flat_params, inputs, targets, state0)
    again = run(sharded_kernels, layout, flat_params, inputs, targets, state0)  # the pool stopped: one worker
    out[cell] = {
        "started": list(started), "engine": [choice.engine, choice.workers], "steps": trainer.step_count,
        "finite": bool(np.isfinite(before + after).all()), "host_left": workers.POOL.host is None,
        "reason": workers.workers().reason, "new_engine": tinyrnn.Trainer(TEXT, config(cell=cell)).engine_choice.engine,
        "split": rel(split[1], single[1]),
        "again_identical": again[0] == single[0] and all(np.array_equal(x, y) for x, y in zip(again[1:], single[1:])),
    }
json.dumps(out)
'''

HEAP_GROWS = COMMON + r'''
started = await workers.start(2)
trainer = tinyrnn.Trainer(TEXT, config(cell="lstm"))
trainer.step()
kept, backward = [], wasm.WasmWindow.backward
def growing_backward(self, flat_params):  # Pyodide's heap grows between the helpers' post and collect
    kept.append(np.ones(32 * 2**20 // 4, np.float32))
    return backward(self, flat_params)
wasm.WasmWindow.backward = growing_backward
losses = [trainer.step().train_loss for _ in range(3)]
json.dumps({"engine": trainer.engine_choice.engine, "helpers_run": workers.POOL.host is not None, "grew": len(kept),
            "finite": bool(np.isfinite(losses).all())})
'''

NOT_ISOLATED = COMMON + r'''
started = await workers.start(2)
out = {"workers": list(started), "not_isolated": workers.Workers.NOT_ISOLATED}
for cell in ("rnn", "gru", "lstm"):
    trainer = tinyrnn.Trainer(TEXT, config(cell=cell))
    losses = [m.train_loss for m in trainer.run(20)]
    choice = trainer.engine_choice
    out[cell] = {"engine": [choice.engine, choice.workers, list(choice.not_faster)], "first": losses[0],
                 "last": losses[-1]}
json.dumps(out)
'''


SCRIPTS = {"same2": SAME_GRADIENTS.replace("WORKERS", "2"), "same3": SAME_GRADIENTS.replace("WORKERS", "3"),
           "dies": HELPER_DIES, "grows": HEAP_GROWS, "plain": NOT_ISOLATED}


@pytest.fixture(scope="module")
def isolated(site_dir):
    """The harness served with COOP/COEP: cross-origin isolated, shared memory available."""
    with harness_server(site_dir, SCRIPTS, isolate=True) as base:
        yield base


@pytest.fixture(scope="module")
def not_isolated(site_dir):
    """The same harness without those headers (like the site's first visit, before its service worker)."""
    with harness_server(site_dir, SCRIPTS, isolate=False) as base:
        yield base


@pytest.mark.parametrize(("script", "helpers"), [("same2", "worker"), ("same3", "worker"), ("same2", "page")])
def test_k_workers_compute_the_gradients_of_one(browser, isolated, script, helpers):
    result = run_script(browser, isolated, script, helpers=helpers)
    out, workers = result["ok"], int(script[-1])
    assert result["isolated"] is True
    assert result["pageStarted"] == (workers - 1 if helpers == "page" else 0), result["pageStarted"]
    assert out["workers"][:2] == [workers, ""], out
    for case in out["cases"]:
        H, B, T = case["shape"]
        assert case["configured"][1:3] == [T, B], case  # the helpers were laid out for this window
        # the same float32 numbers, summed in another order: the loss to 1e-6, the gradient to 1e-5 of its scale
        assert case["loss"] < 1e-6 and case["grad"] < 1e-5, case
        assert case["h_last_equal"], case  # each stream's recurrence is computed whole, by one worker
        assert case["h_last_shape"] == [B, 2 * H if case["cell"] == "lstm" else H], case
        assert case["loss_ref"] < 1e-5 and case["grad_ref"] < 2e-4, case  # and the float64 traced reference
    assert {case["cell"] for case in out["cases"]} == set(CELLS)
    for cell, train in out["train"].items():
        assert train["engines"] == ["sharded", workers, "kernel"], (cell, train)
        assert train["loss"] < 1e-4 and train["params"] < 1e-3, (cell, train)
        assert train["last_loss"] < 0.93 * train["first_loss"], (cell, train)  # 20 steps: every cell learns
        assert train["checkpoint_loads"] == cell
    assert out["b1"] == ["kernel", ["batch size 1 is not split"]], out


@pytest.mark.parametrize("helpers", ["worker", "page"])
def test_a_dead_helper_falls_back_to_one_worker_without_losing_a_step(browser, isolated, helpers):
    result = run_script(browser, isolated, "dies", helpers=helpers)
    assert (result["pageStarted"] > 0) == (helpers == "page"), result["pageStarted"]
    out = result["ok"]
    for cell in CELLS:
        case = out[cell]
        assert case["started"][:2] == [2, ""] and case["engine"] == ["sharded", 2], (cell, case)
        assert case["split"] < 1e-5, (cell, case)  # split across both workers while the helper lived
        assert case["host_left"] and case["reason"].startswith("a helper worker failed"), (cell, case)
        assert case["steps"] == 6 and case["finite"], (cell, case)  # the failed step was computed again here
        assert case["new_engine"] == "kernel", (cell, case)
        assert case["again_identical"], (cell, case)  # a window after the failure: this worker alone


def test_the_heap_growing_inside_a_window_does_not_stop_the_helpers(browser, isolated):
    out = run_script(browser, isolated, "grows")["ok"]
    assert out["grew"] == 3 and out["finite"], out
    assert out["engine"] == "sharded" and out["helpers_run"], out  # not a fallback to one worker


def test_without_isolation_one_worker_trains(browser, not_isolated):
    result = run_script(browser, not_isolated, "plain")
    out = result["ok"]
    assert result["isolated"] is False
    assert out["workers"][:2] == [1, out["not_isolated"]], out
    for cell in CELLS:
        engine, workers, why = out[cell]["engine"]
        assert engine == "kernel" and workers == 1 and why == [out["not_isolated"]], (cell, out[cell])
        assert out[cell]["last"] < 0.93 * out[cell]["first"], (cell, out[cell])
