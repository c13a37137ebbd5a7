"""Every cell (tanh RNN, GRU, LSTM) trains, samples, saves, resumes exactly and checks its gradients."""

import subprocess
import sys

import numpy as np
import pytest

import tinyrnn
from tinyrnn import CheckpointError, TrainConfig, Trainer

from helpers import assert_learns_repetitive_text

TEXT = tinyrnn.default_corpus()[:30_000]
GATED = ("gru", "lstm")


def test_each_cell_names_its_parameters_and_state_in_one_place():
    V, H = 7, 5
    assert tinyrnn.ModelConfig(V, H).param_shapes() == {
        "W_hx": (H, V), "W_hh": (H, H), "b_h": (H,), "W_yh": (V, H), "b_y": (V,)}
    assert tinyrnn.ModelConfig(V, H, "gru").param_shapes() == {
        "W_ih": (3 * H, V), "W_hh": (3 * H, H), "b_ih": (3 * H,), "b_hh": (3 * H,), "W_yh": (V, H), "b_y": (V,)}
    assert tinyrnn.ModelConfig(V, H, "lstm").param_shapes() == {
        "W_ih": (4 * H, V), "W_hh": (4 * H, H), "b_ih": (4 * H,), "b_hh": (4 * H,), "W_yh": (V, H), "b_y": (V,)}
    assert [tinyrnn.ModelConfig(V, H, c).state_size() for c in tinyrnn.CELLS] == [H, H, 2 * H]
    for cell in tinyrnn.CELLS:
        config = tinyrnn.ModelConfig(V, H, cell)
        params = tinyrnn.init_params(config, seed=1)
        assert {k: v.shape for k, v in params.items()} == config.param_shapes()
        assert tinyrnn.get_cell(cell).description
    assert tinyrnn.SETTINGS["cell"].choices == ("rnn", "gru", "lstm") and tinyrnn.SETTINGS["cell"].label == "Cell"


@pytest.mark.parametrize("cell", GATED)
def test_a_gated_cell_learns_a_repetitive_text(cell):
    trainer = assert_learns_repetitive_text(TrainConfig(hidden_size=24, seq_len=10, batch_size=4, lr=1e-2,
                                                        eval_every=50, cell=cell))
    assert trainer.hidden.shape == (4, trainer.model_config.state_size())


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
@pytest.mark.parametrize("engine", tinyrnn.ENGINES)
def test_resume_is_exactly_like_not_stopping(cell, engine):
    config = TrainConfig(hidden_size=16, seq_len=8, batch_size=3, eval_every=5, eval_chars=300, lr=0.01,
                         engine=engine, cell=cell)
    straight = Trainer(TEXT, config)
    expected = [m.train_loss for m in straight.run(16)]
    first = Trainer(TEXT, config)
    got = [m.train_loss for m in first.run(8)]
    saved = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(first.state()))
    assert saved.config.cell == cell and saved.hidden.shape == (3, tinyrnn.ModelConfig(2, 16, cell).state_size())
    np.testing.assert_array_equal(saved.hidden, first.hidden)
    resumed = Trainer.from_checkpoint(saved, TEXT)
    got += [m.train_loss for m in resumed.run(8)]
    assert got == expected
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name])
    np.testing.assert_array_equal(resumed.hidden, straight.hidden)


@pytest.mark.parametrize("cell", GATED)
def test_engines_train_the_same_gated_model(cell):
    config = TrainConfig(hidden_size=12, seq_len=8, batch_size=3, dtype="float64", cell=cell)
    fused = Trainer(TEXT[:20_000], config).run(6)
    traced = Trainer(TEXT[:20_000], TrainConfig(**{**config.to_dict(), "engine": "autograd"})).run(6)
    np.testing.assert_allclose([m.train_loss for m in fused], [m.train_loss for m in traced], rtol=1e-12)


