"""JAX reference for the benchmark: the whole training step under ``jax.jit``, the recurrence in ``lax.scan``.

Same model as tinyrnn (parameters W_hx (H, V), W_hh (H, H), b_h (H,), W_yh (V, H), b_y (V,); ids select columns
of W_hx, h_t = tanh(W_hx[:, x_t] + W_hh h_{t-1} + b_h), logits W_yh h_t + b_y), same loss (mean softmax
cross-entropy, nats/char), the same global-norm clipping (5.0) and the same Adam (lr 2e-3, betas 0.9/0.999,
eps 1e-8, tinyrnn's bias-corrected step size), all written in ``jax.numpy`` inside one jitted function that also
carries the hidden state to the next window. float32 on the CPU. JAX is a bench extra only (``.venv-bench``).

One thread: the benchmark sets ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``
(``XLA_ONE_THREAD``) before JAX is imported, and pins the process to one core.

Cross-check against tinyrnn's numpy reference (same weights -> same loss and gradients, float64)::

    python -m bench.jax_rnn --check
"""

from __future__ import annotations

import os
import sys

import numpy as np

from bench.harness import check_main

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
PARAM_NAMES = ("W_hx", "W_hh", "b_h", "W_yh", "b_y")  # the tanh RNN's, in tinyrnn's order
CELLS = ("rnn", "gru", "lstm")
CHECK_CLIP = 0.05  # the checks clip by this global norm: small enough that every step clips


def param_names(cell: str = "rnn") -> tuple:
    """tinyrnn's parameter names of ``cell``, in its order (``ModelConfig.param_shapes()``)."""
    import tinyrnn

    return tuple(tinyrnn.ModelConfig(2, 2, cell).param_shapes())


def _recurrence(cell: str, H: int):
    """``(xs_fn, step)`` of ``cell`` for ``lax.scan``: ``xs_fn(weights, inputs_tm)`` gives the input side of every
    step (T, B, G·H) and ``step(weights)(state, x) -> (state, h)``, with tinyrnn's (= PyTorch's) equations and
    gate order (cells.py, gru.py, lstm.py); the LSTM's state is [h | c] (B, 2H)."""
    import jax
    import jax.numpy as jnp

    if cell == "rnn":
        def xs_fn(w, inputs_tm):
            W_hx, _, b_h = w
            return jnp.take(W_hx.T, inputs_tm, axis=0) + b_h  # (T, B, H): the embedding lookup

        def step(w):
            def rnn_step(h, x):
                h = jnp.tanh(x + h @ w[1].T)
                return h, h
            return rnn_step
        return xs_fn, step

    def gated_xs(w, inputs_tm):
        W_ih, _, b_ih, _ = w
        return jnp.take(W_ih.T, inputs_tm, axis=0) + b_ih  # (T, B, G·H)

    if cell == "gru":
        def step(w):
            W_hh, b_hh = w[1], w[3]

            def gru_step(h, x):
                hh = h @ W_hh.T + b_hh
                r = jax.nn.sigmoid(x[:, :H] + hh[:, :H])
                z = jax.nn.sigmoid(x[:, H:2 * H] + hh[:, H:2 * H])
                n = jnp.tanh(x[:, 2 * H:] + r * hh[:, 2 * H:])
                h = n + z * (h - n)
                return h, h
            return gru_step
        return gated_xs, step

    if cell == "lstm":
        def step(w):
            W_hh, b_hh = w[1], w[3]

            def lstm_step(s, x):
                h, c = s[:, :H], s[:, H:]
                a = x + h @ W_hh.T + b_hh
                i, f = jax.nn.sigmoid(a[:, :H]), jax.nn.sigmoid(a[:, H:2 * H])
                g, o = jnp.tanh(a[:, 2 * H:3 * H]), jax.nn.sigmoid(a[:, 3 * H:])
                c = f * c + i * g
                h = o * jnp.tanh(c)
                return jnp.concatenate([h, c], axis=1), h
            return lstm_step
        return gated_xs, step
    raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")


