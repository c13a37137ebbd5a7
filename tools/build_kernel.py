"""Compile core/tinyrnn/engines/kernels/simd.c to the WebAssembly module the wheel ships (kernels/simd.wasm).

simd.c includes the shared arithmetic of the whole-window kernels (kernels/vector.h, window_impl.h,
window_cells.h), which the native package compiles too.

    python tools/build_kernel.py            # rebuild kernels/simd.wasm
    python tools/build_kernel.py --check    # rebuild into a temporary file; fail unless it equals the shipped one

Needs Debian's clang, lld (wasm-ld) and wabt (wasm2wat): ``apt-get install clang lld wabt``
(scripts/install_browser_deps.sh does it). The shipped module was built with Debian 12's clang 14.0.6; ``--check``
compares bytes, so another clang version may legitimately differ.

The module runs inside Pyodide's own linear memory (it imports it), so a build is refused unless its code is
free of global reads and writes: the only global wasm-ld defines is the C stack pointer, whose default value
points into memory Pyodide owns. Without them the code cannot touch the stack, only the arrays it is given.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "core" / "tinyrnn" / "engines" / "kernels" / "simd.c"
SHIPPED = REPO / "core" / "tinyrnn" / "engines" / "kernels" / "simd.wasm"
EXPORTS = ("sgemm", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "lstm_forward", "lstm_backward",
           "softmax_xent", "adam", "sum_squares", "window_size", "window_forward", "window_backward")


def compile_kernel(out: Path) -> None:
    cmd = ["clang", "--target=wasm32", "-ffreestanding", "-O3", "-msimd128", "-nostdlib", "-ffp-contract=off",
           "-Wall", "-Werror", "-Wl,--no-entry", "-Wl,--import-memory", "-Wl,--strip-all",
           "-o", str(out), str(SOURCE)]
    subprocess.run(cmd, check=True)


def check_module(path: Path) -> None:
    """Refuse a module that could write outside the arrays it is given (see the module docstring)."""
    wat = subprocess.run(["wasm2wat", str(path)], check=True, capture_output=True, text=True).stdout
    problems = []
    if re.search(r"\bglobal\.(get|set)\b", wat):
        problems.append("its code reads or writes a global (the C stack pointer)")
    if re.search(r"^\s*\(data\b", wat, re.M):
        problems.append("it has a data segment")
    imports = re.findall(r'\(import "([^"]+)" "([^"]+)"', wat)
    if imports != [("env", "memory")]:
        problems.append(f"it imports {imports}, expected only env.memory")
    exported = set(re.findall(r'\(export "([^"]+)"', wat))
    if not set(EXPORTS) <= exported:
        problems.append(f"it exports {sorted(exported)}, expected {EXPORTS}")
    if problems:
        raise SystemExit(f"{path}: refused: " + "; ".join(problems))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail unless a fresh build equals the shipped module")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "simd.wasm"
        compile_kernel(built)
        check_module(built)
        data = built.read_bytes()
    if args.check:
        if not SHIPPED.is_file() or SHIPPED.read_bytes() != data:
            print(f"{SHIPPED} differs from a fresh build of {SOURCE}: run python tools/build_kernel.py",
                  file=sys.stderr)
            return 1
        print(f"{SHIPPED.name}: matches a fresh build ({len(data)} bytes)")
        return 0
    SHIPPED.write_bytes(data)
    print(f"wrote {SHIPPED} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
