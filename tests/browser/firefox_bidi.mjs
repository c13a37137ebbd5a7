// Debian's Firefox ESR driven over WebDriver BiDi by puppeteer-core, for tests/browser/engines.py (Playwright's
// BiDi client needs commands Firefox ESR lacks). One JSON command per line on stdin, one JSON answer per line on
// stdout: {id, value} or {id, error}. The flows themselves stay in Python; this only carries the calls.
//
//   node firefox_bidi.mjs /usr/bin/firefox-esr
import {createInterface} from "node:readline";
import puppeteer from "puppeteer-core";

const browser = await puppeteer.launch({
  browser: "firefox", protocol: "webDriverBiDi", executablePath: process.argv[2], headless: true,
  extraPrefsFirefox: JSON.parse(process.argv[3] || "{}"),
});
const tabs = new Map();  // id -> {context, page, console: [...], handles: Map}
let nextTab = 0;
let nextHandle = 0;

const commands = {
  async version() { return await browser.version(); },
  async newTab() {
    const context = await browser.createBrowserContext();  // its own storage, cache and service workers
    const page = await context.newPage();
    await page.setViewport({width: 1280, height: 1000});
    const tab = {context, page, console: [], handles: new Map()};
    page.on("console", (m) => tab.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => tab.console.push(`pageerror: ${e && e.message || e}`));
    tabs.set(++nextTab, tab);
    return nextTab;
  },
  async goto({tab, url}) { await tabs.get(tab).page.goto(url, {waitUntil: "domcontentloaded", timeout: 0}); },
  async reload({tab}) { await tabs.get(tab).page.reload({waitUntil: "domcontentloaded", timeout: 0}); },
  async evaluate({tab, fn, args}) {
    return await tabs.get(tab).page.evaluate(`(${fn})(...${JSON.stringify(args)})`);
  },
  async handle({tab, fn, args}) {  // an element the function returns, kept under an id (null if none)
    const t = tabs.get(tab);
    const h = await t.page.evaluateHandle(`(${fn})(...${JSON.stringify(args)})`);
    const el = h.asElement();
    if (!el) { await h.dispose(); return null; }
    t.handles.set(++nextHandle, el);
    return nextHandle;
  },
  async call({tab, handle, fn, args}) {
    return await tabs.get(tab).handles.get(handle).evaluate(new Function("el", "a", `return (${fn})(el, ...a)`), args);
  },
  async click({tab, handle}) { await tabs.get(tab).handles.get(handle).click(); },
  async console({tab}) { return tabs.get(tab).console.splice(0); },
  async close({tab}) { await tabs.get(tab).context.close(); tabs.delete(tab); },
};

const lines = createInterface({input: process.stdin});
for await (const line of lines) {
  const {id, cmd, ...args} = JSON.parse(line);
  try {
    const value = await commands[cmd](args);
    process.stdout.write(JSON.stringify({id, value: value === undefined ? null : value}) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({id, error: String(e && e.stack || e)}) + "\n");
  }
}
await browser.close();
