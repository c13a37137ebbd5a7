"""Timing harness shared by the native benchmark and the in-browser (Pyodide) one.

Only the standard library and numpy at import time, so that Pyodide can run it unchanged; tinyrnn and
torch are imported by the step builders that need them.

One *step* is one training step on a (B, T) window: forward + backward + gradient clipping (global norm
5.0) + Adam update (lr 2e-3), with the hidden state carried to the next window.  Throughput is
characters per second = B*T / seconds per step.  Each repeat times as many steps as fill ``min_time``
seconds (at least one); the reported number is the median over repeats; warm-up steps are not timed.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import string
import time
from pathlib import Path

import numpy as np

def shared_data(name: str = "tinyshakespeare.txt") -> Path:
    """``../shared/data/<name>`` relative to the repository: beside the repository's own folder, or, in a git
    worktree (whose ``.git`` is a file naming ``<main>/.git/worktrees/<it>``), beside the main checkout's folder."""
    repo = Path(__file__).resolve().parent.parent
    candidates = [repo.parent / "shared" / "data" / name]
    git = repo / ".git"
    if git.is_file() and git.read_text().startswith("gitdir:"):
        common = Path(git.read_text().split(":", 1)[1].strip()).resolve().parent.parent  # <main>/.git
        candidates.append(common.parent.parent / "shared" / "data" / name)
    return next((c for c in candidates if c.exists()), candidates[0])


IMPLS = ("tinyrnn-api", "tinyrnn-api-native", "jax", "torch", "tinyrnn-fused", "tinyrnn-trainer", "tinyrnn-native",
         "tinyrnn-autograd", "numpy-minchar")
API_IMPLS = ("tinyrnn-api", "tinyrnn-api-native")  # the Python API as a user calls it (bench.throughput's default)
RNN_ONLY = ("numpy-minchar",)  # the implementations that have only the tanh RNN
GATED_IMPLS = {"tinyrnn-fused-gru": "gru", "tinyrnn-fused-lstm": "lstm"}  # the default engine, another cell
DEFAULT_IMPL = "tinyrnn-fused"
LR = 2e-3
CLIP_NORM = 5.0
# 65 distinct characters, like tinyshakespeare's vocabulary (the speed does not depend on which ones).
_ALPHABET = string.ascii_letters + string.digits + " .,"
assert len(_ALPHABET) == 65


