"""Checkpoints: one ``.npz`` file with config, vocabulary, parameters, optimiser state and progress.

Writing is atomic (``files.write_atomically``). Reading is bounded and never unpickles: the ZIP directory's
member names, count and declared sizes are checked before anything is decompressed; each member's ``.npy`` header
is checked against the shapes the metadata implies before its data is read, in chunks, never past its declared
size. The layout and the limits are in docs/checkpoint-format.md.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .config import SETTINGS, StepMetrics, TrainConfig, thin_history
from .errors import CheckpointError, TinyRNNError
from .files import read_source, write_atomically
from .model import ModelConfig
from .optim import make_optimizer
from .vocab import Vocabulary

FORMAT = "tinyrnn-checkpoint"
FORMAT_VERSION = 2  # 2: the config records the cell; version 1 files (no cell) are tanh RNNs
READABLE_VERSIONS = (1, 2)
MAX_CHECKPOINT_BYTES = 1 << 30  # the file itself
MAX_MEMBERS = 64  # a checkpoint has at most 25
MAX_MEMBER_BYTES = 1 << 29  # declared uncompressed size of one member (512 MiB)
MAX_TOTAL_BYTES = 1 << 30  # declared uncompressed size of all members together (1 GiB)
MAX_HISTORY_ROWS = 2_000_000  # steps of history kept in a checkpoint (16 MB per column)
MAX_META_BYTES = 16 << 20  # the JSON metadata (a 65,536-symbol vocabulary takes under 1 MiB)
MAX_MEMBER_ELEMENTS = 1 << 27
MAX_COUNT = 2**53  # step, window, chars_seen and Adam's t: whole numbers from 0 to this
_MEMBER_NAME = re.compile(r"(meta|param/\w{1,32}|optim/t|optim/\w{1,16}/\w{1,32}|progress/hidden|history/\w{1,32})\.npy")
_NOT_A_CHECKPOINT = "this is not a tinyrnn checkpoint (not an .npz archive, or the file is truncated)"
HISTORY_FIELDS = ("step", "train_loss", "val_loss", "chars_per_sec", "grad_norm", "chars_seen", "elapsed")


@dataclass
class Checkpoint:
    """Everything a training run needs to resume: what ``Trainer.state()`` returns and ``load_checkpoint`` reads."""

    config: TrainConfig
    vocab: Vocabulary
    params: dict
    optimizer_state: dict = field(default_factory=dict)
    progress: dict = field(default_factory=dict)
    hidden: np.ndarray | None = None  # the state (B, S) at the saved step: S = H, or 2H for an LSTM ([h | c])
    history: list = field(default_factory=list)  # StepMetrics
    format_version: int = FORMAT_VERSION


def _arrays_of(checkpoint: Checkpoint) -> dict:
    config = checkpoint.config
    arrays = {f"param/{k}": np.asarray(v) for k, v in checkpoint.params.items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in checkpoint.optimizer_state.items()})
    if checkpoint.hidden is not None:
        arrays["progress/hidden"] = np.asarray(checkpoint.hidden)
    history = thin_history(checkpoint.history, MAX_HISTORY_ROWS)  # every file written loads again
    for name in HISTORY_FIELDS:
        values = [getattr(m, name) for m in history]
        arrays[f"history/{name}"] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": config.to_dict(),
            "model": ModelConfig(checkpoint.vocab.size, config.hidden_size, config.cell).to_dict(),
            "vocab": checkpoint.vocab.to_dict(),
            "optimizer": make_optimizer(config.optimizer, config.lr).hyperparameters(),
            "progress": checkpoint.progress}
    arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False, default=_json_number).encode("utf-8"),
                                   dtype=np.uint8)
    return arrays


def _json_number(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):  # e.g. an np.float32 learning rate
        return value.item()
    raise TypeError(f"a checkpoint cannot store a {type(value).__name__} ({value!r}) in its metadata")


def save_checkpoint(checkpoint: Checkpoint, path_or_file, *, protect=()) -> None:
    """Write ``checkpoint`` (e.g. ``trainer.state()``) to a path — exactly that path, atomically: a temporary file
    in the same directory, fsynced, then renamed over it, so a failed or interrupted save leaves the previous file
    intact — or to a binary file object. ``SaveError`` if the path cannot be written (a directory, a device, a
    missing directory, one of the files in ``protect``, a full disk)."""
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"save_checkpoint needs a Checkpoint (e.g. trainer.state()), got {type(checkpoint).__name__}")
    arrays = _arrays_of(checkpoint)
    if isinstance(path_or_file, (str, os.PathLike)):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_atomically(path_or_file, buffer.getbuffer(), protect)
    elif callable(getattr(path_or_file, "write", None)):
        np.savez_compressed(path_or_file, **arrays)
    else:
        raise TypeError(f"save_checkpoint writes to a path or a binary file object, got {type(path_or_file).__name__}")


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The checkpoint file's bytes (for a download button)."""
    buffer = io.BytesIO()
    save_checkpoint(checkpoint, buffer)
    return buffer.getvalue()


