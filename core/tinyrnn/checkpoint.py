"""Checkpoints: one ``.npz`` file with config, vocabulary, parameters, optimiser state and progress.

Writing is atomic (``files.write_atomically``). Reading is bounded and never unpickles: the ZIP directory's
member names, count and declared sizes are checked before anything is decompressed; each member's ``.npy`` header
is checked against the shapes the metadata implies before its data is read, in chunks, never past its declared
size. Writing first makes the same checks of the record (``checkpoint_rules``, the one definition of a valid
checkpoint), so that every file written loads again. The layout and the limits are in docs/checkpoint-format.md.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .checkpoint_rules import (HISTORY_FIELDS, MAX_CHECKPOINT_BYTES, MAX_COUNT, MAX_HISTORY_ROWS,  # noqa: F401
                               MAX_MEMBER_BYTES, MAX_MEMBER_ELEMENTS, MAX_MEMBERS, MAX_META_BYTES, MAX_TOTAL_BYTES,
                               check_state, expect as _expect, history_problem, layout_problem, npy_bytes,
                               progress_problem, size_problem)
from .config import StepMetrics, TrainConfig, thin_history
from .errors import CheckpointError, TinyRNNError
from .files import read_source, write_atomically
from .model import ModelConfig
from .optim import make_optimizer
from .vocab import Vocabulary

FORMAT = "tinyrnn-checkpoint"
FORMAT_VERSION = 2  # 2: the config records the cell; version 1 files (no cell) are tanh RNNs
READABLE_VERSIONS = (1, 2)
_MEMBER_NAME = re.compile(r"(meta|param/\w{1,32}|optim/t|optim/\w{1,16}/\w{1,32}|progress/hidden|history/\w{1,32})\.npy")
_NOT_A_CHECKPOINT = "this is not a tinyrnn checkpoint (not an .npz archive, or the file is truncated)"


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


def _check_types(checkpoint) -> None:
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"save_checkpoint needs a Checkpoint (e.g. trainer.state()), got {type(checkpoint).__name__}")
    for name, kind, what in (("config", TrainConfig, "a TrainConfig"), ("vocab", Vocabulary, "a Vocabulary"),
                             ("params", dict, "a dict of arrays"), ("optimizer_state", dict, "a dict"),
                             ("progress", dict, "a dict"), ("history", list, "a list of StepMetrics")):
        value = getattr(checkpoint, name)
        if not isinstance(value, kind):
            raise TypeError(f"checkpoint.{name} must be {what}, got {type(value).__name__}")
    if not all(isinstance(m, StepMetrics) for m in checkpoint.history):
        raise TypeError("checkpoint.history must be a list of StepMetrics")


def _meta_bytes(checkpoint: Checkpoint) -> bytes:
    config = checkpoint.config
    progress = checkpoint.progress
    try:
        dumped = json.dumps(progress, allow_nan=False, default=_json_number)
        _expect(json.loads(dumped) == progress, "")
    except (TypeError, ValueError, CheckpointError) as e:
        raise CheckpointError("the checkpoint's progress must hold only JSON values (str keys; str, finite numbers, "
                              f"lists, dicts, None) that load back equal ({e or 'a tuple or a non-str key'})") from None
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": config.to_dict(),
            "model": ModelConfig(checkpoint.vocab.size, config.hidden_size, config.cell).to_dict(),
            "vocab": checkpoint.vocab.to_dict(),
            "optimizer": make_optimizer(config.optimizer, config.lr).hyperparameters(),
            "progress": progress}
    data = json.dumps(meta, ensure_ascii=False, allow_nan=False, default=_json_number).encode("utf-8")
    _expect(len(data) <= MAX_META_BYTES, f"the checkpoint's metadata would take {len(data):,} bytes; the limit is "
            f"{MAX_META_BYTES:,}")
    return data


def _arrays_of(checkpoint: Checkpoint) -> dict:
    """The members to write, after the checks ``load_checkpoint`` makes of them (``CheckpointError``)."""
    _check_types(checkpoint)
    config = checkpoint.config
    try:
        config.validate()
        model_config = ModelConfig(checkpoint.vocab.size, config.hidden_size, config.cell)
    except TinyRNNError as e:
        raise CheckpointError(f"the checkpoint's settings are invalid: {e}") from None
    arrays = {f"param/{k}": np.asarray(v) for k, v in checkpoint.params.items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in checkpoint.optimizer_state.items()})
    if checkpoint.hidden is not None:
        arrays["progress/hidden"] = np.asarray(checkpoint.hidden)
    history = thin_history(checkpoint.history, MAX_HISTORY_ROWS)  # every file written loads again
    for name in HISTORY_FIELDS:
        values = [getattr(m, name) for m in history]
        try:
            arrays[f"history/{name}"] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise CheckpointError(f"history field {name!r} must hold numbers") from None
    problem = layout_problem(config, model_config, {k: (a.shape, a.dtype) for k, a in arrays.items()})
    problem = problem or history_problem({n: arrays[f"history/{n}"] for n in HISTORY_FIELDS})
    _expect(problem is None, problem)
    check_state(checkpoint)
    arrays["meta"] = np.frombuffer(_meta_bytes(checkpoint), dtype=np.uint8)
    problem = size_problem({f"{k}.npy": npy_bytes(a.shape, a.dtype) for k, a in arrays.items()})
    _expect(problem is None, problem)
    return arrays


def _json_number(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):  # e.g. an np.float32 learning rate
        return value.item()
    raise TypeError(f"a checkpoint cannot store a {type(value).__name__} ({value!r}) in its metadata")


def _archive(checkpoint: Checkpoint) -> io.BytesIO:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_arrays_of(checkpoint))
    size = buffer.getbuffer().nbytes
    _expect(size <= MAX_CHECKPOINT_BYTES, f"the checkpoint file would be {size:,} bytes; the limit is "
            f"{MAX_CHECKPOINT_BYTES:,} (1 GiB)")
    return buffer


def save_checkpoint(checkpoint: Checkpoint, path_or_file, *, protect=(), force=False) -> None:
    """Write ``checkpoint`` (e.g. ``trainer.state()``) to a path — exactly that path, atomically: a temporary file
    in the same directory, fsynced, then renamed over it, so a failed or interrupted save leaves the previous file
    intact — or to a binary file object. First it makes every check ``load_checkpoint`` makes (names, shapes,
    dtypes, finite values, sizes): ``CheckpointError`` for a record that would not load, and nothing is written.
    ``SaveError`` if the path cannot be written (a directory, a device, a missing directory, one of the files in
    ``protect``, an immutable file, a read-only file unless ``force``, a full disk)."""
    if isinstance(path_or_file, io.TextIOBase):
        raise TypeError("save_checkpoint writes bytes: give a path or a file opened in binary mode ('wb'), not a "
                        f"text stream ({type(path_or_file).__name__})")
    if not isinstance(path_or_file, (str, os.PathLike)) and not callable(getattr(path_or_file, "write", None)):
        raise TypeError(f"save_checkpoint writes to a path or a binary file object, got {type(path_or_file).__name__}")
    buffer = _archive(checkpoint)
    if isinstance(path_or_file, (str, os.PathLike)):
        write_atomically(path_or_file, buffer.getbuffer(), protect, replace_read_only=force)
    else:
        path_or_file.write(buffer.getvalue())


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The checkpoint file's bytes (for a download button)."""
    return _archive(checkpoint).getvalue()


