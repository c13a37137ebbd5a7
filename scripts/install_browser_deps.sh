#!/usr/bin/env bash
# Install what the in-browser app's build and real-browser test need, on a bare Debian machine. Idempotent.
#
#   bash scripts/install_browser_deps.sh
#
# - the three browser engines the tests drive, from Debian (never `playwright install` or a driver's own download):
#   Chromium, Firefox ESR and WebKitGTK (webkit2gtk-driver: WebKitWebDriver and MiniBrowser, under xvfb), a basic
#   font so screenshots have legible text, and npm's puppeteer-core for Firefox (tests/browser/package.json);
# - Node.js/npm (the mirror fetches the Pyodide core with `npm pack pyodide@0.27.7`; tests run Pyodide in Node);
# - clang-16, lld-16 and wabt: tools/build_kernel.py rebuilds the browser's WebAssembly SIMD kernels
#   (core/tinyrnn/engines/kernels/simd.wasm, simd_relaxed.wasm) and a test checks that they are what their source compiles to;
# - a Python 3.12 venv with pyodide-build (for `pyodide lockfile add-wheels` and `pyodide py-compile`;
#   Pyodide 0.27.7 runs CPython 3.12). The site build (sitebuild/pyodide_build.py) makes the same venv on
#   demand; doing it here keeps the mirror step's time predictable.
# The Python packages of the dev venv (panel, bokeh, playwright, build, ...) are installed by the project's
# own setup (pip install -e .[test] plus the webapp pins), not here.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The other two engines the browser tests drive (docs/_browsers.md): Firefox ESR (over WebDriver BiDi, with
# npm's puppeteer-core) and WebKitGTK (WebKitWebDriver + Selenium), which needs an X display: xvfb.
for pkg in firefox-esr webkit2gtk-driver xvfb xauth; do dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg"); done
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need_apt+=(fonts-dejavu-core)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
for pkg in clang-16 lld-16 wabt; do dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg"); done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "[install_browser_deps] apt-get install ${need_apt[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_apt[@]}"
else
  echo "[install_browser_deps] the browsers, fonts, npm and the WebAssembly toolchain already installed"
fi
/usr/bin/chromium --version 2>/dev/null | head -1 || true

# puppeteer-core (npm), which drives Firefox over WebDriver BiDi in the browser tests (no browser download: it
# drives Debian's firefox-esr); pinned by tests/browser/package-lock.json.
if [ ! -d tests/browser/node_modules/puppeteer-core ] \
   || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi
firefox-esr --version 2>/dev/null | head -1 || true

# Python 3.12 for pyodide-build: $PYTHON312, else pyenv's 3.12, else python3.12 on PATH, else Debian's.
PY312="${PYTHON312:-}"
if [ -z "$PY312" ]; then
  for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    [ -x "$cand" ] && PY312="$cand"
  done
fi
if [ -z "$PY312" ] && command -v python3.12 >/dev/null 2>&1 && python3.12 -c "" 2>/dev/null; then
  PY312="$(command -v python3.12)"
fi
if [ -z "$PY312" ]; then
  echo "[install_browser_deps] no Python 3.12 found: apt-get install python3.12 python3.12-venv"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3.12 python3.12-venv
  PY312="$(command -v python3.12)"
fi
echo "[install_browser_deps] Python 3.12 for pyodide-build: $PY312"
# The venv itself (with the pinned pyodide-build of sitebuild/pins.py) is made by the site build's own code.
PYTHON312="$PY312" python3 -m sitebuild.pyodide_build
