"""Checkpoints: one ``.npz`` file with config, vocabulary, parameters, optimiser state and progress.

Reading never unpickles: every member is parsed with numpy's header reader and refused if it holds Python
objects, has an unexpected name, shape or dtype, or is implausibly large. The layout is in docs/checkpoint-format.md.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .config import StepMetrics, TrainConfig
from .errors import CheckpointError, TinyRNNError
from .model import PARAM_NAMES, ModelConfig
from .optim import make_optimizer
from .vocab import Vocabulary

FORMAT = "tinyrnn-checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 1 << 30
MAX_MEMBER_ELEMENTS = 1 << 27
HISTORY_FIELDS = ("step", "train_loss", "val_loss", "chars_per_sec", "grad_norm", "chars_seen", "elapsed")


@dataclass
class Checkpoint:
    """Everything a training run needs to resume: what ``Trainer.state()`` returns and ``load_checkpoint`` reads."""

    config: TrainConfig
    vocab: Vocabulary
    params: dict
    optimizer_state: dict = field(default_factory=dict)
    progress: dict = field(default_factory=dict)
    hidden: np.ndarray | None = None  # (B, H) at the saved step
    history: list = field(default_factory=list)  # StepMetrics
    format_version: int = FORMAT_VERSION


def _arrays_of(checkpoint: Checkpoint) -> dict:
    config = checkpoint.config
    arrays = {f"param/{k}": np.asarray(v) for k, v in checkpoint.params.items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in checkpoint.optimizer_state.items()})
    if checkpoint.hidden is not None:
        arrays["progress/hidden"] = np.asarray(checkpoint.hidden)
    for name in HISTORY_FIELDS:
        values = [getattr(m, name) for m in checkpoint.history]
        arrays[f"history/{name}"] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": config.to_dict(),
            "model": ModelConfig(checkpoint.vocab.size, config.hidden_size).to_dict(),
            "vocab": checkpoint.vocab.to_dict(),
            "optimizer": make_optimizer(config.optimizer, config.lr).hyperparameters(),
            "progress": checkpoint.progress}
    arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    return arrays


def save_checkpoint(checkpoint: Checkpoint, path_or_file) -> None:
    """Write ``checkpoint`` (e.g. ``trainer.state()``) to a path or a binary file object."""
    np.savez_compressed(path_or_file, **_arrays_of(checkpoint))


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The checkpoint file's bytes (for a download button)."""
    buffer = io.BytesIO()
    save_checkpoint(checkpoint, buffer)
    return buffer.getvalue()


# --- reading ------------------------------------------------------------------------------------------------

# whatever a damaged or odd archive makes zipfile, zlib or numpy's header reader raise
_DAMAGE = (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error)


