"""Issue 16, "never lose a model, round two": no file written that cannot be read, every ordinary stop saves, every
argument of the public API checked. One test per finding, plus the writer/reader round-trip property."""

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinyrnn
from tinyrnn import (CELLS, CheckpointError, ConfigError, ModelConfig, SaveError, StepMetrics, TinyRNNError,
                     TrainConfig, Trainer, Vocabulary, load_checkpoint, save_checkpoint)
from tinyrnn.config import DTYPES
from tinyrnn.optim import OPTIMIZERS, make_optimizer

from helpers import random_problem

CORE = os.path.dirname(os.path.dirname(os.path.abspath(tinyrnn.__file__)))
ENV = {**os.environ, "PYTHONPATH": CORE, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
TEXT = "the cat sat on the mat. " * 100
SMALL = ("--hidden", 8, "--batch", 2, "--seq-len", 8)


def cli(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "tinyrnn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, **kwargs)


def one_line_error(result, pattern):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.search(pattern, last), result.stderr
    return last


@pytest.fixture()
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def state():
    trainer = Trainer(TEXT, TrainConfig(hidden_size=8, seq_len=8, batch_size=2))
    trainer.run(3)
    return trainer.state()


def _assert_same(saved, loaded):
    assert loaded.config == saved.config and loaded.vocab == saved.vocab
    assert loaded.progress == saved.progress and loaded.history == saved.history
    assert saved.params.keys() == loaded.params.keys()
    for name, value in saved.params.items():
        assert loaded.params[name].dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(loaded.params[name], value)
    assert saved.optimizer_state.keys() == loaded.optimizer_state.keys()
    for slot, value in saved.optimizer_state.items():
        np.testing.assert_array_equal(loaded.optimizer_state[slot], value)
    assert (saved.hidden is None) == (loaded.hidden is None)
    if saved.hidden is not None:
        np.testing.assert_array_equal(loaded.hidden, saved.hidden)


# --- one definition of a valid checkpoint -------------------------------------------------------------------

@pytest.mark.parametrize("cell, limit", [("lstm", "536,870,912"), ("gru", "1,073,741,824")])
def test_the_cli_refuses_settings_whose_checkpoint_the_reader_would_refuse(tmp_path, text_file, state, cell, limit):
    """LSTM H=4096 float64: W_hh alone is over 512 MiB; GRU H=4096 float64 with Adam: over 1 GiB in all. Refused
    from the settings, before any training (or allocation), and the good file is kept."""
    out = tmp_path / "good.npz"
    save_checkpoint(state, out)
    before = out.read_bytes()
    result = cli("train", text_file, "--cell", cell, "--hidden", 4096, "--dtype", "float64", "--steps", 0,
                 "--seq-len", 2, "--batch", 1, "--out", out, timeout=60)
    last = one_line_error(result, f"limit is {limit}")
    assert f"--cell {cell} --hidden 4096 --dtype float64" in last
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["good.npz", "text.txt"]


def test_the_plan_from_the_settings_is_the_file_the_writer_makes():
    """The CLI's up-front check computes, from the settings alone, exactly the member sizes of the file written."""
    from tinyrnn.checkpoint_rules import planned_sizes

    trainer = Trainer(TEXT, TrainConfig(hidden_size=5, seq_len=4, batch_size=3, cell="lstm", optimizer="adam"))
    trainer.run(7)
    with zipfile.ZipFile(io.BytesIO(tinyrnn.checkpoint_bytes(trainer.state()))) as archive:
        actual = {info.filename: info.file_size for info in archive.infolist()}
        meta_json = np.load(io.BytesIO(archive.read("meta.npy"))).size
    assert planned_sizes(trainer.config, trainer.vocab.size, 7, meta_json) == actual


@pytest.mark.parametrize("damage, message", [
    (lambda ck: ck.params["W_hh"].__setitem__((0, 0), np.nan), "parameter 'W_hh' contains NaN"),
    (lambda ck: ck.params.__setitem__("W_hh", ck.params["W_hh"][:, :3]), "parameter 'W_hh' has shape"),
    (lambda ck: ck.params.pop("b_y"), "no parameter 'b_y'"),
    (lambda ck: ck.params.__setitem__("W_extra", np.zeros(3, np.float32)), "unexpected members: param/W_extra"),
    (lambda ck: ck.params.__setitem__("b_y", ck.params["b_y"].astype(np.float64)), "'b_y' has dtype float64"),
    (lambda ck: ck.optimizer_state.__setitem__("m/W_hh", np.full_like(ck.params["W_hh"], np.inf)),
     "optimizer state 'm/W_hh' contains NaN"),
    (lambda ck: ck.progress.__setitem__("elapsed", float("nan")), "progress.elapsed"),
    (lambda ck: ck.progress.__setitem__("note", (1, 2)), "JSON values"),
    (lambda ck: ck.history.append(StepMetrics(-1, 1.0, None, 1.0, 1.0, 0, 0.0)), "history column 'step'"),
])
def test_save_checkpoint_refuses_what_load_checkpoint_refuses_and_keeps_the_old_file(tmp_path, state, damage,
                                                                                      message):
    out = tmp_path / "m.npz"
    save_checkpoint(state, out)
    before = out.read_bytes()
    bad = tinyrnn.Checkpoint(state.config, state.vocab, {k: v.copy() for k, v in state.params.items()},
                             dict(state.optimizer_state), dict(state.progress), state.hidden, list(state.history))
    damage(bad)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        save_checkpoint(bad, out)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        tinyrnn.checkpoint_bytes(bad)
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


@st.composite
def records(draw):
    """A checkpoint record: valid, or with one kind of damage (NaN, a shape, a dtype, a missing or extra array,
    progress that is not JSON, a negative second moment, a malformed history)."""
    cell, optimizer = draw(st.sampled_from(CELLS)), draw(st.sampled_from(OPTIMIZERS))
    V, H, B = draw(st.integers(2, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    config = TrainConfig(hidden_size=H, batch_size=B, cell=cell, optimizer=optimizer, dtype=dtype.name,
                         lr=draw(st.floats(1e-4, 1.0)))
    values = st.floats(-100, 100, width=32)
    shapes = ModelConfig(V, H, cell).param_shapes()
    params = {name: draw(hnp.arrays(dtype, shape, elements=values)) for name, shape in shapes.items()}
    state = {f"{slot}/{name}": np.abs(draw(hnp.arrays(dtype, shape, elements=values)))
             for slot in make_optimizer(optimizer, 0.1).slots for name, shape in shapes.items()
             if draw(st.booleans())}
    if draw(st.booleans()):
        state["t"] = draw(st.integers(0, 2**53))
    hidden = draw(st.none() | hnp.arrays(dtype, (B, ModelConfig(V, H, cell).state_size()), elements=values))
    history = [StepMetrics(i, draw(values), draw(st.none() | values), 1.0, 2.0, 10 * i, 0.5 * i)
               for i in range(draw(st.integers(0, 3)))]
    progress = {"step": draw(st.integers(0, 2**53)), "elapsed": draw(st.floats(0, 1e6)), "text_sha256": "ab",
                "extra": draw(st.none() | st.text(max_size=5) | st.lists(st.integers(-5, 5), max_size=3))}
    record = tinyrnn.Checkpoint(config, Vocabulary(tuple("abcde"[:V])), params, state, progress, hidden, history)
    damage = draw(st.sampled_from(["none"] * 4 + ["nan", "shape", "dtype", "missing", "extra", "progress",
                                                  "moment", "history"]))
    name = draw(st.sampled_from(sorted(shapes)))
    if damage == "nan":
        params[name].flat[draw(st.integers(0, params[name].size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    elif damage == "shape":
        params[name] = np.zeros(shapes[name] + (1,), dtype)
    elif damage == "dtype":
        params[name] = params[name].astype(np.float16)
    elif damage == "missing":
        del params[name]
    elif damage == "extra":
        params["W_other"] = np.zeros(2, dtype)
    elif damage == "progress":
        progress["extra"] = draw(st.sampled_from([(1, 2), float("inf"), {1: 2}, object()]))
    elif damage == "moment":
        second = {"adam": "v", "adagrad": "s", "sgd": "v"}[optimizer]
        state[f"{second}/{name}"] = np.full(shapes[name], -1.0 if optimizer != "sgd" else np.nan, dtype)
    elif damage == "history":
        history.append(StepMetrics(1, float("inf"), None, 1.0, 1.0, 0, 0.0))
    return damage, record


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_every_record_save_checkpoint_accepts_load_checkpoint_returns_equal(case):
    damage, record = case
    buffer = io.BytesIO()
    try:
        save_checkpoint(record, buffer)
    except (CheckpointError, TypeError):
        assert damage != "none", "a valid record was refused"
        assert buffer.getvalue() == b""  # nothing written
        return
    assert damage == "none", f"a record with damage {damage!r} was written"
    _assert_same(record, load_checkpoint(buffer.getvalue()))


def test_save_checkpoint_to_a_text_stream_is_a_type_error_that_says_binary(state):
    with pytest.raises(TypeError, match=r"binary mode \('wb'\)"):
        save_checkpoint(state, io.StringIO())


def test_a_checkpoint_whose_version_is_true_is_refused(state):
    data = tinyrnn.checkpoint_bytes(state)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = np.load(io.BytesIO(members["meta.npy"]))
    edited = json.loads(meta.tobytes())
    edited["version"] = True
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(json.dumps(edited).encode(), dtype=np.uint8))
    members["meta.npy"] = buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, member in members.items():
            archive.writestr(name, member)
    with pytest.raises(CheckpointError, match="checkpoint format version True is not supported"):
        load_checkpoint(out.getvalue())


# --- up-front checks that mean it ---------------------------------------------------------------------------

def test_a_full_disk_is_refused_before_training(tmp_path, text_file, monkeypatch, capsys):
    from tinyrnn import cli as cli_module

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=0))

    def no_training(self):
        raise AssertionError("training started although the checkpoint cannot be written")

    monkeypatch.setattr(Trainer, "step", no_training)
    out = tmp_path / "m.npz"
    assert cli_module.main(["train", str(text_file), *map(str, SMALL), "--steps", "5", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(r"error: cannot write '.*m.npz': its disk has 0 bytes free and the file needs up to [\d,]+", error)
    assert not out.exists()


def _immutable(path) -> bool:
    result = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    return result.returncode == 0


def test_an_immutable_target_is_refused_before_training(tmp_path, text_file, state):
    out = tmp_path / "m.npz"
    save_checkpoint(state, out)
    if shutil.which("chattr") is None or not _immutable(out):
        pytest.skip("setting the immutable attribute needs chattr and CAP_LINUX_IMMUTABLE (root)")
    try:
        # a million steps would time out: the refusal must come before the first one
        result = cli("train", text_file, *SMALL, "--steps", 10**6, "--out", out, timeout=60)
        one_line_error(result, r"is immutable or append-only \(chattr \+i or \+a\)")
        with pytest.raises(SaveError, match="immutable"):
            save_checkpoint(state, out, force=True)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)


def test_a_read_only_file_is_replaced_only_with_force(tmp_path, text_file, state):
    out = tmp_path / "m.npz"
    save_checkpoint(state, out)
    os.chmod(out, 0o444)
    before = out.read_bytes()
    result = cli("train", text_file, *SMALL, "--steps", 10**6, "--out", out, timeout=60)
    one_line_error(result, r"error: '.*m.npz' is read-only \(mode 0444\); it is replaced only when forced \(--force")
    assert out.read_bytes() == before
    with pytest.raises(SaveError, match="read-only"):
        save_checkpoint(state, out)
    forced = cli("train", text_file, *SMALL, "--steps", 3, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_checkpoint(out).progress["step"] == 3 and stat.S_IMODE(os.stat(out).st_mode) == 0o444


# --- every ordinary stop saves ------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_the_model_so_far_like_ctrl_c(tmp_path, text_file, signum):
    out = tmp_path / "m.npz"
    proc = subprocess.Popen([sys.executable, "-m", "tinyrnn", "train", str(text_file), *map(str, SMALL),
                             "--steps", str(10**7), "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True,
                            env=ENV)
    try:
        assert proc.stderr.readline().startswith("text: ")  # printed just before the first step
        time.sleep(1.0)
        proc.send_signal(signum)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum and "Traceback" not in stderr, stderr
    step = load_checkpoint(out).progress["step"]
    assert step > 0
    assert f"interrupted by {name} at step {step}: saving the model so far to {out}" in stderr
    assert f"saved {out} (step {step})" in stderr


# --- --resume with conflicting flags ------------------------------------------------------------------------

@pytest.fixture()
def gru_model(tmp_path, text_file):
    out = tmp_path / "gru.npz"
    result = cli("train", text_file, "--cell", "gru", *SMALL, "--steps", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_resume_refuses_flags_that_differ_from_the_checkpoint_naming_each(gru_model, text_file):
    before = gru_model.read_bytes()
    result = cli("train", text_file, "--resume", gru_model, "--cell", "lstm", "--hidden", 16, "--dtype", "float64",
                 "--optimizer", "adam", "--steps", 10**6, "--out", gru_model, timeout=60)
    last = one_line_error(result, "cannot change on resume")
    assert "--cell lstm (the checkpoint's: gru)" in last and "--hidden 16 (the checkpoint's: 8)" in last
    assert "--dtype float64 (the checkpoint's: float32)" in last
    assert "--optimizer" not in last.split("may change")[0]  # the same value as the checkpoint's is no conflict
    assert gru_model.read_bytes() == before


def test_flags_that_may_change_on_resume_are_applied_and_listed_in_help(gru_model, text_file):
    result = cli("train", text_file, "--resume", gru_model, "--lr", 0.05, "--clip-norm", 0, "--lr-decay-steps", 4,
                 "--steps", 2, "--out", gru_model, "--cell", "gru")
    assert result.returncode == 0, result.stderr
    resumed = load_checkpoint(gru_model)
    assert resumed.progress["step"] == 5 and resumed.config.cell == "gru"
    assert resumed.config.lr == 0.05 and resumed.config.clip_norm is None and resumed.config.lr_decay_steps == 4
    help_text = " ".join(cli("train", "--help").stdout.split())
    assert ("--lr, --lr-decay-steps, --clip-norm, --eval-every, --engine, --seq-len, --batch, --steps may change"
            in help_text)
    assert "512 MiB per array (member) and 1 GiB in all" in help_text


# --- every argument of the public API checked ---------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 201, 10.0, "10", True])
def test_recall_corpus_k_outside_its_range_is_a_config_error(k):
    with pytest.raises(ConfigError, match=r"k must be a whole number from 2 to 200"):
        tinyrnn.recall_corpus(k)


def test_numpy_integers_are_numbers_for_the_corpora():
    assert tinyrnn.recall_corpus(np.int64(10), n_lines=np.int32(5)) == tinyrnn.recall_corpus(10, n_lines=5)


@pytest.mark.parametrize("n_lines", [-5, 0, 10**9, 2.5])
def test_recall_corpus_n_lines_is_bounded(n_lines):
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"n_lines must be a whole number from 1 to 100,000"):
        tinyrnn.recall_corpus(10, n_lines=n_lines)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("call", [lambda: tinyrnn.recall_positions(123), lambda: tinyrnn.text_features(None),
                                  lambda: tinyrnn.recall_lines(None)])
def test_text_arguments_of_the_corpora_and_probes_are_named(call):
    with pytest.raises(TypeError, match=r"^text must be a str, got"):
        call()


def test_text_features_bounds_the_passage():
    with pytest.raises(ConfigError, match="text must be at most 100,000 characters"):
        tinyrnn.text_features("a" * 100_001)


@pytest.mark.parametrize("positions", [[0], [7 + 5], [], [2.5]])
def test_recall_accuracy_positions_outside_the_passage_are_refused(positions):
    logits, ids = np.zeros((7, 3)), np.arange(7) % 3
    with pytest.raises(ConfigError, match=r"positions must be a non-empty list of indices from 1 to 6"):
        tinyrnn.recall_accuracy(logits, ids, positions)


def test_unit_correlations_checks_per_feature_and_feature_lengths():
    states = np.random.default_rng(0).standard_normal((10, 4))
    features = tinyrnn.text_features('ab "c" (d)')
    with pytest.raises(ConfigError, match=r"per_feature must be a whole number from 1 to"):
        tinyrnn.unit_correlations(states, features, per_feature=-1)
    with pytest.raises(ConfigError, match=r"features must map .* to arrays of shape \(10,\)"):
        tinyrnn.unit_correlations(states, tinyrnn.text_features("ab"), per_feature=2)
    assert len(tinyrnn.unit_correlations(states, features, per_feature=np.int64(2))) <= 6


def _lstm():
    params, inputs, targets, h0 = random_problem(5, 4, 2, 3, cell="lstm")
    return params, inputs, targets, h0


def test_read_passage_with_no_ids_is_refused():
    params, _, _, h0 = _lstm()
    with pytest.raises(ConfigError, match="ids must be a 1-D array of 1 to"):
        tinyrnn.read_passage(params, np.array([], dtype=np.int64), h0[:1], "lstm")


@pytest.mark.parametrize("call", [
    lambda p, x, y, h: tinyrnn.forward(p, x, h[:, :4], "lstm"),
    lambda p, x, y, h: tinyrnn.read_passage(p, x[0], h[:1, :4], "lstm"),
    lambda p, x, y, h: tinyrnn.loss(p, x, y, h[:, :4], cell="lstm"),
])
def test_an_lstm_state_without_its_c_half_is_a_config_error_naming_the_shape(call):
    params, inputs, targets, h0 = _lstm()
    with pytest.raises(ConfigError, match=r"h0 must be \(B, 2H\) = \((1|2), 8\) .* lstm model \(its state is \[h \| c\]\)"):
        call(params, inputs, targets, h0)


@pytest.mark.parametrize("h0", [np.zeros((3, 8)), np.zeros((2, 4)), np.zeros(8)])
def test_gradient_check_with_a_state_of_the_wrong_shape_is_a_config_error(h0):
    params, inputs, targets, _ = _lstm()
    with pytest.raises(ConfigError, match=r"h0 must be \(B, 2H\) = \(2, 8\)"):
        tinyrnn.gradient_check(params, inputs, targets, h0, cell="lstm")


def test_sample_with_the_parameters_of_another_cell_is_a_config_error():
    params, _, _, _ = random_problem(5, 4, 2, 3, cell="gru")
    vocab = Vocabulary(tuple("abcde"))
    with pytest.raises(ConfigError, match=r"do not fit a lstm model .*W_ih \(12, 5\) \(expected \(16, 5\)\)"):
        tinyrnn.sample(params, vocab, 5, cell="lstm")
    assert len(tinyrnn.sample(params, vocab, np.int64(5), temperature=np.float32(0.5), seed=np.uint8(1),
                              cell="gru")) == 5


@pytest.mark.parametrize("batch", [-1, 0, 2.0, True])
def test_init_hidden_with_a_bad_batch_size_is_a_config_error(batch):
    with pytest.raises(ConfigError, match="batch_size must be a whole number from 1"):
        tinyrnn.init_hidden(ModelConfig(5, 4, "lstm"), batch)
    assert tinyrnn.init_hidden(ModelConfig(5, 4, "lstm"), np.int64(3)).shape == (3, 8)
