import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyrnn
from tinyrnn import CheckpointError, TrainConfig, Trainer

CONFIG = TrainConfig(hidden_size=16, seq_len=8, batch_size=3, eval_every=5, eval_chars=300)
TEXT = tinyrnn.default_corpus()[:30_000]


@pytest.fixture
def trained():
    trainer = Trainer(TEXT, CONFIG)
    trainer.run(12)
    return trainer


def test_round_trip_keeps_everything(trained, tmp_path):
    path = tmp_path / "model.npz"
    tinyrnn.save_checkpoint(trained.state(), path)
    ckpt = tinyrnn.load_checkpoint(path)
    assert ckpt.config == trained.config and ckpt.vocab == trained.vocab
    for name, value in trained.params.items():
        np.testing.assert_array_equal(ckpt.params[name], value)
        assert ckpt.params[name].dtype == np.float32
    assert ckpt.progress["step"] == 12 and ckpt.progress["chars_seen"] == trained.chars_seen
    assert [m.train_loss for m in ckpt.history] == [m.train_loss for m in trained.history]
    assert [m.val_loss for m in ckpt.history] == [m.val_loss for m in trained.history]
    assert tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trained.state())).progress == ckpt.progress
    assert tinyrnn.sample(ckpt.params, ckpt.vocab, 30, seed=3) == trained.sample(30, seed=3)


@pytest.mark.parametrize("optimizer", tinyrnn.OPTIMIZERS)
@pytest.mark.parametrize("engine", tinyrnn.ENGINES)
def test_resume_is_exactly_like_not_stopping(optimizer, engine):
    config = TrainConfig(**{**CONFIG.to_dict(), "optimizer": optimizer, "engine": engine, "lr": 0.01})
    straight = Trainer(TEXT, config)
    expected = [m.train_loss for m in straight.run(16)]
    first = Trainer(TEXT, config)
    got = [m.train_loss for m in first.run(8)]
    resumed = Trainer.from_checkpoint(tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(first.state())), TEXT)
    got += [m.train_loss for m in resumed.run(8)]
    assert got == expected
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name])
    assert resumed.step_count == 16


def test_continue_on_another_text_needs_known_characters(trained):
    ckpt = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trained.state()))
    other = Trainer.from_checkpoint(ckpt, TEXT[5000:20000])
    other.step()
    with pytest.raises(CheckpointError, match="character\\(s\\) the model does not know"):
        Trainer.from_checkpoint(ckpt, TEXT + "😀")


def test_resume_with_another_learning_rate_continues_where_it_stopped(trained):
    """Only what fixes the stream of windows (the text, batch_size, seq_len, val_fraction) decides where a resumed
    run starts: with another learning rate, clipping and evaluation period it continues at the saved window with the
    saved state, so its first loss is the one the saved run would have had next."""
    ckpt = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trained.state()))
    changed = TrainConfig(**{**CONFIG.to_dict(), "lr": CONFIG.lr * 3, "clip_norm": 1.0, "eval_every": 7})
    resumed = Trainer.from_checkpoint(ckpt, TEXT, changed)
    assert resumed.config.lr == CONFIG.lr * 3 and resumed.window == trained.window == 12
    assert np.any(trained.hidden != 0)
    np.testing.assert_array_equal(resumed.hidden, trained.hidden)
    assert resumed.step().train_loss == trained.step().train_loss


@pytest.mark.parametrize("change", [{"seq_len": 5}, {"batch_size": 2}, {"val_fraction": 0.2}])
def test_resume_with_another_stream_starts_a_new_pass(trained, change):
    """Another window length, batch size or validation split is another stream: the saved position and state mean
    nothing there, so the run starts at the beginning of the text with a zero state (from the saved weights)."""
    ckpt = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trained.state()))
    resumed = Trainer.from_checkpoint(ckpt, TEXT, TrainConfig(**{**CONFIG.to_dict(), **change}))
    assert resumed.window == 0 and resumed.step_count == 12
    assert resumed.hidden.shape == (resumed.config.batch_size, CONFIG.hidden_size) and not np.any(resumed.hidden)
    for name, value in trained.params.items():
        np.testing.assert_array_equal(resumed.params[name], value)


