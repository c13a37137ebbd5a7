"""The in-browser trainer, driven in Debian's Chromium, offline: the built self-contained site from 127.0.0.1,
everything else only from the offline mirror (any other request fails the test).

One scenario, as a person would use the page: wait for it to be ready, paste a text, train and watch the loss
fall and a sample appear, pause (the step counter stops), sample with a priming text, download the model and load
it in CPython with tinyrnn, upload a corrupt file (clear error, model kept), and put an HTML payload through every
text path (nothing executes, no element is created). Screenshots go to artifacts/browser/.
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"  # same folder as conftest's

pytestmark = pytest.mark.browser

READY_TIMEOUT_MS = 240_000
PAYLOAD = "<img src=x onerror=alert(1)>"
# A small, very regular text: a char RNN learns its frequent bigrams within seconds. It contains the payload
# so the vocabulary covers it and the payload can later be used as a priming text.
TRAINING_TEXT = (
    "the cat sat on the mat. the dog sat on the log. the cat and the dog sat together.\n" * 30
    + PAYLOAD + "\n"
)


def unexpected_page_errors(net) -> list[str]:
    """Every uncaught page error. (Bokeh's "reference <id> isn't known", holoviz/panel#5830, no longer reaches the
    page: sitebuild/js/apply_patch.js applies such a patch an event at a time, test_a_visit_leaves_no_chart_...)"""
    return list(net.page_errors)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def text_of(page, selector: str) -> str:
    """Text inside a component's shadow DOM (Playwright CSS locators pierce open shadow roots)."""
    return page.locator(selector).first.inner_text()


def step_of(page) -> int:
    m = re.search(r"Step\s+([\d,]+)", text_of(page, ".tr-step .tr-kv"))
    assert m, "no step readout"
    return int(m.group(1).replace(",", ""))


def train_loss_of(page) -> float | None:
    m = re.search(r"Train loss\s+([0-9.]+)\s+nats/char", text_of(page, ".tr-loss .tr-kv"))
    return float(m.group(1)) if m else None


def wait_until(page, predicate, timeout_s: float, what: str, interval_ms: int = 250):
    deadline = time.monotonic() + timeout_s
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - readouts may be mid-render; retry until the deadline
            last_exc = e
        page.wait_for_timeout(interval_ms)
    shot(page, f"timeout-{re.sub(r'[^a-z0-9]+', '-', what.lower())}")
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for: {what}" + (f" ({last_exc})" if last_exc else ""))


def set_text(page, selector: str, value: str) -> None:
    """Type into a Bokeh text widget and commit it (Panel syncs `value` on change)."""
    box = page.locator(selector).first
    box.fill(value)
    box.dispatch_event("change")
    box.blur()


def click(page, css: str) -> None:
    page.locator(f"{css} button").first.click()


def open_tab(page, name: str) -> None:
    """Show one of the page's tabs ("Train", "Text and settings", "Inside the model", "The cells race",
    "Model file")."""
    page.locator(".tr-tabs .bk-tab", has_text=name).first.click()
    page.wait_for_timeout(200)


def assert_no_payload_executed(page) -> None:
    net = page.net
    assert not net.dialogs, f"a dialog opened: {net.dialogs}"
    assert page.locator("img[src='x']").count() == 0, "the payload became an <img> element"


# Samples, every 25 ms from the first script on, what the loading page shows: the status text, the backend line,
# whether the Train button is disabled, and whether the body still has Panel's pn-loading class.
WATCH_LOADING = """
window.__trSamples = [];
(() => {
  function find(root, cls) {
    const el = root.querySelector('.' + cls);
    if (el) return el;
    for (const e of root.querySelectorAll('*')) {
      if (e.shadowRoot) { const hit = find(e.shadowRoot, cls); if (hit) return hit; }
    }
    return null;
  }
  const text = (cls) => {
    const host = document.body && find(document, cls);
    const pre = host && (host.shadowRoot || host).querySelector('pre');
    return pre ? pre.textContent : null;
  };
  const timer = setInterval(() => {
    if (!document.body) return;
    const host = find(document, 'tr-train');
    const button = host && (host.shadowRoot || host).querySelector('button');
    window.__trSamples.push({t: performance.now(), loading: document.body.classList.contains('pn-loading'),
                             status: text('tr-status'), backend: text('tr-backend'),
                             trainDisabled: button ? button.disabled : null});
    if (window.__trSamples.length > 4000) clearInterval(timer);
  }, 25);
})();
"""


