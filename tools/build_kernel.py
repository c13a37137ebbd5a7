"""Compile core/tinyrnn/engines/kernels/simd.c to the WebAssembly modules the wheel ships: kernels/simd.wasm
(SIMD128) and kernels/simd_relaxed.wasm (the same source with the products' and tanh's multiply-adds fused by
f32x4.relaxed_madd, for browsers with relaxed SIMD: Chromium and Firefox; the page picks it by feature detection,
engines/wasm_module.py).

simd.c includes the shared arithmetic of the whole-window kernels (kernels/vector.h, window_impl.h,
window_cells.h), which the native package compiles too.

    python tools/build_kernel.py            # rebuild both modules
    python tools/build_kernel.py --check    # rebuild into a temporary directory; fail unless both equal the shipped ones

Needs Debian 12's clang-16, lld-16 and wabt (wasm2wat): ``apt-get install clang-16 lld-16 wabt``
(scripts/install_browser_deps.sh does it). Clang 16 is the first to emit relaxed SIMD's final opcodes (clang 14's
``__builtin_wasm_fma_f32x4`` encodes a prototype's, which no browser accepts). ``--check`` compares bytes, so another
clang version may legitimately differ.

The modules run inside Pyodide's own linear memory (they import it), so a build is refused unless its code is
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
KERNELS = REPO / "core" / "tinyrnn" / "engines" / "kernels"
SOURCE = KERNELS / "simd.c"
CLANG = "clang-16"
# the shipped modules, by wasm_module.VARIANTS' names, and the flags that make each from SOURCE
VARIANTS = {"simd": (KERNELS / "simd.wasm", []),
            "relaxed": (KERNELS / "simd_relaxed.wasm", ["-mrelaxed-simd", "-DTINYRNN_RELAXED_SIMD"])}
EXPORTS = ("sgemm", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "lstm_forward", "lstm_backward",
           "softmax_xent", "adam", "sum_squares", "add_into", "window_size", "window_forward", "window_backward")


def compile_kernel(out: Path, flags=()) -> None:
    cmd = [CLANG, "--target=wasm32", "-ffreestanding", "-O3", "-msimd128", *flags, "-nostdlib", "-ffp-contract=off",
           "-Wall", "-Werror", "-fuse-ld=lld", "-Wl,--no-entry", "-Wl,--import-memory", "-Wl,--strip-all",
           "-o", str(out), str(SOURCE)]
    subprocess.run(cmd, check=True)


def check_module(path: Path) -> None:
    """Refuse a module that could write outside the arrays it is given (see the module docstring)."""
    wat = subprocess.run(["wasm2wat", "--enable-all", str(path)], check=True, capture_output=True, text=True).stdout
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
    ap.add_argument("--check", action="store_true", help="fail unless fresh builds equal the shipped modules")
    args = ap.parse_args(argv)
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (shipped, flags) in VARIANTS.items():
            built = Path(tmp) / shipped.name
            compile_kernel(built, flags)
            check_module(built)
            data = built.read_bytes()
            if not args.check:
                shipped.write_bytes(data)
                print(f"wrote {shipped} ({len(data)} bytes)")
            elif not shipped.is_file() or shipped.read_bytes() != data:
                stale.append(shipped)
            else:
                print(f"{shipped.name}: matches a fresh build ({len(data)} bytes)")
    for shipped in stale:
        print(f"{shipped} differs from a fresh build of {SOURCE}: run python tools/build_kernel.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
