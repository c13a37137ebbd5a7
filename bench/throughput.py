"""Training throughput (chars/s) of tinyrnn's Python API against JAX and PyTorch, per cell, in one run.

Run from the repository root in .venv-bench (torch, jax, threadpoolctl and `pip install -e . ./native`)::

    python -m bench.throughput            # rnn, gru, lstm at H=128, B in {1, 32}: 7 interleaved repeats (~3 min)
    python -m bench.throughput --quick    # 3 repeats of >= 0.1 s (about a minute)
    python -m bench.throughput --cell gru --shapes 128x32 256x32
    python -m bench.throughput --impls tinyrnn-fused tinyrnn-autograd numpy-minchar --cell rnn   # the older columns

Columns (one training step = forward + backward + clip(5.0) + Adam(2e-3) on a (B, T) window, state carried):
  tinyrnn-api         the Python API as a user calls it: Trainer(text, TrainConfig(cell=..., hidden_size=H,
                      batch_size=B)).run(...), with the native kernels hidden (as after `pip install .` alone), no
                      thread variables in the environment, not pinned; timed as it is and, in turn in the same
                      process, under threadpoolctl.threadpool_limits(1) (the "1 thread" column)
  tinyrnn-api-native  the same with the native kernels installed (`pip install . ./native`); a tinyrnn that does not
                      use them by default is opted in, and the output says so
  jax                 bench/jax_rnn.py: the whole step under one jax.jit (lax.scan), one XLA thread
  torch               bench/torch_rnn.py: nn.RNN / nn.GRU / nn.LSTM + nn.Linear, torch.set_num_threads(1)
  tinyrnn-fused, tinyrnn-trainer, tinyrnn-native, tinyrnn-autograd, numpy-minchar   (issue 4 and 12's columns)

Every (column, cell, H, B) runs in its own fresh subprocess, so imports, allocator state and peak memory do not
leak.  The columns of one (cell, H, B) are timed in interleaved rounds (one repeat of each in turn), so load from
other processes hits every column alike; the load average is printed with every line.  Both wall-clock and
per-process CPU-time tables are printed (CPU time counts every thread of the process).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench.workers import (ONE_THREAD, REPO, THREAD_ENV, WATCHED_ENV, XLA_ONE_THREAD, Worker,
                           module_available)

DEFAULT_JSON = REPO / "bench" / "results" / "throughput.json"
DEFAULT_SHAPES = ("128x1", "128x32")  # (H x B) of issue 17's table
DEFAULT_CELL_TYPES = ("rnn", "gru", "lstm")
DEFAULT_IMPLS = ("tinyrnn-api", "tinyrnn-api-native", "jax", "torch")


def worker_spec(impl: str, cell: str, H: int, B: int, **settings) -> dict:
    """The worker's spec: the Python API's columns run as a user's process would (no thread variables, not pinned,
    the native kernels hidden unless it is the native column) and are timed with and without one BLAS thread."""
    from bench.harness import API_IMPLS

    spec = {"impl": impl, "cell": cell, "H": H, "B": B, **settings}
    if impl in API_IMPLS:
        spec.update(default_threads=True, cpu=None, modes=[None, ONE_THREAD], hide_native=impl == "tinyrnn-api")
    return spec


def run_config(impls, pythons, H, B, T, V, repeats, min_time, warmup, timeout, malloc_warm=True,
               cpu=None, cell="rnn") -> list[dict]:
    """All implementations of one (cell, H, B): start, calibrate one after another, then interleaved repeats.
    A worker with several modes gives one result per mode (its ``impl`` suffixed with the mode's name)."""
    from bench.harness import summarize

    workers = []
    for impl in impls:
        spec = worker_spec(impl, cell, H, B, T=T, V=V, min_time=min_time, warmup=warmup, malloc_warm=malloc_warm,
                           cpu=cpu)
        w = Worker(pythons[impl], spec)
        w.ready = w.call(None, timeout)  # wait: calibration of one must not overlap another's
        workers.append(w)
    rates = {id(w): [] for w in workers}
    for _ in range(repeats):
        for w in workers:
            r = w.call("run", timeout)
            if r is not None:
                rates[id(w)].append(r)
    results = []
    for w in workers:
        meta = w.call("finish", timeout)
        if meta is not None:
            w.proc.wait(timeout=timeout)
        modes = w.spec.get("modes") or [None]
        if w.error or meta is None:
            results.extend({**w.spec, "impl": _impl_name(w.spec["impl"], m), "error": w.error or "no result"}
                           for m in modes)
            w.kill()
            continue
        n, chars = w.ready["n"], B * T
        last_loss = meta.pop("last_loss")
        for i, mode in enumerate(modes):
            def per_repeat(key, r):
                return r[key][i] if isinstance(r[key], list) else r[key]
            res = summarize([n * chars / per_repeat("dt", r) for r in rates[id(w)]], n, chars,
                            w.ready["first_loss"], last_loss,
                            [n * chars / max(per_repeat("cpu", r), 1e-9) for r in rates[id(w)]])
            res.update(w.spec)
            res.update(meta)
            res.update(impl=_impl_name(w.spec["impl"], mode), mode=mode)
            results.append(res)
    return results


def _impl_name(impl: str, mode) -> str:
    return impl if mode is None else f"{impl} {mode}"


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy as np

    info = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "env": {k: os.environ.get(k) for k in WATCHED_ENV},
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import tinyrnn

        info["tinyrnn"] = getattr(tinyrnn, "__version__", "?")
    except ImportError as e:
        info["tinyrnn"] = f"not importable: {e}"
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer/shorter repeats (about a minute)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON.relative_to(REPO)})")
    ap.add_argument("--cell", nargs="+", default=list(DEFAULT_CELL_TYPES), choices=DEFAULT_CELL_TYPES,
                    help="recurrent cells (default: all three)")
    ap.add_argument("--shapes", "--cells", nargs="+", default=None, metavar="HxB",
                    help=f"H x B pairs to measure (default {' '.join(DEFAULT_SHAPES)})")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="hidden sizes H (a grid with --batches)")
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="batch sizes B (a grid with --sizes)")
    ap.add_argument("--cpu", type=int, default=-1, help="pin every one-thread worker to this core (default -1: not "
                    "pinned; the Python API's columns are never pinned)")
    ap.add_argument("--seq-len", type=int, default=25, help="T")
    ap.add_argument("--vocab", type=int, default=65, help="V")
    ap.add_argument("--impls", nargs="+", default=None, help=f"implementations (default {' '.join(DEFAULT_IMPLS)})")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per column (default 7, quick 3)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per repeat (default 0.3, quick 0.1)")
    ap.add_argument("--torch-python", default=sys.executable,
                    help="interpreter for the torch cells (default: this one)")
    ap.add_argument("--no-malloc-warm", action="store_true",
                    help="do not pre-raise glibc's mmap threshold in the workers (see _worker)")
    args = ap.parse_args(argv)

    from bench.harness import IMPLS, RNN_ONLY

    impls = args.impls or list(DEFAULT_IMPLS)
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        ap.error(f"unknown implementation(s) {bad}; choose from {list(IMPLS)}")
    if args.sizes or args.batches:
        shapes = [(H, B) for B in (args.batches or [1, 32]) for H in (args.sizes or [128])]
    else:
        try:
            shapes = [tuple(int(n) for n in c.lower().split("x")) for c in (args.shapes or DEFAULT_SHAPES)]
        except ValueError:
            ap.error("--shapes takes H x B pairs such as 128x32")
    cpu = None if args.cpu < 0 else args.cpu
    repeats = args.repeats or (3 if args.quick else 7)
    min_time = args.min_time or (0.1 if args.quick else 0.3)
    warmup = 2 if args.quick else 3
    timeout = 60 if args.quick else 300

    info = machine_info()
    notes = []
    for impl, python, install in (("torch", args.torch_python, "torch==2.13.0"), ("jax", sys.executable, "jax jaxlib")):
        if impl in impls:
            ok, what = module_available(python, impl)
            if ok:
                info[impl] = what
            else:
                impls.remove(impl)
                notes.append(f"{impl} column omitted: {impl} is not importable by {python} ({what}); "
                             f"install it in .venv-bench (pip install {install}) and run from there")
    native = [i for i in impls if i in ("tinyrnn-native", "tinyrnn-api-native")]
    if native:
        ok, what = module_available(sys.executable, "tinyrnn_native")
        if ok:
            info["tinyrnn_native"] = what
        else:
            impls = [i for i in impls if i not in native]
            notes.append(f"{', '.join(native)} omitted: the optional native kernels are not installed "
                         f"(pip install ./native): {what}")
    for n in notes:
        print("NOTE:", n, flush=True)
    overridden = {k: v for k, v in info["env"].items() if v is not None}
    if overridden:
        print(f"NOTE: OpenBLAS overrides set in the environment: {overridden} — to benchmark the kernel OpenBLAS "
              "would pick itself, run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m bench.throughput",
              flush=True)
    print(f"{info['date_utc']}  {info['cpu']}  nproc={info['nproc']}  python {info['python']}  numpy {info['numpy']}"
          f"  torch {info.get('torch', '—')}  jax {info.get('jax', '—')}  tinyrnn {info['tinyrnn']}"
          f"  tinyrnn-native {info.get('tinyrnn_native', '—')}", flush=True)
    print(f"T={args.seq_len} V={args.vocab}; {repeats} interleaved repeats × ≥{min_time}s per column, median; "
          f"load average {info['loadavg_1_5_15']} on {info['nproc']} CPUs\n"
          f"the Python API's columns: no thread variables, not pinned, timed as they are and under "
          f"threadpool_limits(1) in turn; the others: 1 BLAS/torch/XLA thread"
          + (f", pinned to core {cpu}" if cpu is not None else ", not pinned"), flush=True)

    pythons = {i: (args.torch_python if i == "torch" else sys.executable) for i in impls}
    results = []
    t_start = time.perf_counter()
    for cell in args.cell:
        for H, B in shapes:
            runnable = [i for i in impls if not (cell != "rnn" and i in RNN_ONLY)]
            got = run_config(runnable, pythons, H, B, args.seq_len, args.vocab, repeats, min_time, warmup, timeout,
                             malloc_warm=not args.no_malloc_warm, cpu=cpu, cell=cell)
            results.extend(got)
            load = os.getloadavg()[0]
            for r in got:
                msg = r.get("error") or (f"{r['chars_per_sec']:>10,.0f} chars/s  (CPU time {r['cpu_chars_per_sec']:>10,.0f}; "
                                         f"{r['ms_per_step']:.2f} ms/step)")
                print(f"  {cell:4s} H={H:<4d} B={B:<3d} {r['impl']:30s} {msg}  load {load:.1f}", flush=True)
    elapsed = time.perf_counter() - t_start
    print_tables(results)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\n(total {elapsed:.0f} s; load average at start {info['loadavg_1_5_15']}, at end {load} on "
          f"{info['nproc']} CPUs — other processes' load shows up in the wall-clock table)")
    info["loadavg_end"] = list(load) if load else None

    from bench.report import throughput_rows

    payload = {"machine": info, "settings": {"T": args.seq_len, "V": args.vocab, "repeats": repeats,
                                             "min_time": min_time, "warmup": warmup, "quick": args.quick,
                                             "malloc_warm": not args.no_malloc_warm,
                                             "thread_env": THREAD_ENV, "xla_flags": XLA_ONE_THREAD, "cpu": cpu},
               "notes": notes, "summary": throughput_rows(results)[2],
               "summary_cpu_time": throughput_rows(results, "cpu_chars_per_sec")[2], "results": results,
               "elapsed_s": elapsed}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return 0 if all("error" not in r for r in results) else 1


