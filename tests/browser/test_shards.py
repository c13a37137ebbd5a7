"""Training on k Web Workers (tinyrnn.shards) in Chromium: the same loss and gradients as one worker, up to float32
summation order; the fallback to one worker without isolation or when a helper dies.

A small harness (bench/worker_harness.py) runs a Python script in Pyodide in a Web Worker, as the app does,
with the built site's own Pyodide and wheels. The harness's server sends COOP/COEP itself (the shipped site gets
them from its service worker: tests/browser/test_isolation*.py), or, for the fallback, does not.
"""

from __future__ import annotations

import pytest

from bench.worker_harness import harness_server, run_script

pytestmark = pytest.mark.browser

COMMON = r'''
import json
import numpy as np
import tinyrnn
from tinyrnn import flat, shards, wasm_flat

TEXT = "the quick brown fox jumps over the lazy dog; " * 400
def config(**kw):
    return tinyrnn.TrainConfig(**{"hidden_size": 32, "seq_len": 16, "batch_size": 8, "lr": 1e-2, "clip_norm": 0.5,
                                  "eval_every": 10**6, **kw})

def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-30))

def one_worker(cfg):
    host, shards.POOL.host = shards.POOL.host, None
    try:
        return tinyrnn.Trainer(TEXT, cfg)
    finally:
        shards.POOL.host = host
'''

SAME_GRADIENTS = COMMON + r'''
status = await shards.start(WORKERS)
out = {"status": status, "workers": shards.POOL.workers, "cases": []}
for H, B, T in [(32, 8, 16), (128, 16, 25), (24, 5, 3), (16, 2, 1)]:
    cfg = config(hidden_size=H, batch_size=B, seq_len=T)
    sharded, single = tinyrnn.Trainer(TEXT, cfg), one_worker(cfg)
    for _ in range(3):  # both at the same state, past the first window (a non-zero h0)
        single.step()
    sharded.params = {k: v.copy() for k, v in single.params.items()}
    sharded.hidden = single.hidden.copy()
    sharded.window = single.window
    inputs, targets = single.current_batch()
    layout = single._flat.layout
    params = layout.flatten(single.params)
    a = sharded._flat.window_gradient(params, inputs, targets, sharded.hidden)
    b = single._flat.window_gradient(params, inputs, targets, single.hidden)
    p64 = {k: v.astype(np.float64) for k, v in single.params.items()}
    ref = tinyrnn.loss_and_grads(p64, inputs, targets, single.hidden.astype(np.float64), engine="autograd")
    ref_flat = layout.flatten(ref.grads)
    out["cases"].append({
        "shape": [H, B, T], "sharded": type(sharded._flat).__name__, "configured": shards.POOL.shape is not None,
        "loss": abs(a.loss - b.loss) / b.loss, "grad": rel(a.grad, b.grad),
        "h_last_equal": bool(np.array_equal(a.h_last, b.h_last)),
        "loss_ref": abs(a.loss - ref.loss) / ref.loss, "grad_ref": rel(a.grad, ref_flat),
    })
# training: the sharded trainer follows the single one
cfg = config()
sharded, single = tinyrnn.Trainer(TEXT, cfg), one_worker(cfg)
pairs = [(sharded.step(), single.step()) for _ in range(30)]
out["train"] = {
    "loss": max(abs(x.train_loss - y.train_loss) / y.train_loss for x, y in pairs),
    "first_loss": pairs[0][0].train_loss, "last_loss": pairs[-1][0].train_loss,
    "params": max(rel(sharded.params[k], single.params[k]) for k in single.params),
    "checkpoint_loads": tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(sharded.state())).config.batch_size,
}
out["says"] = {"rnn": shards.status(sharded), "gru": shards.status(tinyrnn.Trainer(TEXT, config(cell="gru"))),
               "b1": shards.status(tinyrnn.Trainer(TEXT, config(batch_size=1)))}
json.dumps(out)
'''

