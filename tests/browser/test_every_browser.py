"""The key flows in each of the three engines (tests/browser/engines.py; docs/app.md, "Supported browsers"): Chromium, Firefox ESR
and WebKitGTK, from Debian, on the built site served as ``make run`` serves it.

One visit per engine, as a person would use the page: ready; paste a text; train; pause (three times, timed in the
page: the median within a second); sample with a prime; download the model and load it back; the service worker
takes over; reload (isolated now) restores the model; the worker status names what trains, and training uses
every core where the engine gives workers shared memory; the site goes off the network and a reload starts from
the browser's copy and trains. Over the whole visit no uncaught error reaches the page (each load's record of the
start-up watchdog, and the engine's own page-error events where the driver has them).
"""
from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import pytest

from engines import wait

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
READY_TIMEOUT_S = 240
TRAINING_TEXT = "the cat sat on the mat. the dog sat on the log. the cat and the dog sat together.\n" * 30

# Times a Pause in the page itself: from the click on .tr-pause (capture phase) until the status says "Paused".
PAUSE_PROBE = """() => {
  window.__trPause = null;
  const status = () => {
    const find = (root) => {
      const host = root.querySelector('.tr-status');
      if (host) return (host.shadowRoot || host).querySelector('pre');
      for (const el of root.querySelectorAll('*')) if (el.shadowRoot) { const h = find(el.shadowRoot); if (h) return h; }
      return null;
    };
    const pre = find(document);
    return pre ? pre.textContent : '';
  };
  const onClick = (event) => {
    if (!event.composedPath().some((n) => n.classList && n.classList.contains('tr-pause'))) return;
    document.removeEventListener('click', onClick, true);
    const t0 = performance.now();
    const timer = setInterval(() => {
      if (status().includes('Paused at step')) { clearInterval(timer); window.__trPause = performance.now() - t0; }
    }, 10);
  };
  document.addEventListener('click', onClick, true);
}"""
# Whether a dedicated worker of this page gets SharedArrayBuffer (what helper workers need).
WORKER_SAB = """() => new Promise((resolve) => {
  const url = URL.createObjectURL(new Blob(["postMessage(typeof SharedArrayBuffer === 'function')"],
                                           {type: 'text/javascript'}));
  const w = new Worker(url);
  w.onmessage = (e) => { w.terminate(); resolve(e.data); };
  w.onerror = () => resolve(false);
})"""
# Whether this engine has relaxed SIMD: it validates (module (func (param v128 v128 v128) (result v128)
#   local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd)), wat2wasm --enable-relaxed-simd's 37 bytes.
RELAXED_SIMD = """() => WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123,
  1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11]))"""
STUCK = """() => ({body: document.body && document.body.className, status: (window.tinyrnnStartup || {}).phase,
                  notice: ((window.tinyrnnStartup || {}).shown || {}).textContent,
                  errors: (window.tinyrnnStartup || {}).errors, controlled: !!navigator.serviceWorker.controller})"""
START_RECORD = "() => { const s = window.tinyrnnStartup; return s ? {errors: s.errors, shown: !!s.shown} : null; }"
STALL_RELOADS = "() => sessionStorage.getItem('tinyrnn-stall-reloads')"  # the reloads the watchdog made by itself


def step_of(tab) -> int:
    m = re.search(r"Step\s+([\d,]+)", tab.text("tr-step", ".tr-kv"))
    return int(m.group(1).replace(",", "")) if m else -1


def status_of(tab) -> str:
    return tab.text("tr-status")


class Visit:
    """One engine's visit: loads (with their times), and every uncaught error seen on any of them."""

    def __init__(self, tab):
        self.tab, self.errors, self.ready_s = tab, [], []

    def load(self, how, *args) -> float:
        self.collect()
        t0 = time.monotonic()
        how(*args)
        try:
            wait(lambda: self.tab.ready() and not status_of(self.tab).startswith("Loading"), READY_TIMEOUT_S,
                 f"{self.tab.engine}: the page to be ready")
        except AssertionError as e:
            raise AssertionError(f"{e}; the page: {self.tab.run(STUCK)}") from None
        self.ready_s.append(round(time.monotonic() - t0, 1))
        record = self.tab.run(START_RECORD)
        assert record is not None and not record["shown"], f"the start-up watchdog spoke: {record}"
        assert self.tab.run(STALL_RELOADS) is None, (
            "the page reloaded itself: its Python worker's thread was blocked (sitebuild/js/watchdog.js)")
        return self.ready_s[-1]

    def collect(self):
        """The errors of the load that is ending (the watchdog's record, the driver's page errors)."""
        try:
            record = self.tab.run(START_RECORD)
        except Exception:  # noqa: BLE001 - no page yet
            record = None
        errors = (record or {}).get("errors", []) + [m for m in self.tab.console if m.startswith("pageerror")]
        self.errors += errors  # WebKit's "ResizeObserver loop completed ..." too (sitebuild/js/resize_frames.js)
        self.tab.console.clear()


