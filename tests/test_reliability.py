"""Never lose a model, never read without a limit (issue 9): atomic writes, bounded reads, archive limits.

Anything that could exhaust memory or hang on a broken reader runs in a child process with an address-space
limit (``RLIMIT_AS``) and a timeout, so a regression fails the test instead of the machine."""

import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import numpy as np
import pytest

import tinyrnn
from tinyrnn import CheckpointError, SaveError, TextError, TrainConfig, Trainer

TEXT = tinyrnn.default_corpus()[:6000]
CORE = os.path.dirname(os.path.dirname(os.path.abspath(tinyrnn.__file__)))
CHILD_ENV = {**os.environ, "PYTHONPATH": CORE, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
# run first in a child: cap its address space at what it uses after the imports + this much
LIMIT_PRELUDE = """
import resource, sys
import numpy as np, tinyrnn
def _limit(extra_mib):
    size = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmSize')) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + extra_mib * 2**20, resource.RLIM_INFINITY))
"""


def child(code, timeout=60, **kwargs):
    return subprocess.run([sys.executable, "-c", LIMIT_PRELUDE + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=CHILD_ENV, **kwargs)


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "tinyrnn", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=CHILD_ENV, **kwargs)


@pytest.fixture(scope="module")
def state():
    trainer = Trainer(TEXT, TrainConfig(hidden_size=8, seq_len=8, batch_size=2))
    trainer.run(3)
    return trainer.state()


def _files(directory) -> list:
    return sorted(os.listdir(directory))


# --- writes ---------------------------------------------------------------------------------------------------

def test_save_writes_exactly_the_path_given(tmp_path, state):
    target = tmp_path / "model.ckpt"
    tinyrnn.save_checkpoint(state, target)
    assert _files(tmp_path) == ["model.ckpt"]  # no silent ".npz" suffix, no temporary file left
    assert tinyrnn.load_checkpoint(target).progress == state.progress
    tinyrnn.save_checkpoint(state, str(target))  # replacing it works too
    assert _files(tmp_path) == ["model.ckpt"]


def test_save_refuses_directories_devices_missing_directories_and_the_text(tmp_path, state):
    with pytest.raises(SaveError, match="is a directory"):
        tinyrnn.save_checkpoint(state, tmp_path)
    with pytest.raises(SaveError, match="not a regular file"):
        tinyrnn.save_checkpoint(state, "/dev/full")
    with pytest.raises(SaveError, match="the directory .*missing.* does not exist"):
        tinyrnn.save_checkpoint(state, tmp_path / "missing" / "m.npz")
    with pytest.raises(SaveError, match="output path is empty"):
        tinyrnn.save_checkpoint(state, "")
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    with pytest.raises(SaveError, match="is the training text"):
        tinyrnn.save_checkpoint(state, text, protect=[text])
    assert text.read_text() == TEXT and not os.path.exists("/dev/full.npz")
    with pytest.raises(TypeError, match="needs a Checkpoint"):
        tinyrnn.save_checkpoint(Trainer(TEXT, TrainConfig(hidden_size=4)), tmp_path / "x.npz")


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_save_keeps_the_previous_file_and_removes_the_temporary(tmp_path, monkeypatch, state, failure):
    target = tmp_path / "model.npz"
    tinyrnn.save_checkpoint(state, target)
    before = target.read_bytes()

    def fail(fd):  # the data is in the temporary file; making it durable fails (e.g. the disk filled up)
        raise failure

    monkeypatch.setattr(os, "fsync", fail)
    expected = SaveError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected, match="No space left on device.*unchanged" if expected is SaveError else None):
        tinyrnn.save_checkpoint(state, target)
    assert target.read_bytes() == before and _files(tmp_path) == ["model.npz"]


