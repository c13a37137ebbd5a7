"""What the start-up benchmarks share (bench/startup.py, bench/startup_compare.py): the browser's flags, the
page-side timing script, the machine's description, CPU time of a browser's processes, formatting."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from sitebuild.patches import LOADING_STEPS

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
VISIT_TIMEOUT_S = 240
# Bokeh reports this while the worker links the documents right after the first render (harmless; the browser
# test ignores it too, see tests/browser/test_app_browser.py). Every page error is kept in the JSON file.
KNOWN_PAGE_ERROR = re.compile(r"^reference [0-9a-f-]{36} isn't known$")
# The worker's creation, its status messages (what the page shows while Python starts), its 'render', ready.
PHASES = ["worker", *LOADING_STEPS.values(), "render", "ready"]

# Runs in the page before its own scripts: timestamps of the worker's creation, of the first of each of its
# status messages and of 'render', and of the moment body loses the class pn-loading.
INIT_SCRIPT = r"""
(() => {
  const t = window.__startup = {phases: {}, ready: null};
  const Base = window.Worker;
  window.Worker = class extends Base {
    constructor(...args) {
      super(...args);
      t.phases.worker = performance.now();
      this.addEventListener('message', (e) => {
        const d = e.data || {};
        const key = d.type === 'status' ? d.msg : d.type;
        if ((d.type === 'status' || d.type === 'render') && !(key in t.phases)) t.phases[key] = performance.now();
      });
    }
  };
  const watch = () => {
    const check = () => {
      if (t.ready === null && !document.body.classList.contains('pn-loading')) t.ready = performance.now();
    };
    new MutationObserver(check).observe(document.body, {attributes: true, attributeFilter: ['class']});
  };
  if (document.body) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();
"""


def is_outside(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("data", "blob", "about") and parts.hostname != "127.0.0.1"


def browser_cpu_seconds(profile: str) -> float:
    """User + system CPU time of the Chromium using ``profile``: its browser process and all descendants (the
    renderer with the page's worker, GPU, network, ...), including children already reaped by them."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        procs[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]), cmd)
    tag = f"--user-data-dir={profile}".encode()
    roots = [p for p, (ppid, _, cmd) in procs.items() if tag in cmd and not (ppid in procs and tag in procs[ppid][2])]
    total, todo = 0, list(roots)
    while todo:
        p = todo.pop()
        total += procs[p][1]
        todo.extend(c for c, (ppid, _, _) in procs.items() if ppid == p)
    return total / os.sysconf("SC_CLK_TCK")


def machine_info(exe: str) -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    version = subprocess.run([exe, "--version"], check=False, capture_output=True, text=True).stdout.strip()
    from importlib.metadata import version as pkg_version

    return {"date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), "cpu": cpu,
            "nproc": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "chromium": version, "chromium_executable": exe, "playwright": pkg_version("playwright"),
            "loadavg_start": list(os.getloadavg())}


def median_range(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f}), n={len(xs)}"


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
