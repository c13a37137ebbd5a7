"""The stand-alone views inside a model and of the cells race (webapp/tinyrnn_app/inside.py, race_view.py,
passages.py) in CPython, no browser: they build from small records, react to a click, and escape every character."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

pn = pytest.importorskip("panel", reason="the web app needs panel (requirements-dev.txt)")
import tinyrnn  # noqa: E402
from tinyrnn_app import passages  # noqa: E402
from tinyrnn_app.inside import ConnectivityView, ExpectView, GatesView, ModelText  # noqa: E402
from tinyrnn_app.race_view import RaceView, decade_ticks, race_models  # noqa: E402

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>\n"quoted" (a [b] c)\n'
BRACKETS = tinyrnn.load_corpus("brackets")[:600].replace("\n", " ")
VOCAB = tinyrnn.Vocabulary.from_text(HOSTILE + "abcdefgh" + BRACKETS)


def model(cell="rnn", passage=HOSTILE, label="", seed=0, H=6):
    params = tinyrnn.init_params(tinyrnn.ModelConfig(VOCAB.size, H, cell), seed=seed)
    rng = np.random.default_rng(seed)
    params = {k: v + 0.4 * rng.standard_normal(v.shape) for k, v in params.items()}
    return ModelText(params, VOCAB, cell, passage, label)


def titles(spans: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'title="([^"]*)"', spans)]


def backgrounds(spans: str) -> list[str]:
    return re.findall(r'style="background:([^;"]*)', spans)


def assert_escaped(markup: str, passage: str = HOSTILE):
    """No tag of the passage in ``markup``; its text between the tags is the passage, escaped."""
    assert "<script" not in markup and "<img" not in markup
    content = re.sub(r"<[^>]*>", "", markup)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in content
    assert html.unescape(content).replace(passages.NEWLINE_MARK, "") == passage


def test_a_click_colours_every_earlier_character_by_connectivity_in_every_model():
    models = [model("rnn"), model("gru", seed=1), model("lstm", seed=2)]
    view = ConnectivityView(models=models)
    pn.Column(view)  # builds
    assert len(view.passages) == 3 and view.position is None
    assert all(set(backgrounds(p.spans)) == {passages.sequential(0)} for p in view.passages)
    target = HOSTILE.index("onerror")
    view.passages[1].clicked = target  # a click in any of them selects that character in all
    assert view.position == target
    ids = VOCAB.encode(HOSTILE)
    for m, passage in zip(models, view.passages):
        values = tinyrnn.connectivity(m.params, ids, target - 1, cell=m.cell)
        shown = titles(passage.spans)
        assert len(shown) == len(HOSTILE)
        for s in (0, target // 2, target - 1):
            assert shown[s].startswith(f"{passages.char_label(HOSTILE[s])} at {s}: {values[s]:.2e}")
        assert backgrounds(passage.spans) == passages.connectivity_colours(values, len(HOSTILE))
        assert f'data-i="{target}" style="background:rgb(255,255,255);{passages.SELECTED_STYLE}"' in passage.spans
    assert f"the prediction of character {target} depends" in view.info
    probability = tinyrnn.next_probabilities(models[0].params, ids[:target])[-1, ids[target]]
    assert f"tanh RNN: p('o') = {probability:.1%}" in html.unescape(view.headings[0].object)
    view.passages[0].clicked = 0  # nothing comes before the first character
    assert view.position is None


def test_every_character_and_label_reaching_the_page_is_escaped():
    views = [ConnectivityView(models=[model(label="<b>bold</b> & co")]), GatesView(model=model("gru")),
             ExpectView(model=model("lstm"))]
    views[0].position = 5
    for view in views:
        for obj in pn.Column(view).select():
            markup = getattr(obj, "spans", None) or (obj.object if isinstance(obj, pn.pane.HTML) else "")
            assert "<b>bold" not in markup and "<script" not in markup and "<img" not in markup
    assert_escaped(views[0].passages[0].spans)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in views[0].headings[0].object
    assert_escaped(views[1].passage.spans)
    assert_escaped(views[2].passage.spans)
    assert passages.spans_html("<&\"'", ["red"] * 4, ['"><script>'] * 4).count("&quot;&gt;&lt;script&gt;") == 4


def test_a_passage_the_model_cannot_read_gets_a_sentence():
    view = ConnectivityView(models=[model(passage="héllo")])
    assert view.passages[0].spans == "" and "cannot read this passage" in view.headings[0].object
    gates = GatesView(model=model(passage=""))
    assert "the passage is empty" in gates.unit_list and gates.passage.spans == ""
    empty = ExpectView()
    assert empty.info == "There is no model yet." and empty.passage.spans == ""


def test_the_gates_view_shows_the_update_gate_on_each_units_own_scale_and_lists_tracking_units():
    m = model("gru", passage=BRACKETS + HOSTILE, H=8)
    view = GatesView(model=m)
    pn.Column(view)
    assert view.trace == "z" and set(view.param.trace.objects) == {"r", "z", "n", "h"}
    trace = tinyrnn.gate_trace(m.params, VOCAB.encode(m.passage), cell="gru")
    view.unit = 3
    values = trace["z"][:, 3]
    assert backgrounds(view.passage.spans) == passages.unit_colours(values, passages.sequential)
    low, high = np.quantile(values, [0.02, 0.98])
    strongest = passages.sequential(1.0)
    assert backgrounds(view.passage.spans)[int(values.argmax())] == strongest  # the unit's own top is full blue
    assert f"white {low:+.3f}" in view.info and f"blue {high:+.3f}" in view.info
    assert titles(view.passage.spans)[10] == f"{passages.char_label(m.passage[10])}: update gate z[3] = {values[10]:+.3f}"
    listed = [o for o in view.param.tracking.objects if o != "(pick a listed unit)"]
    assert listed and all(o in view.unit_list for o in listed)
    found = tinyrnn.tracking_units(trace, m.passage, per_feature=2)
    best = max(((n, u) for n, ms in found.items() for u in ms), key=lambda nu: abs(nu[1].correlation))
    view.tracking = listed[0]  # choosing a listed unit shows it
    assert (view.trace, view.unit) == (best[0], best[1].unit)
    view.passage.clicked = 7
    assert f"After character 7 {passages.char_label(m.passage[7])}, unit {view.unit}:" in view.info
    assert f"z {trace['z'][7, view.unit]:+.3f}" in view.info


def test_the_gates_view_of_an_lstm_has_its_forget_gate_and_cell_state():
    view = GatesView(model=model("lstm"))
    assert view.trace == "f" and {"c", "f", "h"} <= set(view.param.trace.objects)
    view.trace = "c"  # a state, not a gate: blue (its low) - white - red (its high)
    assert "cell state c, unit 0" in view.info and " - white - red " in view.info
    values = tinyrnn.gate_trace(view.model.params, VOCAB.encode(HOSTILE), cell="lstm")["c"][:, 0]
    assert backgrounds(view.passage.spans) == passages.unit_colours(values, passages.diverging)
    view.model = model("rnn")  # another model: the view follows it
    assert view.param.trace.objects == ["h"] and view.trace == "h" and view.position is None


def test_a_unit_that_never_changes_is_white_and_said_to_stay():
    assert passages.unit_colours(np.full(5, 0.7)) == [passages.diverging(0.5)] * 5
    saturated = np.concatenate([np.full(50, 0.999), [0.990, 0.995]])  # a saturated unit still shows its variation
    colours = passages.unit_colours(saturated)
    assert colours[-2] == passages.diverging(0.0) and colours[0] == passages.diverging(1.0)


def test_what_the_model_expects_after_each_character():
    m = model("gru")
    view = ExpectView(model=m)
    pn.Column(view)
    ids = VOCAB.encode(HOSTILE)
    top = tinyrnn.top_next(m.params, ids, k=5, cell="gru")
    shown = titles(view.passage.spans)
    for t in (0, 9, len(HOSTILE) - 1):
        words = passages.top_next_words([VOCAB.chars[i] for i in top.ids[t]], top.probs[t])
        assert shown[t].startswith(f"after {passages.char_label(HOSTILE[t])}: {words}")
    assert "next is" not in shown[-1] and "next is" in shown[0]
    seen = tinyrnn.next_probabilities(m.params, ids, cell="gru")[np.arange(len(ids) - 1), ids[1:]]
    assert backgrounds(view.passage.spans)[1:] == [passages.surprise(-np.log2(p) / 8) for p in seen]
    view.passage.clicked = 9
    assert view.position == 9 and view.info.startswith(f"Character 9 after {passages.char_label(HOSTILE[9])}: ")
    assert "&lt;" in view.passage.spans and "<script" not in view.passage.spans


def test_decade_ticks_label_a_few_whole_decades():
    low, high, ticks = decade_ticks([3e-21, 0.5, 1.0, 0.0, float("nan")])
    assert (low, high) == (1e-21, 1.0) and len(ticks) <= 5
    assert all(np.log10(t) == round(np.log10(t)) for t in ticks) and ticks[-1] == 1.0
    assert decade_ticks([0.02, 0.3])[2] == [1e-2, 1e-1, 1.0]
    assert decade_ticks([]) == (1e-3, 1.0, [1e-3, 1e-2, 1e-1, 1.0])


def test_the_race_view_follows_the_race_and_shows_the_verdict():
    text = tinyrnn.recall_corpus(3, n_lines=300, seed=2)
    config = tinyrnn.TrainConfig(hidden_size=8, seq_len=10, batch_size=4, lr=1e-2, eval_every=4, eval_chars=200)
    race = tinyrnn.CellsRace(text, config, budget=400, reach_steps=40)
    view = RaceView(budget=race.budget)
    pn.Column(view)
    for fig in (view.loss_figure, view.reach_figure):
        assert type(fig.x_range).__name__ == type(fig.y_range).__name__ == "Range1d"  # no ranges left to guess
    while race.advance():
        view.curves = race.curves()
    for cell, points in race.curves().items():
        assert view.loss_sources[cell].data["chars"] == [p.chars_seen for p in points]
        assert view.loss_sources[cell].data["loss"] == [p.val_loss for p in points]
    assert view.loss_figure.x_range.end == 400 and view.verdict == ""
    assert view.loss_figure.y_range.end >= max(p.val_loss for ps in race.curves().values() for p in ps)
    result = race.result()
    view.result = result
    assert view.verdict == tinyrnn.verdict(result) and html.escape(view.verdict) in view._verdict.object
    share = result.relative_reach("gru", trained=False)
    fresh = view.reach_sources[("gru", False)].data
    assert fresh["back"][0] == 39 and fresh["reach"] == pytest.approx(share[share > 0].tolist())
    ticks = view.reach_figure.yaxis[0].ticker.ticks
    assert 2 <= len(ticks) <= 5 and view.reach_figure.y_range.start <= min(fresh["reach"])
    side_by_side = ConnectivityView(models=race_models(result, text[-200:]))
    side_by_side.position = 50
    assert [h.object for h in side_by_side.headings] and len(side_by_side.passages) == 3