def test_a_file_size_limit_during_the_cli_save_keeps_the_good_model(tmp_path):
    """The issue's `ulimit -f 32` run: the save fails with a message and the earlier good model still loads."""
    good = tmp_path / "good.npz"
    assert cli("train", "--corpus", "alphabet", "--hidden", 8, "--seq-len", 8, "--batch", 2, "--steps", 5, "--quiet",
               "--out", good).returncode == 0
    before = good.read_bytes()

    def limit_file_size():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    result = cli("train", "--corpus", "alphabet", "--hidden", 128, "--steps", 2, "--quiet", "--out", good,
                 preexec_fn=limit_file_size)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: cannot write" in result.stderr and "File too large" in result.stderr, result.stderr
    assert good.read_bytes() == before and _files(tmp_path) == ["good.npz"]
    assert cli("sample", good, "--length", 5).returncode == 0


SAVE_FOREVER = """
import sys
trainer = tinyrnn.Trainer(tinyrnn.default_corpus()[:6000], tinyrnn.TrainConfig(hidden_size=96, seed={seed}))
state = trainer.state()
for i in range({count}):
    tinyrnn.save_checkpoint(state, sys.argv[1])
    print("saved", flush=True)
"""


def test_sigkill_during_save_leaves_the_previous_file_loadable(tmp_path, state):
    target = tmp_path / "model.npz"
    rng = np.random.default_rng(0)
    for trial in range(4):
        tinyrnn.save_checkpoint(state, target)
        proc = subprocess.Popen([sys.executable, "-c", LIMIT_PRELUDE + SAVE_FOREVER.format(seed=trial, count=10**6),
                                 str(target)], stdout=subprocess.PIPE, env=CHILD_ENV, text=True)
        try:
            assert proc.stdout.readline() == "saved\n"
            time.sleep(rng.uniform(0, 0.15))  # most of the loop's time is spent writing
        finally:
            proc.kill()
            proc.wait()
        loaded = tinyrnn.load_checkpoint(target)  # the previous or the new model, never a broken file
        assert loaded.config.hidden_size in (8, 96)


def test_concurrent_writers_never_leave_a_corrupt_file(tmp_path):
    target = tmp_path / "model.npz"
    writers = [subprocess.Popen([sys.executable, "-c", LIMIT_PRELUDE + SAVE_FOREVER.format(seed=seed, count=15),
                                 str(target)], stdout=subprocess.PIPE, env=CHILD_ENV, text=True) for seed in (1, 2)]
    seeds_seen, failures = set(), []
    while any(w.poll() is None for w in writers):
        if target.exists():
            try:
                seeds_seen.add(tinyrnn.load_checkpoint(target).config.seed)
            except CheckpointError as e:
                failures.append(str(e))
    outputs = [w.communicate()[0] for w in writers]
    assert all(w.returncode == 0 for w in writers) and all(o.count("saved") == 15 for o in outputs)
    assert not failures, failures[:3]
    assert tinyrnn.load_checkpoint(target).config.seed in (1, 2)
    assert _files(tmp_path) == ["model.npz"]  # the temporary names differed and both were renamed away


# --- reads ----------------------------------------------------------------------------------------------------