def test_the_page_says_loading_until_python_runs_and_an_early_click_is_harmless(app_page, site_url):
    page = app_page
    net = page.net
    page.add_init_script(WATCH_LOADING)
    page.goto(site_url, wait_until="domcontentloaded")
    # the pre-rendered page: Train is there, visibly disabled, and the status says it is loading
    train = page.locator(".tr-train button").first
    train.wait_for(state="attached", timeout=60_000)
    page.locator(".tr-status pre").first.wait_for(state="attached", timeout=60_000)  # its text may come a frame later
    status = wait_until(page, lambda: text_of(page, ".tr-status pre").strip(), 10, "the pre-rendered status text")
    assert page.evaluate("() => document.body.classList.contains('pn-loading')"), "Python was ready too soon to test"
    assert status.startswith("Loading") and "Ready" not in status, status
    assert train.is_disabled()
    train.click(force=True)  # a click during loading (the button is disabled: it must do nothing)
    page.locator(".tr-text textarea").first.click(force=True)
    wait_until(page, lambda: unexpected_page_errors(net) and pytest.fail(f"the page failed: {net.page_errors}")
               or page.evaluate("() => !document.body.classList.contains('pn-loading')"),
               READY_TIMEOUT_MS / 1000, "the page to be ready (body loses pn-loading)")
    wait_until(page, lambda: text_of(page, ".tr-status pre").startswith("Ready"), 30, "the Ready status")
    assert page.locator(".tr-train button").first.is_enabled()
    samples = page.evaluate("() => window.__trSamples")
    seen = [s for s in samples if s["status"] is not None]
    assert seen and seen[0]["loading"] and seen[0]["status"].startswith("Loading"), seen[:3]
    early_ready = [s for s in seen if s["loading"] and "Ready" in s["status"]]
    assert not early_ready, f"the status said Ready while the page was still loading: {early_ready[:3]}"
    enabled_early = [s for s in seen if s["loading"] and s["trainDisabled"] is False]
    assert not enabled_early, f"Train looked enabled while loading: {enabled_early[:3]}"
    blas = [s for s in samples if s["backend"] and "BLAS" in s["backend"]]
    assert not blas, f"the backend line claimed BLAS: {blas[:3]}"
    # the early click was not carried out later either: no model, no training
    page.wait_for_timeout(1500)
    assert step_of(page) == 0 and text_of(page, ".tr-status pre").startswith("Ready")
    assert page.locator(".tr-pause button").first.is_disabled()
    assert text_of(page, ".tr-backend .tr-pre").startswith("Matrix products: WebAssembly SIMD kernels")
    assert not unexpected_page_errors(net), f"uncaught errors in the page: {net.page_errors}"


