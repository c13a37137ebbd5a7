"""Models that move to and from PyTorch (the optional extra ``pip install tinyrnn[torch]``; torch is imported only
here, and only when these functions are called).

    module = to_torch(checkpoint)             # a TorchCharModel: .rnn (nn.RNN / nn.GRU / nn.LSTM) + .head (nn.Linear)
    logits, state = module(ids)               # ids (B, T) int64, or one-hot (B, T, V) floats
    checkpoint = from_torch(module, vocab)    # a Checkpoint record: save_checkpoint / Trainer.from_checkpoint take it

The weights map one to one (cells.py uses PyTorch's gate equations and order):

    cell   tinyrnn                      torch (.rnn)                          .head
    rnn    W_hx, W_hh, b_h              weight_ih_l0, weight_hh_l0,           weight = W_yh, bias = b_y
                                        bias_ih_l0 + bias_hh_l0 = b_h
    gru    W_ih, W_hh, b_ih, b_hh       weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
    lstm   W_ih, W_hh, b_ih, b_hh       (the same)

(to_torch puts the tanh RNN's b_h into bias_ih_l0 and zeros into bias_hh_l0.) The state: tinyrnn's (B, S) array
is torch's h (1, B, H), or for the LSTM the pair (h, c) from [h | c] (B, 2H): ``state_to_torch`` /
``state_from_torch``. The returned record has no optimiser state or progress: training continues from the weights.
"""

from __future__ import annotations

import numpy as np

from .cells import get_cell
from .checkpoint import Checkpoint
from .config import TrainConfig
from .errors import ConfigError
from .vocab import Vocabulary

_TORCH_CLASSES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
_TORCH_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _torch():
    try:
        import torch
    except ImportError:
        raise ConfigError("PyTorch is not installed: pip install tinyrnn[torch]") from None
    return torch


def _module_class():
    torch = _torch()

    class TorchCharModel(torch.nn.Module):
        """A character model in PyTorch: ``rnn`` (one layer, batch_first) and the output layer ``head``."""

        def __init__(self, cell: str, vocab_size: int, hidden_size: int):
            super().__init__()
            self.cell = cell
            self.vocab_size = vocab_size
            rnn_class = getattr(torch.nn, _TORCH_CLASSES[get_cell(cell).name])
            self.rnn = rnn_class(vocab_size, hidden_size, batch_first=True)
            self.head = torch.nn.Linear(hidden_size, vocab_size)

        def forward(self, x, state=None):
            """Logits (B, T, V) and the last state (torch's convention) for ids (B, T) or one-hot (B, T, V)."""
            if not torch.is_floating_point(x):
                x = torch.nn.functional.one_hot(x, self.vocab_size).to(self.head.weight.dtype)
            hs, state = self.rnn(x, state)
            return self.head(hs), state

    return TorchCharModel


def _state_width(state, cell: str) -> tuple:
    """(B, H) of tinyrnn's state (B, S) of a ``cell`` model, or ``ConfigError`` naming the shape expected."""
    parts = get_cell(cell).state_parts
    shape = np.shape(state)
    if len(shape) != 2 or shape[1] % parts or shape[1] == 0:
        expected = "(B, 2H): [h | c], an even width" if parts == 2 else "(B, H)"
        raise ConfigError(f"state of a {cell} model must have shape {expected}, got {shape}")
    return shape[0], shape[1] // parts


def state_to_torch(state: np.ndarray, cell: str):
    """tinyrnn's state (B, S) as torch's: h (1, B, H), or (h, c) for the LSTM."""
    torch = _torch()
    _, H = _state_width(state, cell)
    state = torch.from_numpy(np.ascontiguousarray(state))
    if cell != "lstm":
        return state[None]
    return state[None, :, :H].contiguous(), state[None, :, H:].contiguous()


def state_from_torch(state, cell: str) -> np.ndarray:
    """torch's state (h, or the LSTM's (h, c), each (1, B, H)) as tinyrnn's (B, S)."""
    torch = _torch()
    parts = get_cell(cell).state_parts
    parts_given = tuple(state) if parts == 2 and isinstance(state, (tuple, list)) else (state,)
    if len(parts_given) != parts or not all(isinstance(p, torch.Tensor) and p.dim() == 3 and p.shape[0] == 1
                                            and p.shape == parts_given[0].shape for p in parts_given):
        expected = "a pair (h, c) of tensors (1, B, H)" if parts == 2 else "a tensor h (1, B, H)"
        raise ConfigError(f"state of a torch {cell} must be {expected}")
    return np.concatenate([p.detach().cpu().numpy()[0] for p in parts_given], axis=1)


_DTYPES = ("float32", "float64")