def _read_members(data: bytes) -> dict:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CheckpointError("this is not a tinyrnn checkpoint (not an .npz archive, or the file is truncated)") from None
    except _DAMAGE as e:
        raise CheckpointError(f"the checkpoint archive is damaged ({e})") from None
    arrays = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise CheckpointError(f"unexpected member {name!r} in the checkpoint")
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, fortran, dtype = reader(member)
                    if dtype.hasobject:
                        raise CheckpointError(f"member {name!r} holds Python objects (pickle); refusing to load it")
                    if int(np.prod(shape, dtype=np.int64)) > MAX_MEMBER_ELEMENTS:
                        raise CheckpointError(f"member {name!r} is implausibly large ({shape})")
                with archive.open(info) as member:
                    arrays[name[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
            except CheckpointError:
                raise  # already says what is wrong (CheckpointError is a ValueError: keep it from the next clause)
            except _DAMAGE as e:
                raise CheckpointError(f"member {name!r} of the checkpoint is corrupt ({e})") from None
    return arrays


def _expect(condition, message):
    if not condition:
        raise CheckpointError(message)


def load_checkpoint(source) -> Checkpoint:
    """Read and validate a checkpoint from a path, bytes or a binary file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
            _expect(size <= MAX_CHECKPOINT_BYTES, f"the checkpoint is {size:,} bytes; the limit is {MAX_CHECKPOINT_BYTES:,}")
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CheckpointError(f"cannot read {os.fspath(source)!r}: {e.strerror or e}") from None
    else:
        data = source.read(MAX_CHECKPOINT_BYTES + 1)
    _expect(len(data) <= MAX_CHECKPOINT_BYTES, "the checkpoint is larger than the limit")
    _expect(len(data) > 0, "the checkpoint file is empty")
    arrays = _read_members(data)
    _expect("meta" in arrays, "this .npz file is not a tinyrnn checkpoint (it has no 'meta' member)")
    try:
        meta = json.loads(arrays.pop("meta").astype(np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError("the checkpoint's metadata is not valid JSON") from None
    _expect(isinstance(meta, dict) and meta.get("format") == FORMAT, "this .npz file is not a tinyrnn checkpoint")
    version = meta.get("version")
    _expect(version == FORMAT_VERSION,
            f"checkpoint format version {version!r} is not supported (this tinyrnn reads version {FORMAT_VERSION})")
    try:
        config = TrainConfig.from_dict(meta["config"])
        vocab = Vocabulary.from_dict(meta["vocab"])
        model_config = ModelConfig(**meta["model"])
        progress = dict(meta["progress"])
        optimizer = make_optimizer(config.optimizer, config.lr)
    except TinyRNNError as e:
        raise CheckpointError(f"the checkpoint's settings are invalid: {e}") from None
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"the checkpoint's metadata is incomplete ({e})") from None
    _expect(model_config.vocab_size == vocab.size,
            f"the checkpoint's vocabulary has {vocab.size} symbols but its model expects {model_config.vocab_size}")
    _expect(model_config.hidden_size == config.hidden_size, "the checkpoint's hidden size disagrees with its config")
    dtype = np.dtype(config.dtype)
    shapes = model_config.param_shapes()
    params = {}
    for name in PARAM_NAMES:
        array = arrays.pop(f"param/{name}", None)
        _expect(array is not None, f"the checkpoint has no parameter {name!r}")
        _expect(array.shape == shapes[name],
                f"parameter {name!r} has shape {array.shape}, expected {shapes[name]}")
        _expect(array.dtype == dtype, f"parameter {name!r} has dtype {array.dtype}, expected {dtype}")
        _expect(np.isfinite(array).all(), f"parameter {name!r} contains NaN or infinite values")
        params[name] = array
    optimizer_state = {}
    for key in [k for k in arrays if k.startswith("optim/")]:
        value = arrays.pop(key)
        slot = key[len("optim/"):]
        if slot == "t":
            _expect(value.shape == () and value.dtype.kind in "iu", "optimizer step count is malformed")
            optimizer_state[slot] = int(value)
            continue
        kind, _, pname = slot.partition("/")
        _expect(kind in optimizer.slots and pname in shapes and value.shape == shapes[pname] and value.dtype == dtype,
                f"optimizer state {slot!r} does not fit a {optimizer.name} optimiser of this model")
        optimizer_state[slot] = value
    hidden = arrays.pop("progress/hidden", None)
    if hidden is not None:
        _expect(hidden.ndim == 2 and hidden.shape[1] == config.hidden_size, "the saved hidden state has the wrong shape")
    history = _history_from(arrays)
    leftover = sorted(arrays)
    _expect(not leftover, f"the checkpoint has unexpected members: {', '.join(leftover)}")
    return Checkpoint(config, vocab, params, optimizer_state, progress, hidden, history, version)


def _history_from(arrays) -> list:
    columns = {}
    for name in HISTORY_FIELDS:
        column = arrays.pop(f"history/{name}", np.zeros(0))
        _expect(column.ndim == 1 and column.dtype == np.float64, f"history column {name!r} is malformed")
        columns[name] = column
    lengths = {c.size for c in columns.values()}
    _expect(len(lengths) == 1, "history columns have different lengths")
    history = []
    for row in zip(*(columns[n] for n in HISTORY_FIELDS)):
        step, train, val, cps, norm, seen, elapsed = (float(v) for v in row)
        history.append(StepMetrics(int(step), train, None if np.isnan(val) else val, cps, norm, int(seen), elapsed))
    return history
