"""Cross-origin isolation from the site's own service worker (docs/deploy.md, "Cross-origin isolation"), in Debian's
Chromium, with the site served as ``make run`` serves it (sitebuild/serve.py sends no COOP/COEP).

The first visit is served before the service worker controls the page: not isolated. From the next load on, the
page and the Pyodide worker are (read from Python in the worker), a SharedArrayBuffer made there is shared with a
worker that the Pyodide worker starts itself, from a ``blob:`` URL and from a same-origin script URL, and
``Atomics.wait``/``notify`` work between the two; the app loads with no failed request or console error, trains, and
restores its kept model from IndexedDB; the page and the worker script carry the two headers, every other listed
file is served as the build listed it (sha256, the server's content type).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.request

import pytest

from test_app_browser import download_checkpoint
from test_offline import listed_entries, step_of, wait_for, wait_ready

pytestmark = pytest.mark.browser

# The nested worker (a test file beside the site: not in the SW's cache, so fetched, and given the SW's headers as
# a worker script). On the buffer: it reports, blocks in Atomics.wait until the Pyodide worker stores a[0], doubles
# it into a[1] after a pause and wakes the Pyodide worker, which waits for that, with Atomics.notify.
PROBE = "probe-worker.js"
PROBE_JS = """
self.onmessage = (event) => {
  const a = new Int32Array(event.data);
  self.postMessage({isolated: self.crossOriginIsolated, shared: event.data instanceof SharedArrayBuffer});
  const woke = Atomics.wait(a, 0, 0, 20000);
  Atomics.wait(a, 3, 0, 300);  // a pause, so that the Pyodide worker is waiting when a[1] changes
  Atomics.store(a, 1, Atomics.load(a, 0) * 2);
  self.postMessage({woke, notified: Atomics.notify(a, 1)});
};
"""
# Runs in the Pyodide worker (Playwright's Worker.evaluate): isolation and a SharedArrayBuffer from Python, then the
# exchange with a nested worker made from `source` ("blob" or "url").
IN_PYODIDE_WORKER = """async ([source, probeJs, probeUrl]) => {
  const fromPython = JSON.parse(self.pyodide.runPython(
    "import js, json; json.dumps([bool(js.crossOriginIsolated), js.SharedArrayBuffer.new(8).byteLength])"));
  const sab = new SharedArrayBuffer(16);
  const a = new Int32Array(sab);
  const url = source === "blob"
    ? URL.createObjectURL(new Blob([probeJs], {type: "text/javascript"})) : new URL(probeUrl, self.location.href).href;
  const worker = new Worker(url);
  const messages = [];
  const next = () => new Promise((resolve, reject) => {
    worker.onmessage = (e) => { messages.push(e.data); resolve(e.data); };
    worker.onerror = (e) => reject(new Error(`the nested worker failed: ${e.message || 'it did not load'}`));
    setTimeout(() => reject(new Error('the nested worker did not answer in 20 s')), 20000);
  });
  worker.postMessage(sab);
  await next();  // it has the buffer and is about to wait on a[0]
  const paused = Atomics.wait(a, 3, 0, 300);  // a pause, so that it is waiting
  Atomics.store(a, 0, 21);
  const notified = Atomics.notify(a, 0);
  const woke = Atomics.wait(a, 1, 0, 20000);
  await next();
  worker.terminate();
  return {fromPython, workerIsolated: self.crossOriginIsolated, paused, notified, woke, doubled: Atomics.load(a, 1),
          nested: messages};
}"""


@pytest.fixture(scope="module")
def site_url(site_dir, tmp_path_factory):
    """Here: the built site plus the nested worker's script, served by sitebuild.serve as make run serves the site
    (overrides conftest's ``site_url``, so ``sw_page`` visits it)."""
    from sitebuild import serve

    root = tmp_path_factory.mktemp("site-with-probe")
    for entry in site_dir.iterdir():
        os.symlink(entry, root / entry.name)
    (root / PROBE).write_text(PROBE_JS)
    server = serve.make_server(root, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/"
    server.shutdown()
    server.server_close()


# Runs in the isolated page: what the service worker answers to fetch() for each listed file, and whether
# pyodide.asm.wasm compiles streaming.
SERVED = """async (paths) => {
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
  const out = {};
  const record = async (path, response) => {
    out[path] = {status: response.status, type: response.headers.get('content-type'),
                 coop: response.headers.get('cross-origin-opener-policy'),
                 coep: response.headers.get('cross-origin-embedder-policy'),
                 sha256: hex(await crypto.subtle.digest('SHA-256', await response.arrayBuffer()))};
  };
  for (const path of paths) await record(path, await fetch(path));
  try {
    await WebAssembly.compileStreaming(fetch('pyodide/pyodide.asm.wasm'));
    out.wasm = 'compiled';
  } catch (e) { out.wasm = String(e); }
  return out;
}"""


def server_content_type(url: str) -> str:
    """The Content-Type the server itself sends for ``url`` (what the service worker's copy must keep)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers["Content-Type"]


def pyodide_worker(page):
    workers = [w for w in page.workers if w.url.endswith("/app.js")]
    assert len(workers) == 1, [w.url for w in page.workers]
    return workers[0]


def text_of(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def isolation_of(page) -> dict:
    return page.evaluate("""() => ({isolated: self.crossOriginIsolated,
                                    controlled: !!navigator.serviceWorker.controller,
                                    sab: typeof SharedArrayBuffer === 'function'})""")


def test_isolated_from_the_second_load_with_shared_memory_between_pyodide_and_its_workers(sw_page, site_dir, tmp_path):
    page = sw_page
    failed = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.goto(page.site_url, wait_until="domcontentloaded")
    wait_ready(page)
    first = isolation_of(page)
    assert first["isolated"] is False and first["sab"] is False, first
    first_worker = pyodide_worker(page).evaluate("() => self.crossOriginIsolated")
    assert first_worker is False
    # the page says so, and trains on one worker (tinyrnn.start_workers found no shared memory)
    assert text_of(page, ".tr-backend .tr-pre").endswith(
        "Training: one worker: this page is not cross-origin isolated yet (it is from the first load after this browser "
        "has saved the site for offline use, usually within a minute: reload then)")
    # and once that is done, the page says so (sitebuild/js/watchdog.js)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=120_000)
    assert isolation_of(page)["isolated"] is False  # controlled now, but a document's isolation is set when it loads
    note = page.locator(".tr-sw-note")
    note.wait_for(timeout=10_000)
    assert "reload to train on every core" in note.inner_text(), note.inner_text()

    page.net.console_errors.clear()
    scripts = []
    page.on("response", lambda r: scripts.append(r) if r.url == page.site_url + "app.js" else None)
    document = page.reload(wait_until="domcontentloaded")
    wait_ready(page)
    assert isolation_of(page) == {"isolated": True, "controlled": True, "sab": True}
    listed = dict(listed_entries(site_dir))
    for path, response in [("./", document), *(("app.js", r) for r in scripts)]:  # the page, the Pyodide worker
        headers = response.all_headers()
        assert response.status == 200 and response.from_service_worker, response.url
        assert hashlib.sha256(response.body()).hexdigest() == listed[path], path
        assert headers.get("cross-origin-opener-policy") == "same-origin", (response.url, headers)
        assert headers.get("cross-origin-embedder-policy") == "require-corp", (response.url, headers)
    assert scripts and document.all_headers()["content-type"].startswith("text/html")
    worker = pyodide_worker(page)
    # Panel's pyodide-http was imported without its streaming worker (a worker started by a worker, which Firefox
    # can deadlock: issue 19), and the Python worker's crossOriginIsolated reads true again
    assert worker.evaluate("""() => [self.crossOriginIsolated, self.pyodide.runPython(
        'import pyodide_http._streaming as s; s._fetcher is None and s.crossOriginIsolated is False')]""") == [True, True]
    for source in ("blob", "url"):
        got = worker.evaluate(IN_PYODIDE_WORKER, [source, PROBE_JS, f"./{PROBE}"])
        print(source, json.dumps(got))
        assert got["fromPython"] == [True, 8], got
        assert got["workerIsolated"] is True
        assert got["nested"][0] == {"isolated": True, "shared": True}, got
        assert got["paused"] == "timed-out"  # Atomics.wait blocks in the Pyodide worker
        assert got["notified"] == 1 and got["nested"][1]["woke"] == "ok", got  # the nested worker was woken
        assert got["woke"] == "ok" and got["nested"][1]["notified"] == 1, got  # and it woke the Pyodide worker
        assert got["doubled"] == 42, got  # each saw what the other wrote

    # isolated, the app started a helper worker per core (beyond its own), and the page says how many train
    cores = page.evaluate("() => navigator.hardwareConcurrency")
    expected = f"Training: {cores} workers (shared memory)" if cores > 1 else "Training: one worker (1 core here)"
    try:
        wait_for(page, lambda: text_of(page, ".tr-backend .tr-pre").endswith(expected), 30, expected)
    except AssertionError as e:
        raise AssertionError(f"{e}; the page says {text_of(page, '.tr-backend .tr-pre')!r} and "
                             f"{text_of(page, '.tr-status pre')!r}") from None
    page.locator(".tr-train button").first.click()  # the defaults: the tanh RNN, B=16: its windows are split
    first_step = wait_for(page, lambda: (step_of(page) or 0) > 0 and step_of(page), 60, "a first training step")
    wait_for(page, lambda: (step_of(page) or 0) > first_step, 60, "the step counter to advance")
    assert text_of(page, ".tr-backend .tr-pre").endswith(expected)  # still: no helper failed while training
    page.locator(".tr-pause button").first.click()
    wait_for(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")
    step = step_of(page)
    wait_for(page, lambda: f"keeps the model at step {step:,}" in text_of(page, ".tr-storage .tr-pre"), 30,
             "the paused model to be kept in the browser (IndexedDB)")
    page.reload(wait_until="domcontentloaded")  # isolated again, and the kept model is restored
    wait_ready(page)
    assert isolation_of(page)["isolated"] is True
    status = wait_for(page, lambda: (t := text_of(page, ".tr-status pre")).startswith("Restored the model from ")
                      and t, 30, "the kept model to be restored")
    assert f"step {step:,}" in status, status
    assert download_checkpoint(page, tmp_path, "isolated.npz").progress["step"] == step  # a download, isolated
    assert not failed, failed  # nothing blocked by COEP (or anything else)
    assert not page.net.console_errors, page.net.console_errors
    assert not page.net.unmirrored and not page.net.local_errors, (page.net.unmirrored, page.net.local_errors)

    served = page.evaluate(SERVED, list(listed))
    for path, sha in listed.items():  # fetched from the cache (not a document, not a worker): as the server sent it
        got = served[path]
        assert got["status"] == 200 and got["sha256"] == sha, (path, got)
        assert got["type"] == server_content_type(page.site_url + path), (path, got)
        assert got["coop"] is None and got["coep"] is None, (path, got)  # kept as cached (sw.js: isolated())
    assert served["wasm"] == "compiled", served["wasm"]  # streaming, so it still comes as application/wasm
