import dataclasses
import math

import numpy as np
import pytest

import tinyrnn
from tinyrnn import ConfigError, TextError, TrainConfig, Trainer, TrainingDiverged
from helpers import REPETITIVE, assert_learns_repetitive_text

SMALL = TrainConfig(hidden_size=24, seq_len=10, batch_size=4, lr=1e-2, eval_every=20, eval_chars=500)


def test_loss_at_initialisation_is_about_ln_V():
    trainer = Trainer(tinyrnn.default_corpus(), SMALL)
    V = trainer.vocab.size
    first = trainer.step()
    assert abs(first.train_loss - math.log(V)) < 0.02
    assert abs(trainer.evaluate() - math.log(V)) < 0.05


@pytest.mark.parametrize("optimizer, lr", [("adam", 1e-2), ("adagrad", 1e-1), ("sgd", 0.1)])
def test_training_on_repetitive_text_drives_the_loss_far_below_ln_V(optimizer, lr):
    assert_learns_repetitive_text(TrainConfig(hidden_size=24, seq_len=10, batch_size=4, lr=lr, optimizer=optimizer,
                                              eval_every=50))


@pytest.mark.parametrize("engine", tinyrnn.ENGINES)
def test_a_fixed_seed_reproduces_losses_bit_for_bit(engine):
    config = TrainConfig(hidden_size=16, seq_len=8, batch_size=3, seed=7, engine=engine)
    runs = [[m.train_loss for m in Trainer(tinyrnn.default_corpus(), config).run(15)] for _ in range(2)]
    assert runs[0] == runs[1]
    other = [m.train_loss for m in Trainer(tinyrnn.default_corpus(), TrainConfig(
        hidden_size=16, seq_len=8, batch_size=3, seed=8, engine=engine)).run(15)]
    assert other != runs[0]


def test_engines_train_the_same_model():
    text = tinyrnn.default_corpus()[:20_000]
    config = TrainConfig(hidden_size=16, seq_len=8, batch_size=3, dtype="float64")
    fused = Trainer(text, config).run(10)
    traced = Trainer(text, TrainConfig(**{**config.to_dict(), "engine": "autograd"})).run(10)
    np.testing.assert_allclose([m.train_loss for m in fused], [m.train_loss for m in traced], rtol=1e-12)


def test_the_learning_rate_decays_along_half_a_cosine_to_a_tenth():
    from tinyrnn.optim import LR_FLOOR, scheduled_lr
    lrs = [scheduled_lr(0.01, 8, step) for step in range(12)]
    assert lrs[0] == 0.01 and lrs[4] == pytest.approx(0.01 * (1 + LR_FLOOR) / 2)
    assert all(a > b for a, b in zip(lrs[:8], lrs[1:9]))  # falling until the 8th update, then the floor
    assert lrs[8:] == [pytest.approx(0.01 * LR_FLOOR)] * 4
    assert scheduled_lr(0.01, None, 10**6) == 0.01


@pytest.mark.parametrize("engine", tinyrnn.ENGINES)
def test_a_decaying_run_updates_with_the_scheduled_rate_and_resumes_on_it(engine):
    """The first update is a constant-rate run's; later ones take smaller steps; the rate reaches the floor after
    lr_decay_steps updates, and a run continued from a checkpoint goes on along the same schedule."""
    from tinyrnn.optim import scheduled_lr
    text = tinyrnn.default_corpus()[:20_000]
    constant = TrainConfig(hidden_size=16, seq_len=8, batch_size=3, engine=engine, lr=0.01)
    decaying = Trainer(text, dataclasses.replace(constant, lr_decay_steps=6))
    steady = Trainer(text, constant)
    first = [t.step().train_loss for t in (decaying, steady)]
    assert first[0] == first[1]
    before = {k: v.copy() for k, v in decaying.params.items()}
    decaying.step(), steady.step()
    assert decaying.optimizer.lr == pytest.approx(scheduled_lr(0.01, 6, 1)) and decaying.optimizer.lr < 0.01
    assert any(not np.array_equal(decaying.params[k], steady.params[k]) for k in before)
    decaying.run(2)
    resumed = Trainer.from_checkpoint(decaying.state(), text)
    for trainer in (decaying, resumed):
        trainer.run(3)
        assert trainer.optimizer.lr == pytest.approx(0.001)  # the 7th update onwards: lr × LR_FLOOR
    for k in decaying.params:
        np.testing.assert_array_equal(resumed.params[k], decaying.params[k])


def test_streams_and_hidden_state_follow_the_char_rnn_loader():
    text = "".join(chr(65 + i % 26) for i in range(1001))  # ids 0..25 repeating
    trainer = Trainer(text, TrainConfig(hidden_size=4, seq_len=5, batch_size=4, val_fraction=0.0))
    L = trainer.stream_len
    assert L == 250 and trainer.windows_per_epoch == 50
    x, y = trainer.current_batch()
    ids = trainer.vocab.encode(text)
    for b in range(4):
        np.testing.assert_array_equal(x[b], ids[b * L: b * L + 5])
        np.testing.assert_array_equal(y[b], ids[b * L + 1: b * L + 6])
    trainer.step()
    assert np.any(trainer.hidden != 0)  # carried into the next window
    x2, _ = trainer.current_batch()
    np.testing.assert_array_equal(x2[0], ids[5:10])
    trainer.run(49)
    assert trainer.window == 0 and np.all(trainer.hidden == 0)  # a new epoch restarts the streams


