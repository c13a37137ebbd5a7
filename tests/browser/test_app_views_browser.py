"""The views of issue 11 in Debian's Chromium, offline: an LSTM learns the memory experiment (the recall corpus
with k chosen in the page) and the memory readout appears beside chance; the cells' gradient comparison draws
one curve per cell; then an LSTM learns a text with an HTML payload, quotes and brackets, and the hidden-state
view colours a passage holding the payload (no element made, no dialog), lists the units that track something,
and shows a chosen one; the LSTM model downloads and loads in CPython. Screenshots go to artifacts/browser/.
"""
from __future__ import annotations

import re

import pytest

from test_app_browser import (ARTIFACTS, PAYLOAD, TRAINING_TEXT, assert_no_payload_executed, click,
                              download_checkpoint, open_tab, set_setting, shot, step_of, text_of,
                              unexpected_page_errors, wait_ready, wait_until)

pytestmark = pytest.mark.browser

VIEW_TEXT = TRAINING_TEXT + 'He said "stay (here) [now]" and left.\n' * 5  # quotes, brackets near the payload


def no_error(page) -> bool:
    """True unless the error alert shows (then the test fails with its message)."""
    if page.locator(".tr-error .tr-alert").count() and page.locator(".tr-error").first.is_visible():
        pytest.fail("the page shows an error: " + page.locator(".tr-error .tr-alert").first.inner_text())
    return True


def paste_text(page, text: str) -> None:
    """Paste ``text`` as the training text (in its tab) and wait until Python has it."""
    open_tab(page, "Text and settings")
    page.locator(".tr-text textarea").first.fill(text)
    page.locator(".tr-text textarea").first.dispatch_event("change")
    wait_until(page, lambda: f"{len(text):,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30, "the text")


def choose(page, css: str, value: str) -> None:
    page.locator(f"{css} select").first.select_option(value)


def test_an_lstm_trains_and_shows_the_memory_readout_the_cells_compared_and_a_hidden_unit(app_page, site_url,
                                                                                        tmp_path):
    import tinyrnn

    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)

    # --- the memory experiment: the recall corpus with k = 5, an LSTM ----------------------------------------------
    choose(page, ".tr-corpus", "recall")
    n10 = len(tinyrnn.recall_corpus(10))
    wait_until(page, lambda: f"{n10:,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30, "the recall text")
    set_setting(page, ".tr-recall-k", "5")
    n5 = len(tinyrnn.recall_corpus(5))
    wait_until(page, lambda: f"{n5:,} characters" in text_of(page, ".tr-text-info .tr-pre"), 30,
               "the recall text for k = 5")
    assert page.locator(".tr-text textarea").first.input_value() == tinyrnn.recall_corpus(5)
    open_tab(page, "Text and settings")
    choose(page, ".tr-cell", "lstm")
    lstm_line = "▸ " + tinyrnn.get_cell("lstm").description
    wait_until(page, lambda: lstm_line in text_of(page, ".tr-cell-info .tr-pre"), 10, "the LSTM's description marked")
    click(page, ".tr-train")
    wait_until(page, lambda: "(lstm, H=128)" in text_of(page, ".tr-status pre"), 30, "training an LSTM")
    memory = wait_until(page, lambda: re.search(r"Recall at k=5: (\d+)% of (\d+) held-out letters right at step "
                                                r"([1-9][\d,]*) \(chance 12\.5%: one of 8 letters",
                                                text_of(page, ".tr-memory .tr-pre")), 90,
                        "the memory readout refreshed while training")
    print("memory readout:", memory.group(0))
    assert 0 <= int(memory.group(1)) <= 100 and int(memory.group(2)) > 0
    shot(page, "30-memory-readout")

    # --- the cells compared -------------------------------------------------------------------------------------------
    open_tab(page, "The cells race")
    set_setting(page, ".tr-compare-len", "100")
    page.wait_for_timeout(300)
    click(page, ".tr-compare")
    wait_until(page, lambda: "over a window of 100 steps" in text_of(page, ".tr-compare-info .tr-pre"), 60,
               "the comparison")
    info = text_of(page, ".tr-compare-info .tr-pre")
    assert "lstm is the current model" in info and "rnn, gru are freshly initialised" in info, info
    page.locator(".tr-compare-chart").first.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    shot(page, "31-cells-compared")
    page.locator(".tr-compare-chart").first.screenshot(path=str(ARTIFACTS / "31-compare-chart.png"))
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "paused")

    # --- the hidden-state view over a passage with the payload --------------------------------------------------------
    paste_text(page, VIEW_TEXT)
    click(page, ".tr-train")  # a new LSTM on this text
    wait_until(page, lambda: "Training a new model (lstm, H=128)" in text_of(page, ".tr-status pre"), 30,
               "training a new LSTM")
    wait_until(page, lambda: step_of(page) >= 30, 90, "30 steps of the new LSTM")
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "paused")
    start = len(VIEW_TEXT) - 400  # the last 400 characters: the payload is near the end
    open_tab(page, "Inside the model")
    set_setting(page, ".tr-passage-start", str(start))
    set_setting(page, ".tr-passage-length", "400")
    page.wait_for_timeout(300)
    click(page, ".tr-show-passage")
    wait_until(page, lambda: no_error(page) and "Unit 0 of 128 over 400 characters" in text_of(
        page, ".tr-passage-info .tr-pre"), 30, "the coloured passage")
    spans = page.locator(".tr-passage .tr-passage-text span")
    assert spans.count() == 400
    shown = page.locator(".tr-passage .tr-passage-text").first.inner_text()
    assert PAYLOAD in shown and "↵" in shown  # the payload as text, newlines visible
    assert_no_payload_executed(page)
    units = text_of(page, ".tr-unit-list .tr-pre")
    for feature in ("inside quotes", "inside brackets", "position in line"):
        assert f"{feature}: unit" in units, units
    option = page.locator(".tr-unit-choice select option").nth(1).inner_text()
    unit = int(re.search(r"unit (\d+)", option).group(1))
    choose(page, ".tr-unit-choice", option)
    wait_until(page, lambda: f"Unit {unit} of 128" in text_of(page, ".tr-passage-info .tr-pre"), 10,
               "the chosen unit shown")
    page.locator(".tr-passage").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shot(page, "32-hidden-state-view")
    page.locator(".tr-passage").first.screenshot(path=str(ARTIFACTS / "32-passage.png"))
    assert_no_payload_executed(page)

    page.locator(".tr-passage").first.scroll_into_view_if_needed()
    ckpt = download_checkpoint(page, tmp_path, "lstm.npz")
    assert ckpt.config.cell == "lstm" and ckpt.progress["step"] >= 30
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