def test_train_sample_download_upload_offline(app_page, site_url, tmp_path):
    import tinyrnn

    page = app_page
    net = page.net
    t0 = time.monotonic()
    page.goto(site_url, wait_until="domcontentloaded")
    wait_until(page, lambda: unexpected_page_errors(net) and pytest.fail(f"the page failed: {net.page_errors}")
               or page.evaluate("() => !document.body.classList.contains('pn-loading')"),
               READY_TIMEOUT_MS / 1000, "the page to be ready (body loses pn-loading)")
    ready_s = time.monotonic() - t0
    (ARTIFACTS / "ready-time.json").write_text(json.dumps({"navigation_to_ready_s": round(ready_s, 2)}))
    print(f"page ready in {ready_s:.1f}s")
    shot(page, "01-ready")
    assert not net.unmirrored, f"requests outside the site and the mirror: {net.unmirrored}"
    # The widgets are live: the default corpus is in the text area and its size is reported.
    assert page.locator(".tr-text textarea").first.input_value().strip(), "the text area should be pre-filled"
    # Training runs on the WebAssembly SIMD kernels (tinyrnn.engines.wasm_module), not numpy's fallback.
    backend = text_of(page, ".tr-backend .tr-pre")
    assert backend.startswith("Matrix products: WebAssembly SIMD kernels"), backend

    # --- paste a text ------------------------------------------------------------------------------------------
    open_tab(page, "Text and settings")
    set_text(page, ".tr-text textarea", TRAINING_TEXT)
    n_chars = len(TRAINING_TEXT)
    wait_until(page, lambda: f"{n_chars:,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30,
               "the pasted text to reach Python (size readout)")
    info = text_of(page, ".tr-text-info .tr-pre")
    assert f"vocabulary of {len(set(TRAINING_TEXT))} characters" in info, info

    # --- train: the loss falls below its starting value, a live sample appears ---------------------------------
    open_tab(page, "Train")
    click(page, ".tr-train")
    first_loss = wait_until(page, lambda: train_loss_of(page), 60, "a first training loss")
    assert 0 < first_loss < 10, first_loss
    wait_until(page, lambda: (train_loss_of(page) or 99) < first_loss - 0.3, 120,
               f"the training loss to fall below its start ({first_loss:.3f}) by 0.3 nats/char")
    sample = wait_until(page, lambda: text_of(page, ".tr-live-sample .tr-pre").strip(), 60, "a live sample")
    assert set(sample) <= set(TRAINING_TEXT), "the sample uses characters outside the vocabulary"
    assert step_of(page) > 0
    shot(page, "02-training")

    # --- pause: the step counter stops ---------------------------------------------------------------------
    t_pause = time.monotonic()
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status .tr-pre"), 10, "the Paused status")
    pause_latency = time.monotonic() - t_pause
    paused_step = step_of(page)
    page.wait_for_timeout(2500)
    assert step_of(page) == paused_step, "training went on after Pause"
    assert f"Paused at step {paused_step}" in text_of(page, ".tr-status .tr-pre")
    assert pause_latency < 5, f"Pause took {pause_latency:.1f}s"
    assert page.locator(".tr-resume button").first.is_enabled()
    shot(page, "03-paused")

    # --- sample with a priming text ------------------------------------------------------------------------
    set_text(page, ".tr-prime input", "the dog ")
    page.locator(".tr-prime input").first.press("Enter")
    set_text(page, ".tr-length input", "80")
    click(page, ".tr-sample")
    wait_until(page, lambda: "after a 8-character prime" in text_of(page, ".tr-sample-info .tr-pre"), 30,
               "the primed sample")
    primed = text_of(page, ".tr-sample-output .tr-pre")
    assert primed.startswith("the dog "), primed
    assert len(primed) == len("the dog ") + 80, len(primed)
    shot(page, "04-sampled")

    # --- download the model and load it in CPython ---------------------------------------------------------
    open_tab(page, "Model file")
    with page.expect_download(timeout=60_000) as dl_info:
        click(page, ".tr-download")
    download = dl_info.value
    path = tmp_path / download.suggested_filename
    download.save_as(str(path))
    assert path.suffix == ".npz" and path.stat().st_size > 0
    ckpt = tinyrnn.load_checkpoint(str(path))
    assert ckpt.config.hidden_size == int(page.locator(".tr-hidden-size input").first.input_value())
    assert ckpt.vocab.size == len(set(TRAINING_TEXT))
    trainer = tinyrnn.Trainer.from_checkpoint(ckpt, TRAINING_TEXT)
    assert trainer.step_count == paused_step
    assert set(trainer.sample(50, prime="the ", temperature=0.5)) <= set(TRAINING_TEXT)

    # --- upload a corrupt file: a clear error, the model is kept -------------------------------------------
    bad_name = f"{PAYLOAD}.npz"
    page.locator(".tr-upload-model input[type=file]").first.set_input_files(
        files=[{"name": bad_name, "mimeType": "application/octet-stream", "buffer": b"PK\x03\x04 this is not a model"}]
    )
    err = wait_until(page, lambda: page.locator(".tr-error .tr-alert").first.inner_text(), 30, "an error message")
    assert "Could not load" in err and "model" in err, err
    if "<img" in err or "onerror" in err:  # if the app names the file, it shows the name literally
        assert bad_name in err, f"the file name is shown, but not literally: {err!r}"
    assert "current model is kept" in err, err
    assert step_of(page) == paused_step
    shot(page, "05-corrupt-upload")
    assert_no_payload_executed(page)

    # --- the payload as text: pasted, primed and sampled, shown literally, never executed -------------------
    open_tab(page, "Train")
    set_text(page, ".tr-prime input", PAYLOAD)
    page.locator(".tr-prime input").first.press("Enter")
    click(page, ".tr-sample")
    wait_until(page, lambda: text_of(page, ".tr-sample-output .tr-pre").startswith(PAYLOAD), 30,
               "a sample primed with the payload, shown literally")
    open_tab(page, "Text and settings")
    set_text(page, ".tr-text textarea", PAYLOAD)
    wait_until(page, lambda: f"{len(PAYLOAD)} characters" in text_of(page, ".tr-text-info .tr-pre"), 30,
               "the payload as training text")
    page.wait_for_timeout(1000)
    shot(page, "06-payload")
    assert_no_payload_executed(page)

    # --- nothing beyond the site and its mirror; no errors -------------------------------------------------
    assert not net.unmirrored, f"requests outside the site and the mirror: {net.unmirrored}"
    assert not net.local_errors, f"failed requests to the site: {net.local_errors}"
    assert not unexpected_page_errors(net), f"uncaught errors in the page: {net.page_errors}"
    assert not math.isnan(ready_s)


