"""The benchmark's worker processes: one long-lived subprocess per measured column, driven by a line protocol.

``Worker`` starts ``python -m bench.workers SPEC`` (or another command speaking the same protocol, such as
``bench/pyodide_bench.mjs``); the worker imports, builds the step (``bench.harness.make_step``), warms up, calibrates
the number of steps per repeat and prints ``{"ready": ...}``; each ``run`` line times one repeat per mode and prints
``{"dt": [...], "cpu": [...]}``; ``finish`` prints the column's metadata (memory, BLAS) and the worker exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
WATCHED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE")
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"  # = bench.jax_rnn's

# --- worker (one long-lived subprocess per cell) ---------------------------------------------------------
# Protocol (one JSON object per line): the worker imports, builds the step, warms up, calibrates the number of
# steps per repeat and prints {"ready": ...}; then each "run" line on stdin times one repeat and prints
# {"dt": ...}; "finish" measures memory and prints the cell's metadata, then the worker exits.  The
# orchestrator keeps the workers of one (H, B) configuration alive together and sends "run" to them in
# turn (round-robin), so background load on the machine hits every implementation alike.

class _HiddenModule:
    """A meta-path finder that makes one top-level module unimportable, as if it were not installed."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name or fullname.startswith(self.name + "."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden by the benchmark)", name=fullname)
        return None


def _worker(spec: dict) -> None:
    import resource
    import tracemalloc

    impl = spec["impl"]
    if spec.get("cpu") is not None:  # one core, as `taskset -c N`: no implementation can spread its work
        os.sched_setaffinity(0, {spec["cpu"]})
    if spec.get("hide_native"):  # the Python API after `pip install .` alone
        sys.meta_path.insert(0, _HiddenModule("tinyrnn_native"))
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

        # the Python API's columns keep the library's own thread settings; every other one gets one thread
        limiter = threadpoolctl.threadpool_limits(limits=None if spec.get("default_threads") else 1)
    except ImportError:
        pass
    if spec.get("malloc_warm", True):
        _steady_state_malloc()
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    from bench import harness

    step, info = harness.make_step(impl, spec["H"], spec["B"], spec["T"], spec["V"], spec.get("seed", 0),
                                   spec.get("cell", "rnn"))
    n, first_loss = harness.calibrate(step, spec["min_time"], spec["warmup"])
    _send({"ready": True, "n": n, "first_loss": first_loss})
    last_loss = first_loss
    modes = spec.get("modes") or [None]
    rounds = 0
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":  # one repeat per mode, their order alternating from one round to the next
            out = {}
            for mode in (modes if rounds % 2 == 0 else modes[::-1]):
                with _mode(mode):
                    out[mode] = harness.timed_repeat(step, n)
                last_loss = out[mode][2]
            rounds += 1
            _send({"dt": [out[m][0] for m in modes], "cpu": [out[m][1] for m in modes]})
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


ONE_THREAD = "1 thread"  # the mode that times the same steps under threadpoolctl.threadpool_limits(1)


def _mode(mode):
    """The context one repeat of ``mode`` runs in: as it is (None), or with one BLAS/OpenMP thread (ONE_THREAD)."""
    import contextlib

    if mode is None:
        return contextlib.nullcontext()
    if mode == ONE_THREAD:
        import threadpoolctl

        return threadpoolctl.threadpool_limits(limits=1)
    raise ValueError(f"unknown mode {mode!r}")


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


def worker_env(default_threads: bool = False) -> dict:
    """The worker's environment: one thread for every library, or (``default_threads``) no thread variable at all,
    as a user's shell would have it."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    if not default_threads:
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
        cmd = cmd or [python, "-m", "bench.workers", json.dumps(spec)]
        # stderr goes to a temporary file (not a pipe), so a chatty worker can never block on it
        import tempfile

        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the worker)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, cwd=REPO, env=worker_env(spec.get("default_threads", False)),
                                     bufsize=1)

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


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
