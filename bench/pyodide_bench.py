"""In-browser-runtime throughput: tinyrnn's default engine inside Pyodide 0.27.7 (Node.js) beside native CPython.

    python -m bench.pyodide_bench            # H in {64,128,256} x B in {1,32}, 7 interleaved repeats
    python -m bench.pyodide_bench --quick    # H=128 and 256 x B in {1,32}, 5 short repeats (< 2 min)
    python -m bench.pyodide_bench --impls tinyrnn-fused numpy-minchar
    python -m bench.pyodide_bench --cell rnn gru lstm --sizes 128 --batches 16   # the cells side by side
    python -m bench.pyodide_bench --quality [--seconds 300] [--set FIELD=VALUE ...]
        # bench/quality.py itself, run inside Pyodide: "5 minutes of in-browser training"

The same code (bench/harness.py: one step = forward + backward + clip + Adam on a (B, T) window) runs in
a native subprocess per cell (one BLAS thread) and, for all cells, in one Node.js process hosting
Pyodide; repeats are interleaved native / Pyodide so background load hits both alike.  The ratio is
Pyodide chars/s ÷ native chars/s (target >= 0.4 for the default engine).

Needs: ``node`` (v18+), the Pyodide 0.27.7 core + numpy wasm wheel (the offline mirror:
``python -m sitebuild.mirror --dest .cache/mirror``; override with ``--pyodide-dir``), the autograd wheel
(taken from the mirror, else ``pip download autograd==1.7.0``) and a tinyrnn wheel (built from this tree
into ``.cache/node-bench/dist`` unless ``--wheel`` is given).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import shared_data
from bench.throughput import machine_info
from bench.workers import REPO, Worker

BENCH = REPO / "bench"
CACHE = REPO / ".cache" / "node-bench"
MIRROR = REPO / ".cache" / "mirror"
DEFAULT_PYODIDE_DIRS = [MIRROR / "cdn.jsdelivr.net" / "pyodide" / "v0.27.7" / "full",
                        MIRROR / "selfcontained" / "pyodide"]
DEFAULT_JSON = REPO / "bench" / "results" / "pyodide.json"
AUTOGRAD_VERSION = "1.7.0"  # what Pyodide 0.27.7's lock pins


def find_pyodide_dir(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else DEFAULT_PYODIDE_DIRS
    for d in candidates:
        if d and (d / "pyodide.mjs").is_file() and (d / "pyodide-lock.json").is_file():
            lock = json.loads((d / "pyodide-lock.json").read_text())
            numpy_file = lock["packages"]["numpy"]["file_name"]
            if (d / numpy_file).is_file():
                return d
    raise SystemExit("no Pyodide 0.27.7 directory with pyodide.mjs, pyodide-lock.json and the numpy wheel found in "
                     f"{[str(c) for c in candidates]}; build the mirror: python -m sitebuild.mirror --dest .cache/mirror")


def find_autograd_wheel(pyodide_dir: Path) -> Path:
    pattern = f"autograd-{AUTOGRAD_VERSION}-py3-none-any.whl"
    for d in (pyodide_dir, MIRROR / "wheels", MIRROR / "selfcontained" / "pyodide", CACHE / "wheels"):
        if (d / pattern).is_file():
            return d / pattern
    (CACHE / "wheels").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    f"autograd=={AUTOGRAD_VERSION}", "-d", str(CACHE / "wheels")], check=True)
    return CACHE / "wheels" / pattern


def build_wheel() -> Path:
    out = CACHE / "dist"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # an isolated build (pip fetches the build backend pyproject.toml asks for), like CI's
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)], check=True)
    wheels = sorted(out.glob("tinyrnn-*.whl"))
    if not wheels:
        raise SystemExit(f"building the tinyrnn wheel produced nothing in {out}")
    return wheels[-1]


def run_quality(args) -> int:
    """bench/quality.py inside Pyodide (Node.js), its output streamed, its JSON copied out."""
    pyodide_dir = find_pyodide_dir(args.pyodide_dir)
    autograd_whl = find_autograd_wheel(pyodide_dir)
    tinyrnn_whl = args.wheel or build_wheel()
    if not args.data.is_file():
        print(f"data file not found: {args.data} (give --data)", file=sys.stderr)
        return 2
    out = args.json or REPO / "bench" / "results" / "quality-pyodide.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    qargs = ["--data", f"/data/{args.data.name}", "--json", "/home/pyodide/out.json"]
    if args.quick:
        qargs.append("--quick")
    if args.seconds is not None:
        qargs += ["--seconds", str(args.seconds)]
    if args.eval_every is not None:
        qargs += ["--eval-every", str(args.eval_every)]
    for o in args.overrides:
        qargs += ["--set", o]
    cmd = [args.node, str(BENCH / "pyodide_bench.mjs"), "--index", str(pyodide_dir), "--bench-dir", str(BENCH),
           "--wheel", str(autograd_whl), "--wheel", str(tinyrnn_whl), "--module", "bench.quality",
           "--module-args", json.dumps(qargs), "--data-file", str(args.data), "--out-file", str(out)]
    print(f"running bench.quality inside Pyodide ({pyodide_dir})", flush=True)
    budget = args.seconds if args.seconds is not None else (45 if args.quick else 300)
    try:
        r = subprocess.run(cmd, cwd=REPO, timeout=budget * 3 + 300, check=False)
    except subprocess.TimeoutExpired:
        print("Pyodide quality run timed out", file=sys.stderr)
        return 1
    if r.returncode == 0:
        print(f"wrote {out}")
    return r.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--impls", nargs="+", default=["tinyrnn-fused"])
    ap.add_argument("--cell", nargs="+", default=None, choices=("rnn", "gru", "lstm"),
                    help="the default engine with these cells (tinyrnn-fused[-gru|-lstm]), instead of --impls")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--min-time", type=float, default=None)
    ap.add_argument("--pyodide-dir", type=Path, default=None)
    ap.add_argument("--wheel", type=Path, default=None, help="tinyrnn wheel to load (default: build one)")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--json", type=Path, default=None, help="default bench/results/pyodide.json "
                    "(with --quality: bench/results/quality-pyodide.json)")
    ap.add_argument("--quality", action="store_true", help="run bench/quality.py inside Pyodide instead")
    ap.add_argument("--seconds", type=float, default=None, help="with --quality: training budget (default 300)")
    ap.add_argument("--eval-every", type=float, default=None, help="with --quality: seconds between validations")
    ap.add_argument("--data", type=Path, default=shared_data())
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args(argv)
    if args.quality:
        return run_quality(args)
    args.json = args.json or DEFAULT_JSON

    if args.cell:
        args.impls = ["tinyrnn-fused" if c == "rnn" else f"tinyrnn-fused-{c}" for c in args.cell]
    sizes = args.sizes or ([128, 256] if args.quick else [64, 128, 256])
    repeats = args.repeats or (5 if args.quick else 7)
    min_time = args.min_time or (0.15 if args.quick else 0.4)
    warmup = 2 if args.quick else 3
    timeout = 120 if args.quick else 600

    pyodide_dir = find_pyodide_dir(args.pyodide_dir)
    autograd_whl = find_autograd_wheel(pyodide_dir)
    t_build = time.perf_counter()
    tinyrnn_whl = args.wheel or build_wheel()
    built = "" if args.wheel else f" (built in {time.perf_counter() - t_build:.1f} s)"
    print(f"pyodide: {pyodide_dir}\nwheels: {autograd_whl}, {tinyrnn_whl}{built}", flush=True)

    specs = [{"impl": impl, "H": H, "B": B, "T": 25, "V": 65, "min_time": min_time, "warmup": warmup}
             for B in args.batches for H in sizes for impl in args.impls]
    node_cmd = [args.node, str(BENCH / "pyodide_bench.mjs"), "--index", str(pyodide_dir), "--bench-dir", str(BENCH),
                "--wheel", str(autograd_whl), "--wheel", str(tinyrnn_whl), "--specs", json.dumps(specs)]
    t0 = time.perf_counter()
    wasm = Worker("node", {"impl": "pyodide"}, cmd=node_cmd)
    wasm.ready = wasm.call(None, timeout)
    if wasm.ready is None:
        print(f"Pyodide worker failed: {wasm.error}", file=sys.stderr)
        return 1
    blas = wasm.ready.get("numpy_blas")
    blas = (blas or {}).get("name", "?") if isinstance(blas, dict) else blas
    print(f"Pyodide {wasm.ready.get('python')} numpy {wasm.ready.get('numpy')} (BLAS: {blas}) on node "
          f"{wasm.ready.get('node')}; set-up {wasm.ready['setup_seconds']:.1f} s, calibrated in "
          f"{time.perf_counter() - t0:.1f} s\ntinyrnn's products in Pyodide: {wasm.ready.get('tinyrnn_backend')}", flush=True)

    natives = []
    for spec in specs:
        w = Worker(sys.executable, spec)
        w.ready = w.call(None, timeout)
        natives.append(w)
    rates_native = [[] for _ in specs]
    rates_wasm = [[] for _ in specs]
    cpu_native = [[] for _ in specs]
    cpu_wasm = [[] for _ in specs]
    for _ in range(repeats):
        for i, spec in enumerate(specs):
            chars = spec["B"] * spec["T"]
            r = natives[i].call("run", timeout)
            if r is not None:
                rates_native[i].append(natives[i].ready["n"] * chars / r["dt"])
                cpu_native[i].append(natives[i].ready["n"] * chars / max(r["cpu"], 1e-9))
            r = wasm.call(f"run {i}", timeout)
            if r is not None:
                rates_wasm[i].append(wasm.ready["cells"][i]["n"] * chars / r["dt"])
                cpu_wasm[i].append(wasm.ready["cells"][i]["n"] * chars / max(r["cpu"], 1e-9))
    native_meta = [w.call("finish", timeout) for w in natives]
    wasm_meta = wasm.call("finish", timeout)
    for w in natives + [wasm]:
        try:
            w.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()

    info = machine_info()
    rows = []
    print()
    print(f"{info['date_utc']}  {info['cpu']}  nproc={info['nproc']}; T=25 V=65; median of {repeats} interleaved "
          "repeats; native: 1 BLAS thread")
    head = (f"{'impl':18s} {'H':>4s} {'B':>3s} {'native':>10s} {'pyodide':>10s} {'ratio':>7s}   "
            f"{'native cpu':>10s} {'pyodide cpu':>11s} {'ratio':>7s}")
    print(head)
    print("-" * len(head))
    med = lambda xs: statistics.median(xs) if xs else None
    fmt = lambda x: "—" if x is None else f"{x:,.0f}"
    fr = lambda x: "—" if x is None else f"{x:.2f}×"
    for i, spec in enumerate(specs):
        nat, wa, natc, wac = med(rates_native[i]), med(rates_wasm[i]), med(cpu_native[i]), med(cpu_wasm[i])
        ratio = (wa / nat) if (nat and wa) else None
        ratio_cpu = (wac / natc) if (natc and wac) else None
        err = natives[i].error or wasm.error
        rows.append({**spec, "native_chars_per_sec": nat, "pyodide_chars_per_sec": wa, "ratio": ratio,
                     "native_cpu_chars_per_sec": natc, "pyodide_cpu_chars_per_sec": wac, "ratio_cpu": ratio_cpu,
                     "native_repeats": rates_native[i], "pyodide_repeats": rates_wasm[i],
                     "native_cpu_repeats": cpu_native[i], "pyodide_cpu_repeats": cpu_wasm[i], "error": err,
                     "native_meta": native_meta[i],
                     "pyodide_meta": (wasm_meta or {}).get("cells", [None] * len(specs))[i]})
        print(f"{spec['impl']:18s} {spec['H']:>4d} {spec['B']:>3d} {fmt(nat):>10s} {fmt(wa):>10s} {fr(ratio):>7s}   "
              f"{fmt(natc):>10s} {fmt(wac):>11s} {fr(ratio_cpu):>7s}" + (f"  ERROR {err}" if err else ""))
    print("(chars/s, median; 'cpu' columns divide by the process's CPU time instead of wall-clock time)")
    payload = {"machine": info, "pyodide": {k: v for k, v in wasm.ready.items() if k != "cells"},
               "pyodide_dir": str(pyodide_dir), "wheels": [str(autograd_whl), str(tinyrnn_whl)],
               "settings": {"repeats": repeats, "min_time": min_time, "warmup": warmup, "quick": args.quick},
               "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return 0 if all(r["error"] is None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