def test_samples_at_milestones_stay_listed_and_an_asked_sample_stays(app_page, site_url):
    """The live sample has its own line; samples at steps 100 and 300 are listed with their loss; a sample asked
    for stays while live samples come and go."""
    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    paste_text(page, TRAINING_TEXT)
    set_setting(page, ".tr-hidden-size", "64")
    open_tab(page, "Train")
    click(page, ".tr-train")
    wait_until(page, lambda: step_of(page) >= 30, 60, "training")
    set_setting(page, ".tr-length", "60")
    click(page, ".tr-sample")
    asked = wait_until(page, lambda: no_error(page) and text_of(page, ".tr-sample-output .tr-pre").strip(), 30,
                       "the asked-for sample")
    first_live = wait_until(page, lambda: text_of(page, ".tr-live-sample .tr-pre").strip(), 30, "a live sample")
    milestones = wait_until(page, lambda: "Step 300 (" in text_of(page, ".tr-milestones .tr-pre")
                            and text_of(page, ".tr-milestones .tr-pre"), 180, "the samples at steps 100 and 300")
    assert re.search(r"Step 100 \(train \d\.\d\d, validation \d\.\d\d nats/char\):", milestones), milestones
    assert milestones.index("Step 100 (") < milestones.index("Step 300 (")
    wait_until(page, lambda: text_of(page, ".tr-live-sample .tr-pre").strip() != first_live, 30, "a newer live sample")
    assert text_of(page, ".tr-sample-output .tr-pre").strip() == asked  # the asked-for sample is still there
    page.locator(".tr-milestones").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.locator(".tr-milestones").first.screenshot(path=str(ARTIFACTS / "33-milestones.png"))
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "paused")
    assert_no_payload_executed(page)
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"