# --- reading ------------------------------------------------------------------------------------------------

# whatever a damaged or odd archive makes zipfile, zlib or numpy's header reader raise
_DAMAGE = (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error)


def _expect(condition, message):
    if not condition:
        raise CheckpointError(message)


def _shown(name: str) -> str:
    return name[:-4] if name.endswith(".npy") else name


def _too_many(count: int) -> str:
    return f"the checkpoint has {count:,} members; a checkpoint has at most {MAX_MEMBERS}"


def _check_directory_size(data: bytes) -> None:
    """Refuse, from the end-of-directory record alone, an archive whose ZIP directory is too long to parse safely
    (zipfile would build one record per entry before any other check)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    _expect(end >= 0 and len(data) >= end + 22, _NOT_A_CHECKPOINT)
    _expect(data[max(0, end - 20):end][:4] != b"PK\x06\x07", "the checkpoint uses ZIP64 directory records, which no "
            "tinyrnn checkpoint needs (it is under 1 GiB with few members)")
    count, size = struct.unpack("<HI", data[end + 10:end + 16])
    _expect(count <= MAX_MEMBERS, _too_many(count))
    _expect(size <= MAX_MEMBERS * 1024, f"the checkpoint's ZIP directory is {size:,} bytes; at most "
            f"{MAX_MEMBERS * 1024:,} are expected")


class _Members:
    """The ``.npy`` members of a checkpoint archive, checked from the ZIP directory alone (names, count, declared
    sizes) when opened; ``header(key)`` gives (shape, dtype) and ``pop(key)`` reads the data, never past the
    declared size. Keys are member names without ``.npy``."""

    def __init__(self, data: bytes):
        _check_directory_size(data)
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            infos = self.archive.infolist()
        except zipfile.BadZipFile:
            raise CheckpointError(_NOT_A_CHECKPOINT) from None
        except _DAMAGE as e:
            raise CheckpointError(f"the checkpoint archive is damaged ({e})") from None
        _expect(len(infos) <= MAX_MEMBERS, _too_many(len(infos)))
        names = [info.filename for info in infos]
        twice = sorted({n for n in names if names.count(n) > 1})
        _expect(not twice, f"the checkpoint lists member {_shown(twice[0]) if twice else ''!r} more than once")
        unexpected = [_shown(n) for n in names if not _MEMBER_NAME.fullmatch(n)]
        _expect(not unexpected, f"the checkpoint has unexpected members: {', '.join(sorted(unexpected)[:5])}"
                + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
        for info in infos:
            _expect(info.file_size <= MAX_MEMBER_BYTES, f"member {info.filename!r} declares {info.file_size:,} bytes; "
                    f"the limit is {MAX_MEMBER_BYTES:,}")
        total = sum(info.file_size for info in infos)
        _expect(total <= MAX_TOTAL_BYTES, f"the checkpoint's members declare {total:,} bytes in all; the limit is {MAX_TOTAL_BYTES:,}")
        self.infos = {_shown(info.filename): info for info in infos}
        self.headers = {}

    def __contains__(self, key) -> bool:
        return key in self.infos

    def keys(self) -> list:
        return sorted(self.infos)

    def header(self, key):
        """(shape, dtype) from the member's ``.npy`` header (refusing Python objects and implausible sizes)."""
        if key not in self.headers:
            info = self.infos[key]
            name = info.filename
            try:
                with self.archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, fortran, dtype = reader(member)
                    offset = member.tell()
            except _DAMAGE as e:
                raise CheckpointError(f"member {name!r} of the checkpoint is corrupt ({e})") from None
            _expect(not dtype.hasobject, f"member {name!r} holds Python objects (pickle); refusing to load it")
            _expect(dtype.kind in "iuf" and dtype.fields is None, f"member {name!r} has an unsupported dtype {dtype}")
            count = math.prod(shape)
            _expect(count <= MAX_MEMBER_ELEMENTS, f"member {name!r} is implausibly large ({shape})")
            _expect(offset + count * dtype.itemsize == info.file_size,
                    f"member {name!r} of the checkpoint is corrupt (its header does not match its size)")
            self.headers[key] = (shape, fortran, dtype, offset)
        shape, _, dtype, _ = self.headers[key]
        return shape, dtype

    def pop(self, key) -> np.ndarray:
        """The member's array, read in chunks up to its declared size (then checked against its CRC)."""
        self.header(key)
        shape, fortran, dtype, offset = self.headers.pop(key)
        info = self.infos.pop(key)
        buffer = bytearray(info.file_size - offset)
        try:
            with self.archive.open(info) as member:
                member.read(offset)
                view, done = memoryview(buffer), 0
                while done < len(buffer):
                    chunk = member.read(min(1 << 20, len(buffer) - done))
                    _expect(chunk, f"member {info.filename!r} of the checkpoint is truncated")
                    view[done:done + len(chunk)] = chunk
                    done += len(chunk)
                _expect(member.read(1) == b"", f"member {info.filename!r} of the checkpoint is corrupt")
        except CheckpointError:
            raise  # already says what is wrong (CheckpointError is a ValueError: keep it from the next clause)
        except _DAMAGE as e:
            raise CheckpointError(f"member {info.filename!r} of the checkpoint is corrupt ({e})") from None
        return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")

    def close(self):
        self.archive.close()