def wait_ready(page, timeout_s: float = READY_TIMEOUT_MS / 1000) -> None:
    net = page.net
    wait_until(page, lambda: unexpected_page_errors(net) and pytest.fail(f"the page failed: {net.page_errors}")
               or (page.evaluate("() => !document.body.classList.contains('pn-loading')")
                   and not text_of(page, ".tr-status pre").startswith("Loading")),
               timeout_s, "the page to be ready")


def download_checkpoint(page, tmp_path, name: str):
    import tinyrnn

    open_tab(page, "Model file")
    with page.expect_download(timeout=60_000) as dl_info:
        click(page, ".tr-download")
    path = tmp_path / name
    dl_info.value.save_as(str(path))
    return tinyrnn.load_checkpoint(str(path))


def test_reload_restores_the_model_which_continues_exactly_and_forget_clears_it(app_page, site_url, tmp_path):
    import numpy as np
    import tinyrnn

    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    open_tab(page, "Text and settings")
    set_text(page, ".tr-text textarea", TRAINING_TEXT)
    wait_until(page, lambda: f"{len(TRAINING_TEXT):,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30,
               "the pasted text to reach Python")
    click(page, ".tr-train")
    wait_until(page, lambda: step_of(page) >= 50, 120, "50 training steps")
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")
    step = step_of(page)
    wait_until(page, lambda: f"keeps the model at step {step:,}" in text_of(page, ".tr-storage .tr-pre"), 30,
               "the paused model to be kept in the browser")
    before = download_checkpoint(page, tmp_path, "before.npz")
    assert before.progress["step"] == step
    shot(page, "10-kept")

    page.reload(wait_until="domcontentloaded")
    wait_ready(page)
    status = text_of(page, ".tr-status pre")
    assert status.startswith("Restored the model from ") and f"step {step:,}" in status, status
    assert step_of(page) == step
    assert page.locator(".tr-text textarea").first.input_value() == TRAINING_TEXT
    shot(page, "11-restored")
    after = download_checkpoint(page, tmp_path, "after.npz")
    assert after.progress == before.progress and after.config == before.config
    assert all(np.array_equal(after.params[k], before.params[k]) for k in before.params)
    a, b = (tinyrnn.Trainer.from_checkpoint(c, TRAINING_TEXT) for c in (before, after))
    for _ in range(3):  # the restored model continues exactly as the one before the reload would have
        assert a.step().train_loss == b.step().train_loss
    click(page, ".tr-resume")
    wait_until(page, lambda: step_of(page) > step, 60, "training to continue after the reload")
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")

    open_tab(page, "Model file")
    click(page, ".tr-forget")
    wait_until(page, lambda: "keeps nothing" in text_of(page, ".tr-storage .tr-pre"), 30, "Forget to clear the store")
    page.reload(wait_until="domcontentloaded")
    wait_ready(page)
    assert text_of(page, ".tr-status pre").startswith("Ready"), text_of(page, ".tr-status pre")
    assert step_of(page) == 0
    assert page.locator(".tr-text textarea").first.input_value() == tinyrnn.default_corpus()
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