# --- reading ------------------------------------------------------------------------------------------------

# whatever a damaged or odd archive makes zipfile, zlib or numpy's header reader raise (numpy 2.0's parser: also
# tokenize.TokenError, on a control byte in a .npy header)
_DAMAGE = (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error,
           tokenize.TokenError)


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
        problem = size_problem({info.filename: info.file_size for info in infos})
        _expect(problem is None, problem)
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
    _expect(type(version) is int and version in READABLE_VERSIONS, f"checkpoint format version {version!r} is not "
            f"supported (this tinyrnn reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    try:
        config = TrainConfig.from_dict(meta["config"])
        vocab = Vocabulary.from_dict(meta["vocab"])
        model_config = ModelConfig(**meta["model"])
        progress = meta["progress"]
    except TinyRNNError as e:
        raise CheckpointError(f"the checkpoint's settings are invalid: {e}") from None
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"the checkpoint's metadata is incomplete ({e})") from None
    _expect(model_config.vocab_size == vocab.size,
            f"the checkpoint's vocabulary has {vocab.size} symbols but its model expects {model_config.vocab_size}")
    _expect(model_config.hidden_size == config.hidden_size, "the checkpoint's hidden size disagrees with its config")
    _expect(model_config.cell == config.cell, "the checkpoint's cell disagrees with its config")
    problem = layout_problem(config, model_config, {key: arrays.header(key) for key in arrays.keys()})
    _expect(problem is None, problem)  # every shape and dtype checked before any data is read
    params = {name: arrays.pop(f"param/{name}") for name in model_config.param_names()}
    optimizer_state = {key[len("optim/"):]: arrays.pop(key) for key in arrays.keys() if key.startswith("optim/")}
    if "t" in optimizer_state:
        optimizer_state["t"] = int(optimizer_state["t"])
    hidden = arrays.pop("progress/hidden") if "progress/hidden" in arrays else None
    history = _history_from(arrays)
    checkpoint = Checkpoint(config, vocab, params, optimizer_state, progress, hidden, history, version)
    check_state(checkpoint)
    return checkpoint


def _history_from(arrays: _Members) -> list:
    columns = {name: arrays.pop(f"history/{name}") if f"history/{name}" in arrays else np.zeros(0)
               for name in HISTORY_FIELDS}
    _expect(len({c.size for c in columns.values()}) == 1, "history columns have different lengths")
    problem = history_problem(columns)
    _expect(problem is None, problem)
    history = []
    for row in zip(*(columns[n].tolist() for n in HISTORY_FIELDS)):
        step, train, val, cps, norm, seen, elapsed = row
        history.append(StepMetrics(int(step), train, None if math.isnan(val) else val, cps, norm, int(seen), elapsed))
    return history