def _rewrite(data: bytes, change) -> bytes:
    """Load the members of a checkpoint, let ``change`` edit the dict, save again."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    change(members)
    out = io.BytesIO()
    np.savez(out, **members)
    return out.getvalue()


def _meta_edit(edit):
    def change(members):
        meta = json.loads(members["meta"].tobytes())
        edit(meta)
        members["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return change


@pytest.mark.parametrize("change, message", [
    (lambda m: m.__setitem__("param/W_hh", np.zeros((3, 3), np.float32)), r"'W_hh' has shape \(3, 3\), expected \(16, 16\)"),
    (lambda m: m.__setitem__("param/b_y", m["param/b_y"].astype(np.float64)), "'b_y' has dtype float64, expected float32"),
    (lambda m: m.pop("param/W_yh"), "no parameter 'W_yh'"),
    (lambda m: m["param/b_h"].__setitem__(0, np.nan), "'b_h' contains NaN"),
    (lambda m: m.__setitem__("extra", np.zeros(2)), "unexpected members: extra"),
    (lambda m: m.__setitem__("optim/m/W_hh", np.zeros((2, 2), np.float32)), "optimizer state 'm/W_hh' does not fit"),
    (lambda m: m.pop("meta"), "no 'meta' member"),
    (_meta_edit(lambda meta: meta.__setitem__("version", 99)), "format version 99 is not supported"),
    (_meta_edit(lambda meta: meta["config"].__setitem__("hidden_size", -1)), "settings are invalid: hidden_size"),
    (_meta_edit(lambda meta: meta.__setitem__("format", "other")), "not a tinyrnn checkpoint"),
    (_meta_edit(lambda meta: meta.pop("vocab")), "metadata is incomplete"),
])
def test_invalid_checkpoints_say_what_is_wrong(trained, change, message):
    data = _rewrite(tinyrnn.checkpoint_bytes(trained.state()), change)
    with pytest.raises(CheckpointError, match=message):
        tinyrnn.load_checkpoint(data)


def test_corrupt_and_truncated_files(trained, tmp_path):
    data = tinyrnn.checkpoint_bytes(trained.state())
    with pytest.raises(CheckpointError, match="not an .npz archive, or the file is truncated"):
        tinyrnn.load_checkpoint(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a tinyrnn checkpoint"):
        tinyrnn.load_checkpoint(b"hello, I am a text file")
    with pytest.raises(CheckpointError, match="is empty"):
        tinyrnn.load_checkpoint(b"")
    for position in range(0, len(data), max(1, len(data) // 97)):  # damage anywhere: headers, data, directory
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        try:
            tinyrnn.load_checkpoint(bytes(flipped))
        except CheckpointError:
            pass  # the only acceptable failure; a byte the reader never uses (e.g. a timestamp) may load fine
    with pytest.raises(CheckpointError, match="cannot read"):
        tinyrnn.load_checkpoint(tmp_path / "missing.npz")


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle executed')",))


def test_a_file_that_needs_pickle_is_refused_without_unpickling(trained):
    def add_object(members):
        members["param/W_hh"] = np.array([Boom()], dtype=object)

    with np.load(io.BytesIO(tinyrnn.checkpoint_bytes(trained.state())), allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    add_object(members)
    out = io.BytesIO()
    np.savez(out, **members)  # numpy pickles the object array into the .npy member
    with pytest.raises(CheckpointError, match=r"^member 'param/W_hh.npy' holds Python objects \(pickle\); refusing to load it$"):
        tinyrnn.load_checkpoint(out.getvalue())


def test_a_hostile_huge_header_is_refused_before_allocation():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        archive.writestr("meta.npy", header.getvalue())  # the header alone: no data follows
    with pytest.raises(CheckpointError, match=r"^member 'meta.npy' is implausibly large"):
        tinyrnn.load_checkpoint(buffer.getvalue())


_FUZZ_BASE = None


def _fuzz_base() -> bytes:
    global _FUZZ_BASE
    if _FUZZ_BASE is None:
        trainer = Trainer(TEXT[:5000], TrainConfig(hidden_size=4, seq_len=5, batch_size=2))
        trainer.run(2)
        _FUZZ_BASE = tinyrnn.checkpoint_bytes(trainer.state())
    return _FUZZ_BASE


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6),
       keep=st.one_of(st.none(), st.floats(0, 1)))
def test_damaged_files_never_raise_anything_but_checkpoint_error(edits, keep):
    data = bytearray(_fuzz_base())
    for where, value in edits:
        data[int(where * len(data))] = value
    if keep is not None:
        data = data[: int(keep * len(data))]
    try:
        tinyrnn.load_checkpoint(bytes(data))
    except CheckpointError as e:
        assert str(e)  # a message, never an empty error


# --- issue 9: every content check is a CheckpointError ---------------------------------------------------------

def _meta_text_edit(edit):
    """Edit the metadata's JSON text itself (for what json.dumps cannot write, e.g. 1e999)."""
    def change(members):
        members["meta"] = np.frombuffer(edit(members["meta"].tobytes().decode()).encode(), dtype=np.uint8)
    return change