def _loss_fn(cell: str = "rnn"):
    """``loss(params, state0, inputs_tm, targets_tm) -> (mean nats/char, last state)`` for time-major ids (T, B);
    ``params`` a tuple in tinyrnn's order (``param_names(cell)``), ``state0`` (B, S)."""
    import jax
    import jax.numpy as jnp

    def loss(params, state0, inputs_tm, targets_tm):
        *weights, W_yh, b_y = params
        xs_fn, step = _recurrence(cell, W_yh.shape[1])
        last, hs = jax.lax.scan(step(weights), state0, xs_fn(weights, inputs_tm))
        logits = hs @ W_yh.T + b_y  # (T, B, V)
        log_p = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(log_p, targets_tm[..., None], axis=-1)
        return jnp.mean(nll), last

    return loss


def make_train_step(lr=2e-3, clip_norm=5.0, beta1=0.9, beta2=0.999, eps=1e-8, cell="rnn"):
    """A jitted ``step(params, m, v, t, state, inputs_tm, targets_tm) -> (params, m, v, t, state, loss)``: forward,
    backward, global-norm clipping and Adam in one XLA computation (params, m, v are tuples in tinyrnn's order)."""
    import jax
    import jax.numpy as jnp

    grad_fn = jax.value_and_grad(_loss_fn(cell), has_aux=True)

    def step(params, m, v, t, h, inputs_tm, targets_tm):
        (loss, h_last), grads = grad_fn(params, h, inputs_tm, targets_tm)
        norm = jnp.sqrt(sum(jnp.vdot(g, g) for g in grads))
        scale = jnp.where(norm > clip_norm, clip_norm / norm, 1.0).astype(grads[0].dtype)
        grads = tuple(g * scale for g in grads)
        t = t + 1
        tf = t.astype(grads[0].dtype)
        step_size = lr * jnp.sqrt(1 - beta2**tf) / (1 - beta1**tf)
        m = tuple(beta1 * mi + (1 - beta1) * g for mi, g in zip(m, grads))
        v = tuple(beta2 * vi + (1 - beta2) * (g * g) for vi, g in zip(v, grads))
        params = tuple(p - step_size * mi / (jnp.sqrt(vi) + eps) for p, mi, vi in zip(params, m, v))
        return params, m, v, t, h_last, loss

    return jax.jit(step, donate_argnums=(0, 1, 2, 4))


class JaxTrainer:
    """One training step = forward + backward + clip + Adam update on a (B, T) window, one jitted call."""

    def __init__(self, vocab_size: int, hidden_size: int, batch_size: int, seed: int = 0,
                 lr: float = 2e-3, clip_norm: float = 5.0, cell: str = "rnn"):
        import jax.numpy as jnp

        import tinyrnn

        config = tinyrnn.ModelConfig(vocab_size, hidden_size, cell)
        params = tinyrnn.init_params(config, seed=seed, dtype=np.float32)
        self.params = tuple(jnp.asarray(params[k]) for k in param_names(cell))
        self.m = tuple(jnp.zeros_like(p) for p in self.params)
        self.v = tuple(jnp.zeros_like(p) for p in self.params)
        self.t = jnp.asarray(0, dtype=jnp.int32)
        self.h = jnp.zeros((batch_size, config.state_size()), jnp.float32)
        self._step = make_train_step(lr, clip_norm, cell=cell)

    def step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """inputs, targets: int (B, T). Returns the window's loss (which waits for the step to finish)."""
        x = np.ascontiguousarray(inputs.T, dtype=np.int32)
        y = np.ascontiguousarray(targets.T, dtype=np.int32)
        self.params, self.m, self.v, self.t, self.h, loss = self._step(self.params, self.m, self.v, self.t,
                                                                       self.h, x, y)
        return float(loss)


def _float64_problem(cell: str, rng, scale: float):
    """Random float64 weights of ``cell`` (V=11, H=8), ids (B=4, T=9) and a state (B, S)."""
    import tinyrnn

    V, H, B, T = 11, 8, 4, 9
    config = tinyrnn.ModelConfig(V, H, cell)
    params = {k: rng.standard_normal(s) * scale for k, s in config.param_shapes().items()}
    inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    return params, inputs, targets, rng.standard_normal((B, config.state_size())) * 0.3


