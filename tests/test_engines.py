"""The engines (tinyrnn.engines): each one trains as the numpy reference does, for every cell it supports; ``pick``
chooses the fastest that applies and records why; no engine commits a non-finite update; checkpoints round-trip
through each; BLAS is bounded to one thread while training.

The kernel engine runs here on the native kernels (tinyrnn-native, installed by ``make setup``) and on the
browser's WebAssembly kernels under wasmtime (as inside Pyodide); the sharded engine's split across Web Workers is
checked in Chromium (tests/browser/test_shards.py), its fallback to one worker here."""

import math
import sys

import numpy as np
import pytest

import tinyrnn
from tinyrnn import ModelConfig, TrainConfig, Trainer, TrainingDiverged, engines
from tinyrnn.engines import native, wasm, wasm_module
from tinyrnn.engines import Platform
from tinyrnn.engines.kernel import supports

from helpers import FLAT_CONFIG, REPETITIVE, assert_close, assert_follows_the_numpy_trainer
from test_wasm_kernels import WasmtimeHeap


def wasm_kernel_set():
    heap = WasmtimeHeap(pages=1024)
    return wasm.WasmFlatKernels(wasm_module.SimdKernels(heap, heap.address))


def native_kernel_set():
    if not native.available():
        pytest.fail("the native kernels are not installed: make setup installs them (pip install ./native)")
    return native.NATIVE


class FailingHost:
    """A pool's JavaScript host whose helpers have gone: every call fails, as a dead Web Worker makes it."""

    def configure(self, *args):
        raise RuntimeError("helper 1 did not answer")

    def stop(self):
        self.stopped = True


class FakePool:
    """workers.POOL's shape with two workers whose helper fails (natively there are no Web Workers)."""

    def __init__(self):
        self.host, self.helpers, self.shape, self.reason = FailingHost(), 1, None, ""
        self.to_js, self.module = list, None

    @property
    def workers(self):
        return self.helpers + 1

    def fail(self, error):
        self.host, self.helpers, self.reason = None, 0, f"a helper worker failed ({error})"


PLATFORMS = {
    "native": lambda: Platform(native_kernel_set(), "native kernels"),
    "wasm": lambda: Platform(wasm_kernel_set(), "WebAssembly kernels"),
}


@pytest.fixture
def on(monkeypatch):
    """on(platform) makes the trainers built afterwards see that platform (None: the numpy reference only)."""
    def use(platform):
        monkeypatch.setattr(Platform, "here", classmethod(lambda cls: platform or Platform(None, "", "no kernels")))
    return use


def config(**changes):
    return TrainConfig(**{**FLAT_CONFIG.to_dict(), **changes})


# --- every engine against the numpy reference ----------------------------------------------------------------

@pytest.mark.parametrize("where", sorted(PLATFORMS))
@pytest.mark.parametrize("cell", tinyrnn.CELLS)
def test_each_kernel_engine_trains_like_the_numpy_reference_for_every_cell_it_supports(on, where, cell):
    platform = PLATFORMS[where]()
    on(platform)
    fast = Trainer(REPETITIVE, config(cell=cell))
    on(None)
    plain = Trainer(REPETITIVE, config(cell=cell))
    if not supports(platform.kernels, cell):
        assert fast.engine_choice.engine == "reference"
        assert fast.engine_choice.not_faster == (f"no {cell.upper()} kernels here",)
        return
    assert fast.engine_choice == engines.EngineChoice("kernel", platform.backend)
    assert_follows_the_numpy_trainer(fast, plain)


@pytest.mark.parametrize("where", sorted(PLATFORMS))
@pytest.mark.parametrize("cell", tinyrnn.CELLS)
def test_clipping_by_value_on_the_kernel_engines_trains_like_the_numpy_reference(on, where, cell):
    """clip_value (every gradient entry into ±0.02, then the global norm of the clipped gradient to 0.5) is part
    of the kernels' Adam call: the kernel engine takes such a config and follows the reference."""
    platform = PLATFORMS[where]()
    on(platform)
    fast = Trainer(REPETITIVE, config(cell=cell, clip_value=0.02))
    on(None)
    plain = Trainer(REPETITIVE, config(cell=cell, clip_value=0.02))
    assert fast.engine_choice == engines.EngineChoice("kernel", platform.backend)
    assert_follows_the_numpy_trainer(fast, plain)


@pytest.mark.parametrize("where", sorted(PLATFORMS))
def test_a_decaying_learning_rate_on_the_kernel_engines_trains_like_the_numpy_reference(on, where):
    """lr_decay_steps changes the rate every update; the kernels' Adam takes each step's rate (30 steps of a
    60-step decay: the rate falls at every one)."""
    platform = PLATFORMS[where]()
    on(platform)
    fast = Trainer(REPETITIVE, config(cell="gru", lr_decay_steps=60))
    on(None)
    plain = Trainer(REPETITIVE, config(cell="gru", lr_decay_steps=60))
    assert fast.engine_choice == engines.EngineChoice("kernel", platform.backend)
    assert_follows_the_numpy_trainer(fast, plain)