def test_the_race_runs_while_a_gru_trains_then_connectivity_gates_and_expectations(app_page, site_url):
    """The cells race runs in the background (the page trains a GRU meanwhile) to a verdict; then, inside the model,
    a click colours what the prediction depends on in the current model and the race's three side by side, the
    GRU's update gate is shown over the passage, and a tap lists the five most likely next characters."""
    page = app_page
    page.goto(site_url, wait_until="domcontentloaded")
    wait_ready(page)
    paste_text(page, VIEW_TEXT)
    choose(page, ".tr-cell", "gru")
    set_setting(page, ".tr-hidden-size", "32")
    page.wait_for_timeout(500)

    # --- the race, in the background ------------------------------------------------------------------------------
    open_tab(page, "The cells race")
    choose(page, ".tr-race-budget", "300000")  # long enough to overlap the training on a loaded machine
    page.wait_for_timeout(300)
    click(page, ".tr-race-start")
    wait_until(page, lambda: no_error(page) and "Racing:" in text_of(page, ".tr-race-progress .tr-pre"), 60,
               "the race to start")
    click(page, ".tr-train")  # the page trains the current model while the race runs
    seen = []  # (training step, race progress) as the page shows them, every poll

    def both_move() -> bool:
        """Two moments, both while the race is racing, between which the training steps and the race moved on."""
        no_error(page)
        seen.append((step_of(page), text_of(page, ".tr-race-progress .tr-pre")))
        racing = [(step, progress) for step, progress in seen if step >= 1 and progress.startswith("Racing:")]
        if not racing:
            return False
        first_step, first_progress = racing[0]
        return any(step > first_step and progress != first_progress for step, progress in racing[1:])

    try:
        wait_until(page, both_move, 120, "training and the race to move on together")
    except AssertionError as e:
        raise AssertionError(f"{e}; the page showed (step, race progress): {seen[:3]} ... {seen[-3:]}; "
                             f"status: {text_of(page, '.tr-status pre')!r}") from None
    verdict = wait_until(page, lambda: no_error(page) and "nats/char" in text_of(page, ".tr-race-verdict .tr-pre")
                         and text_of(page, ".tr-race-verdict .tr-pre"), 300, "the race's verdict")
    print("verdict:", verdict)
    assert re.search(r"After [\d.,]+ [kM]? ?characters", verdict) or "After" in verdict, verdict
    page.locator(".tr-race").first.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    page.locator(".tr-race").first.screenshot(path=str(ARTIFACTS / "34-race.png"))
    click(page, ".tr-pause")
    wait_until(page, lambda: "Paused at step" in text_of(page, ".tr-status pre"), 10, "paused")

    # --- connectivity: a click in the current model and the race's three ---------------------------------------------
    open_tab(page, "Inside the model")
    start = len(VIEW_TEXT) - 160
    set_setting(page, ".tr-passage-start", str(start))
    set_setting(page, ".tr-passage-length", "160")
    page.wait_for_timeout(300)
    click(page, ".tr-show-passage")
    wait_until(page, lambda: no_error(page) and "Showing: current model (GRU" in text_of(page, ".tr-inside-note .tr-pre")
               and "(race)" in text_of(page, ".tr-inside-note .tr-pre"), 60, "the explain views")
    passages = page.locator(".tr-connectivity-passage")
    assert passages.count() == 4
    passages.first.locator('[data-i="120"]').first.click()
    wait_until(page, lambda: "p(" in text_of(page, ".tr-connectivity-heading .tr-pre"), 30,
               "the connectivity after a click")
    for k in range(4):  # one click, the same position in every model
        spans = passages.nth(k).locator("[data-i]")
        wait_until(page, lambda: "at 119:" in (spans.nth(119).get_attribute("title") or ""), 30,
                   f"model {k}'s connectivity at the clicked position")
        assert spans.count() == 160
    wait_until(page, lambda: "depends on each character before it" in text_of(page, ".tr-connectivity-info .tr-pre"),
               30, "the connectivity explanation (it can come a patch after the colours)")
    page.locator(".tr-connectivity").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.locator(".tr-connectivity").first.screenshot(path=str(ARTIFACTS / "35-connectivity.png"))
    assert_no_payload_executed(page)

    # --- the GRU's update gate over the passage ----------------------------------------------------------------------
    gates = text_of(page, ".tr-gates-info .tr-pre")
    assert "update gate z, unit 0" in gates and "its 98th" in gates or "stays at" in gates, gates
    page.locator(".tr-gates-passage [data-i]").nth(30).click()
    wait_until(page, lambda: "After character 30" in text_of(page, ".tr-gates-info .tr-pre"), 30, "a unit's values")
    assert page.locator(".tr-gates-passage [data-i]").count() == 160
    page.locator(".tr-gates").first.screenshot(path=str(ARTIFACTS / "36-gates.png"))

    # --- what the model expects -----------------------------------------------------------------------------------------
    page.locator(".tr-expect-passage [data-i]").nth(10).click()
    expects = wait_until(page, lambda: text_of(page, ".tr-expect-info .tr-pre").startswith("Character 10")
                         and text_of(page, ".tr-expect-info .tr-pre"), 30, "the five most likely next characters")
    assert expects.count("%") >= 5, expects
    page.locator(".tr-expect").first.screenshot(path=str(ARTIFACTS / "37-expect.png"))
    assert_no_payload_executed(page)
    assert not unexpected_page_errors(page.net), f"uncaught errors in the page: {page.net.page_errors}"