FIRST_SCREEN = (".tr-corpus select", ".tr-train button", ".tr-pause button", ".tr-readouts .tr-step",
                ".tr-readouts .tr-val-loss", ".tr-status pre")


def first_box(page, selector: str, attempts: int = 8):
    """The bounding box of the first element matching ``selector``. The readouts pane replaces its elements twice a
    second, and an element replaced between being found and measured has no box (None): it is measured again, up
    to ``attempts`` times. An element that is there but not shown stays None."""
    box = None
    for _ in range(attempts):
        box = page.locator(selector).first.bounding_box()
        if box is not None:
            return box
        page.wait_for_timeout(100)
    return box


def assert_first_screen(page, width: int, height: int) -> None:
    """The text choice, Train/Pause and the live readouts are on the first screen, and nothing is wider than it."""
    page.evaluate("() => window.scrollTo(0, 0)")
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide on a {width} px screen"
    for selector in FIRST_SCREEN:
        box = first_box(page, selector)
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


def test_the_first_screen_on_a_laptop_holds_the_text_choice_train_and_the_readouts(app_page, site_url):
    page = app_page
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    page.wait_for_timeout(1000)
    assert_first_screen(page, 1366, 768)
    click(page, ".tr-train")
    wait_until(page, lambda: step_of(page) >= 30, 60, "training")
    page.wait_for_timeout(1500)
    assert_first_screen(page, 1366, 768)
    page.screenshot(path=str(ARTIFACTS / "40-laptop-first-screen.png"))
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


