"""Training throughput (chars/s) of tinyrnn vs a numpy min-char-rnn baseline vs PyTorch, one BLAS thread.

Run from the repository root (ideally in .venv-bench, which also has torch and threadpoolctl)::

    python -m bench.throughput            # full: 9 interleaved repeats of >= 0.4 s per cell (~5 min)
    python -m bench.throughput --quick    # 5 interleaved repeats of >= 0.1 s per cell (< 2 min)
    python -m bench.throughput --json out.json

Every (implementation, H, B) cell runs in its own fresh subprocess, so imports, allocator state and peak
memory of one cell do not leak into the next.  The cells of one (H, B) are timed in interleaved rounds
(one repeat of each implementation in turn), so load from other processes is shared fairly.  Each subprocess limits BLAS/OpenMP to one thread (environment
variables *and* threadpoolctl) and torch to one thread, then records which BLAS kernel it used.

Implementations (one training step = forward + backward + clip(5.0) + Adam(2e-3) on a (B, T) window):
  tinyrnn-fused     tinyrnn.loss_and_grads(engine="fused")  + clip_by_global_norm + make_optimizer("adam")
  tinyrnn-trainer   tinyrnn.Trainer(...).step()  (the app's path; default engine, float32; evaluation disabled)
  tinyrnn-autograd  tinyrnn.loss_and_grads(engine="autograd") + the same optimiser
  numpy-minchar     bench/minchar_numpy.py (one-hot, per-step loops, hand-written BPTT, float32)
  torch             bench/torch_rnn.py (nn.RNN(tanh) + nn.Linear, float32, torch.set_num_threads(1))
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
    if impl != "torch":  # numpy reports its buffers to tracemalloc; torch's allocator does not
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

def torch_available(python: str) -> tuple[bool, str]:
    r = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True,
                       timeout=120, check=False)
    if r.returncode == 0:
        return True, r.stdout.strip()
    tail = (r.stderr.strip().splitlines() or ["?"])[-1]
    return False, tail


def worker_env() -> dict:
    env = dict(os.environ)
    env.update(THREAD_ENV)
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


def run_config(impls, pythons, H, B, T, V, repeats, min_time, warmup, timeout, malloc_warm=True) -> list[dict]:
    """All implementations of one (H, B): start, calibrate one after another, then interleaved repeats."""
    results = []
    workers = []
    for impl in impls:
        spec = {"impl": impl, "H": H, "B": B, "T": T, "V": V, "min_time": min_time, "warmup": warmup,
                "malloc_warm": malloc_warm}
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


def _fmt_rate(x):
    if x is None:
        return "—"
    return f"{x/1000:,.1f}k" if x >= 1000 else f"{x:,.0f}"


def _ratio(a, b):
    return None if (a is None or b is None or b == 0) else a / b


def build_table(results: list[dict], impls: list[str], sizes, batches, key="chars_per_sec",
                memory=True) -> tuple[str, list[dict]]:
    by = {(r["impl"], r["H"], r["B"]): r for r in results}

    def rate(impl, H, B):
        r = by.get((impl, H, B))
        return None if r is None or "error" in r else r.get(key)

    short = {"tinyrnn-fused": "fused", "tinyrnn-trainer": "Trainer", "tinyrnn-autograd": "autograd",
             "numpy-minchar": "numpy", "torch": "torch"}
    head = ["H", "B"] + [short[i] for i in impls] + ["fused/torch", "Trainer/torch", "fused/numpy", "fused/autograd"]
    rows, summary = [], []
    for B in batches:
        for H in sizes:
            f, tr, ag = rate("tinyrnn-fused", H, B), rate("tinyrnn-trainer", H, B), rate("tinyrnn-autograd", H, B)
            nm, th = rate("numpy-minchar", H, B), rate("torch", H, B)
            ratios = {"fused/torch": _ratio(f, th), "Trainer/torch": _ratio(tr, th), "fused/numpy": _ratio(f, nm),
                      "fused/autograd": _ratio(f, ag)}
            summary.append({"H": H, "B": B, **{f"{key}[{i}]": rate(i, H, B) for i in impls}, **ratios})
            rows.append([str(H), str(B)] + [_fmt_rate(rate(i, H, B)) for i in impls]
                        + ["—" if v is None else f"{v:.2f}×" for v in ratios.values()])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    if not memory:
        return "\n".join(lines), summary
    # memory table
    mhead = ["H", "B"] + [short[i] for i in impls]
    mrows = []
    for B in batches:
        for H in sizes:
            cells = []
            for i in impls:
                r = by.get((i, H, B))
                if r is None or "error" in r:
                    cells.append("—")
                else:
                    t = r.get("traced_step_peak_mib")
                    cells.append(f"{r['peak_rss_mib']:.0f}" + ("" if t is None else f" ({t:.1f})"))
            mrows.append([str(H), str(B)] + cells)
    mw = [max(len(h), *(len(r[i]) for r in mrows)) for i, h in enumerate(mhead)]
    lines += ["", "Peak memory, MiB: process peak RSS (numpy heap peak of one step, via tracemalloc)",
              "  ".join(h.rjust(w) for h, w in zip(mhead, mw)), "  ".join("-" * w for w in mw)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, mw)) for r in mrows]
    return "\n".join(lines), summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer/shorter repeats (< 2 minutes in total)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON.relative_to(REPO)})")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="hidden sizes H")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes B")
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
    repeats = args.repeats or (5 if args.quick else 9)
    min_time = args.min_time or (0.1 if args.quick else 0.4)
    warmup = 2 if args.quick else 3
    timeout = 60 if args.quick else 300

    info = machine_info()
    notes = []
    if "torch" in impls:
        ok, what = torch_available(args.torch_python)
        if ok:
            info["torch"] = what
        else:
            impls.remove("torch")
            notes.append(f"torch column omitted: torch is not importable by {args.torch_python} ({what}); "
                         "install it in .venv-bench (pip install torch==2.13.0) and run from there")
    for n in notes:
        print("NOTE:", n, flush=True)
    overridden = {k: v for k, v in info["env"].items() if v is not None}
    if overridden:
        print(f"NOTE: OpenBLAS overrides set in the environment: {overridden} — to benchmark the kernel OpenBLAS "
              "would pick itself, run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m bench.throughput",
              flush=True)
    print(f"{info['date_utc']}  {info['cpu']}  nproc={info['nproc']}  python {info['python']}  numpy {info['numpy']}"
          f"  torch {info.get('torch', '—')}  tinyrnn {info['tinyrnn']}", flush=True)
    print(f"T={args.seq_len} V={args.vocab}; {repeats} repeats × ≥{min_time}s per cell, median; 1 BLAS/torch thread",
          flush=True)

    pythons = {i: (args.torch_python if i == "torch" else sys.executable) for i in impls}
    results = []
    t_start = time.perf_counter()
    for B in args.batches:
        for H in args.sizes:
            cell = run_config(impls, pythons, H, B, args.seq_len, args.vocab, repeats, min_time, warmup, timeout,
                              malloc_warm=not args.no_malloc_warm)
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
    table, summary = build_table(results, impls, args.sizes, args.batches)
    cpu_table, cpu_summary = build_table(results, impls, args.sizes, args.batches, key="cpu_chars_per_sec",
                                         memory=False)
    print()
    print("Training throughput, chars/s (median of wall-clock repeats), one step = forward + backward + clip + Adam")
    print(table)
    print()
    print("The same, measured by each process's CPU time (less disturbed by other load on a shared machine)")
    print(cpu_table)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\n(total {elapsed:.0f} s; load average at start {info['loadavg_1_5_15']}, at end {load} on "
          f"{info['nproc']} CPUs — other processes' load shows up in the wall-clock table)")
    info["loadavg_end"] = list(load) if load else None

    payload = {"machine": info, "settings": {"T": args.seq_len, "V": args.vocab, "repeats": repeats,
                                             "min_time": min_time, "warmup": warmup, "quick": args.quick,
                                             "malloc_warm": not args.no_malloc_warm,
                                             "thread_env": THREAD_ENV},
               "notes": notes, "summary": summary, "summary_cpu_time": cpu_summary, "results": results, "elapsed_s": elapsed}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
