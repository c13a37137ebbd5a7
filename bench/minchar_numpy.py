"""A min-char-rnn-style numpy baseline: one-hot inputs, a Python loop over time, hand-written BPTT.

Written for the benchmark in the spirit of Karpathy's min-char-rnn (column vectors, one-hot products,
per-step output layer and softmax, a reversed loop for backpropagation through time), extended to B
parallel streams (the columns of each matrix) and to Adam with global-norm clipping so that it trains
exactly like tinyrnn and the PyTorch reference.  It is deliberately *not* optimised beyond that: it is the
"plain numpy" bar that tinyrnn's default engine should clear.

Self-check (centred finite differences in float64)::

    python -m bench.minchar_numpy --check
"""

from __future__ import annotations

import math
import sys

import numpy as np

from bench.harness import check_main


class MinCharRNN:
    """Vanilla tanh RNN, parameters in min-char-rnn layout (same shapes as tinyrnn's)."""

    def __init__(self, vocab_size: int, hidden_size: int, batch_size: int = 1, dtype=np.float32,
                 seed: int = 0, lr: float = 2e-3, clip_norm: float | None = 5.0,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        rng = np.random.default_rng(seed)
        V, H = vocab_size, hidden_size
        self.V, self.H, self.B = V, H, batch_size
        self.dtype = np.dtype(dtype)
        self.params = {
            "Wxh": (rng.standard_normal((H, V)) * 0.01).astype(self.dtype),
            "Whh": (rng.standard_normal((H, H)) * 0.01).astype(self.dtype),
            "bh": np.zeros((H, 1), self.dtype),
            "Why": (rng.standard_normal((V, H)) * 0.01).astype(self.dtype),
            "by": np.zeros((V, 1), self.dtype),
        }
        self.h = np.zeros((H, batch_size), self.dtype)
        self.lr, self.clip_norm = lr, clip_norm
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.t = 0

    # -- forward + BPTT ---------------------------------------------------------------------------
    def loss_and_grads(self, inputs: np.ndarray, targets: np.ndarray, hprev: np.ndarray):
        """inputs, targets: int arrays (B, T); hprev: (H, B).  Mean cross-entropy (nats/char)."""
        p = self.params
        Wxh, Whh, bh, Why, by = p["Wxh"], p["Whh"], p["bh"], p["Why"], p["by"]
        B, T = inputs.shape
        cols = np.arange(B)
        scale = 1.0 / (B * T)
        xs, hs, ps = {}, {-1: hprev}, {}
        loss = 0.0
        for t in range(T):
            x = np.zeros((self.V, B), self.dtype)  # one-hot, as in min-char-rnn
            x[inputs[:, t], cols] = 1
            xs[t] = x
            hs[t] = np.tanh(Wxh @ x + Whh @ hs[t - 1] + bh)
            y = Why @ hs[t] + by
            y = y - y.max(axis=0, keepdims=True)
            e = np.exp(y)
            ps[t] = e / e.sum(axis=0, keepdims=True)
            loss -= float(np.log(ps[t][targets[:, t], cols]).sum())
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hprev)
        for t in reversed(range(T)):
            dy = ps[t].copy()
            dy[targets[:, t], cols] -= 1
            dy *= scale
            dWhy += dy @ hs[t].T
            dby += dy.sum(axis=1, keepdims=True)
            dh = Why.T @ dy + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw.sum(axis=1, keepdims=True)
            dWxh += dhraw @ xs[t].T
            dWhh += dhraw @ hs[t - 1].T
            dhnext = Whh.T @ dhraw
        grads = {"Wxh": dWxh, "Whh": dWhh, "bh": dbh, "Why": dWhy, "by": dby}
        return loss * scale, grads, hs[T - 1], dhnext

    # -- optimiser ----------------------------------------------------------------------------------
    def update(self, grads):
        if self.clip_norm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
            if norm > self.clip_norm:
                f = self.clip_norm / (norm + 1e-6)
                for g in grads.values():
                    g *= f
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        lr_t = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for k, w in self.params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            w -= lr_t * m / (np.sqrt(v) + self.eps)

    def step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """One training step on a (B, T) window; the hidden state is carried to the next window."""
        loss, grads, self.h, _ = self.loss_and_grads(inputs, targets, self.h)
        self.update(grads)
        return loss


def check_gradients(seed: int = 0, eps: float = 1e-5, verbose: bool = True) -> float:
    """Compare the BPTT gradients with centred finite differences (float64).  Returns max rel. error."""
    rng = np.random.default_rng(seed)
    V, H, B, T = 7, 5, 3, 6
    net = MinCharRNN(V, H, B, dtype=np.float64, seed=seed)
    for k in net.params:  # larger weights so the check is not trivially small
        net.params[k] = rng.standard_normal(net.params[k].shape) * 0.5
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B, T))
    h0 = rng.standard_normal((H, B)) * 0.3
    _, grads, _, _ = net.loss_and_grads(inputs, targets, h0)
    worst = 0.0
    for k, w in net.params.items():
        num = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            old = w[idx]
            w[idx] = old + eps
            lp = net.loss_and_grads(inputs, targets, h0)[0]
            w[idx] = old - eps
            lm = net.loss_and_grads(inputs, targets, h0)[0]
            w[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        rel = np.abs(num - grads[k]).max() / max(1e-12, np.abs(num).max() + np.abs(grads[k]).max())
        worst = max(worst, float(rel))
        if verbose:
            print(f"{k:4s} max rel error {rel:.2e}")
    return worst


def main(argv=None) -> int:
    return check_main(argv, __doc__, "finite-difference gradient check", check_gradients, 1e-6,
                      "finite differences and the hand-written gradients")


if __name__ == "__main__":
    sys.exit(main())