@pytest.mark.parametrize("cell", GATED)
def test_sampling_a_gated_cell(cell):
    trainer = Trainer(TEXT[:20_000], TrainConfig(hidden_size=16, seq_len=8, batch_size=2, cell=cell))
    trainer.run(10)
    a = trainer.sample(60, prime="MAC", seed=5)
    assert len(a) == 60 and a == trainer.sample(60, prime="MAC", seed=5) and set(a) <= set(TEXT)
    assert a != trainer.sample(60, prime="MAC", seed=6)
    ckpt = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trainer.state()))
    assert tinyrnn.sample(ckpt.params, ckpt.vocab, 60, prime="MAC", seed=5, cell=cell) == a
    # the sampler's one-step recurrence is the training recurrence: greedy text from the forward pass agrees
    greedy = trainer.sample(12, prime="The ", temperature=0)
    params64 = {k: v.astype(np.float64) for k, v in trainer.params.items()}
    state = np.zeros((1, trainer.model_config.state_size()))
    ids = list(trainer.vocab.encode("The "))
    for _ in range(12):
        logits, _, _ = tinyrnn.forward_with_state(params64, np.array([ids]), state, cell)
        ids.append(int(np.argmax(logits[0, -1])))
    assert trainer.vocab.decode(ids[4:]) == greedy


@pytest.mark.parametrize("cell", GATED)
def test_gradient_check_and_flow_of_a_trained_gated_model(cell):
    trainer = Trainer(TEXT, TrainConfig(hidden_size=12, seq_len=10, batch_size=3, cell=cell))
    trainer.run(5)
    assert trainer.gradient_check().passed
    assert trainer.gradient_flow().shape == (10,)


def test_gradient_flow_compares_fresh_models_of_every_cell_on_a_longer_window():
    trainer = Trainer(TEXT, TrainConfig(hidden_size=16, seq_len=10, batch_size=2, cell="rnn"))
    trainer.run(3)
    flows = {cell: trainer.gradient_flow(cell=cell, seq_len=120) for cell in tinyrnn.CELLS}
    assert all(f.shape == (120,) and np.all(np.isfinite(f)) and np.all(f > 0) for f in flows.values())
    np.testing.assert_array_equal(trainer.gradient_flow(cell="rnn", seq_len=10), trainer.gradient_flow())
    reach = trainer.gradient_flow(cell="lstm", seq_len=50, last_step=True)
    assert reach.shape == (50,) and reach[0] < reach[-1]  # one late prediction's gradient fades going back
    with pytest.raises(tinyrnn.ConfigError, match="seq_len for the gradient flow"):
        trainer.gradient_flow(seq_len=10**6)


def test_a_checkpoint_of_one_cell_does_not_continue_as_another():
    trainer = Trainer(TEXT, TrainConfig(hidden_size=8, seq_len=8, batch_size=2, cell="gru"))
    trainer.run(2)
    ckpt = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trainer.state()))
    with pytest.raises(CheckpointError, match="the checkpoint is a gru model, not a lstm"):
        Trainer.from_checkpoint(ckpt, TEXT, config=TrainConfig(**{**ckpt.config.to_dict(), "cell": "lstm"}))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinyrnn", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_the_command_line_trains_samples_and_checks_an_lstm(tmp_path):
    out = tmp_path / "lstm.npz"
    result = _cli("train", "--cell", "lstm", "--steps", 20, "--hidden", 16, "--batch", 4, "--seq-len", 10,
                  "--eval-every", 10, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "model lstm H=16" in result.stderr
    assert tinyrnn.load_checkpoint(out).config.cell == "lstm"
    sampled = _cli("sample", out, "--prime", "The ", "--length", 30, "--seed", 1)
    assert sampled.returncode == 0 and len(sampled.stdout) == 4 + 30 + 1, sampled.stderr
    for cell in tinyrnn.CELLS:
        check = _cli("gradcheck", "--cell", cell)
        assert check.returncode == 0 and "PASS" in check.stdout, check.stdout + check.stderr
    wrong = _cli("train", "--cell", "rwkv")
    assert wrong.returncode == 2 and "invalid choice: 'rwkv'" in wrong.stderr
