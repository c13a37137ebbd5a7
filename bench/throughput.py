"""Training throughput (chars/s) of tinyrnn vs a numpy min-char-rnn baseline vs PyTorch vs JAX, on one core.

Run from the repository root (ideally in .venv-bench, which also has torch and threadpoolctl)::

    python -m bench.throughput            # full: 9 interleaved repeats of >= 0.4 s per cell (~6 min)
    python -m bench.throughput --quick    # 5 interleaved repeats of >= 0.1 s per cell (< 2 min)
    python -m bench.throughput --json out.json
    python -m bench.throughput --cells 128x1 128x32 --impls tinyrnn-native jax   # a subset

Cells are H x B pairs (default: the issue-12 peer table, 128x1 128x32 256x32 64x16); ``--sizes``/``--batches``
give a grid instead.

Every (implementation, H, B) cell runs in its own fresh subprocess, so imports, allocator state and peak
memory of one cell do not leak into the next.  The cells of one (H, B) are timed in interleaved rounds
(one repeat of each implementation in turn), so load from other processes is shared fairly.  Each subprocess limits BLAS/OpenMP to one thread (environment
variables *and* threadpoolctl), torch and XLA to one thread, is pinned to one core (``--cpu``, like ``taskset -c 0``),
then records which BLAS kernel it used.

Implementations (one training step = forward + backward + clip(5.0) + Adam(2e-3) on a (B, T) window):
  tinyrnn-fused     tinyrnn.loss_and_grads(engine="fused")  + clip_by_global_norm + make_optimizer("adam")
  tinyrnn-trainer   tinyrnn.Trainer(...).step()  (the app's path; default engine, float32; evaluation disabled)
  tinyrnn-native    the same Trainer.step() after tinyrnn.native_kernels.use_native_kernels() (pip install ./native)
  tinyrnn-autograd  tinyrnn.loss_and_grads(engine="autograd") + the same optimiser
  numpy-minchar     bench/minchar_numpy.py (one-hot, per-step loops, hand-written BPTT, float32)
  torch             bench/torch_rnn.py (nn.RNN(tanh) + nn.Linear, float32, torch.set_num_threads(1))
  jax               bench/jax_rnn.py (the whole step under jax.jit, lax.scan, Adam + clipping in jnp, float32)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "throughput.json"
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
WATCHED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE")
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"  # = bench.jax_rnn's
DEFAULT_CELLS = ("128x1", "128x32", "256x32", "64x16")  # (H x B) rows of issue 12's table


# --- worker (one long-lived subprocess per cell) ---------------------------------------------------------
# Protocol (one JSON object per line): the worker imports, builds the step, warms up, calibrates the number of
# steps per repeat and prints {"ready": ...}; then each "run" line on stdin times one repeat and prints
# {"dt": ...}; "finish" measures memory and prints the cell's metadata, then the worker exits.  The
# orchestrator keeps the workers of one (H, B) configuration alive together and sends "run" to them in
# turn (round-robin), so background load on the machine hits every implementation alike.

def _worker(spec: dict) -> None:
    import resource
    import tracemalloc

    impl = spec["impl"]
    if spec.get("cpu") is not None:  # one core, as `taskset -c N`: no implementation can spread its work
        os.sched_setaffinity(0, {spec["cpu"]})
    import numpy as np  # noqa: F401  (imports first: "after import" memory is interpreter + libraries)

    if impl.startswith("tinyrnn"):
        import tinyrnn  # noqa: F401
    if impl == "torch":
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    if impl == "jax":
        import jax  # noqa: F401  (XLA_FLAGS, set by worker_env, limit XLA to one thread)
    limiter = None
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=1)
    except ImportError:
        pass
    if spec.get("malloc_warm", True):
        _steady_state_malloc()
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    from bench import harness

    step, info = harness.make_step(impl, spec["H"], spec["B"], spec["T"], spec["V"], spec.get("seed", 0))
    n, first_loss = harness.calibrate(step, spec["min_time"], spec["warmup"])
    _send({"ready": True, "n": n, "first_loss": first_loss})
    last_loss = first_loss
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":
            dt, cpu, last_loss = harness.timed_repeat(step, n)
            _send({"dt": dt, "cpu": cpu})
        elif cmd == "finish":
            break
    blas = None
    if limiter is not None:
        import threadpoolctl

        blas = [{k: d.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "architecture",
                                        "threading_layer", "filepath")}
                for d in threadpoolctl.threadpool_info()]
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    traced = None
    if impl not in ("torch", "jax"):  # numpy reports its buffers to tracemalloc; torch's allocator does not
        tracemalloc.start()
        step()
        step()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    _send({"info": info, "last_loss": last_loss, "peak_rss_mib": rss_peak, "rss_after_import_mib": rss_import,
           "traced_step_peak_mib": traced, "blas": blas, "threadpoolctl": limiter is not None})


def _steady_state_malloc() -> None:
    """Put glibc's allocator where a long-running training process already is.

    glibc serves blocks above its mmap threshold (128 KiB at start) with mmap, and raises that threshold (and
    the heap-trim threshold with it) only once such a block is freed.  Until then every big numpy temporary
    of a step (e.g. the (T*B, H) arrays at B=32) costs an mmap/munmap pair and fresh page faults, which made
    a fresh process up to ~30 % slower than the same code in a process that had once freed a big block (the
    Trainer's set-up does).  Fix both thresholds explicitly for every worker alike (mallopt, glibc only).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 16 * 2**20)
        libc.mallopt(M_TRIM_THRESHOLD, 32 * 2**20)
    except (OSError, AttributeError):
        pass


def _send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# --- orchestration ---------------------------------------------------------------------------------------

def module_available(python: str, module: str) -> tuple[bool, str]:
    """(whether ``python`` can import ``module``, its version or the last line of the error)."""
    r = subprocess.run([python, "-c", f"import {module}; print({module}.__version__)"], capture_output=True,
                       text=True, timeout=120, check=False, env=worker_env())
    if r.returncode == 0:
        return True, r.stdout.strip()
    tail = (r.stderr.strip().splitlines() or ["?"])[-1]
    return False, tail


def worker_env() -> dict:
    env = dict(os.environ)
    env.update(THREAD_ENV)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Worker:
    """A line-protocol subprocess (see ``_worker``); ``cmd`` defaults to this module's worker mode."""

    def __init__(self, python: str, spec: dict, cmd: list | None = None):
        self.spec = spec
        self.error = None
        self.ready = None
        cmd = cmd or [python, "-m", "bench.throughput", "--worker", json.dumps(spec)]
        # stderr goes to a temporary file (not a pipe), so a chatty worker can never block on it
        import tempfile

        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the worker)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, cwd=REPO, env=worker_env(), bufsize=1)

    def stderr_tail(self, n=3) -> str:
        self._stderr.seek(0)
        return " | ".join(self._stderr.read().strip().splitlines()[-n:])

    def _recv(self, timeout: float):
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited ({self.proc.wait()}): {self.stderr_tail()}")
        return json.loads(line)

    def call(self, cmd: str | None, timeout: float):
        if self.error:
            return None
        try:
            if cmd is not None:
                self.proc.stdin.write(cmd + "\n")
                self.proc.stdin.flush()
            return self._recv(timeout)
        except (TimeoutError, RuntimeError, BrokenPipeError, json.JSONDecodeError) as e:
            self.error = str(e)
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_config(impls, pythons, H, B, T, V, repeats, min_time, warmup, timeout, malloc_warm=True,
               cpu=None) -> list[dict]:
    """All implementations of one (H, B): start, calibrate one after another, then interleaved repeats."""
    results = []
    workers = []
    for impl in impls:
        spec = {"impl": impl, "H": H, "B": B, "T": T, "V": V, "min_time": min_time, "warmup": warmup,
                "malloc_warm": malloc_warm, "cpu": cpu}
        w = Worker(pythons[impl], spec)
        w.ready = w.call(None, timeout)  # wait: calibration of one must not overlap another's
        workers.append(w)
    rates = {id(w): [] for w in workers}
    cpu_rates = {id(w): [] for w in workers}
    for _ in range(repeats):
        for w in workers:
            r = w.call("run", timeout)
            if r is not None:
                rates[id(w)].append(w.ready["n"] * B * T / r["dt"])
                cpu_rates[id(w)].append(w.ready["n"] * B * T / max(r["cpu"], 1e-9))
    for w in workers:
        meta = w.call("finish", timeout)
        if meta is not None:
            w.proc.wait(timeout=timeout)
        if w.error or meta is None:
            results.append({**w.spec, "error": w.error or "no result"})
            w.kill()
            continue
        from bench.harness import summarize

        res = summarize(rates[id(w)], w.ready["n"], B * T, w.ready["first_loss"], meta.pop("last_loss"),
                        cpu_rates[id(w)])
        res.update(w.spec)
        res.update(meta)
        results.append(res)
    return results


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
    ap.add_argument("--quick", action="store_true", help="fewer/shorter repeats (< 2 minutes in total)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON.relative_to(REPO)})")
    ap.add_argument("--cells", nargs="+", default=None, metavar="HxB",
                    help=f"H x B pairs to measure (default {' '.join(DEFAULT_CELLS)})")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="hidden sizes H (a grid with --batches)")
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="batch sizes B (a grid with --sizes)")
    ap.add_argument("--cpu", type=int, default=0, help="the one core every worker is pinned to (-1: not pinned)")
    ap.add_argument("--seq-len", type=int, default=25, help="T")
    ap.add_argument("--vocab", type=int, default=65, help="V")
    ap.add_argument("--impls", nargs="+", default=None, help="subset of implementations")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per cell (default 5, quick 3)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per repeat (default 1.0, quick 0.15)")
    ap.add_argument("--torch-python", default=sys.executable,
                    help="interpreter for the torch cells (default: this one)")
    ap.add_argument("--no-malloc-warm", action="store_true",
                    help="do not pre-raise glibc's mmap threshold in the workers (see _worker)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        _worker(json.loads(args.worker))
        return 0

    from bench.harness import IMPLS

    impls = args.impls or list(IMPLS)
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        ap.error(f"unknown implementation(s) {bad}; choose from {list(IMPLS)}")
    if args.sizes or args.batches:
        cells = [(H, B) for B in (args.batches or [1, 32]) for H in (args.sizes or [64, 128, 256])]
    else:
        try:
            cells = [tuple(int(n) for n in c.lower().split("x")) for c in (args.cells or DEFAULT_CELLS)]
        except ValueError:
            ap.error("--cells takes H x B pairs such as 128x32")
    cpu = None if args.cpu < 0 else args.cpu
    repeats = args.repeats or (5 if args.quick else 9)
    min_time = args.min_time or (0.1 if args.quick else 0.4)
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
    if "tinyrnn-native" in impls:
        ok, what = module_available(sys.executable, "tinyrnn_native")
        if ok:
            info["tinyrnn_native"] = what
        else:
            impls.remove("tinyrnn-native")
            notes.append(f"tinyrnn-native column omitted: the optional native kernels are not installed "
                         f"(pip install ./native): {what}")
    for n in notes:
        print("NOTE:", n, flush=True)
    overridden = {k: v for k, v in info["env"].items() if v is not None}
    if overridden:
        print(f"NOTE: OpenBLAS overrides set in the environment: {overridden} — to benchmark the kernel OpenBLAS "
              "would pick itself, run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m bench.throughput",
              flush=True)
    print(f"{info['date_utc']}  {info['cpu']}  nproc={info['nproc']}  python {info['python']}  numpy {info['numpy']}"
          f"  torch {info.get('torch', '—')}  jax {info.get('jax', '—')}  tinyrnn {info['tinyrnn']}", flush=True)
    print(f"T={args.seq_len} V={args.vocab}; {repeats} repeats × ≥{min_time}s per cell, median; 1 BLAS/torch/XLA "
          f"thread; {'every worker on core ' + str(cpu) if cpu is not None else 'workers not pinned'}", flush=True)

    pythons = {i: (args.torch_python if i == "torch" else sys.executable) for i in impls}
    results = []
    t_start = time.perf_counter()
    for H, B in cells:
        cell = run_config(impls, pythons, H, B, args.seq_len, args.vocab, repeats, min_time, warmup, timeout,
                          malloc_warm=not args.no_malloc_warm, cpu=cpu)
        results.extend(cell)
        for r in cell:
            msg = r.get("error") or (f"{r['chars_per_sec']:>10,.0f} chars/s  ({r['ms_per_step']:.2f} ms/step, "
                                     f"best {r['best_chars_per_sec']:,.0f})")
            print(f"  {r['impl']:17s} H={H:<4d} B={B:<3d} {msg}", flush=True)
    elapsed = time.perf_counter() - t_start

    blas = next((r.get("blas") for r in results if r.get("blas")), None)
    if blas:
        for d in blas:
            print(f"threadpool: {d['internal_api']} {d.get('version')} arch={d.get('architecture')} "
                  f"threads={d['num_threads']} ({Path(d['filepath']).name})")
    from bench.report import memory_rows, plain_table, throughput_rows

    head, rows, summary = throughput_rows(results)
    cpu_head, cpu_rows, cpu_summary = throughput_rows(results, "cpu_chars_per_sec")
    print()
    print("Training throughput, chars/s (median of wall-clock repeats), one step = forward + backward + clip + Adam")
    print(plain_table(head, rows))
    print()
    print("The same, measured by each process's CPU time (less disturbed by other load on a shared machine)")
    print(plain_table(cpu_head, cpu_rows))
    print("\nPeak memory, MiB: process peak RSS (numpy heap peak of one step, via tracemalloc)")
    print(plain_table(*memory_rows(results)))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\n(total {elapsed:.0f} s; load average at start {info['loadavg_1_5_15']}, at end {load} on "
          f"{info['nproc']} CPUs — other processes' load shows up in the wall-clock table)")
    info["loadavg_end"] = list(load) if load else None

    payload = {"machine": info, "settings": {"T": args.seq_len, "V": args.vocab, "repeats": repeats,
                                             "min_time": min_time, "warmup": warmup, "quick": args.quick,
                                             "malloc_warm": not args.no_malloc_warm,
                                             "thread_env": THREAD_ENV, "xla_flags": XLA_ONE_THREAD, "cpu": cpu},
               "notes": notes, "summary": summary, "summary_cpu_time": cpu_summary, "results": results, "elapsed_s": elapsed}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