def test_phone_width_settings_messages_and_a_clean_console(app_page, site_url):
    """On a 390 x 844 screen: the first screen holds the text choice, Train/Pause and the readouts, no horizontal
    overflow (in every tab), disabled buttons that look disabled; bad input everywhere gets its message on the page;
    the console shows no Python traceback."""
    page = app_page
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    page.wait_for_timeout(1000)  # charts and fonts settle
    assert_first_screen(page, 390, 844)
    opacity = page.locator(".tr-pause button").first.evaluate("b => getComputedStyle(b).opacity")
    assert float(opacity) <= 0.5, f"a disabled button looks enabled (opacity {opacity})"
    page.screenshot(path=str(ARTIFACTS / "20-phone-first-screen.png"))
    shot(page, "20-phone")
    for name in ("Inside the model", "The cells race", "Model file", "Text and settings"):
        open_tab(page, name)
        page.wait_for_timeout(300)
        scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll_width <= 390, f"the {name} tab is {scroll_width} px wide on a 390 px screen"

    # out-of-range settings: the page names the allowed range (and the input keeps what was typed)
    for selector, value, words in ((".tr-hidden-size input", "0", "from 1 to 512"),
                                   (".tr-lr input", "1000", "(0, 10]"),
                                   (".tr-seq-len input", "0", "from 1 to 1,000")):
        set_text(page, selector, value)
        page.locator(selector).first.press("Enter")
        wait_until(page, lambda: words in text_of(page, ".tr-settings-info .tr-pre"), 30, f"the message for {value}")
        assert page.locator(selector).first.input_value() == value
    click(page, ".tr-train")
    wait_until(page, lambda: "Cannot start training" in page.locator(".tr-error .tr-alert").first.inner_text(), 30,
               "Train to be refused with the reason")
    shot(page, "21-bad-settings")
    for selector, value in ((".tr-hidden-size input", "32"), (".tr-lr input", "0.01"), (".tr-seq-len input", "20")):
        set_text(page, selector, value)
        page.locator(selector).first.press("Enter")
    wait_until(page, lambda: not page.locator(".tr-settings-info").first.is_visible(), 30, "the messages to go")
    # a bad upload, an unusable text, a bad sampling input: each gets a message
    open_tab(page, "Model file")
    page.locator(".tr-upload-model input[type=file]").first.set_input_files(
        files=[{"name": "junk.npz", "mimeType": "application/octet-stream", "buffer": b"junk"}])
    wait_until(page, lambda: "Could not load junk.npz" in page.locator(".tr-error .tr-alert").first.inner_text(), 30,
               "the bad upload's message")
    open_tab(page, "Text and settings")
    set_text(page, ".tr-text textarea", "aaaaaaaa")
    wait_until(page, lambda: "one distinct character" in text_of(page, ".tr-text-info .tr-pre"), 30, "the text message")
    click(page, ".tr-train")
    wait_until(page, lambda: "one distinct character" in page.locator(".tr-error .tr-alert").first.inner_text(), 30,
               "Train refused for the text")
    set_text(page, ".tr-text textarea", TRAINING_TEXT)
    wait_until(page, lambda: f"{len(TRAINING_TEXT):,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30,
               "the good text")
    click(page, ".tr-train")
    wait_until(page, lambda: step_of(page) > 20, 60, "training")
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")
    open_tab(page, "Train")
    set_text(page, ".tr-temperature input", "-1")
    page.locator(".tr-temperature input").first.press("Enter")
    wait_until(page, lambda: "[0, 5]" in text_of(page, ".tr-settings-info .tr-pre"), 30, "the temperature message")
    click(page, ".tr-sample")
    wait_until(page, lambda: "Cannot sample" in page.locator(".tr-error .tr-alert").first.inner_text(), 30,
               "Sample refused with the reason")
    shot(page, "22-bad-input")
    tracebacks = [line for line in console if "Traceback" in line or "Error:" in line and "pyodide" in line.lower()]
    assert not tracebacks, tracebacks
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


def set_setting(page, css: str, value: str) -> None:
    set_text(page, f"{css} input", value)
    page.locator(f"{css} input").first.press("Enter")