def test_metrics_are_reported():
    trainer = Trainer(tinyrnn.default_corpus(), SMALL)
    history = trainer.run(20)
    last = history[-1]
    assert [m.step for m in history] == list(range(1, 21))
    assert last.chars_seen == 20 * 4 * 10
    assert last.val_loss is not None and history[0].val_loss is None
    assert last.chars_per_sec > 0 and last.grad_norm > 0 and last.elapsed > 0
    assert trainer.history == history
    assert trainer.gradient_flow().shape == (10,)
    report = trainer.gradient_check()
    assert report.passed, report.summary()


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_model():
    """A tanh RNN with a shifted log-softmax stays finite for any learning rate we accept (≤ 10): a too-large one
    shows as a loss far above ln V. NaN needs overflow, so we push the output weights to the edge of float32 —
    as a run of absurd updates would — and check that the next step is refused and nothing is lost."""
    trainer = Trainer(REPETITIVE, TrainConfig(hidden_size=16, seq_len=10, batch_size=4, lr=5.0, optimizer="sgd"))
    trainer.run(3)
    trainer.params["W_yh"][:] = np.finfo(np.float32).max  # in place: the logits overflow
    good = {k: v.copy() for k, v in trainer.params.items()}
    good_state = {k: np.copy(v) for k, v in trainer.optimizer_state.items()}
    with pytest.raises(TrainingDiverged, match=r"training diverged at step 4 .*lower the learning rate \(now 5\)"):
        trainer.step()
    assert trainer.step_count == 3 and len(trainer.history) == 3
    for name, value in trainer.params.items():
        np.testing.assert_array_equal(value, good[name])
    for name, value in trainer.optimizer_state.items():
        np.testing.assert_array_equal(value, good_state[name])
    trainer.params = Trainer(REPETITIVE, trainer.config).params  # e.g. the app reloading its last good checkpoint
    assert math.isfinite(trainer.step().train_loss)


def test_a_too_large_learning_rate_is_visible_as_a_high_loss():
    trainer = Trainer(REPETITIVE, TrainConfig(hidden_size=24, seq_len=10, batch_size=4, lr=2.0, optimizer="sgd"))
    history = trainer.run(100)
    assert all(math.isfinite(m.train_loss) for m in history)
    assert history[-1].train_loss > math.log(trainer.vocab.size)


