"""What the page says while Python starts (docs/deploy.md, "honest loading"), in Debian's Chromium, offline.

From the moment the page is parsed until Python is ready, the loading overlay says what is loading, with progress
("Loading the Python runtime (1/3)…", "Installing packages (2/3)…", "Starting the app (3/3)…"), never "Ready";
a failure (here: the app's wheel cannot be fetched) is shown as an alert and the page never becomes ready.
"""
from __future__ import annotations

import re
import time

import pytest

from sitebuild.patches import LOADING_STEPS

pytestmark = pytest.mark.browser

READY_TIMEOUT_S = 240
# Runs before the page's own scripts: every text the loading message shows, and when body loses pn-loading.
RECORD = """
(() => {
  const seen = window.__loading = {texts: [], errors: [], readyAt: null, loadingAtEachText: []};
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.pn-loading-msg')) {
      const text = el.textContent;
      if (seen.texts[seen.texts.length - 1] !== text) {
        seen.texts.push(text);
        seen.loadingAtEachText.push(document.body.classList.contains('pn-loading'));
      }
      if (el.classList.contains('tr-loading-error')) seen.errors.push([text, el.getAttribute('role')]);
    }
    if (seen.readyAt === null && document.body && !document.body.classList.contains('pn-loading'))
      seen.readyAt = performance.now();
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
})();
"""
STEP = re.compile(r"\((\d)/3\)…$")


def loading_record(page) -> dict:
    return page.evaluate("() => window.__loading")


def test_the_page_says_what_it_loads_until_python_is_ready(app_page, site_url):
    page = app_page
    page.add_init_script(RECORD)
    page.goto(site_url, wait_until="domcontentloaded")
    # at once, before the worker has said anything: the first step, over a page that is still loading
    first = page.locator(".pn-loading-msg").first
    assert first.text_content() in LOADING_STEPS.values()
    assert page.evaluate("() => document.body.classList.contains('pn-loading')")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while loading_record(page)["readyAt"] is None:
        assert time.monotonic() < deadline, f"not ready after {READY_TIMEOUT_S} s: {loading_record(page)}"
        assert not loading_record(page)["errors"], loading_record(page)["errors"]
        page.wait_for_timeout(100)
    seen = loading_record(page)
    steps = [int(STEP.search(t).group(1)) for t in seen["texts"]]
    assert all(t in LOADING_STEPS.values() for t in seen["texts"]), seen["texts"]
    assert steps[0] == 1 and steps[-1] == 3 and steps == sorted(steps), seen["texts"]
    assert all(seen["loadingAtEachText"]), "a loading message showed on a page that was ready"
    assert not any("ready" in t.lower() for t in seen["texts"])
    assert page.locator(".pn-loading-msg").count() == 0, "the loading message stayed after the page was ready"
    assert not seen["errors"]


def test_a_package_that_fails_to_load_is_shown_and_the_page_never_becomes_ready(app_page, site_url):
    page = app_page
    page.add_init_script(RECORD)
    page.route(re.compile(r"/wheels/tinyrnn_app-[^/]*\.whl$"), lambda route: route.fulfill(status=404, body="gone"))
    page.goto(site_url, wait_until="domcontentloaded")
    alert = page.locator(".pn-loading-msg.tr-loading-error")
    alert.wait_for(timeout=READY_TIMEOUT_S * 1000)
    assert alert.get_attribute("role") == "alert"
    assert alert.text_content().startswith("Could not install the packages: ")
    assert "tinyrnn_app" in alert.text_content()
    page.wait_for_timeout(3000)  # nothing carries on after the failure
    body_classes = page.evaluate("() => [...document.body.classList]")
    assert "pn-loading" in body_classes and "pn-arc" not in body_classes  # still not ready; the spinner stopped
    assert alert.text_content().startswith("Could not install the packages: ")
    assert loading_record(page)["readyAt"] is None