def test_the_sharded_engine_loses_no_step_when_a_helper_fails(on):
    """A helper that fails mid-window: that window is computed on this worker alone, exactly as the kernel engine
    computes it, and the pool stops (the next engine says why)."""
    kernels, pool = wasm_kernel_set(), FakePool()
    on(Platform(kernels, "WebAssembly kernels", pool=pool))
    sharded = Trainer(REPETITIVE, config())
    assert sharded.engine_choice == engines.EngineChoice("sharded", "WebAssembly kernels", 2)
    on(Platform(kernels, "WebAssembly kernels"))
    single = Trainer(REPETITIVE, config())
    for _ in range(3):
        a, b = sharded.step(), single.step()
        assert (a.train_loss, a.grad_norm) == (b.train_loss, b.grad_norm)
    assert pool.host is None and pool.reason == "a helper worker failed (helper 1 did not answer)"
    for k, v in single.params.items():
        np.testing.assert_array_equal(sharded.params[k], v)


def test_the_reference_engines_stay_exact_in_float64():
    text = tinyrnn.default_corpus()[:20_000]
    for cell in tinyrnn.CELLS:
        cfg = TrainConfig(hidden_size=12, seq_len=6, batch_size=3, dtype="float64", cell=cell)
        fused = Trainer(text, cfg)
        traced = Trainer(text, TrainConfig(**{**cfg.to_dict(), "engine": "autograd"}))
        assert fused.engine_choice.engine == traced.engine_choice.engine == "reference"
        assert traced.engine_choice.backend == "numpy (traced autograd engine)"
        for _ in range(5):
            assert fused.step().train_loss == pytest.approx(traced.step().train_loss, rel=1e-12)
        for k, v in traced.params.items():
            np.testing.assert_allclose(fused.params[k], v, rtol=1e-10, atol=1e-13)


# --- which engine, and why ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, why", [
    ({"dtype": "float64"}, "the kernels compute float32, not float64"),
    ({"optimizer": "sgd"}, "the kernels have Adam, not sgd"),
    ({"engine": "autograd"}, "the autograd engine was asked for"),
])
def test_settings_the_kernels_lack_choose_the_reference_and_say_why(change, why):
    platform = Platform(wasm_kernel_set(), "WebAssembly kernels")
    engine = engines.pick(config(**change), ModelConfig(10, 24), tinyrnn.init_params(ModelConfig(10, 24)), platform)
    assert engine.choice.engine == "reference" and engine.choice.not_faster == (why,)


def test_a_kernel_set_that_clips_by_value_takes_clip_value():
    class Clipping:
        def adam(self, flat, grad, m, v, scale, beta1, beta2, step, eps, clip_value=None):
            pass

    params = tinyrnn.init_params(ModelConfig(10, 24))
    engine = engines.pick(config(clip_value=1.0), ModelConfig(10, 24), params, Platform(Clipping(), "clipping"))
    assert engine.choice == engines.EngineChoice("kernel", "clipping")


class ClippingKernels:
    """A kernel set whose ``adam`` clips by value (``clip(grad, -c, c) × scale``, the contract in flat.py): the
    native one with numpy's clip in front of its Adam."""

    def __init__(self, kernels):
        self.kernels, self.window, self.sum_squares = kernels, kernels.window, kernels.sum_squares

    def adam(self, flat, grad, m, v, scale, beta1, beta2, step, eps, clip_value=None):
        grad = np.clip(grad, -clip_value, clip_value) if clip_value is not None else grad
        return self.kernels.adam(flat, grad, m, v, scale, beta1, beta2, step, eps)


def test_clipping_by_value_then_by_norm_on_the_kernel_engine_trains_like_the_reference(on):
    """Both clips at once (by value first, then the clipped gradient's norm), as optim's do."""
    clipped = config(clip_value=2e-3, clip_norm=0.02)
    on(Platform(ClippingKernels(native_kernel_set()), "clipping"))
    fast = Trainer(REPETITIVE, clipped)
    on(None)
    assert_follows_the_numpy_trainer(fast, Trainer(REPETITIVE, clipped))


def test_the_sharded_engine_needs_two_streams():
    platform = Platform(wasm_kernel_set(), "WebAssembly kernels", pool=FakePool())
    params = tinyrnn.init_params(ModelConfig(10, 24))
    one = engines.pick(config(batch_size=1), ModelConfig(10, 24), params, platform)
    assert one.choice == engines.EngineChoice("kernel", "WebAssembly kernels", 1, ("batch size 1 is not split",))
    no_pool = Platform(platform.kernels, "WebAssembly kernels", no_pool="not cross-origin isolated")
    two = engines.pick(config(), ModelConfig(10, 24), params, no_pool)
    assert two.choice.not_faster == ("not cross-origin isolated",)


