"""The start-up watchdog (sitebuild/js/watchdog.js), in Debian's Chromium: when a phase of the start takes far
longer than usual (here the app's wheel never arrives, and ``?watchdog=0.1`` makes "far longer" ten times sooner)
the page says what it is waiting for and offers a reload, which then starts the page."""
from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser


def test_a_stalled_start_says_what_it_waits_for_and_its_reload_button_recovers(app_page, site_url):
    page = app_page
    stalled = []
    page.route(re.compile(r"/wheels/tinyrnn_app-[^/]*\.whl$"), lambda route: stalled.append(route))  # never answered
    page.goto(site_url + "?watchdog=0.1", wait_until="domcontentloaded")
    notice = page.locator(".tr-watchdog")
    # (on a busy machine an earlier phase may outlast its shortened limit first: the notice then names that one)
    page.wait_for_function("() => (document.querySelector('.tr-watchdog') || {}).textContent"
                           "?.includes('the packages to install')", timeout=180_000)
    text = notice.inner_text()
    assert notice.get_attribute("role") == "alert"
    assert "Still waiting for the packages to install (2/3)" in text, text
    assert "served from the network" in text and "online" in text, text
    assert page.evaluate("() => document.body.classList.contains('pn-loading')")  # never said ready
    page.unroute(re.compile(r"/wheels/tinyrnn_app-[^/]*\.whl$"))
    with page.expect_navigation():
        page.locator(".tr-watchdog button", has_text="Reload the page").click()
    page.wait_for_function("() => !document.body.classList.contains('pn-loading')", timeout=240_000)
    page.wait_for_function("() => window.tinyrnnStartup.done", timeout=120_000)  # the app said Ready
    assert page.locator(".tr-watchdog").count() == 0


def test_a_blocked_python_worker_is_noticed_and_the_page_reloads_itself_once(app_page, site_url):
    """The worker's thread blocks (here its script ends with a loop that never returns, 2 s after it starts; in
    Firefox the browser left it waiting for good, issue 19): its heartbeat stops, the page says why and reloads
    itself once, and the new worker starts the app."""
    page = app_page
    served = []

    def app_js(route):
        response = route.fetch()
        body = response.text()
        if not served:
            body += "\nsetTimeout(() => { for (;;) {} }, 2000)  // the test: the worker's thread never returns\n"
        served.append(route.request.url)
        route.fulfill(response=response, body=body)

    page.route(re.compile(r"/app\.js(\?.*)?$"), app_js)
    page.goto(site_url + "?watchdog=0.1", wait_until="domcontentloaded")
    deadline = time.monotonic() + 180  # the heartbeat stops ~2 s in; the page waits 40 s for it
    while len(served) < 2:  # the reloaded page's worker asks for app.js again (the route answers it as it is)
        assert time.monotonic() < deadline, "the page did not reload itself"
        page.wait_for_timeout(250)
    page.wait_for_function("() => window.tinyrnnStartup && window.tinyrnnStartup.done && document.body"
                           " && !document.body.classList.contains('pn-loading')", timeout=240_000)
    assert len(served) == 2  # the blocked worker's page, then the one that reloaded itself
    assert page.evaluate("() => sessionStorage.getItem('tinyrnn-stall-reloads')") == "1"
    assert page.locator(".tr-watchdog").count() == 0
    assert not page.evaluate("() => window.tinyrnnStartup.stalled")
