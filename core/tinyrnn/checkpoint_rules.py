"""What a valid checkpoint is: the one definition that ``load_checkpoint`` applies to a file, ``save_checkpoint`` to
a record before writing it, and the CLI to its settings before training (so that no file is ever written that
cannot be read). The limits are in docs/checkpoint-format.md.

A checkpoint's *layout* is its members other than ``meta``, as ``{key: (shape, dtype)}`` with keys such as
``"param/W_hh"`` (no ``.npy``): the reader takes it from the ``.npy`` headers before reading any data, the writer
from the arrays it is about to write, the CLI from the settings (``planned_layout``).
"""

from __future__ import annotations

import io
import math

import numpy as np

from .config import SETTINGS, TrainConfig, is_number
from .errors import CheckpointError
from .model import ModelConfig
from .optim import make_optimizer

MAX_CHECKPOINT_BYTES = 1 << 30  # the file itself
MAX_MEMBERS = 64  # a checkpoint has at most 25
MAX_MEMBER_BYTES = 1 << 29  # declared uncompressed size of one member (512 MiB)
MAX_TOTAL_BYTES = 1 << 30  # declared uncompressed size of all members together (1 GiB)
MAX_HISTORY_ROWS = 2_000_000  # steps of history kept in a checkpoint (16 MB per column)
MAX_META_BYTES = 16 << 20  # the JSON metadata (a 65,536-symbol vocabulary takes under 1 MiB)
MAX_MEMBER_ELEMENTS = 1 << 27
MAX_COUNT = 2**53  # step, window, chars_seen and Adam's t: whole numbers from 0 to this
HISTORY_FIELDS = ("step", "train_loss", "val_loss", "chars_per_sec", "grad_norm", "chars_seen", "elapsed")
ZIP_BYTES_PER_MEMBER = 512  # local header, central directory entry and data descriptor, with room to spare


def expect(condition, message):
    if not condition:
        raise CheckpointError(message)