def _read_meta(members: _Members) -> dict:
    _expect("meta" in members, "this .npz file is not a tinyrnn checkpoint (it has no 'meta' member)")
    shape, dtype = members.header("meta")
    _expect(len(shape) == 1 and dtype == np.uint8 and shape[0] <= MAX_META_BYTES,
            f"the checkpoint's metadata is malformed (uint8 bytes, at most {MAX_META_BYTES:,}, expected)")

    def no_constants(name):
        raise ValueError(f"{name} is not allowed")

    try:
        meta = json.loads(members.pop("meta").tobytes().decode("utf-8"), parse_constant=no_constants)
    except RecursionError:
        raise CheckpointError("the checkpoint's metadata is nested too deeply to be a tinyrnn checkpoint") from None
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError("the checkpoint's metadata is not valid JSON") from None
    _expect(isinstance(meta, dict) and meta.get("format") == FORMAT, "this .npz file is not a tinyrnn checkpoint")
    return meta


def load_checkpoint(source) -> Checkpoint:
    """Read and validate a checkpoint from a path (``-``: standard input), bytes or a binary file object; at most
    ``MAX_CHECKPOINT_BYTES`` are read from any of them. ``CheckpointError`` says what is wrong."""
    data, _ = read_source(source, MAX_CHECKPOINT_BYTES, CheckpointError, "the checkpoint", b"PK\x03\x04",
                          _NOT_A_CHECKPOINT)
    _expect(len(data) > 0, "the checkpoint file is empty")
    _expect(data[:4] == b"PK\x03\x04", _NOT_A_CHECKPOINT)
    members = _Members(data)
    try:
        return _checkpoint_from(members)
    finally:
        members.close()


def _checkpoint_from(arrays: _Members) -> Checkpoint:
    meta = _read_meta(arrays)
    version = meta.get("version")
    _expect(version in READABLE_VERSIONS, f"checkpoint format version {version!r} is not supported (this tinyrnn "
            f"reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    try:
        config = TrainConfig.from_dict(meta["config"])
        vocab = Vocabulary.from_dict(meta["vocab"])
        model_config = ModelConfig(**meta["model"])
        progress = meta["progress"]
        optimizer = make_optimizer(config.optimizer, config.lr)
    except TinyRNNError as e:
        raise CheckpointError(f"the checkpoint's settings are invalid: {e}") from None
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"the checkpoint's metadata is incomplete ({e})") from None
    _expect(model_config.vocab_size == vocab.size,
            f"the checkpoint's vocabulary has {vocab.size} symbols but its model expects {model_config.vocab_size}")
    _expect(model_config.hidden_size == config.hidden_size, "the checkpoint's hidden size disagrees with its config")
    _expect(model_config.cell == config.cell, "the checkpoint's cell disagrees with its config")
    dtype = np.dtype(config.dtype)
    shapes = model_config.param_shapes()
    params = {}
    for name in model_config.param_names():
        _expect(f"param/{name}" in arrays, f"the checkpoint has no parameter {name!r}")
        shape, stored = arrays.header(f"param/{name}")
        _expect(shape == shapes[name], f"parameter {name!r} has shape {shape}, expected {shapes[name]}")
        _expect(stored == dtype, f"parameter {name!r} has dtype {stored}, expected {dtype}")
        params[name] = arrays.pop(f"param/{name}")
    optimizer_state = {}
    for key in [k for k in arrays.keys() if k.startswith("optim/")]:
        shape, stored = arrays.header(key)
        slot = key[len("optim/"):]
        if slot == "t":
            _expect(shape == () and stored.kind in "iu", "optimizer step count is malformed")
            optimizer_state[slot] = int(arrays.pop(key))
            continue
        kind, _, pname = slot.partition("/")
        _expect(kind in optimizer.slots and pname in shapes and shape == shapes[pname] and stored == dtype,
                f"optimizer state {slot!r} does not fit a {optimizer.name} optimiser of this model")
        optimizer_state[slot] = arrays.pop(key)
    hidden = None
    if "progress/hidden" in arrays:
        shape, stored = arrays.header("progress/hidden")
        _expect(len(shape) == 2 and shape[1] == model_config.state_size() and shape[0] <= SETTINGS["batch_size"].high
                and stored.kind == "f", "the saved hidden state has the wrong shape")
        hidden = arrays.pop("progress/hidden")
    history = _history_from(arrays)
    leftover = arrays.keys()
    _expect(not leftover, f"the checkpoint has unexpected members: {', '.join(leftover)}")
    checkpoint = Checkpoint(config, vocab, params, optimizer_state, progress, hidden, history, version)
    check_state(checkpoint)
    return checkpoint