def synthetic_windows(V: int, B: int, T: int, n: int = 16, seed: int = 0):
    """``n`` (inputs, targets) pairs of int64 arrays (B, T): random ids, targets are inputs shifted by one."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w = rng.integers(0, V, (B, T + 1))
        out.append((np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])))
    return out


def synthetic_text(V: int = 65, n_chars: int = 200_000, seed: int = 0) -> str:
    """Random text over ``V`` <= 65 distinct characters (for the Trainer, which builds its own loader)."""
    if V > len(_ALPHABET):
        raise ValueError(f"synthetic text supports V <= {len(_ALPHABET)}")
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(_ALPHABET[:V]))
    ids = rng.integers(0, V, n_chars)
    ids[:V] = np.arange(V)  # every character occurs
    return "".join(alphabet[ids])


# --- step builders: each returns (step_fn, info) where step_fn() runs one training step ------------------

def _tinyrnn_loss_and_grads_step(H, B, T, V, engine, seed=0, cell="rnn"):
    import tinyrnn

    cfg = tinyrnn.ModelConfig(vocab_size=V, hidden_size=H, cell=cell)
    params = tinyrnn.init_params(cfg, seed=seed, dtype=np.float32)
    opt = tinyrnn.make_optimizer("adam", LR)
    batches = itertools.cycle(synthetic_windows(V, B, T, seed=seed))
    state = {"params": params, "h": tinyrnn.init_hidden(cfg, B, np.float32)}

    def step():
        x, y = next(batches)
        res = tinyrnn.loss_and_grads(state["params"], x, y, state["h"], engine=engine, cell=cell)
        grads = {k: v for k, v in res.grads.items() if k != "h0"}
        grads, _ = tinyrnn.clip_by_global_norm(grads, CLIP_NORM)
        state["params"] = opt.update(state["params"], grads)
        state["h"] = res.h_last
        return res.loss

    return step, {"api": f"loss_and_grads(engine={engine!r}, cell={cell!r}) + clip_by_global_norm + make_optimizer('adam')",
                  "dtype": str(params["W_hh"].dtype)}


def _tinyrnn_trainer_step(H, B, T, V, seed=0, native=False, cell="rnn"):
    import dataclasses

    import tinyrnn

    backend = None
    if native:  # the optional native kernels (pip install ./native): an explicit opt-in, off by default
        from tinyrnn.engines.native import use_native_kernels

        backend = use_native_kernels()

    # Evaluation every k steps is part of training, but not of "one training step": push it out of range.
    cfg = tinyrnn.TrainConfig(hidden_size=H, batch_size=B, seq_len=T, engine="fused", dtype="float32",
                              optimizer="adam", lr=LR, clip_norm=CLIP_NORM, clip_value=None, seed=seed,
                              eval_every=10**9, cell=cell)
    trainer = tinyrnn.Trainer(synthetic_text(V, seed=seed), cfg)
    if trainer.vocab.size != V:
        raise RuntimeError(f"synthetic text gave V={trainer.vocab.size}, expected {V}")

    def step():
        return trainer.step().train_loss

    return step, {"api": "Trainer.step()" + (" with tinyrnn.engines.native" if native else ""),
                  "config": dataclasses.asdict(cfg), "backend": backend or tinyrnn.BACKEND}


def engine_of(trainer) -> dict:
    """What the trainer says computes its steps (the engine and why), as far as this version of tinyrnn says."""
    import dataclasses

    import tinyrnn

    choice = getattr(trainer, "engine_choice", None)  # issue 17's engines.EngineChoice
    if choice is not None:
        return {k: str(v) for k, v in dataclasses.asdict(choice).items()}
    fast = getattr(trainer, "fast_path", None)  # the tinyrnn before issue 17's engine interface
    if fast is None:
        return {"name": f"numpy ({trainer.config.engine})", "backend": getattr(tinyrnn, "BACKEND", "?")}
    backend = getattr(fast, "backend", None)
    return {"name": type(fast).__name__, "backend": str(backend() if callable(backend) else backend)}


def _uses_native(trainer) -> bool:
    return "native" in " ".join(engine_of(trainer).values()).lower()


def make_trainer(text: str, config, native: bool = False):
    """(``tinyrnn.Trainer(text, config)``, whether the native kernels had to be opted in): with ``native``, a tinyrnn
    that does not use installed native kernels by default is opted in (``use_native_kernels()``); whether they then
    compute this cell's steps, ``engine_of`` tells."""
    import tinyrnn

    trainer = tinyrnn.Trainer(text, config)
    if not native or _uses_native(trainer) or hasattr(trainer, "engine_choice"):  # the engine picks by itself
        return trainer, False
    from tinyrnn.engines.native import use_native_kernels

    use_native_kernels()
    return tinyrnn.Trainer(text, config), True


def native_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tinyrnn_native") is not None


def _tinyrnn_api_step(H, B, T, V, seed=0, cell="rnn", native=False):
    """The Python API as a user calls it: ``Trainer(text, TrainConfig(cell=..., hidden_size=H, batch_size=B))``
    and ``run()``; every other setting its default, except the periodic validation, pushed out of range (the
    peers have none). ``native``: the native kernels are installed (``pip install . ./native``), see
    ``make_trainer``."""
    import tinyrnn

    config = tinyrnn.TrainConfig(cell=cell, hidden_size=H, batch_size=B, seq_len=T, eval_every=10**9)
    trainer, opted_in = make_trainer(synthetic_text(V, seed=seed), config, native)
    if trainer.vocab.size != V:
        raise RuntimeError(f"synthetic text gave V={trainer.vocab.size}, expected {V}")

    def step():
        return trainer.run(1)[-1].train_loss

    step.run_n = lambda n: trainer.run(n)[-1].train_loss  # what timed_repeat calls: n steps in one run(n)
    return step, {"api": f"Trainer(text, TrainConfig(cell={cell!r}, hidden_size={H}, batch_size={B})).run(n)",
                  "engine": engine_of(trainer), "native_opt_in": opted_in}