def pause_now(tab) -> float:
    tab.run(PAUSE_PROBE)
    tab.click("tr-pause")
    return wait(lambda: tab.run("() => window.__trPause"), 30, "the Paused status") / 1000


def test_key_flows(engine, serve_site, tmp_path):
    import tinyrnn

    url, take_offline = serve_site()
    tab = engine.tab()
    visit = Visit(tab)
    report = {"engine": engine.version()}
    problems = []  # checked at the end, so that one visit shows every problem of an engine
    try:
        # --- first visit: ready; paste a text; train; the loss falls ---------------------------------------------
        report["ready_first_s"] = visit.load(tab.goto, url)
        # the kernels' module: the relaxed SIMD build exactly where the engine has relaxed SIMD (feature detection)
        report["relaxed_simd"] = tab.run(RELAXED_SIMD)
        if ("relaxed SIMD" in tab.text("tr-backend")) != report["relaxed_simd"]:
            problems.append(f"relaxed SIMD {report['relaxed_simd']} here, yet the page says {tab.text('tr-backend')!r}")
        tab.fill("tr-text", TRAINING_TEXT, "textarea")
        wait(lambda: f"{len(TRAINING_TEXT):,} characters" in tab.text("tr-text-info"), 30, "the text to reach Python")
        tab.click("tr-train")
        wait(lambda: step_of(tab) >= 30, 120, "30 training steps")
        t_train, s_train = time.monotonic(), step_of(tab)
        wait(lambda: step_of(tab) >= s_train + 30, 120, "30 more steps")
        report["steps_per_s_one_worker"] = round((step_of(tab) - s_train) / (time.monotonic() - t_train), 1)

        # --- pause: within a second (median of three), and the steps stop ----------------------------------------
        pauses = []
        for i in range(3):
            tab.run("() => new Promise((r) => setTimeout(r, 1500))")  # into the rhythm of a tick
            pauses.append(round(pause_now(tab), 2))
            if i < 2:
                tab.click("tr-resume")
                wait(lambda: status_of(tab).startswith("Training"), 30, "training again")
        report["pause_s"] = pauses
        paused = step_of(tab)
        tab.run("() => new Promise((r) => setTimeout(r, 1500))")
        assert step_of(tab) == paused, "training went on after Pause"

        # --- sample with a prime --------------------------------------------------------------------------------
        tab.fill("tr-prime", "the dog ", "input")
        tab.fill("tr-length", "80", "input")
        tab.click("tr-sample")
        wait(lambda: "after a 8-character prime" in tab.text("tr-sample-info"), 30, "the primed sample")
        sample = tab.text("tr-sample-output")
        assert sample.startswith("the dog ") and len(sample) == 88, sample

        # --- download the model; it loads in CPython and back into the page ------------------------------------
        name, data = tab.download("tr-download")
        path = tmp_path / name
        path.write_bytes(data)
        ckpt = tinyrnn.load_checkpoint(str(path))
        assert ckpt.progress["step"] == paused and ckpt.vocab.size == len(set(TRAINING_TEXT))
        tab.click("tr-reset")
        wait(lambda: step_of(tab) == 0, 30, "Reset to discard the model")
        tab.upload("tr-upload-model", name, data)
        wait(lambda: status_of(tab).startswith(f"Loaded {name}"), 60, "the downloaded model to load back")
        assert step_of(tab) == paused
        tab.click("tr-resume")  # the loaded model trains on
        wait(lambda: step_of(tab) >= paused + 5, 60, "the loaded model to train")
        pause_now(tab)
        paused = step_of(tab)
        wait(lambda: f"keeps the model at step {paused:,}" in tab.text("tr-storage"), 60, "the model to be kept")

        # --- the service worker takes over; a reload is isolated and restores the model --------------------------
        wait(lambda: tab.run("() => navigator.serviceWorker.controller !== null"), 180,
             "the service worker to cache the site and take over")
        report["ready_reload_s"] = visit.load(tab.reload)
        status = status_of(tab)
        if not (status.startswith("Restored the model from ") and f"step {paused:,}" in status):
            problems.append(f"the reload's status does not say the model was restored: {status!r}")
        assert f"keeps your work" in tab.text("tr-storage"), tab.text("tr-storage")  # read back from IndexedDB
        assert tab.run("() => self.crossOriginIsolated") is True
        shared = tab.run(WORKER_SAB)
        cores = tab.run("() => navigator.hardwareConcurrency")
        backend = tab.text("tr-backend")
        report.update(cores_reported=cores, workers_get_shared_memory=shared, backend=backend)
        if shared:
            assert "workers (shared memory)" in backend, backend
        else:
            assert "SharedArrayBuffer" in backend, f"the worker status does not name the cause: {backend!r}"
        tab.click("tr-resume")
        wait(lambda: step_of(tab) >= paused + 30, 120, "training to continue after the reload")
        if not status_of(tab).startswith("Training"):
            problems.append(f"training, but the status says {status_of(tab)!r}")
        t_train, s_train = time.monotonic(), step_of(tab)
        wait(lambda: step_of(tab) >= s_train + 30, 120, "30 more steps")
        report["steps_per_s_after_reload"] = round((step_of(tab) - s_train) / (time.monotonic() - t_train), 1)
        report["backend_training"] = tab.text("tr-backend")
        if shared:
            assert "workers (shared memory)" in report["backend_training"], report["backend_training"]
        pause_now(tab)

        # --- off the network: the reload starts from the browser's copy and trains ---------------------------
        take_offline()
        report["ready_offline_s"] = visit.load(tab.reload)
        assert "keeps your work" in tab.text("tr-storage"), tab.text("tr-storage")
        tab.click("tr-resume")
        at = step_of(tab)
        wait(lambda: step_of(tab) > at + 5, 120, "training offline")
        pause_now(tab)
        visit.collect()
        report["uncaught_errors"] = visit.errors
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"engine-{engine.name}.json").write_text(json.dumps(report, indent=1))
        print(json.dumps(report))
        tab.close()
    if statistics.median(report["pause_s"]) > 1.0:
        problems.append(f"Pause took {report['pause_s']} s (median above 1 s)")
    if visit.errors:
        problems.append(f"uncaught errors over the visit: {visit.errors}")
    assert not problems, f"{engine.name}: " + "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["firefox"], indirect=True)