def _history_from(arrays: _Members) -> list:
    columns = {}
    for name in HISTORY_FIELDS:
        key = f"history/{name}"
        if key in arrays:
            shape, stored = arrays.header(key)
            _expect(len(shape) == 1 and stored == np.float64, f"history column {name!r} is malformed")
            _expect(shape[0] <= MAX_HISTORY_ROWS, f"history column {name!r} has {shape[0]:,} rows; the limit is "
                    f"{MAX_HISTORY_ROWS:,}")
            columns[name] = arrays.pop(key)
        else:
            columns[name] = np.zeros(0)
    lengths = {c.size for c in columns.values()}
    _expect(len(lengths) == 1, "history columns have different lengths")
    for name, column in columns.items():
        finite = np.isfinite(column) | (np.isnan(column) if name == "val_loss" else False)
        _expect(finite.all(), f"history column {name!r} contains "
                + ("infinite values" if name == "val_loss" else "NaN or infinite values"))
    for name in ("step", "chars_seen"):
        column = columns[name]
        _expect(((column >= 0) & (column <= MAX_COUNT) & (column == np.round(column))).all(),
                f"history column {name!r} must hold whole numbers from 0 to {MAX_COUNT:,}")
    history = []
    for row in zip(*(columns[n].tolist() for n in HISTORY_FIELDS)):
        step, train, val, cps, norm, seen, elapsed = row
        history.append(StepMetrics(int(step), train, None if math.isnan(val) else val, cps, norm, int(seen), elapsed))
    return history


# --- what a checkpoint record may hold (loaded or built in memory) -------------------------------------------

def _is_count(value) -> bool:
    if isinstance(value, np.ndarray) and value.shape == ():  # e.g. Adam's t in trainer.state()
        value = value[()]
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and 0 <= value <= MAX_COUNT


def progress_problem(progress) -> str | None:
    """Why ``progress`` (a checkpoint's progress dict) cannot be resumed from, or None."""
    if not isinstance(progress, dict):
        return f"the checkpoint's progress must be a JSON object, got {type(progress).__name__}"
    for key in ("step", "window", "chars_seen"):
        if key in progress and not _is_count(progress[key]):
            return f"the checkpoint's progress.{key} must be a whole number from 0 to {MAX_COUNT:,}, got {progress[key]!r}"
    elapsed = progress.get("elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not (math.isfinite(elapsed) and elapsed >= 0):
        return f"the checkpoint's progress.elapsed must be a number of seconds ≥ 0, got {elapsed!r}"
    if not isinstance(progress.get("text_sha256", ""), str):
        return "the checkpoint's progress.text_sha256 must be a string"
    return None


def check_state(checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint`` if its numbers can be trained from, else ``CheckpointError``: finite parameters, finite
    optimiser and hidden state (NaN there is damage, not divergence), non-negative second moments, a step count
    in range and a well-formed progress dict."""
    problem = progress_problem(checkpoint.progress)
    _expect(problem is None, problem)
    for name, value in checkpoint.params.items():
        _expect(np.isfinite(value).all(), f"parameter {name!r} contains NaN or infinite values")
    for slot, value in checkpoint.optimizer_state.items():
        if slot == "t":
            _expect(_is_count(value), f"the optimizer step count t must be a whole number from 0 to {MAX_COUNT:,}, got {value!r}")
            continue
        _expect(np.isfinite(value).all(), f"optimizer state {slot!r} contains NaN or infinite values: the file is "
                "damaged (a run that diverged is never saved this way); use another checkpoint")
        second_moment = (checkpoint.config.optimizer, slot.partition("/")[0]) in (("adam", "v"), ("adagrad", "s"))
        _expect(not second_moment or (np.asarray(value) >= 0).all(), f"optimizer state {slot!r} has negative entries "
                "(it is a sum of squares): the file is damaged")
    if checkpoint.hidden is not None:
        _expect(np.isfinite(checkpoint.hidden).all(), "the saved hidden state contains NaN or infinite values: the "
                "file is damaged (a run that diverged is never saved this way); use another checkpoint")
    return checkpoint