def test_the_largest_accepted_settings_train_and_pause_within_a_second(app_page, site_url):
    """The page's largest accepted model (hidden size 512, seq_len x batch x hidden at its bound) trains, and
    Pause takes effect within a second."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "webapp"))
    from tinyrnn_app import settings

    H, T = settings.MAX_PAGE_HIDDEN, 25
    B = settings.MAX_WORK["fused"] // (T * H)
    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    open_tab(page, "Text and settings")
    for css, value in ((".tr-hidden-size", H), (".tr-seq-len", T), (".tr-batch-size", B)):
        set_setting(page, css, str(value))
    wait_until(page, lambda: page.locator(".tr-hidden-size input").first.input_value() == str(H), 10, "the settings")
    page.wait_for_timeout(500)
    assert not page.locator(".tr-settings-info").first.is_visible(), text_of(page, ".tr-settings-info .tr-pre")
    click(page, ".tr-train")
    wait_until(page, lambda: step_of(page) >= 20, 120, "20 steps of the largest model")
    page.wait_for_timeout(2500)  # into the rhythm of validation passes, flow snapshots and live samples
    latencies = []
    for _ in range(3):
        started = time.monotonic()
        click(page, ".tr-pause")
        wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status",
                   interval_ms=25)
        latencies.append(time.monotonic() - started)
        click(page, ".tr-resume")
        wait_until(page, lambda: "Training" in text_of(page, ".tr-status pre"), 10, "training again")
        page.wait_for_timeout(1500)
    print(f"Pause latencies at H={H}, T={T}, B={B}: {[round(x, 2) for x in latencies]}")
    # the median of three: a shared 2-core machine under load stretches a single click now and then
    assert sorted(latencies)[1] < 1.0, latencies
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


def test_overfitting_is_shown_and_the_best_model_can_be_downloaded(app_page, site_url, tmp_path):
    import tinyrnn

    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    text = tinyrnn.default_corpus()[:3000]  # short: the model learns it by heart
    open_tab(page, "Text and settings")
    set_text(page, ".tr-text textarea", text)
    wait_until(page, lambda: f"{len(text):,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30, "the text")
    set_setting(page, ".tr-batch-size", "8")
    set_setting(page, ".tr-lr", "0.005")
    page.wait_for_timeout(500)
    click(page, ".tr-train")
    notice = wait_until(page, lambda: "overfitting" in text_of(page, ".tr-notice .tr-pre")
                        and text_of(page, ".tr-notice .tr-pre"), 240, "the overfitting notice")
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")
    shot(page, "30-overfitting")
    best_step = int(re.search(r"since step ([\d,]+)", notice).group(1).replace(",", ""))
    open_tab(page, "Model file")
    assert page.locator(".tr-download-best button").first.is_enabled()
    with page.expect_download(timeout=60_000) as dl_info:
        page.locator(".tr-download-best button").first.click()
    path = tmp_path / dl_info.value.suggested_filename
    dl_info.value.save_as(str(path))
    best = tinyrnn.load_checkpoint(str(path))
    assert "best" in path.name and best.progress["step"] == best_step < step_of(page)
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


CHART_NOISE = re.compile(r"could not set initial ranges|could not determine (minimum|maximum) data value|"
                         r"reference [0-9a-f-]+ isn't known")


def test_a_visit_leaves_no_chart_warnings_in_the_console(app_page, site_url):
    """Load, train, look at every tab, compare the cells, pause: Bokeh says nothing about its ranges or unknown
    references in the console."""
    page = app_page
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    click(page, ".tr-train")
    wait_until(page, lambda: step_of(page) >= 30, 60, "training")
    for name in ("Text and settings", "Inside the model", "The cells race", "Model file", "Train"):
        open_tab(page, name)
        page.wait_for_timeout(700)
    open_tab(page, "The cells race")
    click(page, ".tr-compare")
    wait_until(page, lambda: "over a window of" in text_of(page, ".tr-compare-info .tr-pre"), 60, "the comparison")
    open_tab(page, "Train")
    page.wait_for_timeout(2500)  # live samples, flow snapshots
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "the Paused status")
    noise = [line for line in console if CHART_NOISE.search(line)]
    assert not noise, noise
    # Upstream (holoviz/panel#5830): at start-up the worker patches the `stylesheets` of a model (Panel's own CSS,
    # no app CSS) that it never sent to the page. The page applies that patch an event at a time and leaves out only
    # such events (sitebuild/js/apply_patch.js): no error, and nothing dropped but styles of models not on the page.
    assert not page.net.page_errors, page.net.page_errors
    dropped = page.evaluate("() => window.tinyrnnDroppedPatchEvents || []")
    assert all(d["attr"] == "stylesheets" for d in dropped), dropped
