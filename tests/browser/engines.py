"""One way to drive the page in three browser engines (docs/app.md, "Supported browsers"): Debian's Chromium with Playwright (CDP),
Debian's Firefox ESR with npm's puppeteer-core over WebDriver BiDi (``firefox_bidi.mjs``: Playwright's BiDi client
sends commands Firefox ESR 153 lacks), and Debian's WebKitGTK with Selenium and ``WebKitWebDriver`` under Xvfb.

``Tab`` is what a test sees: ``goto``, ``reload``, ``run`` (JavaScript in the page), ``click``/``fill``/``text`` of a
control named by its selector in ``tinyrnn_app.selectors`` (``"tr-train"``), ``upload`` and ``download``.
``REACH`` is the one place that knows how to reach a control: it finds ``.tr-NAME`` through the page's open shadow
roots, and if the control is hidden (in a tab that is not shown) it clicks the tab headers until it shows.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ENGINES = ("chromium", "firefox", "webkit")
CHROMIUM = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
FIREFOX = os.environ.get("TINYRNN_FIREFOX", "/usr/bin/firefox-esr")
WEBKIT_DRIVER = os.environ.get("TINYRNN_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Firefox preferences for a quiet, offline-capable test profile (no update or telemetry traffic).
FIREFOX_PREFS = {"app.update.enabled": False, "browser.shell.checkDefaultBrowser": False,
                 "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
                 "network.captive-portal-service.enabled": False, "dom.serviceWorkers.enabled": True}

# Finds a control: `name` is a selector of tinyrnn_app.selectors ("tr-train"), `inner` the element inside it
# ("button", "textarea", "pre", ...; "" for the host). Searches open shadow roots. With `attempt` < 0 it returns the
# element shown or not (to read its text); else it returns it only once it is shown, and while it is hidden it clicks
# one tab header (Bokeh's .bk-tab, number `attempt` of them) and returns null: a tab's panel is drawn after the click
# returns, so the caller asks again a moment later (Tab.reach), and each try opens the next tab.
REACH = r"""
(name, inner, attempt) => {
  const all = (root, css, out = []) => {
    for (const el of root.querySelectorAll(css)) out.push(el);
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) all(el.shadowRoot, css, out);
    return out;
  };
  let el = null;
  for (const host of all(document, '.' + name)) {
    el = inner ? (all(host.shadowRoot || host, inner)[0] || all(host, inner)[0] || null) : host;
    if (el) break;
  }
  if (!el || attempt < 0) return el;
  if (el.getClientRects().length > 0 && getComputedStyle(el).visibility === 'visible') {  // (tabs hide by visibility)
    el.scrollIntoView({block: 'center'});
    return el;
  }
  const tabs = all(document, '.bk-tab');
  if (tabs.length) tabs[attempt % tabs.length].click();
  return null;
}
"""
# Sets a text control's value as typing would end (input, then change: Panel syncs `value` on change).
FILL = """(el, value) => {
  el.focus(); el.value = value;
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
  el.blur();
}"""
# Gives a file input one file, as a person choosing it would (the page's change handler reads it).
UPLOAD = """(el, name, b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: 'application/octet-stream'}));
  el.files = transfer.files;
  el.dispatchEvent(new Event('change', {bubbles: true}));
}"""
# Download buttons hand the browser a link with a `download` name; this keeps the last one (href and name), so
# the test reads the same bytes the browser would save (saving files is not what differs between engines).
CATCH_DOWNLOADS = """() => {
  if (window.__trDownloads) return;
  window.__trDownloads = [];
  const keep = (a) => { if (a && a.download) window.__trDownloads.push({href: a.href, name: a.download}); };
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () { keep(this); return click.call(this); };
  document.addEventListener('click', (e) => keep(e.composedPath().find((n) => n instanceof HTMLAnchorElement)),
                            true);
}"""
READ_DOWNLOAD = """async (count) => {
  const list = window.__trDownloads;
  if (!list || list.length <= count) return null;
  const {href, name} = list[list.length - 1];
  const bytes = new Uint8Array(await (await fetch(href)).arrayBuffer());
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return {name, b64: btoa(s)};
}"""


class Tab:
    """A page in one engine. Subclasses implement ``_eval`` (JavaScript function source + args -> value, awaited),
    ``_handle`` (an element for ``REACH``), ``_click``, ``goto``, ``reload``, ``close``."""

    engine = ""

    def run(self, js: str, *args):
        """Calls the JavaScript function ``js`` in the page with ``args``; returns its (awaited) value."""
        return self._eval(js, *args)

    def reach(self, name: str, inner: str = ""):
        """The control, shown (its tab opened): asks ``REACH`` until it is, for up to 15 s."""
        for attempt in range(60):
            el = self._handle(name, inner, attempt)
            if el is not None:
                return el
            time.sleep(0.25)
        raise AssertionError(f"no control .{name} {inner} shown on the page")

    def click(self, name: str) -> None:
        self._click(self.reach(name, "button"))

    def fill(self, name: str, value: str, inner: str = "input, textarea") -> None:
        self._call(FILL, self.reach(name, inner), value)

    def text(self, name: str, inner: str = "pre, .tr-kv, .tr-alert") -> str:
        """The control's text, found and read in one call in the page (the readouts are replaced twice a second, so
        a handle taken in one call can be stale by the next)."""
        return self.run(f"(name, inner) => {{ const el = ({REACH})(name, inner, -1); return el ? el.textContent : ''; }}",
                        name, inner)

    def enabled(self, name: str) -> bool:
        return self._call("(el) => !el.disabled", self.reach(name, "button"))

    def upload(self, name: str, filename: str, data: bytes) -> None:
        self.reach(name)  # its tab open; a file input itself may be drawn invisible, so it is taken as it is
        self._call(UPLOAD, self._handle(name, "input[type=file]", -1), filename, base64.b64encode(data).decode())

    def download(self, name: str, timeout_s: float = 60) -> tuple[str, bytes]:
        """Clicks a download button; returns (file name, bytes) of what the page hands the browser."""
        self.run(CATCH_DOWNLOADS)
        count = self.run("() => window.__trDownloads.length")
        self.click(name)
        got = wait(lambda: self.run(READ_DOWNLOAD, count), timeout_s, f"a download from .{name}")
        return got["name"], base64.b64decode(got["b64"])

    def ready(self) -> bool:
        return self.run("() => !document.body.classList.contains('pn-loading')")


class PlaywrightTab(Tab):
    def __init__(self, browser, engine: str):
        self.engine = engine
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def _eval(self, js, *args):
        return self.page.evaluate(f"([a]) => ({js})(...a)", [list(args)])

    def _handle(self, name, inner, attempt):
        handle = self.page.evaluate_handle(f"([n, i, a]) => ({REACH})(n, i, a)", [name, inner, attempt])
        return handle.as_element()

    def _call(self, js, el, *args):
        return el.evaluate(f"(el, a) => ({js})(el, ...a)", list(args))

    def _click(self, el):
        el.click()

    def goto(self, url):
        self.page.goto(url, wait_until="domcontentloaded")

    def reload(self):
        self.page.reload(wait_until="domcontentloaded")

    def close(self):
        self.context.close()


class BidiTab(Tab):
    """Firefox: each call goes to ``firefox_bidi.mjs`` (puppeteer-core), which runs it in a browser context of its own."""

    def __init__(self, bridge):
        self.engine = "firefox"
        self.bridge = bridge
        self.id = bridge.send("newTab")
        self.console: list[str] = []

    def _eval(self, js, *args):
        self.console += self.bridge.send("console", tab=self.id)
        return self.bridge.send("evaluate", tab=self.id, fn=js, args=list(args))

    def _handle(self, name, inner, attempt):
        return self.bridge.send("handle", tab=self.id, fn=REACH, args=[name, inner, attempt])

    def _call(self, js, el, *args):
        return self.bridge.send("call", tab=self.id, handle=el, fn=js, args=list(args))

    def _click(self, el):
        self.bridge.send("click", tab=self.id, handle=el)

    def goto(self, url):
        self.bridge.send("goto", tab=self.id, url=url)

    def reload(self):
        self.bridge.send("reload", tab=self.id)

    def close(self):
        self.console += self.bridge.send("console", tab=self.id)
        self.bridge.send("close", tab=self.id)


class Bridge:
    """``node firefox_bidi.mjs``: one JSON line per call, one per answer."""

    def __init__(self):
        script = Path(__file__).with_name("firefox_bidi.mjs")
        if not (script.parent / "node_modules" / "puppeteer-core").is_dir():
            raise FileNotFoundError("no puppeteer-core: run make browser-deps (npm ci in tests/browser)")
        self.proc = subprocess.Popen(["node", str(script), FIREFOX, json.dumps(FIREFOX_PREFS)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.next = 0

    def send(self, cmd: str, **args):
        self.next += 1
        self.proc.stdin.write(json.dumps({"id": self.next, "cmd": cmd, **args}) + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"firefox_bidi.mjs ended (exit code {self.proc.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"Firefox: {cmd}: {answer['error']}")
        return answer["value"]

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class SeleniumTab(Tab):
    """WebKitGTK: WebKitWebDriver drives Debian's MiniBrowser (on the Xvfb display the fixture starts)."""

    def __init__(self, driver):
        self.engine = "webkit"
        self.driver = driver
        self.console: list[str] = []  # WebKitWebDriver has no log API: the page's own record is read instead

    def _eval(self, js, *args):
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve(({js})(...Array.from(arguments).slice(0, -1)))"
            ".then(done, (e) => done({__error: String(e && e.stack || e)}));", *args)

    def run(self, js, *args):
        value = self._eval(js, *args)
        if isinstance(value, dict) and "__error" in value:
            raise AssertionError(f"in the page: {value['__error']}")
        return value

    def _handle(self, name, inner, attempt):
        return self.driver.execute_script(f"return ({REACH})(arguments[0], arguments[1], arguments[2])", name, inner,
                                          attempt)

    def _call(self, js, el, *args):
        return self.driver.execute_script(f"return ({js})(...arguments)", el, *args)

    def _click(self, el):
        el.click()

    def goto(self, url):
        self.driver.get(url)

    def reload(self):
        self.driver.refresh()

    def close(self):
        pass


