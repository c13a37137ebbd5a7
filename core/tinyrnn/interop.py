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


def state_to_torch(state: np.ndarray, cell: str):
    """tinyrnn's state (B, S) as torch's: h (1, B, H), or (h, c) for the LSTM."""
    torch = _torch()
    state = torch.from_numpy(np.ascontiguousarray(state))
    if cell != "lstm":
        return state[None]
    H = state.shape[1] // 2
    return state[None, :, :H].contiguous(), state[None, :, H:].contiguous()


def state_from_torch(state, cell: str) -> np.ndarray:
    """torch's state (h, or the LSTM's (h, c), each (1, B, H)) as tinyrnn's (B, S)."""
    parts = state if cell == "lstm" else (state,)
    return np.concatenate([p.detach().cpu().numpy()[0] for p in parts], axis=1)


def to_torch(checkpoint: Checkpoint, dtype=None):
    """A ``TorchCharModel`` with ``checkpoint``'s weights, in ``dtype`` (default: the checkpoint's, e.g.
    torch.float32)."""
    torch = _torch()
    cell = checkpoint.config.cell
    params = checkpoint.params
    V, H = params["W_yh"].shape
    module = _module_class()(cell, V, H).to(dtype or getattr(torch, str(params["W_yh"].dtype)))
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
    return cell


def from_torch(module, vocab, config: TrainConfig | None = None) -> Checkpoint:
    """A ``Checkpoint`` record (no optimiser state, no progress) with the weights of ``module`` (a
    ``TorchCharModel`` or any module with ``.rnn`` and ``.head`` of that shape) for the ``vocab`` it was trained
    with. ``config`` gives the training settings to continue with (default: ``TrainConfig``'s, with the module's
    cell, hidden size and floating-point type)."""
    cell = _check_module(module, vocab.size)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    dtype = str(state["head.weight"].dtype)
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"from_torch needs float32 or float64 weights, got {dtype}")
    weights = [state["rnn." + n] for n in _TORCH_NAMES]
    if cell == "rnn":
        weights = weights[:2] + [weights[2] + weights[3]]
    params = dict(zip(get_cell(cell).recurrence_names, weights))
    params.update(W_yh=state["head.weight"], b_y=state["head.bias"])
    params = {k: np.array(v, dtype=dtype) for k, v in params.items()}
    base = (config or TrainConfig()).to_dict()
    config = TrainConfig(**{**base, "cell": cell, "hidden_size": module.rnn.hidden_size, "dtype": dtype}).validate()
    return Checkpoint(config, vocab, params)