def _torch_dtype(dtype, params):
    """The torch dtype for ``to_torch``'s ``dtype`` argument: None (the checkpoint's), "float32"/"float64" or
    torch.float32/torch.float64."""
    torch = _torch()
    if dtype is None:
        dtype = str(params["W_yh"].dtype)
    if isinstance(dtype, str) and dtype in _DTYPES:
        return getattr(torch, dtype)
    if dtype in (torch.float32, torch.float64):
        return dtype
    raise ConfigError(f"dtype must be None (the checkpoint's), 'float32', 'float64', torch.float32 or "
                      f"torch.float64, got {dtype!r}")


def to_torch(checkpoint: Checkpoint, dtype=None):
    """A ``TorchCharModel`` with ``checkpoint``'s weights, in ``dtype`` (default: the checkpoint's; "float32",
    "float64", torch.float32 or torch.float64)."""
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"to_torch needs a Checkpoint (e.g. load_checkpoint(path) or trainer.state()), got "
                        f"{type(checkpoint).__name__}")
    torch = _torch()
    cell = checkpoint.config.cell
    params = checkpoint.params
    V, H = params["W_yh"].shape
    module = _module_class()(cell, V, H).to(_torch_dtype(dtype, params))
    names = get_cell(cell).recurrence_names
    weights = [params[name] for name in names]
    if cell == "rnn":
        weights.append(np.zeros_like(params["b_h"]))
    values = dict(zip(("rnn." + n for n in _TORCH_NAMES), weights))
    values.update({"head.weight": params["W_yh"], "head.bias": params["b_y"]})
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in values.items()})  # copies, keeps dtype
    return module


def _check_module(module, vocab_size):
    rnn, head = getattr(module, "rnn", None), getattr(module, "head", None)
    torch = _torch()
    cells = {getattr(torch.nn, c): name for name, c in _TORCH_CLASSES.items()}
    cell = cells.get(type(rnn))
    problem = None
    if cell is None or not isinstance(head, torch.nn.Linear):
        problem = "a module with .rnn (torch.nn.RNN, GRU or LSTM) and .head (torch.nn.Linear)"
    elif rnn.num_layers != 1 or rnn.bidirectional or not rnn.bias or getattr(rnn, "proj_size", 0):
        problem = "one unidirectional layer with biases (num_layers=1, bidirectional=False, bias=True, proj_size=0)"
    elif cell == "rnn" and rnn.nonlinearity != "tanh":
        problem = "an nn.RNN with nonlinearity='tanh'"
    elif rnn.input_size != vocab_size or head.out_features != vocab_size or head.in_features != rnn.hidden_size:
        problem = (f"input_size = head.out_features = the vocabulary size ({vocab_size}) and head.in_features = "
                   f"hidden_size")
    if problem:
        raise ConfigError(f"from_torch needs {problem}")
    tensors = module.state_dict()
    devices = {t.device.type for t in tensors.values()}
    if "meta" in devices:
        raise ConfigError("from_torch needs weights with values; this module is on the meta device (no data): "
                          "load or initialise its weights first (e.g. module.to_empty(device='cpu') then load them)")
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in tensors.values()})
    if len(dtypes) != 1 or dtypes[0] not in _DTYPES:
        raise ConfigError(f"from_torch needs float32 or float64 weights, got {', '.join(dtypes)} (all must be of one "
                          f"type); convert the module with .float() or .double()")
    return cell


def from_torch(module, vocab, config: TrainConfig | None = None) -> Checkpoint:
    """A ``Checkpoint`` record (no optimiser state, no progress) with the weights of ``module`` (a
    ``TorchCharModel`` or any module with ``.rnn`` and ``.head`` of that shape) for the ``vocab`` it was trained
    with. ``config`` gives the training settings to continue with (default: ``TrainConfig``'s, with the module's
    cell, hidden size and floating-point type)."""
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a Vocabulary (the one the module was trained with), got {type(vocab).__name__}")
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    cell = _check_module(module, vocab.size)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    dtype = str(state["head.weight"].dtype)
    weights = [state["rnn." + n] for n in _TORCH_NAMES]
    if cell == "rnn":
        weights = weights[:2] + [weights[2] + weights[3]]
    params = dict(zip(get_cell(cell).recurrence_names, weights))
    params.update(W_yh=state["head.weight"], b_y=state["head.bias"])
    params = {k: np.array(v, dtype=dtype) for k, v in params.items()}
    base = (config or TrainConfig()).to_dict()
    config = TrainConfig(**{**base, "cell": cell, "hidden_size": module.rnn.hidden_size, "dtype": dtype}).validate()
    return Checkpoint(config, vocab, params)
