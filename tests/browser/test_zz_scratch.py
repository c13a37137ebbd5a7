import pytest, time, json
from test_app_browser import wait_ready, open_tab, click, step_of, wait_until
pytestmark = pytest.mark.browser

HOOK = """
window.__patches = [];
const timer = setInterval(() => {
  if (!window.Bokeh || !Bokeh.documents || !Bokeh.documents.length) return;
  clearInterval(timer);
  const proto = Object.getPrototypeOf(Bokeh.documents[0]);
  const orig = proto.apply_json_patch;
  proto.apply_json_patch = function(patch, buffers) {
    try { return orig.call(this, patch, buffers); }
    catch (e) {
      let s; try { s = JSON.stringify(patch); } catch (x) { s = String(x); }
      window.__patches.push({err: String(e), patch: s.slice(0, 6000)});
      throw e;
    }
  };
}, 2);
"""

def test_scratch(app_page, site_url):
    page = app_page
    page.add_init_script(HOOK)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    page.wait_for_timeout(2000)
    for p in page.evaluate("() => window.__patches"):
        print(p["err"])
        print(p["patch"])
    print("page errors", page.net.page_errors)
