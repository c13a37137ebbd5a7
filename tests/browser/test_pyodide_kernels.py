"""The WebAssembly SIMD kernels inside real Pyodide (Node.js), with the wheels the self-contained site serves.

tests/test_wasm_kernels.py checks the kernels natively (wasmtime); this checks what only the real runtime can
show: that tinyrnn finds Pyodide's memory and loads the kernels, and that with them the engine computes what
numpy computes in the same runtime.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent

SCRIPT = r'''
import json
import numpy as np
import tinyrnn
from tinyrnn import bptt, model
from tinyrnn.engines import wasm_module

rng = np.random.default_rng(0)
config = tinyrnn.ModelConfig(vocab_size=13, hidden_size=37)
params = {k: (v + rng.standard_normal(v.shape) * 0.1).astype(np.float32)
          for k, v in model.init_params(config, seed=1).items()}
inputs, targets = rng.integers(0, 13, (5, 9)), rng.integers(0, 13, (5, 9))
h0 = (rng.standard_normal((5, 37)) * 0.5).astype(np.float32)

def run():
    return (bptt.manual_bptt(params, inputs, targets, h0),
            model.loss_and_grads(params, inputs, targets, h0, engine="fused"))

def adam():
    opt = tinyrnn.make_optimizer("adam", 2e-3)
    grads = {k: v * 0.5 for k, v in params.items()}
    state = {"t": 3, **{f"{slot}/{k}": np.abs(v) * 1e-3 for k, v in params.items() for slot in ("m", "v")}}
    return opt.compute(params, grads, state)

kernels = wasm_module.ACTIVE
(manual_k, fused_k), adam_k = run(), adam()
wasm_module.ACTIVE = None  # numpy (einsum) in the same runtime
(manual_n, fused_n), adam_n = run(), adam()
wasm_module.ACTIVE = kernels

def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

out = {
    "platform": __import__("sys").platform,
    "backend": tinyrnn.BACKEND,
    "kernels_loaded": kernels is not None,
    "manual": max(rel(manual_k.grads[k], manual_n.grads[k]) for k in manual_n.grads),
    "fused": max(rel(fused_k.grads[k], fused_n.grads[k]) for k in fused_n.grads),
    "norms": rel(manual_k.dh_norms, manual_n.dh_norms),
    "loss": abs(fused_k.loss - fused_n.loss),
    "adam_identical": all(np.array_equal(adam_k[0][k], adam_n[0][k]) for k in params)
                      and all(np.array_equal(adam_k[1][k], adam_n[1][k]) for k in adam_n[1] if k != "t"),
    "gradcheck": tinyrnn.gradient_check(params, inputs, targets, h0.astype(np.float64)).passed,
}
text = "the quick brown fox jumps over the lazy dog. " * 40
trainer = tinyrnn.Trainer(text, tinyrnn.TrainConfig(hidden_size=32, seq_len=16, batch_size=8, lr=1e-2, eval_every=10**6))
losses = [m.train_loss for m in trainer.run(60)]
out["first_loss"], out["last_loss"] = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))

# the gated cells: their time loops go through their kernels, and agree with numpy in the same runtime
from tinyrnn.engines import wasm
def reference_trainer(config):
    """A Trainer on the numpy reference engine (whose time loops run on the per-step kernels here)."""
    flat_kernels, wasm.ACTIVE = wasm.ACTIVE, None
    try:
        return tinyrnn.Trainer(text, config)
    finally:
        wasm.ACTIVE = flat_kernels
calls = {}
for name in ("gru_forward", "gru_backward", "lstm_forward", "lstm_backward"):
    def counted(*args, _name=name, _kernel=getattr(kernels, name)):
        calls[_name] = calls.get(_name, 0) + 1
        return _kernel(*args)
    setattr(kernels, name, counted)
for cell in ("gru", "lstm"):
    config = tinyrnn.ModelConfig(vocab_size=13, hidden_size=37, cell=cell)
    params = {k: (v + rng.standard_normal(v.shape) * 0.1).astype(np.float32)
              for k, v in model.init_params(config, seed=1).items()}
    state0 = (rng.standard_normal((5, config.state_size())) * 0.5).astype(np.float32)
    def run_cell():
        return (bptt.manual_bptt(params, inputs, targets, state0, cell=cell),
                model.loss_and_grads(params, inputs, targets, state0, engine="fused", cell=cell))
    manual_k, fused_k = run_cell()
    wasm_module.ACTIVE = None
    manual_n, fused_n = run_cell()
    wasm_module.ACTIVE = kernels
    trainer = reference_trainer(tinyrnn.TrainConfig(hidden_size=32, seq_len=16, batch_size=8, lr=1e-2,
                                                     eval_every=10**6, cell=cell))
    losses = [m.train_loss for m in trainer.run(60)]
    out[cell] = {
        "manual": max(rel(manual_k.grads[k], manual_n.grads[k]) for k in manual_n.grads),
        "fused": max(rel(fused_k.grads[k], fused_n.grads[k]) for k in fused_n.grads),
        "norms": rel(manual_k.dh_norms, manual_n.dh_norms),
        "loss": abs(fused_k.loss - fused_n.loss),
        "gradcheck": tinyrnn.gradient_check(params, inputs, targets, state0.astype(np.float64), cell=cell).passed,
        "first_loss": float(np.mean(losses[:5])), "last_loss": float(np.mean(losses[-5:])),
        "sample": len(trainer.sample(30, prime="the ", seed=1)),
    }
out["gated_calls"] = calls

# the kernel engine (tinyrnn.engines.wasm's whole windows): the Trainer picks it by itself here, for every cell, and
# trains as the numpy reference engine does
out["flat"] = {}
for cell in ("rnn", "gru", "lstm"):
    config = tinyrnn.TrainConfig(hidden_size=32, seq_len=16, batch_size=8, lr=1e-2, eval_every=10**6, clip_norm=0.5,
                                 cell=cell)
    fast, plain = tinyrnn.Trainer(text, config), reference_trainer(config)
    pairs = [(fast.step(), plain.step()) for _ in range(20)]
    out["flat"][cell] = {
        "engines": [fast.engine_choice.engine, plain.engine_choice.engine], "backend": fast.engine_choice.backend,
        "loss": max(abs(a.train_loss - b.train_loss) / b.train_loss for a, b in pairs),
        "norm": max(abs(a.grad_norm - b.grad_norm) / b.grad_norm for a, b in pairs),
        "first_steps": max(max(abs(a.train_loss - b.train_loss) / b.train_loss,
                               abs(a.grad_norm - b.grad_norm) / b.grad_norm) for a, b in pairs[:3]),
        "params": max(rel(fast.params[k], plain.params[k]) for k in plain.params),
        "first_loss": pairs[0][0].train_loss, "last_loss": pairs[-1][0].train_loss,
    }

# whole windows of every cell (engines.wasm, the shared window_impl.h): against numpy's float64 fused engine here
from tinyrnn.engines import flat as flat_module
out["windows"] = {}
for cell in ("rnn", "gru", "lstm"):
    mc = tinyrnn.ModelConfig(vocab_size=13, hidden_size=37, cell=cell)
    layout = flat_module.FlatLayout.of(mc)
    flat_params = layout.flatten({k: v + rng.standard_normal(v.shape) * 0.1
                                  for k, v in model.init_params(mc, seed=2).items()})
    state0 = (rng.standard_normal((5, layout.S)) * 0.5).astype(np.float32)
    window = wasm.ACTIVE.window(layout, inputs, targets, state0, 1.0 / inputs.size)
    loss, grad = window.forward(flat_params) / inputs.size, window.backward(flat_params)
    p64 = {k: v.astype(np.float64) for k, v in layout.views(flat_params).items()}
    ref = model.loss_and_grads(p64, inputs, targets, state0.astype(np.float64), engine="fused", cell=cell)
    grads = layout.flatten(ref.grads)
    clipped = layout.flatten({k: np.clip(g, -0.01, 0.01) for k, g in ref.grads.items() if k != "h0"})
    out["windows"][cell] = {
        "supported": wasm.ACTIVE.supports(cell), "loss": abs(loss - ref.loss) / ref.loss,
        "grad": rel(grad, grads), "dh0": rel(window.dh0, ref.grads["h0"]), "h_last": rel(window.h_last, ref.h_last),
        "norm_clipped": abs(wasm.ACTIVE.sum_squares(grad, 0.01) / float(np.vdot(clipped, clipped)) - 1),
    }
print("RESULT " + json.dumps(out))
'''


def test_kernels_load_and_agree_with_numpy_inside_pyodide(site_dir, tmp_path):
    node = shutil.which("node")
    assert node, "Node.js is installed by scripts/install_browser_deps.sh"
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    wheels = sorted((site_dir / "wheels").glob("tinyrnn-*.whl")) + sorted((site_dir / "pyodide").glob("autograd-*.whl"))
    assert len(wheels) == 2, wheels
    proc = subprocess.run([node, str(HERE / "pyodide_node.mjs"), str(site_dir / "pyodide"), str(script),
                           *map(str, wheels)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["platform"] == "emscripten"
    assert result["kernels_loaded"], result["backend"]
    assert result["backend"].startswith("WebAssembly SIMD kernels")
    assert result["manual"] < 1e-5 and result["fused"] < 1e-5 and result["norms"] < 1e-5, result
    assert result["loss"] < 1e-6, result
    assert result["adam_identical"], result
    assert result["gradcheck"], result
    assert result["last_loss"] < result["first_loss"] - 0.5, result
    for cell in ("gru", "lstm"):
        r = result[cell]
        assert r["manual"] < 1e-5 and r["fused"] < 1e-5 and r["norms"] < 1e-5 and r["loss"] < 1e-6, (cell, r)
        assert r["gradcheck"] and r["sample"] == 30, (cell, r)
        assert r["last_loss"] < r["first_loss"] - 0.5, (cell, r)
        # one forward and one backward loop per gradient (manual, fused) and per training step
        assert result["gated_calls"][f"{cell}_forward"] >= 62 and result["gated_calls"][f"{cell}_backward"] >= 62
    for cell, flat in result["flat"].items():  # the kernel engine: the same training as numpy, to float32 rounding
        assert flat["engines"] == ["kernel", "reference"] and flat["backend"] == "WebAssembly SIMD kernels", (cell, flat)
        assert flat["first_steps"] < 1e-5, (cell, flat)  # from the same parameters: rounding only
        # 20 steps at lr 1e-2 with clipping: the two trajectories drift apart by rounding, slowly
        assert flat["loss"] < 1e-4 and flat["norm"] < 1e-3 and flat["params"] < 1e-3, (cell, flat)
        assert flat["last_loss"] < 0.95 * flat["first_loss"], (cell, flat)  # and it learns
    for cell, w in result["windows"].items():  # the whole-window kernels of every cell, in the real runtime
        assert w["supported"] and w["loss"] < 2e-6 and w["grad"] < 2e-4, (cell, w)
        assert w["dh0"] < 2e-4 and w["h_last"] < 2e-4 and w["norm_clipped"] < 1e-4, (cell, w)