def test_devices_and_pipes_are_read_with_a_limit():
    result = child("""
        _limit(256)
        for reader, error in ((tinyrnn.read_text_file, tinyrnn.TextError), (tinyrnn.load_checkpoint, tinyrnn.CheckpointError)):
            try:
                reader('/dev/zero')
            except error as e:
                print('refused:', e)
        import subprocess
        yes = subprocess.Popen(['yes'], stdout=subprocess.PIPE)
        try:
            tinyrnn.read_text_file(yes.stdout, max_bytes=10**6)
        except tinyrnn.TextError as e:
            print('refused:', e)
        yes.kill()
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert "'/dev/zero' is too large: more than 67,108,864 bytes" in lines[0]
    assert "not a tinyrnn checkpoint" in lines[1]
    assert "too large: more than 1,000,000 bytes" in lines[2]


def test_stdin_is_read_from_dash_and_dev_stdin(tmp_path):
    result = child("""
        print(repr(tinyrnn.read_text_file('-')))
    """, input="hello from a pipe\n")
    assert result.returncode == 0 and result.stdout.strip() == repr("hello from a pipe\n"), result.stderr
    result = subprocess.run(f"yes | {sys.executable} -m tinyrnn train /dev/stdin --steps 1", shell=True,
                            capture_output=True, text=True, timeout=60, env=CHILD_ENV)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ("error: '/dev/stdin' is too large: more than 67,108,864 bytes "
                                                     "(the limit is 67,108,864 bytes)")


def test_a_fifo_without_a_writer_is_refused_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = child(f"""
        import tinyrnn.files
        tinyrnn.files.FIFO_WAIT_SECONDS = 0.3
        for reader, error in ((tinyrnn.read_text_file, tinyrnn.TextError), (tinyrnn.load_checkpoint, tinyrnn.CheckpointError)):
            try:
                reader({str(fifo)!r})
            except error as e:
                print(e)
    """, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("is a named pipe (FIFO) and nothing was written to it within 0.3 s") == 2


def test_a_fifo_with_a_writer_is_read(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("to be or not to be"))
    writer.start()
    assert tinyrnn.read_text_file(fifo) == "to be or not to be"
    writer.join()


def test_directories_and_wrong_sources_say_what_is_wrong(tmp_path):
    with pytest.raises(TextError, match="is a directory"):
        tinyrnn.read_text_file(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory"):
        tinyrnn.load_checkpoint(tmp_path)
    for source in (5, None, 2.5):
        with pytest.raises(TypeError, match="expected a path, '-' \\(standard input\\), bytes or a binary file object"):
            tinyrnn.read_text_file(source)
        with pytest.raises(TypeError, match="expected a path"):
            tinyrnn.load_checkpoint(source)
    with pytest.raises(TypeError, match="binary mode"):
        tinyrnn.read_text_file(io.StringIO("text"))


# --- the archive's directory is checked before anything is decompressed -----------------------------------------

def _npy(array) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.asarray(array), allow_pickle=False)
    return out.getvalue()


def _zip(members) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def _members_of(state) -> list:
    with zipfile.ZipFile(io.BytesIO(tinyrnn.checkpoint_bytes(state))) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _set_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of member ``name`` in the central directory and the local header."""
    data = bytearray(data)
    for signature, size_at, name_length_at, name_at in ((b"PK\x01\x02", 24, 28, 46), (b"PK\x03\x04", 22, 26, 30)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            length = struct.unpack_from("<H", data, start + name_length_at)[0]
            if data[start + name_at:start + name_at + length] == name.encode():
                struct.pack_into("<I", data, start + size_at, size)
            start += 4
    return bytes(data)


def test_unexpected_names_are_refused_before_any_member_is_decompressed(state, monkeypatch):
    data = _zip(_members_of(state) + [(f"junk{i}.npy", _npy(np.zeros(1000, np.uint8))) for i in range(3)])
    opened = []
    original = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: opened.append(name) or original(self, name, *a, **k))
    with pytest.raises(CheckpointError, match="^the checkpoint has unexpected members: junk0, junk1, junk2$"):
        tinyrnn.load_checkpoint(data)
    assert opened == []


def test_duplicate_member_names_are_refused(state):
    members = _members_of(state)
    other = dict(members)
    other["param/b_y.npy"] = _npy(np.ones_like(state.params["b_y"]))
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = _zip(members + [("param/b_y.npy", other["param/b_y.npy"])])
    with pytest.raises(CheckpointError, match="lists member 'param/b_y' more than once"):
        tinyrnn.load_checkpoint(data)


def test_member_count_and_declared_sizes_are_capped(state):
    many = _zip(_members_of(state) + [(f"history/x{i}.npy", _npy(np.zeros(1))) for i in range(80)])
    with pytest.raises(CheckpointError, match=r"has \d+ members; a checkpoint has at most 64"):
        tinyrnn.load_checkpoint(many)
    data = tinyrnn.checkpoint_bytes(state)
    with pytest.raises(CheckpointError, match="member 'param/W_hh.npy' declares 4,000,000,000 bytes; the limit is"):
        tinyrnn.load_checkpoint(_set_declared_size(data, "param/W_hh.npy", 4_000_000_000))
    for name in ("param/W_hx.npy", "param/W_hh.npy", "param/W_yh.npy"):  # each under the per-member cap
        data = _set_declared_size(data, name, 500_000_000)
    with pytest.raises(CheckpointError, match="members declare .* bytes in all; the limit is 1,073,741,824"):
        tinyrnn.load_checkpoint(data)


def test_a_member_is_never_decompressed_past_its_declared_size(state):
    """Deflated data longer than the directory says: reading stops at the declared size (then the CRC fails)."""
    members = [(n, d) for n, d in _members_of(state) if n != "history/elapsed.npy"]
    header = _npy(np.zeros(3))
    long = header + b"\x00" * 50_000_000  # 50 MB behind a header that promises 24 bytes
    data = _set_declared_size(_zip(members + [("history/elapsed.npy", long)]), "history/elapsed.npy", len(header))
    with pytest.raises(CheckpointError, match="'history/elapsed.npy' of the checkpoint is corrupt"):
        tinyrnn.load_checkpoint(data)


BOMBS = """
import io, zipfile
import numpy as np
def npy_header(dtype, shape):
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {'descr': dtype, 'fortran_order': False, 'shape': shape})
    return out.getvalue()
trainer = tinyrnn.Trainer(tinyrnn.default_corpus()[:5000], tinyrnn.TrainConfig(hidden_size=6, seq_len=5, batch_size=2))
with zipfile.ZipFile(io.BytesIO(tinyrnn.checkpoint_bytes(trainer.state()))) as archive:
    GOOD = {info.filename: archive.read(info) for info in archive.infolist()}
def bomb(name, dtype, shape, megabytes, copies=3, keep=()):
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as archive:
        for kept in keep:
            archive.writestr(kept, GOOD[kept])
        for i in range(copies):
            with archive.open(name.format(i), 'w', force_zip64=True) as member:
                member.write(npy_header(dtype, shape))
                for _ in range(megabytes):
                    member.write(bytes(2**20))
    return out.getvalue()
"""


def test_zip_bombs_are_refused_within_a_memory_limit():
    """The issue's bombs, under a 200 MiB address-space allowance: three 100 MB members with unexpected names
    (main read all of them, ~3 GB, before refusing), and members whose header declares 2**27 items of 32 bytes."""
    result = child(BOMBS + textwrap.dedent("""
        others = [name for name in GOOD if name not in ('param/W_hh.npy', 'history/step.npy')]
        cases = [bomb('junk{}.npy', '|u1', (100_000_000,), 96),
                 bomb('param/W_hh.npy', '<U8', (2**27,), 1, copies=1, keep=others),
                 bomb('history/step.npy', '<f8', (30_000_000,), 229, copies=1, keep=[*others, 'param/W_hh.npy'])]
        _limit(200)
        for data in cases:
            try:
                tinyrnn.load_checkpoint(data)
            except tinyrnn.CheckpointError as e:
                print('refused:', e)
    """), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("refused:") == 3, result.stdout


DAMAGE_PROPERTY = r"""
import io, re, zipfile
from hypothesis import HealthCheck, example, given, settings, strategies as st
trainer = tinyrnn.Trainer(tinyrnn.default_corpus()[:5000], tinyrnn.TrainConfig(hidden_size=6, seq_len=5, batch_size=2))
trainer.run(2)
with zipfile.ZipFile(io.BytesIO(tinyrnn.checkpoint_bytes(trainer.state()))) as archive:
    members = [(info.filename, archive.read(info)) for info in archive.infolist()]
_limit(256)

def reshaped(npy, count):
    # the .npy header declares ``count`` items instead (the header keeps its length, the data stays)
    end = npy.index(b"\n")
    new = re.sub(rb"'shape': \([^)]*\)", b"'shape': (%d,)" % count, npy[:end].rstrip())
    return npy if len(new) > end else new.ljust(end) + npy[end:]

def archive_of(members, compression):
    with io.BytesIO() as out:
        with zipfile.ZipFile(out, 'w', compression) as archive:
            for name, data in members:
                archive.writestr(name, data)
        return out.getvalue()

@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                st.sampled_from([b'\xff\xff\xff\x7f', b'\xff\xff', b'\x00\x00\x00\x00', b'\x7f']),
                                st.booleans()), max_size=5),
       keep=st.one_of(st.none(), st.floats(0, 1)), stored=st.booleans(),
       shape=st.one_of(st.none(), st.tuples(st.integers(0, 30), st.integers(0, 2**27))))
@example(edits=[(0.0, b'\xff\xff\xff\x7f', True), (0.939453125, b'\xff\xff\xff\x7f', True)], keep=None, stored=True,
         shape=None)  # a 0x7f in a .npy header: numpy 2.0's header parser raised tokenize.TokenError
def damaged_files_only_raise_checkpoint_error(edits, keep, stored, shape):
    edited = list(members)
    if shape is not None:  # a header that promises more data than there is (a valid CRC: the archive is rebuilt)
        which, count = shape[0] % len(edited), shape[1]
        edited[which] = (edited[which][0], reshaped(edited[which][1], count))
    data = bytearray(archive_of(edited, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED))
    for where, value, in_directory in edits:  # sizes, counts and offsets live in the ZIP directory at the end
        start = len(data) - 3000 if in_directory else 0
        position = start + int(where * (len(data) - start - len(value)))
        data[position:position + len(value)] = value
    if keep is not None:
        data = data[: int(keep * len(data))]
    try:
        tinyrnn.load_checkpoint(bytes(data))
    except tinyrnn.CheckpointError as e:
        assert str(e)

damaged_files_only_raise_checkpoint_error()
print('ok')
"""


def test_damaged_checkpoints_only_raise_checkpoint_error_and_stay_within_memory():
    started = time.perf_counter()
    result = child(DAMAGE_PROPERTY, timeout=180)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    print(f"{time.perf_counter() - started:.1f} s")


# --- contents -------------------------------------------------------------------------------------------------

def _with_meta(state, edit) -> bytes:
    members = _members_of(state)
    out = []
    for name, data in members:
        if name == "meta.npy":
            meta = json.loads(np.load(io.BytesIO(data)).tobytes())
            edited = edit(meta)
            raw = edited if isinstance(edited, bytes) else json.dumps(meta).encode()
            data = _npy(np.frombuffer(raw, dtype=np.uint8))
        out.append((name, data))
    return _zip(out)


def test_deeply_nested_metadata_is_a_checkpoint_error(state):
    deep = b'{"format": "tinyrnn-checkpoint", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(CheckpointError, match="nested too deeply"):
        tinyrnn.load_checkpoint(_with_meta(state, lambda meta: deep))


@pytest.mark.parametrize("bad", [-1, 7])
def test_ids_outside_the_vocabulary_are_refused_by_the_model_functions(bad):
    """A negative id would silently wrap around in the embedding lookup; one past V would be an IndexError."""
    params = tinyrnn.init_params(tinyrnn.ModelConfig(7, 4), seed=0)
    good = np.array([[1, 2, 3]])
    wrong = np.array([[1, bad, 3]])
    h0 = np.zeros((1, 4))
    calls = [lambda: tinyrnn.loss(params, wrong, good, h0), lambda: tinyrnn.loss(params, good, wrong, h0),
             lambda: tinyrnn.loss_and_grads(params, wrong, good, h0), lambda: tinyrnn.forward(params, wrong, h0),
             lambda: tinyrnn.evaluate_loss(params, wrong[0])]
    for call in calls:
        with pytest.raises(tinyrnn.UnknownCharacterError, match=r"must lie in \[0, 7\)"):
            call()
    assert math.isfinite(tinyrnn.loss(params, good, good, h0))
