"""A chart the reader zooms keeps its view while training goes on, in Debian's Chromium, offline: the loss chart's
x range is set in the page as a zoom tool sets it, points keep arriving and the view stays; the toolbar's reset
then shows the latest fit, and the chart follows the data again (webapp/tinyrnn_app/charts.py).
"""
from __future__ import annotations

import pytest

from test_app_browser import click, open_tab, step_of, unexpected_page_errors, wait_ready, wait_until

pytestmark = pytest.mark.browser

# The loss chart in the page's live Bokeh document (the last one: the first is the pre-rendered page's).
LOSS = """(() => {
  const doc = Bokeh.documents[Bokeh.documents.length - 1];
  for (const m of doc.all_models) if (m.type === "Figure" && m.title && m.title.text === "Loss") return m;
  return null;
})()"""
X_RANGE = f"() => {{ const m = {LOSS}; return m && [m.x_range.start, m.x_range.end]; }}"  # [start, end]
ZOOM_X = f"([start, end]) => {LOSS}.x_range.setv({{start, end}})"  # what a zoom tool does (BokehJS tells Python)


def test_a_zoomed_loss_chart_keeps_its_view_until_reset(app_page, site_url):
    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    open_tab(page, "Train")
    click(page, ".tr-train")
    wait_until(page, lambda: (page.evaluate(X_RANGE) or [0, 1])[1] > 1, 60, "the loss chart to fit a few steps")
    # (zooming in the first moment of training, while the page gets a fit several times a second, also checks that
    # a fit which was on its way when the reader zoomed does not stay: Python sends the reader's view back)
    start, end = page.evaluate(X_RANGE)
    zoomed = [start, (start + end) / 2]
    page.evaluate(ZOOM_X, zoomed)
    step = step_of(page)
    wait_until(page, lambda: step_of(page) > step + 50, 60, "50 more steps")
    page.wait_for_timeout(1500)  # a few more flushes of the chart
    assert page.evaluate(X_RANGE) == zoomed, "the zoomed view moved while points arrived"

    page.locator(".tr-loss-chart .bk-tool-icon-reset").first.click()  # the toolbar's reset
    after_reset = wait_until(page, lambda: (lambda r: r if r != zoomed else None)(page.evaluate(X_RANGE)), 10,
                             "reset to change the view")
    assert after_reset[1] > end, "reset should show the points that arrived while zoomed"
    wait_until(page, lambda: page.evaluate(X_RANGE)[1] > after_reset[1], 30, "the chart to follow the data again")
    click(page, ".tr-pause")
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"
