"""The page's ResizeObserver runs callbacks a frame later (sitebuild/js/resize_frames.js): a callback that resizes an
element the observation loop has already passed is no "ResizeObserver loop" error there, as it is with the
browser's own ResizeObserver (WebKit reported BokehJS's layout that way, twice a load: issue 19)."""
import pytest

pytestmark = pytest.mark.browser

# An outer element and the one inside it, both observed; each time the callback hears of the inner one it resizes
# both, so the outer one (shallower, already delivered in this loop) changes during the loop: 5 rounds.
RESIZE_LOOP = """async () => {
  const errors = [];
  const onError = (e) => errors.push(e.message);
  window.addEventListener('error', onError);
  const outer = document.createElement('div'), inner = document.createElement('div');
  outer.style.width = '100px'; inner.style.height = '10px';
  outer.appendChild(inner); document.body.appendChild(outer);
  let calls = 0, rounds = 0;
  const observer = new ResizeObserver((entries) => {
    calls += 1;
    if (entries.some((e) => e.target === inner) && rounds < 5) {
      rounds += 1;
      outer.style.width = `${100 + rounds}px`;
      inner.style.height = `${10 + rounds}px`;
    }
  });
  observer.observe(outer); observer.observe(inner);
  for (let i = 0; i < 40 && rounds < 5; i++) await new Promise((r) => requestAnimationFrame(r));
  await new Promise((r) => setTimeout(r, 100));
  observer.disconnect(); outer.remove(); window.removeEventListener('error', onError);
  return {errors, rounds, width: outer.style.width};
}"""
LOOP_NOTICE = "ResizeObserver loop completed with undelivered notifications."


def test_a_callback_that_resizes_the_page_is_no_error_and_still_runs(app_page):
    page = app_page
    page.goto("about:blank")  # the browser's own ResizeObserver: the same callback is a loop
    native = page.evaluate(RESIZE_LOOP)
    assert LOOP_NOTICE in native["errors"], native
    page.goto(page.site_url, wait_until="domcontentloaded")  # the page's, from the first script in <head>
    page.wait_for_function("() => window.ResizeObserver.toString().includes('tinyrnnPending')")
    ours = page.evaluate(RESIZE_LOOP)
    assert ours == {"errors": [], "rounds": 5, "width": "105px"}, ours