def wait(predicate, timeout_s: float, what: str, interval_s: float = 0.25):
    """The first truthy value of ``predicate()`` within ``timeout_s``, else AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - the page may be mid-render or mid-navigation; retry until the deadline
            last = e
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}" + (f" ({last})" if last else ""))


class Xvfb:
    """A private X display for WebKitGTK (``Xvfb -displayfd``: the server picks a free display number)."""

    def __init__(self):
        read, write = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1000x24", "-nolisten",
                                      "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as f:
            self.display = ":" + f.readline().strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def minibrowser() -> str:
    """Debian's MiniBrowser (shipped with libwebkit2gtk), which WebKitWebDriver starts."""
    for p in sorted(Path("/usr/lib").glob("*/webkit2gtk-*/MiniBrowser")) + sorted(Path("/usr/libexec").glob(
            "webkit2gtk-*/MiniBrowser")):
        return str(p)
    raise FileNotFoundError("no WebKitGTK MiniBrowser: run scripts/install_browser_deps.sh")


class Engine:
    """A started browser of one engine; ``tab()`` opens a fresh profile/context, ``stop()`` ends everything."""

    def __init__(self, name: str, chromium=None):
        """``chromium``: a Playwright Chromium browser already started in this thread (one sync Playwright per
        thread: a second one refuses to start inside the first one's loop), else one is started here."""
        self.name = name
        self._stack = []
        if name == "chromium" and chromium is not None:
            self._browser = chromium
        elif name == "chromium":
            from playwright.sync_api import sync_playwright

            self._pw = sync_playwright().start()
            self._stack.append(self._pw.stop)
            self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            self._stack.append(self._browser.close)
        elif name == "firefox":
            self._bridge = Bridge()
            self._stack.append(self._bridge.stop)
        elif name == "webkit":
            self._xvfb = Xvfb()
            self._stack.append(self._xvfb.stop)
        else:
            raise ValueError(f"unknown engine {name!r}; one of {ENGINES}")

    def version(self) -> str:
        if self.name == "webkit":
            return "WebKitGTK " + subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libwebkit2gtk-4.1-0"],
                                                 capture_output=True, text=True).stdout.strip()
        if self.name == "firefox":
            return self._bridge.send("version")
        return f"{self.name} {self._browser.version}"

    def tab(self) -> Tab:
        if self.name == "chromium":
            return PlaywrightTab(self._browser, self.name)
        if self.name == "firefox":
            return BidiTab(self._bridge)
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        options = Options()
        options.binary_location = minibrowser()
        options.add_argument("--automation")
        profile = tempfile.mkdtemp(prefix="tinyrnn-webkit-")
        env = {**os.environ, "DISPLAY": self._xvfb.display, "HOME": profile, "XDG_CACHE_HOME": profile,
               "XDG_DATA_HOME": profile, "WEBKIT_DISABLE_COMPOSITING_MODE": "1"}
        service = Service(executable_path=WEBKIT_DRIVER, env=env)
        driver = webdriver.WebKitGTK(options=options, service=service)
        driver.set_script_timeout(120)
        driver.set_window_size(1280, 1000)
        tab = SeleniumTab(driver)

        def close():
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)

        tab.close = close
        return tab

    def stop(self):
        while self._stack:
            self._stack.pop()()
