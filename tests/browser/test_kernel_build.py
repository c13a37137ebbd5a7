"""The WebAssembly modules the wheel ships (SIMD128 and relaxed SIMD) are what their C source compiles to, and pass
the build's safety checks.

Needs Debian's clang-16, lld-16 and wabt (scripts/install_browser_deps.sh installs them), hence the marker.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


def test_shipped_kernels_match_a_fresh_build():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "build_kernel.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_build_refuses_a_module_that_uses_the_stack(tmp_path):
    """The guard itself: C code that needs stack memory compiles to code touching the stack-pointer global."""
    sys.path.insert(0, str(REPO / "tools"))
    import build_kernel

    src = tmp_path / "stack.c"
    src.write_text('__attribute__((export_name("f"))) float f(int i) { volatile float buf[64]; buf[i & 63] = 1.0f;'
                   ' return buf[(i + 1) & 63]; }\n')
    out = tmp_path / "stack.wasm"
    subprocess.run([build_kernel.CLANG, "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-Wl,--import-memory",
                    "-o", str(out), str(src)], check=True)
    with pytest.raises(SystemExit, match="reads or writes a global"):
        build_kernel.check_module(out)