def npy_bytes(shape, dtype) -> int:
    """The size of the ``.npy`` member numpy writes for an array of this shape and dtype (header + data)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return header.tell() + math.prod(shape) * np.dtype(dtype).itemsize


def size_problem(sizes: dict) -> str | None:
    """Why members of these uncompressed sizes (member file name -> bytes) make a checkpoint the reader refuses,
    or None."""
    if len(sizes) > MAX_MEMBERS:
        return f"the checkpoint has {len(sizes):,} members; a checkpoint has at most {MAX_MEMBERS}"
    for name, size in sizes.items():
        if size > MAX_MEMBER_BYTES:
            return f"member {name!r} declares {size:,} bytes; the limit is {MAX_MEMBER_BYTES:,} (512 MiB)"
    total = sum(sizes.values())
    if total > MAX_TOTAL_BYTES:
        return f"the checkpoint's members declare {total:,} bytes in all; the limit is {MAX_TOTAL_BYTES:,} (1 GiB)"
    return None


def layout_problem(config: TrainConfig, model_config: ModelConfig, layout: dict) -> str | None:
    """Why members of these shapes and dtypes (``{key: (shape, dtype)}``, every member but ``meta``) do not make
    a checkpoint of this config and model, or None."""
    dtype = np.dtype(config.dtype)
    shapes = model_config.param_shapes()
    for name in model_config.param_names():
        if f"param/{name}" not in layout:
            return f"the checkpoint has no parameter {name!r}"
        shape, stored = layout[f"param/{name}"]
        if tuple(shape) != shapes[name]:
            return f"parameter {name!r} has shape {tuple(shape)}, expected {shapes[name]}"
        if stored != dtype:
            return f"parameter {name!r} has dtype {stored}, expected {dtype} (the config's dtype)"
    slots = make_optimizer(config.optimizer, config.lr).slots
    rows = set()
    unexpected = []
    for key, (shape, stored) in layout.items():
        shape, stored = tuple(shape), np.dtype(stored)
        kind, _, rest = key.partition("/")
        if key == "optim/t":
            if shape != () or stored.kind not in "iu":
                return "optimizer step count is malformed"
        elif kind == "optim":
            slot, _, name = rest.partition("/")
            if not (slot in slots and name in shapes and shape == shapes[name] and stored == dtype):
                return f"optimizer state {rest!r} does not fit a {config.optimizer} optimiser of this model"
        elif key == "progress/hidden":
            if not (len(shape) == 2 and shape[1] == model_config.state_size()
                    and 1 <= shape[0] <= SETTINGS["batch_size"].high and stored.kind == "f"):
                return "the saved hidden state has the wrong shape"
        elif kind == "history" and rest in HISTORY_FIELDS:
            if len(shape) != 1 or stored != np.float64:
                return f"history column {rest!r} is malformed"
            if shape[0] > MAX_HISTORY_ROWS:
                return f"history column {rest!r} has {shape[0]:,} rows; the limit is {MAX_HISTORY_ROWS:,}"
            rows.add(shape[0])
        elif not (kind == "param" and rest in shapes):
            unexpected.append(key)
    if unexpected:
        return f"the checkpoint has unexpected members: {', '.join(sorted(unexpected))}"
    if len(rows) > 1:
        return "history columns have different lengths"
    return None


def history_problem(columns: dict) -> str | None:
    """Why these history columns (field -> float64 array) cannot be loaded, or None."""
    for name, column in columns.items():
        finite = np.isfinite(column) | (np.isnan(column) if name == "val_loss" else False)
        if not finite.all():
            return f"history column {name!r} contains " + ("infinite values" if name == "val_loss"
                                                           else "NaN or infinite values")
    for name in ("step", "chars_seen"):
        column = columns.get(name, np.zeros(0))
        if not ((column >= 0) & (column <= MAX_COUNT) & (column == np.round(column))).all():
            return f"history column {name!r} must hold whole numbers from 0 to {MAX_COUNT:,}"
    return None


# --- from the settings, before training (the CLI) -----------------------------------------------------------

def planned_layout(config: TrainConfig, vocab_size: int, history_rows: int) -> dict:
    """The layout of the checkpoint a run with these settings writes (the most it can hold)."""
    model_config = ModelConfig(vocab_size, config.hidden_size, config.cell)
    dtype = np.dtype(config.dtype)
    shapes = model_config.param_shapes()
    layout = {f"param/{name}": (shape, dtype) for name, shape in shapes.items()}
    for slot in make_optimizer(config.optimizer, config.lr).slots:
        layout.update({f"optim/{slot}/{name}": (shape, dtype) for name, shape in shapes.items()})
    layout["optim/t"] = ((), np.dtype(np.int64))
    layout["progress/hidden"] = ((config.batch_size, model_config.state_size()), dtype)
    rows = min(history_rows, MAX_HISTORY_ROWS)
    layout.update({f"history/{name}": ((rows,), np.dtype(np.float64)) for name in HISTORY_FIELDS})
    return layout


def planned_sizes(config: TrainConfig, vocab_size: int, history_rows: int, meta_bytes: int) -> dict:
    """Member file name -> uncompressed bytes of the checkpoint these settings make (``meta_bytes``: its JSON)."""
    sizes = {f"{key}.npy": npy_bytes(shape, dtype)
             for key, (shape, dtype) in planned_layout(config, vocab_size, history_rows).items()}
    sizes["meta.npy"] = npy_bytes((meta_bytes,), np.uint8)
    return sizes


def file_bytes_bound(sizes: dict) -> int:
    """The most bytes a compressed archive of members of these sizes takes (zlib's deflateBound per member, plus
    the ZIP records): what the disk must have free to write it."""
    return sum(n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + ZIP_BYTES_PER_MEMBER for n in sizes.values()) + 22


# --- what a record may hold (loaded or built in memory) -----------------------------------------------------

def is_count(value) -> bool:
    if isinstance(value, np.ndarray) and value.shape == ():  # e.g. Adam's t in trainer.state()
        value = value[()]
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and 0 <= value <= MAX_COUNT


def progress_problem(progress) -> str | None:
    """Why ``progress`` (a checkpoint's progress dict) cannot be resumed from, or None."""
    if not isinstance(progress, dict):
        return f"the checkpoint's progress must be a JSON object, got {type(progress).__name__}"
    for key in ("step", "window", "chars_seen"):
        if key in progress and not is_count(progress[key]):
            return f"the checkpoint's progress.{key} must be a whole number from 0 to {MAX_COUNT:,}, got {progress[key]!r}"
    elapsed = progress.get("elapsed", 0.0)
    if not is_number(elapsed) or elapsed < 0:
        return f"the checkpoint's progress.elapsed must be a number of seconds ≥ 0, got {elapsed!r}"
    if not isinstance(progress.get("text_sha256", ""), str):
        return "the checkpoint's progress.text_sha256 must be a string"
    return None


def check_state(checkpoint):
    """``checkpoint`` if its numbers can be trained from, else ``CheckpointError``: finite parameters, finite
    optimiser and hidden state (NaN there is damage, not divergence), non-negative second moments, a step count
    in range and a well-formed progress dict."""
    problem = progress_problem(checkpoint.progress)
    expect(problem is None, problem)
    for name, value in checkpoint.params.items():
        expect(np.isfinite(value).all(), f"parameter {name!r} contains NaN or infinite values")
    for slot, value in checkpoint.optimizer_state.items():
        if slot == "t":
            expect(is_count(value), f"the optimizer step count t must be a whole number from 0 to {MAX_COUNT:,}, got {value!r}")
            continue
        expect(np.isfinite(value).all(), f"optimizer state {slot!r} contains NaN or infinite values: the file is "
               "damaged (a run that diverged is never saved this way); use another checkpoint")
        second_moment = (checkpoint.config.optimizer, slot.partition("/")[0]) in (("adam", "v"), ("adagrad", "s"))
        expect(not second_moment or (np.asarray(value) >= 0).all(), f"optimizer state {slot!r} has negative entries "
               "(it is a sum of squares): the file is damaged")
    if checkpoint.hidden is not None:
        expect(np.isfinite(checkpoint.hidden).all(), "the saved hidden state contains NaN or infinite values: the "
               "file is damaged (a run that diverged is never saved this way); use another checkpoint")
    return checkpoint