def check_against_tinyrnn(cell: str = "rnn", seed: int = 0, verbose: bool = True) -> float:
    """JAX's loss and gradients vs tinyrnn's hand-written numpy BPTT (``manual_bptt``) of ``cell`` on the same
    float64 weights; returns the worst relative difference."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import tinyrnn

    params, inputs, targets, h0 = _float64_problem(cell, np.random.default_rng(seed), 0.4)
    ref = tinyrnn.manual_bptt(params, inputs, targets, h0, cell=cell)
    names = param_names(cell)
    grad_fn = jax.value_and_grad(_loss_fn(cell), argnums=(0, 1), has_aux=True)
    (loss, _), (grads, dh0) = grad_fn(tuple(jnp.asarray(params[k]) for k in names), jnp.asarray(h0),
                                      jnp.asarray(inputs.T), jnp.asarray(targets.T))
    worst = abs(float(loss) - ref.loss) / abs(ref.loss)
    if verbose:
        print(f"{cell}: loss jax {float(loss):.12f} tinyrnn {ref.loss:.12f}")
    for k, g in zip(names + ("h0",), tuple(grads) + (dh0,)):
        a, b = np.asarray(g), ref.grads[k]
        rel = float(np.abs(a - b).max() / max(1e-12, np.abs(b).max()))
        worst = max(worst, rel)
        if verbose:
            print(f"  {k:4s} max rel diff {rel:.2e}")
    return worst


def check_training_steps(cell: str = "rnn", n_steps: int = 3, seed: int = 0, verbose: bool = True) -> float:
    """``n_steps`` of the jitted step (clipping and Adam included) vs tinyrnn's ``loss_and_grads`` +
    ``clip_by_global_norm`` + Adam on the same float64 weights and windows; returns the worst relative difference
    of the parameters (and losses) along the way. Call after ``check_against_tinyrnn`` (which enables float64)."""
    import jax.numpy as jnp

    import tinyrnn

    rng = np.random.default_rng(seed)
    params, _, _, h = _float64_problem(cell, rng, 0.8)
    names = param_names(cell)
    ours = dict(params)
    theirs = (tuple(jnp.asarray(params[k]) for k in names),)
    theirs += tuple(tuple(jnp.zeros_like(p) for p in theirs[0]) for _ in "mv") + (jnp.asarray(0), jnp.asarray(h))
    optimizer = tinyrnn.make_optimizer("adam", 2e-3)
    jax_step = make_train_step(clip_norm=CHECK_CLIP, cell=cell)  # small enough that every step clips
    worst = 0.0
    for _ in range(n_steps):
        _, inputs, targets, _ = _float64_problem(cell, rng, 0.0)
        result = tinyrnn.loss_and_grads(ours, inputs, targets, h, cell=cell)
        grads, norm = tinyrnn.clip_by_global_norm({k: result.grads[k] for k in names}, CHECK_CLIP)
        ours, h = optimizer.update(ours, grads), result.h_last
        *theirs, loss = jax_step(*theirs, jnp.asarray(inputs.T), jnp.asarray(targets.T))
        worst = max(worst, abs(float(loss) - result.loss) / abs(result.loss), float(norm <= CHECK_CLIP))
        for k, p in zip(names, theirs[0]):
            worst = max(worst, float(np.abs(np.asarray(p) - ours[k]).max() / np.abs(ours[k]).max()))
    if verbose:
        print(f"{cell}: {n_steps} training steps (clip + Adam): max rel diff of params and losses {worst:.2e}")
    return worst


def main(argv=None) -> int:
    return check_main(argv, __doc__, "compare loss and gradients with tinyrnn's numpy BPTT, every cell",
                      lambda: max(max(check_against_tinyrnn(c), check_training_steps(c)) for c in CELLS), 1e-9,
                      "jax and tinyrnn", prepare=lambda: os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD))


if __name__ == "__main__":
    sys.exit(main())