def _set(key, value):
    def change(members):
        members[key] = value
    return change


def _poke(key, index, value):
    def change(members):
        members[key] = members[key].copy()
        members[key][index] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_meta_edit(lambda meta: meta.__setitem__("progress", "step 12")), "progress must be a JSON object, got str"),
    (_meta_edit(lambda meta: meta["progress"].__setitem__("step", "abc")), "progress.step must be a whole number"),
    (_meta_text_edit(lambda text: text.replace('"step": 12', '"step": 1e999')), r"progress.step must be a whole number .* got inf"),
    (_meta_edit(lambda meta: meta["progress"].__setitem__("elapsed", -1)), "progress.elapsed must be a number of seconds"),
    (_meta_text_edit(lambda text: text.replace('"elapsed": ', '"elapsed": NaN, "x": ')), "metadata is not valid JSON"),
    (_poke("history/train_loss", 2, np.nan), "history column 'train_loss' contains NaN or infinite values"),
    (_poke("history/val_loss", 2, np.inf), "history column 'val_loss' contains infinite values"),
    (_poke("history/step", 0, 1e300), "history column 'step' must hold whole numbers"),
    (_poke("history/chars_seen", 1, -5.0), "history column 'chars_seen' must hold whole numbers"),
    (_set("optim/t", np.array(-1)), "optimizer step count t must be a whole number from 0"),
    (_poke("optim/m/W_hh", (0, 0), np.nan), "optimizer state 'm/W_hh' contains NaN or infinite values: the file is damaged"),
    (_poke("optim/v/b_y", 0, -1.0), "optimizer state 'v/b_y' has negative entries"),
    (_poke("progress/hidden", (0, 0), np.inf), "the saved hidden state contains NaN or infinite values: the file is damaged"),
    (_meta_edit(lambda meta: meta["vocab"]["chars"].__setitem__(0, "\ud800")), "settings are invalid: the vocabulary contains a lone surrogate U\\+D800"),
])
def test_bad_contents_are_checkpoint_errors_with_their_own_message(trained, change, message):
    data = _rewrite(tinyrnn.checkpoint_bytes(trained.state()), change)
    with pytest.raises(CheckpointError, match=message) as caught:
        tinyrnn.load_checkpoint(data)
    assert "lower the learning rate" not in str(caught.value)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.progress.__setitem__("step", "abc"), "progress.step must be a whole number"),
    (lambda c: c.progress.__setitem__("step", float("inf")), "progress.step must be a whole number"),
    (lambda c: c.optimizer_state.__setitem__("t", -1), "optimizer step count t"),
    (lambda c: c.optimizer_state["m/W_hh"].__setitem__((0, 0), np.nan), "optimizer state 'm/W_hh' contains NaN"),
    (lambda c: c.hidden.__setitem__((0, 0), np.nan), "saved hidden state contains NaN"),
])
def test_resuming_from_a_bad_record_is_a_checkpoint_error_not_a_crash_or_divergence(trained, edit, message):
    checkpoint = trained.state()
    edit(checkpoint)
    with pytest.raises(CheckpointError, match=message):
        Trainer.from_checkpoint(checkpoint, TEXT)


def test_a_lone_surrogate_never_reaches_a_vocabulary():
    with pytest.raises(tinyrnn.TextError, match="lone surrogate U\\+D83D at position 2"):
        tinyrnn.Vocabulary.from_text("ab\ud83dcd")
    with pytest.raises(tinyrnn.TextError, match="lone surrogate"):
        tinyrnn.Vocabulary(("a", "\udfff"))
    with pytest.raises(tinyrnn.TextError, match="lone surrogate"):
        Trainer("hello world, " * 50 + "\udc80", CONFIG)


def test_numpy_scalar_settings_save_and_load(tmp_path):
    config = TrainConfig(**{**CONFIG.to_dict(), "lr": np.float32(0.01), "hidden_size": np.int64(8)})
    trainer = Trainer(TEXT, config)
    trainer.run(2)
    loaded = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(trainer.state()))
    assert loaded.config.lr == pytest.approx(0.01) and loaded.config.hidden_size == 8
    assert isinstance(loaded.config.lr, float)
