"""PyTorch reference for the benchmark: ``nn.RNN(tanh)``, ``nn.GRU`` or ``nn.LSTM`` (batch_first) + ``nn.Linear``,
CPU, float32.

Same model as tinyrnn (one-hot input of size V -> recurrence of size H -> linear logits of size V; for the tanh RNN
PyTorch carries two hidden biases, ``b_ih`` and ``b_hh``, where tinyrnn has one; tinyrnn's GRU and LSTM are
PyTorch's equations and weight layout), same loss (mean softmax cross-entropy, nats/char), same optimiser (Adam,
lr 2e-3) and the same global-norm clipping (5.0). The state is carried (detached) from one window to the next, as
in a char-rnn loader.

Torch is a bench extra only (``.venv-bench``), never a runtime dependency of tinyrnn.

Cross-check (same weights -> same loss and gradients): the tanh RNN against the numpy baseline, the GRU and LSTM
against tinyrnn's hand-written BPTT::

    python -m bench.torch_rnn --check
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.harness import check_main


RECURRENCES = {"rnn": lambda V, H: nn.RNN(V, H, nonlinearity="tanh", batch_first=True),
               "gru": lambda V, H: nn.GRU(V, H, batch_first=True),
               "lstm": lambda V, H: nn.LSTM(V, H, batch_first=True)}


class TorchCharRNN(nn.Module):
    def __init__(self, vocab_size: int, hidden_size: int, cell: str = "rnn"):
        super().__init__()
        self.V = vocab_size
        self.rnn = RECURRENCES[cell](vocab_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, inputs: torch.Tensor, state):
        """``state``: h (1, B, H), or (h, c) for the LSTM; returns (logits (B, T, V), the last state)."""
        x = F.one_hot(inputs, self.V).to(self.out.weight.dtype)  # (B, T, V)
        hs, last = self.rnn(x, state)  # hs (B, T, H)
        return self.out(hs), last


class TorchTrainer:
    """One training step = forward + backward + clip + Adam update on a (B, T) window."""

    def __init__(self, vocab_size: int, hidden_size: int, batch_size: int, seed: int = 0,
                 lr: float = 2e-3, clip_norm: float | None = 5.0, threads: int = 1, cell: str = "rnn"):
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.model = TorchCharRNN(vocab_size, hidden_size, cell)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        self.clip_norm = clip_norm
        h = torch.zeros(1, batch_size, hidden_size)
        self.h = (h, h.clone()) if cell == "lstm" else h

    def step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.int64))
        y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.int64))
        logits, h_last = self.model(x, self.h)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.opt.step()
        self.h = tuple(s.detach() for s in h_last) if isinstance(h_last, tuple) else h_last.detach()
        return float(loss.detach())


def check_against_numpy(seed: int = 0, verbose: bool = True) -> float:
    """Load the numpy baseline's weights into the torch model and compare loss and gradients (float64)."""
    from bench.minchar_numpy import MinCharRNN

    rng = np.random.default_rng(seed)
    V, H, B, T = 11, 8, 4, 9
    net = MinCharRNN(V, H, B, dtype=np.float64, seed=seed)
    for k in net.params:
        net.params[k] = rng.standard_normal(net.params[k].shape) * 0.4
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B, T))
    h0 = rng.standard_normal((H, B)) * 0.3
    loss_np, grads_np, _, _ = net.loss_and_grads(inputs, targets, h0)

    model = TorchCharRNN(V, H).double()
    p = net.params
    with torch.no_grad():
        model.rnn.weight_ih_l0.copy_(torch.from_numpy(p["Wxh"]))
        model.rnn.weight_hh_l0.copy_(torch.from_numpy(p["Whh"]))
        model.rnn.bias_ih_l0.copy_(torch.from_numpy(p["bh"][:, 0]))
        model.rnn.bias_hh_l0.zero_()
        model.out.weight.copy_(torch.from_numpy(p["Why"]))
        model.out.bias.copy_(torch.from_numpy(p["by"][:, 0]))
    x = torch.from_numpy(inputs)
    logits, _ = model.forward(x, torch.from_numpy(h0.T.copy())[None])
    loss = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(targets).reshape(-1))
    loss.backward()
    pairs = {
        "Wxh": model.rnn.weight_ih_l0.grad, "Whh": model.rnn.weight_hh_l0.grad,
        "bh": model.rnn.bias_ih_l0.grad[:, None], "Why": model.out.weight.grad, "by": model.out.bias.grad[:, None],
    }
    worst = abs(float(loss.detach()) - loss_np) / abs(loss_np)
    if verbose:
        print(f"loss torch {float(loss.detach()):.12f} numpy {loss_np:.12f}")
    for k, g in pairs.items():
        a, b = g.numpy(), grads_np[k]
        rel = float(np.abs(a - b).max() / max(1e-12, np.abs(b).max()))
        worst = max(worst, rel)
        if verbose:
            print(f"{k:4s} max rel diff {rel:.2e}")
    return worst


def check_gated_against_tinyrnn(cell: str, seed: int = 0, verbose: bool = True) -> float:
    """tinyrnn's GRU/LSTM weights (PyTorch's layout) loaded into ``nn.GRU``/``nn.LSTM``: loss and gradients vs
    ``tinyrnn.manual_bptt`` (float64); the worst relative difference."""
    import tinyrnn

    rng = np.random.default_rng(seed)
    V, H, B, T = 11, 8, 4, 9
    config = tinyrnn.ModelConfig(V, H, cell)
    params = {k: rng.standard_normal(s) * 0.4 for k, s in config.param_shapes().items()}
    inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = rng.standard_normal((B, config.state_size())) * 0.3
    ref = tinyrnn.manual_bptt(params, inputs, targets, state, cell=cell)
    model = TorchCharRNN(V, H, cell).double()
    mine = {"W_ih": model.rnn.weight_ih_l0, "W_hh": model.rnn.weight_hh_l0, "b_ih": model.rnn.bias_ih_l0,
            "b_hh": model.rnn.bias_hh_l0, "W_yh": model.out.weight, "b_y": model.out.bias}
    with torch.no_grad():
        for k, p in mine.items():
            p.copy_(torch.from_numpy(params[k]))
    h0 = torch.from_numpy(state[:, :H].copy())[None].requires_grad_()
    c0 = torch.from_numpy(state[:, H:].copy())[None].requires_grad_()
    logits, _ = model(torch.from_numpy(inputs), (h0, c0) if cell == "lstm" else h0)
    loss = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(targets).reshape(-1))
    loss.backward()
    d_state = torch.cat([h0.grad[0], c0.grad[0]], 1) if cell == "lstm" else h0.grad[0]
    worst = abs(float(loss.detach()) - ref.loss) / abs(ref.loss)
    for k, g in [(k, p.grad) for k, p in mine.items()] + [("h0", d_state)]:
        b = ref.grads[k]
        rel = float(np.abs(g.numpy() - b).max() / max(1e-12, np.abs(b).max()))
        worst = max(worst, rel)
        if verbose:
            print(f"{cell} {k:4s} max rel diff {rel:.2e}")
    return worst


def main(argv=None) -> int:
    return check_main(argv, __doc__, "compare loss and gradients with the numpy baseline (tanh RNN) and tinyrnn's "
                      "BPTT (GRU, LSTM)", lambda: max(check_against_numpy(), *(check_gated_against_tinyrnn(c)
                                                                                for c in ("gru", "lstm"))),
                      1e-9, "torch and the references")


if __name__ == "__main__":
    sys.exit(main())