def print_tables(results: list[dict]) -> None:
    """The throughput tables by wall clock and by CPU time, the cells against the tanh RNN, and memory."""
    from bench.report import cell_ratio_rows, memory_rows, plain_table, throughput_rows

    blas = next((r.get("blas") for r in results if r.get("blas")), None)
    for d in blas or ():
        print(f"threadpool: {d['internal_api']} {d.get('version')} arch={d.get('architecture')} "
              f"threads={d['num_threads']} ({Path(d['filepath']).name})")
    for r in results:
        if r.get("info", {}).get("engine") and r.get("mode") is None:
            print(f"engine: {r['cell']} B={r['B']} {r['impl']}: {r['info']['engine']}"
                  + (" (opted in with use_native_kernels(): not the default in this tinyrnn)"
                     if r["info"].get("native_opt_in") else ""))
    for key, what in (("chars_per_sec", "wall clock"), ("cpu_chars_per_sec", "each process's CPU time")):
        print(f"\nTraining throughput, chars/s by {what} (median of interleaved repeats); one step = forward + "
              "backward + clip + Adam")
        print(plain_table(*throughput_rows(results, key)[:2]))
        rows = cell_ratio_rows(results, key)
        if rows[1]:
            print(f"\nEach cell against the tanh RNN ({what})")
            print(plain_table(*rows))
    print("\nPeak memory, MiB: process peak RSS (numpy heap peak of one step, via tracemalloc)")
    print(plain_table(*memory_rows(results)))


if __name__ == "__main__":
    sys.exit(main())