def test_installed_native_kernels_are_used_unless_switched_off(monkeypatch):
    native_kernel_set()
    monkeypatch.delenv(engines.NATIVE_SWITCH, raising=False)
    trainer = Trainer(REPETITIVE, config())
    variant = native.library().tinyrnn_variant().decode()
    assert trainer.engine_choice == engines.EngineChoice("kernel", f"native kernels ({variant})")
    monkeypatch.setenv(engines.NATIVE_SWITCH, "0")
    off = Trainer(REPETITIVE, config())
    assert off.engine_choice.engine == "reference"
    assert off.engine_choice.not_faster == ("native kernels turned off (TINYRNN_NATIVE_KERNELS=0)",)
    monkeypatch.delenv(engines.NATIVE_SWITCH)
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setitem(sys.modules, "tinyrnn_native", None)  # as if not installed
    missing = Trainer(REPETITIVE, config())
    assert missing.engine_choice.not_faster == ("native kernels not installed (pip install ./native)",)


# --- never a non-finite update; checkpoints --------------------------------------------------------------------

ENGINES = {"reference": lambda: None, **PLATFORMS}


@pytest.mark.parametrize("where", sorted(ENGINES))
def test_divergence_keeps_the_last_good_model_on_every_engine(on, where):
    on(ENGINES[where]())
    trainer = Trainer(REPETITIVE, config())
    assert trainer.engine_choice.engine == ("reference" if where == "reference" else "kernel")
    trainer.run(3)
    trainer.params["W_yh"][:] = np.finfo(np.float32).max  # in place: the logits overflow
    good = {k: v.copy() for k, v in trainer.params.items()}
    good_state = {k: np.copy(v) for k, v in trainer.optimizer_state.items()}
    with pytest.raises(TrainingDiverged, match="training diverged at step 4 .*the last good model was kept"):
        trainer.step()
    assert trainer.step_count == 3 and len(trainer.history) == 3
    for k, v in trainer.params.items():
        np.testing.assert_array_equal(v, good[k])
    assert set(trainer.optimizer_state) == set(good_state)
    for k, v in trainer.optimizer_state.items():
        np.testing.assert_array_equal(v, good_state[k])
    trainer.params = Trainer(REPETITIVE, config()).params  # replaced as a whole, e.g. from a good checkpoint
    assert math.isfinite(trainer.step().train_loss)


@pytest.mark.parametrize("where", sorted(ENGINES))
def test_an_update_that_overflows_is_not_committed(on, where):
    """Adam's first moment at 1e38 with no second moment (a state only a broken file could hold) throws the
    parameters past float32's range: the step is refused and the engine keeps its parameters and state."""
    on(ENGINES[where]())
    trainer = Trainer(REPETITIVE, config())
    params = trainer.params
    state = {"t": 1, **{f"m/{k}": np.full_like(v, 1e38) for k, v in params.items()},
             **{f"v/{k}": np.zeros_like(v) for k, v in params.items()}}
    trainer.engine.load(params, state)
    before = {k: v.copy() for k, v in trainer.params.items()}
    with pytest.raises(TrainingDiverged, match="step 1: the update made parameters infinite; the last good model"):
        trainer.step()
    for k, v in trainer.params.items():
        np.testing.assert_array_equal(v, before[k])
    assert trainer.optimizer_state["t"] == 1
    np.testing.assert_array_equal(trainer.optimizer_state["m/b_y"], state["m/b_y"])


@pytest.mark.parametrize("where", sorted(ENGINES))
def test_a_checkpoint_round_trips_through_every_engine(on, where):
    on(ENGINES[where]())
    trainer = Trainer(REPETITIVE, config())
    trainer.run(5)
    saved = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trainer.state()))
    assert saved.optimizer_state["t"] == 5 and set(saved.params) == set(trainer.params)
    resumed = Trainer.from_checkpoint(saved, REPETITIVE)
    assert resumed.engine_choice == trainer.engine_choice
    assert [trainer.step().train_loss for _ in range(4)] == [resumed.step().train_loss for _ in range(4)]
    for k, v in trainer.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)
    on(None)  # the same checkpoint continues on the numpy reference, to float32 rounding
    plain = Trainer.from_checkpoint(saved, REPETITIVE)
    for _ in range(4):
        plain.step()
    for k, v in trainer.params.items():
        assert_close(plain.params[k], v, 1e-4)


# --- BLAS threads -------------------------------------------------------------------------------------------------

def test_training_runs_with_one_blas_thread_and_gives_the_setting_back(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from tinyrnn.engines import reference

    seen = []
    loss_and_grads = reference.model_lib.loss_and_grads

    def spy(*args):
        seen.append({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        return loss_and_grads(*args)

    monkeypatch.setenv(engines.NATIVE_SWITCH, "0")
    monkeypatch.setattr(reference.model_lib, "loss_and_grads", spy)
    with threadpool_limits(2, user_api="blas"):
        trainer = Trainer(REPETITIVE, config())
        trainer.run(2)
        trainer.step()
        after = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    if not after:
        pytest.fail("numpy's BLAS is not visible to threadpoolctl")
    assert seen == [{1}, {1}, {1}] and after == {2}