@pytest.mark.parametrize("changes, message", [
    ({"hidden_size": 0}, "hidden_size must be a whole number from 1 to 4,096, got 0"),
    ({"hidden_size": -3}, "hidden_size must be a whole number"),
    ({"hidden_size": 10**6}, "hidden_size must be a whole number"),
    ({"seq_len": 0}, "seq_len must be a whole number from 1 to 1,000, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a whole number"),
    ({"lr": 0.0}, r"lr must be a number in \(0, 10\], got 0.0"),
    ({"lr": float("nan")}, "lr must be a number"),
    ({"lr": 1e9}, "lr must be a number"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adagrad, adam"),
    ({"clip_norm": -1.0}, "clip_norm must be a number"),
    ({"val_fraction": 0.9}, r"val_fraction must be a number in \[0, 0.5\]"),
    ({"dtype": "float16"}, "dtype must be one of float32, float64"),
])
def test_absurd_hyperparameters_are_refused_by_name(changes, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(REPETITIVE, TrainConfig(**{**SMALL.to_dict(), **changes}))


def test_text_too_short_for_the_batch_says_what_fits():
    with pytest.raises(ConfigError, match=r"too few for batch_size=16 × seq_len=25 .* or batch_size ≤ 1"):
        Trainer("hello world, " * 3, TrainConfig(val_fraction=0.0))


@pytest.mark.parametrize("text, message", [("", "the text is empty"), ("zzzz", "only one distinct character")])
def test_unusable_text(text, message):
    with pytest.raises(TextError, match=message):
        Trainer(text, SMALL)


def test_trains_on_emoji_and_cjk():
    text = "我爱学习 🐍🔥 naïve café\n" * 200
    trainer = Trainer(text, SMALL)
    trainer.run(5)
    out = trainer.sample(50, prime="我", seed=1)
    assert len(out) == 50 and set(out) <= set(text)


# --- issue 9: API misuse names the argument; divergence is reported ---------------------------------------------

@pytest.mark.parametrize("n_steps", [-5, 2.5, True, "3"])
def test_run_refuses_a_bad_number_of_steps(n_steps):
    trainer = Trainer(REPETITIVE, SMALL)
    with pytest.raises(ConfigError, match="n_steps must be a whole number ≥ 0"):
        trainer.run(n_steps)
    assert trainer.step_count == 0
    assert len(trainer.run(np.int64(2))) == 2


def test_numpy_learning_rates_are_numbers():
    trainer = Trainer(REPETITIVE, TrainConfig(**{**SMALL.to_dict(), "lr": np.float32(0.01)}))
    trainer.run(2)
    assert trainer.optimizer.lr == pytest.approx(0.01)
    assert tinyrnn.make_optimizer("sgd", np.float64(0.5)).lr == 0.5
    with pytest.raises(ConfigError, match=r"lr must be a number in \(0, 10\], got np.float32\(20.0\)"):
        tinyrnn.make_optimizer("adam", np.float32(20))


def test_parameters_that_do_not_fit_the_vocabulary_are_refused():
    params = tinyrnn.init_params(tinyrnn.ModelConfig(5, SMALL.hidden_size))
    with pytest.raises(ConfigError, match=r"parameter 'W_hx' has shape \(24, 5\), but the vocabulary \(10 symbols\)"):
        Trainer(REPETITIVE, SMALL, params=params)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        Trainer(REPETITIVE, {"hidden_size": 8})


def test_a_diverging_run_says_what_to_change():
    trainer = Trainer(tinyrnn.load_corpus("alphabet"), TrainConfig(hidden_size=16, seq_len=10, batch_size=4, lr=10.0,
                                                                  clip_norm=None))
    assert trainer.divergence_warning() is None
    trainer.run(50)
    warning = trainer.divergence_warning()
    assert warning is not None, trainer.history[-1].train_loss
    assert "training is diverging" in warning and "far above ln V" in warning
    assert "lower the learning rate (now 10)" in warning and "turn gradient clipping on" in warning
    calm = Trainer(REPETITIVE, SMALL)
    calm.run(50)
    assert calm.divergence_warning() is None


@pytest.mark.parametrize("change, message", [
    ({"n_probes": 0}, "n_probes must be None .* or a whole number ≥ 1, got 0"),
    ({"n_probes": -3}, "n_probes must be None"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"eps": 0.0}, "eps must be a number > 0"),
    ({"inputs": -1}, r"inputs must lie in \[0, 7\)"),
    ({"inputs": 7}, r"inputs must lie in \[0, 7\)"),
    ({"targets": -2}, r"targets must lie in \[0, 7\)"),
    ({"batch": 0}, r"inputs and targets must be \(B, T\) with B ≥ 1 and T ≥ 1"),
    ({"h0": "wrong"}, r"h0 must be \(B, H\) = \(3, 5\)"),
])
def test_gradient_check_refuses_bad_arguments_instead_of_passing(problem, change, message):
    params, inputs, targets, h0 = problem(7, 5, 3, 4)
    if "inputs" in change:
        inputs = inputs.copy()
        inputs[1, 2] = change.pop("inputs")
    if "targets" in change:
        targets = targets.copy()
        targets[0, 0] = change.pop("targets")
    if change.pop("batch", None) == 0:
        inputs, targets, h0 = inputs[:0], targets[:0], h0[:0]
    if change.pop("h0", None):
        h0 = h0[:, :2].T
    with pytest.raises(ConfigError if "lie in" not in message else tinyrnn.UnknownCharacterError, match=message):
        tinyrnn.gradient_check(params, inputs, targets, h0, **change)


def test_a_long_runs_history_stays_bounded_and_keeps_its_shape(monkeypatch):
    from tinyrnn import trainer as trainer_module
    from tinyrnn.config import thin_history

    monkeypatch.setattr(trainer_module, "HISTORY_LIMIT", 40)
    trainer = Trainer(REPETITIVE, TrainConfig(hidden_size=8, seq_len=5, batch_size=2, eval_every=7))
    trainer.run(300)
    steps = [m.step for m in trainer.history]
    assert len(steps) <= 40 and steps == sorted(set(steps))
    assert steps[0] < 50  # the start of the run is still there, thinned
    assert steps[-10:] == list(range(291, 301))  # the newest steps as they were
    vals = [m.step for m in trainer.history if m.val_loss is not None]
    assert vals and all(v % 7 == 0 for v in vals) and min(vals) < 200  # validation points, old ones too
    assert trainer.history[-1].step == trainer.step_count == 300
    history = [tinyrnn.StepMetrics(i, float(i), None, 1.0, 1.0, i, 0.1 * i) for i in range(1, 1001)]
    thinned = thin_history(history, 100)
    assert len(thinned) <= 100 and thinned[-50:] == history[-50:] and thinned[0] is history[0]
    assert thin_history(history[:100], 100) == history[:100]


def test_a_checkpoint_with_more_history_than_a_file_holds_is_thinned_and_loads(monkeypatch):
    from tinyrnn import checkpoint as checkpoint_module

    trainer = Trainer(REPETITIVE, TrainConfig(hidden_size=8, seq_len=5, batch_size=2))
    trainer.run(60)
    monkeypatch.setattr(checkpoint_module, "MAX_HISTORY_ROWS", 16)
    loaded = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trainer.state()))
    assert 0 < len(loaded.history) <= 16 and loaded.history[-1] == trainer.history[-1]
