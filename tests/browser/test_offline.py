"""Offline use (docs/deploy.md, "Offline and return visits"), in Debian's Chromium: after a first visit the service
worker has cached every file the page loads, each as the build listed it; with the network cut, a reload starts the
app from that cache and it trains."""
from __future__ import annotations

import json
import re
import time
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

READY_TIMEOUT_S = 240


def wait_for(page, predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - readouts may be mid-render
            value = None
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_ready(page) -> None:
    wait_for(page, lambda: page.evaluate("() => !document.body.classList.contains('pn-loading')"), READY_TIMEOUT_S,
             "the page to be ready (body loses pn-loading)")


def step_of(page) -> int | None:
    m = re.search(r"Step\s+([\d,]+)", page.locator(".tr-step .tr-kv").first.inner_text())
    return int(m.group(1).replace(",", "")) if m else None


def listed_entries(site_dir) -> list[list[str]]:
    """[[path, sha256], ...]: the files the build's service worker caches (site-relative; "./" is the page)."""
    m = re.search(r"^const FILES = (\[.*\]);", (site_dir / "sw.js").read_text(), flags=re.M)
    return json.loads(m.group(1))


def listed_files(site_dir) -> list[str]:
    return [path for path, _ in listed_entries(site_dir)]


def site_relative(url: str, site_url: str) -> str:
    return "./" if url.split("?")[0] == site_url else unquote(urlsplit(url).path[len(urlsplit(site_url).path):])


def test_after_one_visit_the_site_starts_offline_from_the_cache_and_trains(sw_page, site_url, site_dir):
    page = sw_page
    requested = []
    page.on("request", lambda r: requested.append(r.url) if r.url.startswith(site_url) else None)
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    # the service worker takes over the page once it has cached (and checked) every listed file
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=120_000)
    listed = listed_files(site_dir)
    first_visit = {site_relative(u, site_url) for u in requested} - {"sw.js"}
    assert first_visit <= set(listed), f"loaded but not cached for offline use: {sorted(first_visit - set(listed))}"
    cached = page.evaluate("""async () => {
        const name = (await caches.keys()).find((n) => n.startsWith('tinyrnn-site-'));
        return (await (await caches.open(name)).keys()).map((r) => r.url);
    }""")
    assert sorted(site_relative(u, site_url) for u in cached) == sorted(listed)

    page.context.set_offline(True)
    responses, failed = [], []
    page.on("response", lambda r: responses.append((r.url, r.from_service_worker)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    t0 = time.monotonic()
    page.reload(wait_until="domcontentloaded")
    wait_ready(page)
    print(f"offline start: ready in {time.monotonic() - t0:.1f} s")
    assert not failed, failed
    not_from_cache = [u for u, from_sw in responses if u.startswith(site_url) and not from_sw]
    assert responses and not not_from_cache, f"offline, but not served by the service worker: {not_from_cache}"
    assert page.evaluate("() => navigator.onLine") is False
    assert page.evaluate("() => self.crossOriginIsolated") is True  # the service worker's headers (test_isolation.py)

    page.locator(".tr-train button").first.click()
    first = wait_for(page, lambda: (step_of(page) or 0) > 0 and step_of(page), 60, "a first training step")
    wait_for(page, lambda: (step_of(page) or 0) > first, 60, "the step counter to advance")
    page.locator(".tr-pause button").first.click()
    assert not page.net.unmirrored and not page.net.page_errors, (page.net.unmirrored, page.net.page_errors)