def test_twenty_offline_reloads_in_a_row_all_start(engine, serve_site):
    """Firefox can deadlock a worker that starts a Web Worker of its own (issue 19): offline reloads stalled while
    the Python worker started the training helpers (the page starts them now, sitebuild/js/helpers.js), and under
    load while pyodide-http started its streaming worker (now imported without it, js/no_streaming_worker.js).
    Every one of 20 in a row must become ready and train on its helpers, and the watchdog must not have had to
    speak."""
    url, take_offline = serve_site()
    tab = engine.tab()
    visit = Visit(tab)
    workers = []
    try:
        visit.load(tab.goto, url)
        wait(lambda: tab.run("() => navigator.serviceWorker.controller !== null"), 180,
             "the service worker to cache the site and take over")
        take_offline()
        for i in range(20):
            visit.load(tab.reload)
            # isolated offline too: the helper workers started (the stall was in starting them)
            workers.append(wait(lambda: re.search(r"Training: (\d+) workers \(shared memory\)", tab.text("tr-backend")),
                                60, "the helper workers to start").group(1))
            print(f"offline reload {i + 1}: ready in {visit.ready_s[-1]} s, {workers[-1]} workers", flush=True)
        visit.collect()
    finally:
        print(f"{engine.name}: offline reloads ready in {visit.ready_s[1:]} s")
        tab.close()
    assert len(visit.ready_s) == 21 and len(workers) == 20
    assert not visit.errors, visit.errors