def _numpy_step(H, B, T, V, seed=0, dtype=np.float32):
    from bench.minchar_numpy import MinCharRNN

    net = MinCharRNN(V, H, B, dtype=dtype, seed=seed, lr=LR, clip_norm=CLIP_NORM)
    batches = itertools.cycle(synthetic_windows(V, B, T, seed=seed))

    def step():
        return net.step(*next(batches))

    return step, {"api": "bench.minchar_numpy.MinCharRNN.step", "dtype": str(np.dtype(dtype))}


def _torch_step(H, B, T, V, seed=0, cell="rnn"):
    import torch

    from bench.torch_rnn import TorchTrainer

    tr = TorchTrainer(V, H, B, seed=seed, lr=LR, clip_norm=CLIP_NORM, threads=1, cell=cell)
    batches = itertools.cycle(synthetic_windows(V, B, T, seed=seed))

    def step():
        return tr.step(*next(batches))

    return step, {"api": f"torch.nn {type(tr.model.rnn).__name__} + nn.Linear, Adam, clip_grad_norm_", "dtype": "float32",
                  "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def _jax_step(H, B, T, V, seed=0, cell="rnn"):
    import jax

    from bench.jax_rnn import JaxTrainer

    tr = JaxTrainer(V, H, B, seed=seed, lr=LR, clip_norm=CLIP_NORM, cell=cell)
    batches = itertools.cycle(synthetic_windows(V, B, T, seed=seed))

    def step():
        return tr.step(*next(batches))

    return step, {"api": "jax.jit(whole step), lax.scan, Adam + clip in jnp", "dtype": "float32",
                  "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}


def make_step(impl: str, H: int, B: int, T: int = 25, V: int = 65, seed: int = 0, cell: str = "rnn"):
    """``impl`` is one of IMPLS, or "tinyrnn-fused-gru" / "tinyrnn-fused-lstm": the default engine with that cell."""
    if impl in GATED_IMPLS:
        impl, cell = "tinyrnn-fused", GATED_IMPLS[impl]
    if cell != "rnn" and impl in RNN_ONLY:
        raise ValueError(f"{impl} has only the tanh RNN, not {cell!r}")
    builders = {
        "tinyrnn-api": lambda: _tinyrnn_api_step(H, B, T, V, seed, cell),
        "tinyrnn-api-native": lambda: _tinyrnn_api_step(H, B, T, V, seed, cell, native=True),
        "tinyrnn-fused": lambda: _tinyrnn_loss_and_grads_step(H, B, T, V, "fused", seed, cell),
        "tinyrnn-autograd": lambda: _tinyrnn_loss_and_grads_step(H, B, T, V, "autograd", seed, cell),
        "tinyrnn-trainer": lambda: _tinyrnn_trainer_step(H, B, T, V, seed, cell=cell),
        "tinyrnn-native": lambda: _tinyrnn_trainer_step(H, B, T, V, seed, native=True, cell=cell),
        "jax": lambda: _jax_step(H, B, T, V, seed, cell),
        "numpy-minchar": lambda: _numpy_step(H, B, T, V, seed),
        "torch": lambda: _torch_step(H, B, T, V, seed, cell),
    }
    if impl not in builders:
        raise ValueError(f"unknown impl {impl!r}; choose from {', '.join(IMPLS)}")
    return builders[impl]()


def calibrate(step, min_time: float, warmup: int = 3, clock=time.perf_counter) -> tuple[int, float]:
    """Run ``warmup`` untimed steps, then return (steps per repeat filling ``min_time``, last loss)."""
    loss = None
    for _ in range(max(1, warmup)):
        loss = float(step())
    t0 = clock()
    k = 0
    while True:  # time at least 2 steps or 20 ms, so one slow outlier does not fix n
        loss = float(step())
        k += 1
        dt = clock() - t0
        if k >= 2 and dt >= 0.02 or dt >= min_time:
            break
    return max(1, round(min_time * k / max(dt, 1e-7))), loss


def timed_repeat(step, n: int, clock=time.perf_counter, cpu_clock=time.process_time) -> tuple[float, float, float]:
    """Wall-clock seconds and CPU seconds of this process for ``n`` steps (one ``step.run_n(n)`` where the step has
    it, as ``Trainer.run(n)``), and the last loss."""
    run_n = getattr(step, "run_n", None)
    c0 = cpu_clock()
    t0 = clock()
    if run_n is not None:
        loss = run_n(n)
    else:
        for _ in range(n):
            loss = step()
    return clock() - t0, cpu_clock() - c0, float(loss)


def time_step(step, chars_per_step: int, repeats: int = 5, min_time: float = 0.5, warmup: int = 3,
              clock=time.perf_counter) -> dict:
    """Median chars/s over ``repeats`` timed runs of ``step`` (after ``warmup`` untimed steps)."""
    n, first_loss = calibrate(step, min_time, warmup, clock)
    rates, cpu_rates = [], []
    for _ in range(repeats):
        dt, cpu, loss = timed_repeat(step, n, clock)
        rates.append(n * chars_per_step / dt)
        cpu_rates.append(n * chars_per_step / max(cpu, 1e-9))
    return summarize(rates, n, chars_per_step, first_loss, loss, cpu_rates)


def summarize(rates, n, chars_per_step, first_loss=None, last_loss=None, cpu_rates=None) -> dict:
    """``rates``: chars/s by wall clock per repeat; ``cpu_rates``: the same by the process's CPU time, which
    a busy shared machine disturbs much less (a process waiting for a core uses no CPU time)."""
    med = statistics.median(rates)
    return {
        "chars_per_sec": med,
        "best_chars_per_sec": max(rates),
        "cpu_chars_per_sec": statistics.median(cpu_rates) if cpu_rates else None,
        "repeats": rates,
        "cpu_repeats": cpu_rates,
        "steps_per_repeat": n,
        "ms_per_step": 1000.0 * chars_per_step / med,
        "first_loss": first_loss,
        "last_loss": last_loss,
    }


def run_cell(impl: str, H: int, B: int, T: int = 25, V: int = 65, repeats: int = 5, min_time: float = 0.5,
             warmup: int = 3, seed: int = 0) -> dict:
    step, info = make_step(impl, H, B, T, V, seed)
    res = time_step(step, B * T, repeats=repeats, min_time=min_time, warmup=warmup)
    res.update({"impl": impl, "H": H, "B": B, "T": T, "V": V, "info": info})
    return res


def check_main(argv, doc: str, help: str, check, tolerance: float, subject: str, prepare=None) -> int:
    """The ``--check`` command line of a reference implementation (minchar_numpy, torch_rnn, jax_rnn): ``check()``
    returns the worst relative difference found; one verdict line is printed and 0 returned if it is below
    ``tolerance`` (1 otherwise). ``prepare()``, if given, runs first (e.g. to limit a library's threads)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--check", action="store_true", help=help)
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 0
    if prepare is not None:
        prepare()
    worst = check()
    ok = worst < tolerance
    print(f"{subject} {'agree' if ok else 'DISAGREE'} (max rel diff {worst:.2e}, tolerance {tolerance:g})")
    return 0 if ok else 1