HELPER_DIES = COMMON + r'''
status = await shards.start(2)
shards.STEP_TIMEOUT_MS = 1500
trainer = tinyrnn.Trainer(TEXT, config())
before = [trainer.step().train_loss for _ in range(3)]
shards.POOL.host.helpers[0].terminate()  # the helper is gone: the next window cannot finish there
import asyncio
await asyncio.sleep(3.0)  # Chromium ends a worker that is running (asleep in Atomics.wait) after 2 s
after = [trainer.step().train_loss for _ in range(3)]  # the same step again on one worker, never lost
json.dumps({"status_before": status, "status_after": shards.status(), "host_left": shards.POOL.host is None,
            "steps": trainer.step_count, "finite": all(np.isfinite(before + after)),
            "new_trainer": type(tinyrnn.Trainer(TEXT, config())._flat).__name__})
'''

HEAP_GROWS = COMMON + r'''
status = await shards.start(2)
trainer = tinyrnn.Trainer(TEXT, config())
trainer.step()
kept, backward = [], wasm_flat.WasmWindow.backward
def growing_backward(self, flat_params):  # Pyodide's heap grows between the helpers' post and collect
    kept.append(np.ones(32 * 2**20 // 4, np.float32))
    return backward(self, flat_params)
wasm_flat.WasmWindow.backward = growing_backward
losses = [trainer.step().train_loss for _ in range(3)]
json.dumps({"status": shards.status(trainer), "grew": len(kept), "finite": bool(np.isfinite(losses).all())})
'''

NOT_ISOLATED = COMMON + r'''
status = await shards.start(2)
trainer = tinyrnn.Trainer(TEXT, config())
losses = [m.train_loss for m in trainer.run(20)]
json.dumps({"status": status, "flat": type(trainer._flat).__name__, "first": losses[0], "last": losses[-1]})
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


@pytest.mark.parametrize("script", ["same2", "same3"])
def test_k_workers_compute_the_gradients_of_one(browser, isolated, script):
    result = run_script(browser, isolated, script)
    out, workers = result["ok"], int(script[-1])
    assert result["isolated"] is True
    assert out["status"] == f"{workers} workers (shared memory)" and out["workers"] == workers, out
    for case in out["cases"]:
        assert case["sharded"] == "ShardedTrainer" and case["configured"], case
        # the same float32 numbers, summed in another order: the loss to 1e-6, the gradient to 1e-5 of its scale
        assert case["loss"] < 1e-6 and case["grad"] < 1e-5, case
        assert case["h_last_equal"], case  # each stream's recurrence is computed whole, by one worker
        assert case["loss_ref"] < 1e-5 and case["grad_ref"] < 2e-4, case  # and the float64 traced reference
    train = out["train"]
    assert train["loss"] < 1e-4 and train["params"] < 1e-3, train
    assert train["last_loss"] < train["first_loss"] - 0.5, train
    assert train["checkpoint_loads"] == 8
    says = out["says"]  # what the page's Training line shows for each model
    assert says["rnn"] == f"{workers} workers (shared memory)", says
    assert says["gru"] == f"one worker: the gated cells train on one worker; {workers} workers (shared memory) for the tanh RNN"
    assert says["b1"].startswith("one worker: one stream (batch size 1) is not split"), says


def test_a_dead_helper_falls_back_to_one_worker_without_losing_a_step(browser, isolated):
    out = run_script(browser, isolated, "dies")["ok"]
    assert out["status_before"] == "2 workers (shared memory)"
    assert out["status_after"].startswith("one worker: a helper worker failed"), out
    assert out["host_left"] and out["steps"] == 6 and out["finite"], out
    assert out["new_trainer"] == "FlatTrainer", out


def test_the_heap_growing_inside_a_window_does_not_stop_the_helpers(browser, isolated):
    out = run_script(browser, isolated, "grows")["ok"]
    assert out["grew"] == 3 and out["finite"], out
    assert out["status"] == "2 workers (shared memory)", out  # not a fallback to one worker


def test_without_isolation_one_worker_trains(browser, not_isolated):
    result = run_script(browser, not_isolated, "plain")
    out = result["ok"]
    assert result["isolated"] is False
    assert out["status"] == (
        "one worker: this page is not cross-origin isolated yet (it is from the first load after this browser has saved "
        "the site for offline use, usually within a minute: reload then)")
    assert out["flat"] == "FlatTrainer" and out["last"] < out["first"] - 0.5, out
