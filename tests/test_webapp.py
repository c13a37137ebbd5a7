"""The web app's state and logic in CPython, no browser: the package webapp/tinyrnn_app is imported (which builds
and starts nothing) and its TrainingSession is driven directly, the way the buttons drive it."""

from __future__ import annotations

import asyncio
import html
import io
import sys
import re
from pathlib import Path

import numpy as np
import pytest

pn = pytest.importorskip("panel", reason="the web app needs panel (requirements-dev.txt)")
import tinyrnn  # noqa: E402
from tinyrnn_app.loop import LIVE_SAMPLE_EVERY, LIVE_SAMPLE_LENGTH  # noqa: E402
from tinyrnn_app.render import plain_html  # noqa: E402
from tinyrnn_app.text import CUSTOM_TEXT, MAX_TEXT_CHARS  # noqa: E402

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "webapp" / "tinyrnn_app"
PAYLOAD = "<img src=x onerror=alert(1)>"
TEXT = ("the cat sat on the mat. the dog sat on the log. " * 60) + PAYLOAD + "\n"
SMALL = dict(hidden_size=24, seq_len=12, batch_size=4, lr=1e-2)


@pytest.fixture(scope="module")
def app():
    """The package (``app.TrainingSession``, ``app.create_app``, ``app.selectors``)."""
    import tinyrnn_app
    from tinyrnn_app import selectors  # noqa: F401 - a submodule, as app.selectors

    assert Path(tinyrnn_app.__file__).parent == PACKAGE_DIR, "run with PYTHONPATH=$PWD/core:$PWD/webapp"
    return tinyrnn_app


class ManualClock:
    """The scheduler's clock in tests: time moves only when the test advances it."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float):
        self.now += seconds


@pytest.fixture
def session(app):
    s = app.TrainingSession(text=TEXT, **SMALL)
    s.run.ui_interval = 0.0  # show every tick's numbers (the app throttles to UI_INTERVAL)
    return s


def train_ticks(session, n, budget=0.02):
    for _ in range(n):
        session.run.tick(budget)


def decoded_once(pane) -> str:
    """What the browser puts into innerHTML for an HTML pane: Panel sends ``escape(object)`` and the page decodes
    it once (``html_decode`` in panel/models/html.ts)."""
    return html.unescape(pane._transform_object(pane.object)["object"])


def find(layout, css_class):
    hits = [o for o in layout.select() if css_class in (getattr(o, "css_classes", None) or [])]
    assert hits, f"no component with class {css_class}"
    return hits[0]


def all_objects(template):
    return [o for part in (template.main, template.sidebar) for item in part for o in item.select()]


# --- importing -------------------------------------------------------------------------------------------------


def test_importing_the_app_builds_and_starts_nothing(app):
    assert hasattr(app, "TrainingSession") and hasattr(app, "create_app")
    assert not pn.state._periodic, "importing the app started a periodic callback"
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) >= 6
    allowed_top = {"tinyrnn", "panel", "param", "bokeh", "numpy"} | set(sys.stdlib_module_names)
    for path in sources:
        src = path.read_text(encoding="utf-8")
        # the package imports only tinyrnn, panel, param, bokeh, numpy, the stdlib and its own modules
        imports = set(re.findall(r"^\s*(?:from|import) ([\w.]+)", src, flags=re.M))
        outside = {name for name in imports if not name.startswith(".") and name.split(".")[0] not in allowed_top}
        # ... and, in storage.py only, the browser runtime's own modules (IndexedDB from the Pyodide worker)
        assert outside <= ({"__future__", "js", "pyodide.ffi"} if path.name == "storage.py" else {"__future__"}), (
            path.name, outside)
        # Panel 1.9.4's Str pane does not escape (it wraps raw text in <pre>); Markdown interprets text
        assert "pn.pane.Str(" not in src, path.name
        assert "pn.extension(" not in src and ".servable(" not in src, path.name
        # the session and its parts know no Bokeh
        if path.name in ("session.py", "lifecycle.py", "training.py", "keep.py", "text.py", "state.py", "model.py",
                         "loop.py", "chartdata.py", "notices.py", "storage.py", "settings.py", "render.py", "samples.py",
                         "views.py", "hidden.py"):
            assert "bokeh" not in src, path.name


def test_default_text_is_the_bundled_corpus(app):
    s = app.TrainingSession()
    assert s.text.text == tinyrnn.default_corpus()
    assert s.text.corpus == tinyrnn.corpus_names()[0]
    assert f"vocabulary of {len(set(s.text.text))} characters" in s.text.text_info
    assert f"{len(s.text.text):,} characters" in s.text.text_info
    assert not s.run.has_model and not s.run.running


def test_picking_a_corpus_loads_it_and_editing_switches_to_custom(app):
    s = app.TrainingSession()
    name = tinyrnn.corpus_names()[1]
    s.text.corpus = name
    assert s.text.text == tinyrnn.load_corpus(name)
    s.text.text = "hello there, general kenobi"
    assert s.text.corpus == CUSTOM_TEXT
    assert "vocabulary of" in s.text.text_info


def test_a_pre_rendered_page_says_loading_until_its_document_is_ready(app):
    """``panel convert`` pre-renders the page in CPython at build time (a document that never becomes ready); the
    converted worker's document becomes ready after it has replaced the pre-rendered page."""
    from bokeh.document import Document
    from bokeh.events import DocumentReady
    from panel.io.state import set_curdoc

    s = app.TrainingSession(text=TEXT, loading=True, **SMALL)
    doc = Document()
    with set_curdoc(doc):
        tpl = app.create_app(s)
    layout = pn.Column(*tpl.main, *tpl.sidebar)
    train = find(layout, "tr-train")
    assert s.page.status.startswith("Loading") and "Ready" not in s.page.status and "Loading" in decoded_once(find(layout, "tr-status"))
    assert train.disabled
    for css_class in ("tr-reset", "tr-gradcheck", "tr-text", "tr-hidden-size", "tr-upload-model", "tr-upload-text"):
        assert find(layout, css_class).disabled, css_class
    backend = decoded_once(find(layout, "tr-backend"))
    assert "numpy" not in backend and "BLAS" not in backend and "loaded" in backend, backend
    assert not s.controls.train() and not s.run.running and not s.run.has_model  # a click that reaches Python early does nothing
    doc.callbacks.trigger_event(DocumentReady())
    assert s.page.ready and s.page.status.startswith("Ready") and not train.disabled
    assert not find(layout, "tr-text").disabled and find(layout, "tr-pause").disabled
    assert f"Matrix products: {tinyrnn.BACKEND}" in decoded_once(find(layout, "tr-backend"))
    assert s.controls.train() and s.run.running


# --- training ---------------------------------------------------------------------------------------------------


def test_train_ticks_lower_the_loss_and_fill_the_readouts(session):
    assert session.controls.train() and session.run.running and session.run.has_model
    train_ticks(session, 1)
    first_loss = session.run.train_loss
    assert first_loss is not None and session.run.step >= 1
    cfg = session.run.trainer.config
    while session.run.step < 250 or len(session.run.chart_data.val["step"]) < 2:  # the page validates by time
        session.run.tick(0.05)
    assert session.run.train_loss < first_loss - 0.5, (first_loss, session.run.train_loss)
    assert session.run.chars_seen == session.run.step * cfg.batch_size * cfg.seq_len
    assert session.run.chars_per_sec > 0 and session.run.elapsed > 0
    assert len(session.run.chart_data.loss["step"]) >= 2
    assert session.run.chart_data.loss["step"][-1] == session.run.step
    # validation points arrive (ValidationPacer: tests/test_webapp.py's pacing test), each at a step that validated
    validated = [m.step for m in session.run.trainer.history if m.val_loss is not None]
    assert session.run.val_loss is not None and session.run.chart_data.val["step"] == validated
    # gradient flow: one norm per time step of the window, all positive
    norms = session.run.chart_data.flow["norm"]
    assert len(norms) == cfg.seq_len and min(norms) > 0
    assert "Training" in session.page.status


def test_a_tick_runs_for_its_budget_then_returns(session):
    session.controls.train()
    steps = session.run.tick(0.0)
    assert steps == 1  # at least one step, then back to the event loop


def test_pause_stops_training_and_resume_continues_the_same_model(session):
    session.controls.train()
    train_ticks(session, 3)
    session.controls.pause()
    assert not session.run.running and "Paused" in session.page.status
    step, params = session.run.step, {k: v.copy() for k, v in session.run.trainer.params.items()}
    assert session.run.tick() == 0 and session.run.step == step
    assert all(np.array_equal(params[k], v) for k, v in session.run.trainer.params.items())
    trainer = session.run.trainer
    assert session.controls.resume() and session.run.running
    train_ticks(session, 2)
    assert session.run.trainer is trainer and session.run.step > step


def test_train_starts_a_new_model_only_when_text_or_settings_changed(session):
    session.controls.train()
    train_ticks(session, 3)
    session.controls.pause()
    trainer, step = session.run.trainer, session.run.step
    session.controls.train()  # nothing changed: continue
    assert session.run.trainer is trainer
    session.controls.pause()
    session.form.hidden_size = 16
    assert "Train starts a new model" in session.page.status
    session.controls.train()
    assert session.run.trainer is not trainer and session.run.trainer.config.hidden_size == 16
    assert session.run.step == 0 and len(session.run.chart_data.loss["step"]) == 0
    assert step > 0


def test_reset_discards_the_model(session):
    session.controls.train()
    train_ticks(session, 2)
    session.controls.reset()
    assert session.run.trainer is None and not session.run.has_model and not session.run.running
    assert session.run.step == 0 and session.run.train_loss is None and len(session.run.chart_data.loss["step"]) == 0


def test_the_periodic_callback_runs_a_tick_and_yields(session):
    session.controls.train()
    asyncio.run(session.run.periodic_tick())
    assert session.run.step >= 1


def _bounded_ticks(session, limit=40, clock=None):
    """Count the session's ticks; after ``limit`` of them training stops (so a loop that never yields ends). With a
    ``ManualClock`` (the session's), each tick moves it on by its budget, as if the steps took exactly that long."""
    ticks, tick = [], session.run.tick

    def counted(budget):
        ticks.append(budget)
        if len(ticks) >= limit:
            session.run.running = False
        if clock is not None:
            clock.advance(budget)
        return tick(budget)

    session.run.tick = counted
    return ticks


def test_the_browser_loop_yields_after_every_tick_and_a_pause_between_ticks_stops_it(app):
    clock = ManualClock()  # the readouts' schedule does not depend on how fast the machine is
    session = app.TrainingSession(text=TEXT, clock=clock, **SMALL)
    session.run.ui_interval = 0.02  # ticks of about 20 ms
    ticks = _bounded_ticks(session, clock=clock)
    session.controls.train()

    async def next_tick(seen):
        """This coroutine's turn after the loop's next tick (the loop yields to the event loop between ticks)."""
        while len(ticks) == (seen[-1][0] if seen else 0):
            await asyncio.sleep(0.001)
        seen.append((len(ticks), session.run.step))

    async def visitor():
        loop = asyncio.ensure_future(session.run.run_loop())
        seen = []
        for _ in range(4):
            await next_tick(seen)
        session.controls.pause()  # a click between two ticks
        paused = session.run.step
        await asyncio.wait_for(loop, 5)  # the loop ends by itself: no further tick
        return seen, paused

    seen, paused = asyncio.run(visitor())
    assert [n for n, _ in seen] == [1, 2, 3, 4], seen  # one turn of the visitor after every tick
    assert all(a < b for (_, a), (_, b) in zip(seen, seen[1:])), seen  # and each tick trained
    # the first tick shows numbers at once, then each runs until they are due
    assert ticks[0] == 0.0 and ticks[1:] == [pytest.approx(0.02)] * 3, ticks
    assert not session.run.running and session.run.step == paused == seen[-1][1] and len(ticks) == 4
    assert "Paused at step" in session.page.status


def test_in_the_page_resume_right_after_pause_continues_the_waiting_loop(app, monkeypatch):
    from tinyrnn_app import training

    monkeypatch.setattr(training, "IN_BROWSER", True)
    s = app.TrainingSession(text=TEXT, use_periodic_callback=True, **SMALL)
    s.run.ui_interval = 0.02
    ticks = _bounded_ticks(s, limit=200)

    async def after_ticks(n):
        while len(ticks) < n:
            await asyncio.sleep(0.001)

    async def visitor():
        assert s.controls.train()
        task = s.run.loop_task
        await after_ticks(1)
        s.controls.pause()
        assert s.controls.resume() and s.run.loop_task is task  # the loop waiting for its next tick goes on: no second loop
        await after_ticks(3)
        s.controls.pause()
        await asyncio.wait_for(task, 5)
        return task

    task = asyncio.run(visitor())
    assert task.done() and not s.run.running and len(ticks) == 3 and s.run.step >= 3
    assert s.page.error == "" and "Paused at step" in s.page.status


def test_an_unexpected_failure_in_the_browser_loop_reaches_the_page(session):
    session.controls.train()

    def broken():
        raise RuntimeError("chart data exploded")

    session.run.flush = broken
    asyncio.run(asyncio.wait_for(session.run.run_loop(), 5))
    assert not session.run.running
    assert "unexpected error: RuntimeError: chart data exploded" in session.page.error
    assert session.page.status.startswith("Stopped at step")


def test_the_page_validates_by_time_for_at_most_2_percent_of_it_and_at_milestones():
    from tinyrnn_app.loop import FIRST_VALIDATION_AFTER, VALIDATION_SHARE, StepGatherer

    trainer = tinyrnn.Trainer(TEXT, tinyrnn.TrainConfig(**SMALL, eval_every=1))  # eval_every does not pace the page
    PLAIN, VALIDATING = 1 / 64, 1 / 16  # seconds a step takes on the clock below (exact in binary)
    now, seen = [0.0], [0]

    def clock():  # moves on by each new step's duration when read after it
        if trainer.step_count != seen[0]:
            seen[0] = trainer.step_count
            now[0] += VALIDATING if trainer.history[-1].val_loss is not None else PLAIN
        return now[0]

    gatherer = StepGatherer(timer=clock)
    gatherer.run(trainer, budget=2.0)
    now[0] += 60.0  # a pause: not training time
    gatherer.run(trainer, budget=6.0)
    gatherer.run(trainer, budget=1.0, stop_at=trainer.step_count + 5)  # a milestone step validates
    validated = [m.step for m in trainer.history if m.val_loss is not None]
    first = int(FIRST_VALIDATION_AFTER / PLAIN) + 1
    gap = VALIDATING / VALIDATION_SHARE / PLAIN  # plain steps between two validations
    assert validated[0] == first, validated  # after FIRST_VALIDATION_AFTER seconds of steps
    assert all(gap - 1 <= b - a - 1 <= gap + 1 for a, b in zip(validated[:-2], validated[1:-1])), (gap, validated)
    assert validated[-1] == trainer.step_count and len(validated) == 4, validated  # the pause did not count


def test_divergence_to_nan_pauses_with_a_clear_message_and_keeps_the_model(session):
    session.controls.train()
    train_ticks(session, 2)
    step = session.run.step
    # weights that overflow: the next step's loss is not finite (what a runaway learning rate leads to)
    session.run.trainer.params = {k: np.full_like(v, np.inf) if k == "W_yh" else v for k, v in session.run.trainer.params.items()}
    session.run.tick()
    assert not session.run.running
    assert "diverged" in session.page.error.lower() and "learning rate" in session.page.error
    assert session.run.step == step and session.run.trainer.step_count == step
    assert session.run.has_model  # nothing thrown away; the app still works
    session.controls.reset()
    assert session.controls.train() and session.run.tick() >= 1


@pytest.mark.parametrize("name, bad, words", [
    ("hidden_size", 0, "Hidden size H must be a whole number from 1 to 512, got 0"),
    ("hidden_size", 100000, "Hidden size H must be a whole number from 1 to 512 (the largest the page can train"),
    ("seq_len", 0, "Sequence length T (BPTT window) must be a whole number from 1 to 1,000, got 0"),
    ("batch_size", 5000, "Batch size B must be a whole number from 1 to 1,024, got 5000"),
    ("lr", 1000.0, "Learning rate must be a number in (0, 10], got 1000.0"),
    ("clip_norm", -1.0, "Clip gradient norm must be a number in (0, 1e+06] (or 0 for off), got -1.0"),
])
def test_out_of_range_settings_get_a_message_naming_the_range(session, name, bad, words):
    good = getattr(session.form, name)
    setattr(session.form, name, bad)  # the input takes what was typed (no silent snap-back) ...
    assert getattr(session.form, name) == bad
    assert words in session.form.settings_info  # ... and the page says what is allowed
    assert words in session.page.error
    assert not session.controls.train() and not session.run.has_model and not session.run.running
    assert "Cannot start training" in session.page.error and words in session.page.error
    setattr(session.form, name, good)
    assert session.form.settings_info == "" and session.page.error == ""
    assert session.controls.train() and session.run.tick(0.01) >= 1


def test_out_of_range_sampling_inputs_get_a_message(session):
    session.controls.train()
    train_ticks(session, 1)
    session.form.temperature = -1.0
    assert "Temperature (0 = greedy) must be a number in [0, 5], got -1.0" in session.form.settings_info
    assert not session.samples.sample() and "Cannot sample" in session.page.error and "[0, 5]" in session.page.error
    session.form.temperature, session.form.sample_length = 0.5, 0
    assert "Length (characters) must be a whole number from 1 to 5,000, got 0" in session.form.settings_info
    session.form.sample_length = 20
    assert session.form.settings_info == "" and session.samples.sample()


def test_the_setting_inputs_do_not_snap_back(app, session):
    tpl = app.create_app(session)
    for css_class, value in (("tr-hidden-size", 0), ("tr-lr", 1000.0), ("tr-length", 0)):
        widget = find(pn.Column(*tpl.sidebar, *tpl.main), css_class)
        assert widget.start is None and widget.end is None, css_class
        widget.value = value  # what typing does
        assert widget.value == value
    assert "from 1 to 512" in session.form.settings_info and "(0, 10]" in session.form.settings_info
    note = find(pn.Column(*tpl.main), "tr-settings-info")
    assert note.visible and "from 1 to 512" in decoded_once(note)


def test_too_much_work_per_step_is_refused_before_training(app):
    s = app.TrainingSession(text=TEXT, hidden_size=512, seq_len=100, batch_size=16)
    assert "100 × 16 × 512 = 819,200" in s.form.settings_info and "at most 320,000 with the fused engine" in s.form.settings_info
    assert not s.controls.train() and not s.run.has_model and "lower one of them" in s.page.error
    s.form.seq_len = 25  # 204,800: fine with the fused engine
    assert s.form.settings_info == ""
    s.form.hidden_size, s.form.seq_len, s.form.batch_size = 192, 50, 32  # docs/app.md's setting for a long text: accepted
    assert s.form.settings_info == ""
    s.form.hidden_size, s.form.seq_len, s.form.batch_size = 512, 25, 16
    s.form.engine = "autograd"
    assert "at most 100,000 with the autograd engine" in s.form.settings_info
    s.form.hidden_size, s.form.seq_len, s.form.batch_size = 16, 200, 1
    assert "autograd engine the sequence length can be at most 100" in s.form.settings_info
    s.form.seq_len = 12
    assert s.form.settings_info == "" and s.controls.train()


def test_a_model_too_large_for_the_page_can_sample_but_not_train(app, tmp_path):
    big = tinyrnn.Trainer(TEXT, tinyrnn.TrainConfig(hidden_size=600, seq_len=8, batch_size=2))
    data = tinyrnn.checkpoint_bytes(big.state())
    s = app.TrainingSession(text=TEXT)
    assert s.controls.load_model(data, "big.npz") and s.run.has_model
    assert "from 1 to 512" in s.form.settings_info  # the inputs show the model's settings, and what is wrong
    assert not s.controls.resume() and not s.run.running and "cannot train in the page" in s.page.error
    s.form.sample_length = 10
    assert s.samples.sample()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_model_of_any_cell_loads_trains_samples_downloads_and_restores(app, cell):
    other = tinyrnn.Trainer(TEXT, tinyrnn.TrainConfig(hidden_size=16, seq_len=8, batch_size=2, cell=cell))
    other.run(2)
    s = app.TrainingSession(text=TEXT)
    assert s.controls.load_model(tinyrnn.checkpoint_bytes(other.state()), "cell.npz") and s.run.has_model
    assert s.form.cell == cell and not s.controls.model_is_stale()  # the form shows the model's cell
    assert s.controls.resume() and s.run.running and s.run.trainer.config.cell == cell, s.page.error
    train_ticks(s, 2)
    assert s.run.step > 2
    s.form.sample_length, s.samples.prime = 12, "the "
    assert s.samples.sample() and len(s.samples.sample_output) == 16, s.page.error
    back = tinyrnn.load_checkpoint(s.controls.checkpoint_file().getvalue())
    assert back.config.cell == cell and back.progress["step"] == s.run.trainer.step_count
    s.controls.pause()
    again = app.TrainingSession(text=TEXT)  # a model that cannot train on the text can still sample
    again.text.text = "ZZZZ qqqq XXXX " * 50
    assert again.controls.load_model(tinyrnn.checkpoint_bytes(other.state()), "cell.npz") and not again.run.trainable
    again.form.sample_length = 10
    assert again.samples.sample(), again.page.error


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_train_starts_a_model_of_the_chosen_cell(app, cell):
    s = app.TrainingSession(text=TEXT, **SMALL)
    s.run.ui_interval = 0.0  # every tick's numbers (else a slow first step under load leaves the readout at step 1)
    s.form.cell = cell
    assert s.controls.train() and s.run.trainer.config.cell == cell and f"({cell}, H=24)" in s.page.status
    train_ticks(s, 3)
    assert s.run.step >= 3 and np.isfinite(s.run.train_loss)
    s.controls.pause()
    s.form.cell = "rnn" if cell != "rnn" else "lstm"
    assert s.controls.model_is_stale()  # a different cell is a new model


def test_the_cell_selector_comes_from_the_settings_table_with_each_description(app):
    from tinyrnn_app import settings

    field = next(f for f in settings.FORM if f.name == "cell")
    assert field.setting is tinyrnn.SETTINGS["cell"] and field.selector == "tr-cell"
    tpl = app.create_app(app.TrainingSession(text=TEXT))
    select = find(pn.Column(*tpl.main), "tr-cell")
    assert list(select.options) == list(tinyrnn.CELLS)
    info = decoded_once(find(pn.Column(*tpl.main), "tr-cell-info"))
    for name in tinyrnn.CELLS:
        assert html.escape(tinyrnn.get_cell(name).description) in info
    assert "▸ " + html.escape(tinyrnn.get_cell("rnn").description) in info


def test_gated_cells_have_their_own_bounds_scaled_by_their_cost(app):
    from tinyrnn_app import settings

    s = app.TrainingSession(text=TEXT, hidden_size=192, seq_len=50, batch_size=32)
    assert s.form.settings_info == ""  # the tanh RNN's long-text setting
    s.form.cell = "lstm"
    limit = settings.MAX_WORK["fused"] // settings.CELL_COST["lstm"]
    assert f"with the lstm cell the page can train at most {limit:,} with the fused engine" in s.form.settings_info
    assert not s.controls.train() and not s.run.has_model
    s.form.hidden_size, s.form.seq_len, s.form.batch_size = settings.MAX_CELL_HIDDEN["lstm"] + 16, 10, 1
    assert f"hidden size can be at most {settings.MAX_CELL_HIDDEN['lstm']}" in s.form.settings_info
    s.form.hidden_size, s.form.seq_len, s.form.batch_size = 128, 25, 16  # the defaults fit every cell
    for cell in tinyrnn.CELLS:
        s.form.cell = cell
        assert s.form.settings_info == "", (cell, s.form.settings_info)
    big = tinyrnn.Trainer(TEXT, tinyrnn.TrainConfig(hidden_size=320, seq_len=8, batch_size=2, cell="gru"))
    loaded = app.TrainingSession(text=TEXT)
    assert loaded.controls.load_model(tinyrnn.checkpoint_bytes(big.state()), "big-gru.npz")
    assert not loaded.controls.resume() and "cannot train in the page" in loaded.page.error and "gru cell" in loaded.page.error


def test_a_diverging_loss_gets_a_warning_naming_what_to_change(app):
    s = app.TrainingSession(text=TEXT, hidden_size=24, seq_len=12, batch_size=4, lr=10.0, clip_norm=0)
    s.run.ui_interval = 0.0
    assert s.controls.train()
    while s.run.running and s.run.step < 200 and not s.run.notice:
        s.run.tick(0.02)
    uniform = np.log(len(set(TEXT)))
    assert s.run.train_loss > 1.5 * uniform, (s.run.train_loss, uniform)
    assert "diverging" in s.run.notice and "Lower the learning rate (now 10)" in s.run.notice
    assert "turn gradient clipping on" in s.run.notice and f"ln V = {uniform:.2f}" in s.run.notice
    layout = pn.Column(*app.create_app(s).main)
    assert "diverging" in decoded_once(find(layout, "tr-notice"))
    s.controls.pause()
    s.form.lr, s.form.clip_norm = 1e-2, 5.0
    s.controls.train()  # a new model: the warning goes
    assert s.run.notice == ""
    train_ticks(s, 3)
    assert s.run.notice == ""


def test_settings_that_do_not_fit_the_text_give_a_message(app):
    s = app.TrainingSession(text="abcabcabcabc", seq_len=25, batch_size=16)
    assert not s.controls.train()
    assert "too few" in s.page.error and not s.run.has_model and not s.run.running


# --- bad text ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, words", [("", "empty"), ("aaaaaaaaaaaa", "one distinct character")]
)
def test_unusable_text_gives_a_message_and_keeps_the_model(session, text, words):
    session.controls.train()
    train_ticks(session, 2)
    session.controls.pause()
    trainer = session.run.trainer
    session.text.text = text
    assert words in session.text.text_info
    assert not session.controls.train()
    assert words in session.page.error
    assert session.run.trainer is trainer and not session.run.running


def test_a_huge_paste_gets_a_message_not_a_model(app, session):
    session.text.text = "ab" * (MAX_TEXT_CHARS // 2) + "c"
    assert "too long" in session.page.error and "too long" in session.text.text_info
    assert not session.controls.train() and not session.run.has_model
    session.text.text = TEXT
    assert session.page.error == ""  # the message goes once the text is fine again
    assert session.controls.train()


def test_the_text_area_stops_just_past_the_limit(app):
    tpl = app.create_app(app.TrainingSession())
    area = find(pn.Column(*tpl.main), "tr-text")
    assert area.max_length == MAX_TEXT_CHARS + 1


def test_uploading_a_text_file(session):
    assert session.text.load_text_file("naïve café — ünïcödé text, repeated. ".encode("utf-8") * 20, "mine.txt")
    assert session.text.text.startswith("naïve café") and "mine.txt" in session.page.status
    text = session.text.text
    for data in (b"\x00\x01\x02binary\x00", b"\xff\xfe\xfa not utf-8", b""):
        assert not session.text.load_text_file(data, "bad.txt")
        assert "bad.txt" in session.page.error and session.text.text == text


# --- sampling ----------------------------------------------------------------------------------------------------


def test_sample_with_prime_temperature_and_length(session):
    assert not session.samples.sample() and "no model" in session.page.error
    session.controls.train()
    train_ticks(session, 3)
    session.controls.pause()
    session.samples.prime, session.form.temperature, session.form.sample_length = "the cat", 0.0, 40
    assert session.samples.sample()
    first = session.samples.sample_output
    assert first.startswith("the cat") and len(first) == len("the cat") + 40
    assert session.samples.sample()
    assert session.samples.sample_output == first  # temperature 0 is greedy
    assert "temperature 0" in session.samples.sample_info


def test_a_prime_with_unknown_characters_gives_a_message(session):
    session.controls.train()
    train_ticks(session, 1)
    session.samples.prime = "the Ω"
    assert not session.samples.sample()
    assert "Cannot sample" in session.page.error and "Ω" in session.page.error
    assert session.run.has_model


def test_live_samples_appear_on_their_own_line_and_an_asked_sample_stays(app):
    clock = ManualClock()
    s = app.TrainingSession(text=TEXT, clock=clock, **SMALL)
    s.run.ui_interval = 0.0
    assert s.controls.train()
    s.run.tick(0.01)
    assert s.samples.live_sample == ""  # the first live sample comes about a second after Train
    clock.advance(1.0)
    s.run.tick(0.01)
    assert len(s.samples.live_sample) == LIVE_SAMPLE_LENGTH and "Live sample at step" in s.samples.live_info
    s.form.sample_length, s.samples.prime = 30, "the "
    assert s.samples.sample()
    asked, first_live = s.samples.sample_output, s.samples.live_sample
    for _ in range(6):  # several live samples later, the asked-for sample is still there
        clock.advance(LIVE_SAMPLE_EVERY)
        s.run.tick(0.01)
        s.run.tick(0.01)  # (one extra per tick: the gradient flow may come first)
    assert s.samples.sample_output == asked and asked.startswith("the ") and "Sample at step" in s.samples.sample_info
    assert s.samples.live_sample != first_live and f"step {s.run.trainer.step_count}" in s.samples.live_info
    assert s.samples.latest_sample() == s.samples.live_sample  # the latest of the two (for the hidden-state view)


# --- escaping ----------------------------------------------------------------------------------------------------


def test_user_and_model_text_is_shown_as_plain_text(app, session):
    tpl = app.create_app(session)
    layout = pn.Column(*tpl.main)
    session.controls.train()
    train_ticks(session, 2)
    session.controls.pause()
    session.samples.prime = PAYLOAD
    session.form.sample_length = 5
    assert session.samples.sample(), session.page.error
    out = decoded_once(find(layout, "tr-sample-output"))
    assert "<img" not in out and html.escape(PAYLOAD) in out
    session.controls.load_model(b"junk", filename=PAYLOAD + ".npz")
    err = decoded_once(find(layout, "tr-error"))
    assert "<img" not in err and html.escape(PAYLOAD) in err
    session.text.load_text_file(PAYLOAD.encode() * 3, "<b>x</b>.txt")
    status = decoded_once(find(layout, "tr-status"))
    assert "<b>" not in status and "&lt;b&gt;" in status
    assert plain_html('a<b>"&') == '<pre class="tr-pre">a&lt;b&gt;&quot;&amp;</pre>'


def test_the_error_alert_is_hidden_without_an_error(app, session):
    tpl = app.create_app(session)
    alert = find(pn.Column(*tpl.main), "tr-error")
    assert not alert.visible
    session.samples.sample()
    assert alert.visible and "no model" in decoded_once(alert)


# --- checkpoints -------------------------------------------------------------------------------------------------


def test_download_round_trips_through_load_checkpoint(session):
    assert session.controls.checkpoint_file() is None and "no model" in session.page.error
    session.controls.train()
    train_ticks(session, 3)
    session.controls.pause()
    data = session.controls.checkpoint_file().getvalue()
    ckpt = tinyrnn.load_checkpoint(data)
    assert ckpt.progress["step"] == session.run.step
    for name, value in session.run.trainer.params.items():
        np.testing.assert_array_equal(ckpt.params[name], value)
    assert ckpt.vocab.chars == session.run.trainer.vocab.chars
    resumed = tinyrnn.Trainer.from_checkpoint(ckpt, TEXT)
    assert resumed.step_count == session.run.step


def test_uploading_a_checkpoint_continues_training_where_it_stopped(app, session):
    session.controls.train()
    train_ticks(session, 4)
    session.controls.pause()
    data = session.controls.checkpoint_file().getvalue()
    other = app.TrainingSession(text=TEXT)  # default settings: the upload sets the inputs from the file
    other.run.ui_interval = 0.0
    assert other.controls.load_model(data, "model.npz"), other.page.error
    assert other.form.hidden_size == SMALL["hidden_size"] and other.form.seq_len == SMALL["seq_len"]
    assert other.run.step == session.run.step and "Loaded model.npz" in other.page.status
    assert len(other.run.chart_data.loss["step"]) > 0  # the saved history is on the chart
    assert other.controls.resume() and other.run.tick(0.01) >= 1 and other.run.step > session.run.step
    # the continued run is the same run: one more step here equals one more step in the original session
    session.controls.resume()
    other2 = app.TrainingSession(text=TEXT)
    other2.controls.load_model(data, "model.npz")
    a = session.run.trainer.step().train_loss
    b = other2.run.trainer.step().train_loss
    assert a == pytest.approx(b, rel=1e-6)


def test_a_corrupt_upload_keeps_the_last_good_model(session):
    session.controls.train()
    train_ticks(session, 2)
    session.controls.pause()
    trainer, step = session.run.trainer, session.run.step
    good = session.controls.checkpoint_file().getvalue()
    for bad in (b"not a checkpoint", good[: len(good) // 2], b"\x00" * 100):
        assert not session.controls.load_model(bad, "bad.npz")
        assert "Could not load bad.npz" in session.page.error and "current model is kept" in session.page.error
        assert session.run.trainer is trainer and session.run.step == step
    assert session.controls.resume() and session.run.tick(0.01) >= 1


def test_a_checkpoint_for_other_text_can_sample_but_not_train(app, session):
    session.controls.train()
    train_ticks(session, 2)
    session.controls.pause()
    data = session.controls.checkpoint_file().getvalue()
    other = app.TrainingSession(text="ZZZZ qqqq XXXX " * 50)  # characters the model does not know
    assert other.controls.load_model(data, "m.npz")
    assert other.run.has_model and not other.run.trainable and "can sample but cannot train" in other.page.status
    other.samples.prime, other.form.sample_length = "the ", 20
    assert other.samples.sample() and len(other.samples.sample_output) == 24
    assert not other.controls.resume() and "cannot train on the current text" in other.page.error
    assert other.controls.checkpoint_file().getvalue() == data  # downloads hand back the same model
    other.text.text = TEXT  # text that fits: now it can continue
    assert other.controls.resume() and other.run.trainable and other.run.tick(0.01) >= 1


# --- overfitting ---------------------------------------------------------------------------------------------------


def metrics(step, train, val=None):
    return tinyrnn.StepMetrics(step, train, val, 1000.0, 1.0, step * 100, step * 0.01)


def test_the_overfitting_notice_needs_validation_rising_while_training_falls():
    from tinyrnn_app.notices import overfitting_notice

    def history(vals, train_start=3.0, train_end=1.0):
        n = 100 * len(vals)
        out = [metrics(i + 1, train_start + (train_end - train_start) * i / (n - 1)) for i in range(n)]
        for k, v in enumerate(vals):
            out[100 * (k + 1) - 1].val_loss = v
        return out

    assert overfitting_notice(history([3.0, 2.5, 2.2, 2.1, 2.0])) is None  # still improving
    assert overfitting_notice(history([3.0, 2.0, 2.02, 2.03, 2.04])) is None  # flat within the margin
    assert overfitting_notice(history([3.0, 2.0, 2.3, 2.6])) is None  # only two points since the best
    assert overfitting_notice(history([3.0, 2.0, 2.3, 2.6, 2.9], 1.0, 3.0)) is None  # training loss rose too
    notice = overfitting_notice(history([3.0, 2.0, 2.3, 2.6, 2.9]))
    assert notice and "overfitting" in notice and "since step 200" in notice and "from 2.00 to 2.90" in notice
    assert "Download best model" in notice


def test_overfitting_is_shown_and_the_best_model_is_kept_beside_the_latest(app):
    text = tinyrnn.default_corpus()[:3000]  # short: a model of this size learns it by heart within a few epochs
    s = app.TrainingSession(text=text, hidden_size=128, seq_len=25, batch_size=8, lr=5e-3)
    s.run.ui_interval = 0.0
    tpl = app.create_app(s)
    layout = pn.Column(*tpl.main)
    best_button = find(layout, "tr-download-best")
    assert best_button.disabled and s.controls.best_checkpoint_file() is None and "no best-validation model" in s.page.error
    assert s.controls.train()
    while s.run.step < 3000 and "overfitting" not in s.run.notice:
        s.run.tick(0.05)
    assert "overfitting" in s.run.notice, (s.run.step, [m.val_loss for m in s.run.trainer.history if m.val_loss])
    assert "overfitting" in decoded_once(find(layout, "tr-notice"))
    s.controls.pause()
    vals = [(m.step, m.val_loss) for m in s.run.trainer.history if m.val_loss is not None]
    best_step, best_val = min(vals, key=lambda sv: sv[1])
    assert s.run.best_step == best_step < s.run.step and f"since step {best_step:,}" in s.run.notice
    assert not best_button.disabled and f"step {best_step:,}" in best_button.label
    best = tinyrnn.load_checkpoint(best_button.callback().getvalue())
    latest = tinyrnn.load_checkpoint(find(layout, "tr-download").callback().getvalue())
    assert best.progress["step"] == best_step and latest.progress["step"] == s.run.step
    # the kept model is the one that was validated at that step: it scores the same on the validation text again
    again = tinyrnn.Trainer.from_checkpoint(best, text)
    assert again.evaluate() == pytest.approx(best_val, rel=1e-5)
    assert tinyrnn.Trainer.from_checkpoint(latest, text).evaluate() > best_val + 0.05
    s.controls.reset()
    assert s.run.best_step is None and best_button.disabled


# --- keeping the work across visits -------------------------------------------------------------------------------


def visit(app, store, shown=None, **params):
    """A new page visit: a session that restores what ``store`` keeps when the page is ready. ``shown``: a list
    that gets every (status line, ready) the page shows on the way."""
    s = app.TrainingSession(store=store, loading=True, **params)
    if shown is not None:
        s.page.param.watch(lambda *events: shown.append((s.page.status, s.page.ready)), ["status", "ready"])
    s.run.ui_interval = 0.0
    asyncio.run(s.start())  # the page's start-up: helpers, restore, ready
    return s


def test_the_work_is_kept_and_restored_on_the_next_visit_and_continues_exactly(app):
    from tinyrnn_app.storage import MemoryStore

    store = MemoryStore()
    s = visit(app, store, text=TEXT, **SMALL)
    assert s.page.ready and s.page.status.startswith("Ready") and not store.records  # nothing kept yet
    s.form.sample_length, s.samples.prime = 77, "the "
    s.controls.train()
    train_ticks(s, 3)
    s.controls.pause()  # Pause saves
    kept = store.records["work"]
    download = tinyrnn.load_checkpoint(s.controls.checkpoint_file().getvalue())
    saved = tinyrnn.load_checkpoint(kept["model"])  # the same checkpoint as Download
    assert saved.progress == download.progress and saved.config == download.config
    assert all(np.array_equal(saved.params[k], download.params[k]) for k in download.params)
    assert "keeps the model at step" in s.kept.storage_info and "Forget clears it" in s.kept.storage_info

    shown = []
    t = visit(app, store, shown)  # the next visit starts with the default corpus and settings
    assert t.page.ready and t.page.status.startswith("Restored the model from ") and f"step {s.run.step:,}" in t.page.status
    assert [line for line, _ in shown] == [t.page.status] and shown[0][1]  # never "Ready" first: one update, true
    assert t.text.text == TEXT and t.form.hidden_size == SMALL["hidden_size"] and t.form.lr == SMALL["lr"]
    assert t.form.sample_length == 77 and t.samples.prime == "the "
    assert t.run.step == s.run.step and t.run.has_model and t.run.trainable and not t.controls.model_is_stale()
    assert t.run.chart_data.to_dict() == s.run.chart_data.to_dict()  # the charts' history is back
    # it continues exactly: the next steps of both are the same steps
    for _ in range(3):
        a, b = s.run.trainer.step(), t.run.trainer.step()
        assert a.train_loss == b.train_loss
    assert all(np.array_equal(s.run.trainer.params[k], t.run.trainer.params[k]) for k in s.run.trainer.params)
    assert t.controls.resume() and t.run.tick(0.01) >= 1


def test_the_work_is_saved_every_few_seconds_while_training(app):
    from tinyrnn_app import keep
    from tinyrnn_app.storage import MemoryStore

    store, clock = MemoryStore(), ManualClock()
    s = visit(app, store, text=TEXT, clock=clock, **SMALL)
    s.controls.train()
    s.run.tick(0.01)
    clock.advance(keep.SAVE_EVERY - 0.5)
    for _ in range(4):  # the flow, the live sample ... but no save: not yet due
        s.run.tick(0.01)
    assert not store.records
    clock.advance(0.5)
    ran = [s.run.tick(0.01) for _ in range(4)]  # one extra per tick: the save comes within a few ticks
    assert all(ran)
    assert tinyrnn.load_checkpoint(store.records["work"]["model"]).progress["step"] <= s.run.trainer.step_count
    saved_step = tinyrnn.load_checkpoint(store.records["work"]["model"]).progress["step"]
    assert saved_step > 0 and s.run.running  # saving does not stop training
    clock.advance(1.0)
    s.run.tick(0.01)
    assert tinyrnn.load_checkpoint(store.records["work"]["model"]).progress["step"] == saved_step  # every 5 s


def test_the_work_is_saved_when_the_tab_is_hidden(app):
    from tinyrnn_app.storage import MemoryStore
    from tinyrnn_app.visibility import PageVisibility

    store = MemoryStore()
    s = visit(app, store, text=TEXT, **SMALL)
    tpl = app.create_app(s)
    (visibility,) = [o for o in all_objects(tpl) if isinstance(o, PageVisibility)]
    s.controls.train()
    train_ticks(s, 2)
    assert not store.records
    visibility.hidden += 1  # what the page's listener does on visibilitychange/pagehide
    assert tinyrnn.load_checkpoint(store.records["work"]["model"]).progress["step"] == s.run.trainer.step_count
    assert s.run.running


def test_forget_clears_what_is_kept(app):
    from tinyrnn_app.storage import MemoryStore

    store = MemoryStore()
    s = visit(app, store, text=TEXT, **SMALL)
    s.controls.train()
    train_ticks(s, 2)
    s.controls.pause()
    assert "work" in store.records
    s.kept.forget()
    assert not store.records and "keeps nothing" in s.kept.storage_info
    s.kept.keep_work()  # nothing is saved again until the next Train or Resume
    assert not store.records
    t = visit(app, store)
    assert t.page.status.startswith("Ready") and not t.run.has_model and t.text.text == tinyrnn.default_corpus()
    s.controls.resume()
    s.controls.pause()
    assert "work" in store.records


def test_a_store_that_refuses_gets_a_message_and_training_goes_on(app):
    from tinyrnn_app.storage import MemoryStore

    store = MemoryStore()
    store.fail_with = "QuotaExceededError: the quota has been exceeded"
    s = visit(app, store, text=TEXT, **SMALL)
    assert s.page.ready and "Could not read what this browser kept" in s.kept.storage_info
    s.controls.train()
    train_ticks(s, 2)
    s.controls.pause()
    assert "did not keep your work" in s.kept.storage_info and "QuotaExceededError" in s.kept.storage_info
    assert "training goes on" in s.kept.storage_info and s.page.error == ""
    assert s.controls.resume() and s.run.tick(0.01) >= 1


def test_a_damaged_record_is_not_restored_and_says_so(app):
    from tinyrnn_app.storage import MemoryStore

    store = MemoryStore()
    store.records["work"] = {"meta": '{"version": 1, "text": 5', "model": None, "best": None}
    s = visit(app, store)
    assert s.page.ready and s.page.status.startswith("Ready") and "could not be restored" in s.kept.storage_info
    store.records["work"] = {"meta": '{"version": 1, "saved_at": 0, "text": "abcabc abc", "form": {}, "trainable": true,'
                             ' "model_text": null, "charts": {}}', "model": b"not a checkpoint", "best": None}
    s = visit(app, store)
    assert s.page.ready and "could not be restored" in s.kept.storage_info and not s.run.has_model


# --- gradient check ----------------------------------------------------------------------------------------------


def test_gradient_check_shows_the_relative_errors(session):
    assert session.controls.gradient_check(), session.page.error  # builds the model if there is none
    out = session.controls.gradcheck_output
    assert "PASSED" in out
    for words in ("autograd vs manual BPTT", "fused engine vs autograd", "finite differences vs autograd"):
        line = next(line for line in out.splitlines() if words in line)
        assert float(line.split()[-1]) < 1e-4


# --- layout ------------------------------------------------------------------------------------------------------

WIDGET_SELECTORS = [
    "tr-text", "tr-upload-text", "tr-corpus", "tr-train", "tr-pause", "tr-resume", "tr-reset", "tr-sample-output",
    "tr-prime", "tr-temperature", "tr-length", "tr-sample", "tr-download", "tr-upload-model", "tr-error",
    "tr-gradcheck", "tr-gradcheck-output", "tr-status", "tr-text-info", "tr-loss-chart", "tr-flow-chart",
    "tr-hidden-size", "tr-seq-len", "tr-batch-size", "tr-lr", "tr-optimizer", "tr-clip-norm", "tr-engine",
    "tr-readouts", "tr-sample-info", "tr-backend", "tr-settings-info", "tr-notice", "tr-download-best",
    "tr-forget", "tr-storage",
    # issue 11: cells, the cells' gradient comparison, the hidden-state view, the memory experiment
    "tr-cell", "tr-cell-info", "tr-recall-k", "tr-memory", "tr-compare-len", "tr-compare-last-step", "tr-compare",
    "tr-compare-info", "tr-compare-chart", "tr-passage-source", "tr-passage-start", "tr-passage-length",
    "tr-show-passage", "tr-unit", "tr-unit-choice", "tr-passage-info", "tr-unit-list", "tr-passage",
    # issue 18: the live sample on its own line, the milestone samples, the tabs
    "tr-live-sample", "tr-live-info", "tr-milestones", "tr-tabs",
    "tr-race-budget", "tr-race-start", "tr-race-stop", "tr-race-progress", "tr-race", "tr-inside-note",
    "tr-connectivity", "tr-gates", "tr-expect",
]
READOUT_SELECTORS = ["tr-step", "tr-loss", "tr-val-loss", "tr-chars", "tr-speed", "tr-elapsed"]


def test_every_documented_selector_is_on_exactly_one_component(app):
    tpl = app.create_app(app.TrainingSession())
    classes = [c for o in all_objects(tpl) for c in (getattr(o, "css_classes", None) or []) if c.startswith("tr-")]
    for name in WIDGET_SELECTORS:
        assert classes.count(name) == 1, name
        assert name in app.selectors.WIDGETS, f"{name} is not in tinyrnn_app/selectors.py"
    readouts = decoded_once(find(pn.Column(*tpl.main), "tr-readouts"))
    for name in READOUT_SELECTORS:
        assert readouts.count(f'<div class="{name}"><span class="tr-kv">') == 1, name
        assert name in app.selectors.READOUTS
    # the table lists nothing that is not on the page
    assert set(app.selectors.WIDGETS) == set(WIDGET_SELECTORS) and set(app.selectors.READOUTS) == set(READOUT_SELECTORS)


def test_empty_charts_say_what_they_will_show(app, session):
    from bokeh.models import Label

    tpl = app.create_app(session)
    layout = pn.Column(*tpl.main)
    figures = [find(layout, c).objects[0].object for c in ("tr-loss-chart", "tr-flow-chart")]
    labels = [[r for r in fig.center if isinstance(r, Label)][0] for fig in figures]
    assert all(label.visible for label in labels) and "Press Train" in labels[0].text
    session.controls.train()
    train_ticks(session, 2)
    assert not any(label.visible for label in labels)
    session.controls.reset()
    assert all(label.visible for label in labels)
    assert figures[1].yaxis[0].ticker.desired_num_ticks == 5  # readable log ticks on the gradient-flow chart


def test_docs_list_every_selector_and_module(app):
    docs = (Path(__file__).resolve().parents[1] / "docs" / "app.md").read_text(encoding="utf-8")
    for name, what in {**app.selectors.WIDGETS, **app.selectors.READOUTS}.items():
        assert f"| `{name}`" in docs and what in docs, name
    for path in PACKAGE_DIR.glob("*.py"):
        assert path.name == "__init__.py" or f"| `{path.name}` |" in docs, path.name


def test_readouts_show_the_numbers(app, session):
    layout = pn.Column(*app.create_app(session).main)
    session.controls.train()
    train_ticks(session, 3)
    text = decoded_once(find(layout, "tr-readouts"))
    assert f"Step {session.run.step}<" in text
    assert f"Chars seen {session.run.chars_seen:,}<" in text
    loss = re.search(r"Train loss ([0-9.]+) nats/char \(([0-9.]+) bits/char\)", text)
    assert loss and float(loss.group(1)) == pytest.approx(session.run.train_loss, abs=1e-4)
    assert float(loss.group(2)) == pytest.approx(session.run.train_loss / np.log(2), abs=1e-4)


def test_buttons_follow_the_session_state(app):
    s = app.TrainingSession(text=TEXT, **SMALL)
    layout = pn.Column(*app.create_app(s).main)
    train, pause, resume = (find(layout, c) for c in ("tr-train", "tr-pause", "tr-resume"))
    download, sample = find(layout, "tr-download"), find(layout, "tr-sample")
    assert not train.disabled and pause.disabled and resume.disabled and download.disabled and sample.disabled
    train.clicks += 1  # what a click does
    assert s.run.running and train.disabled and not pause.disabled and not download.disabled
    pause.clicks += 1
    assert not s.run.running and not resume.disabled and not train.disabled
    # the download button's callback hands over a checkpoint
    assert tinyrnn.load_checkpoint(download.callback().getvalue()).progress["step"] == s.run.step


def test_the_upload_widgets_feed_the_session(app, session):
    layout = pn.Column(*app.create_app(session).main)
    up_text, up_model = find(layout, "tr-upload-text"), find(layout, "tr-upload-model")
    up_text.param.update(filename="t.txt", value="upload me, please; upload me again. ".encode() * 10)
    assert session.text.text.startswith("upload me")
    up_model.param.update(filename="x.npz", value=b"garbage")
    assert "Could not load x.npz" in session.page.error
    # the same bad file again still reports (the watcher fires on every upload, not only on changes)
    session.page.clear_error()
    up_model.param.update(filename="x.npz", value=b"garbage")
    assert "Could not load x.npz" in session.page.error


def test_checkpoint_stream_is_bytes_io(session):
    session.controls.gradient_check()
    assert isinstance(session.controls.checkpoint_file(), io.BytesIO)


# --- issue 11: the cells compared, the hidden-state view, the memory experiment ------------------------------------


def test_the_cells_comparison_has_one_curve_per_cell_on_the_same_batch(app, session):
    assert not session.views.compare_cells() and "press Train first" in session.page.error
    assert session.controls.train()
    train_ticks(session, 2)
    session.form.compare_len = 60
    for last_step in (True, False):
        session.views.compare_last_step = last_step
        assert session.views.compare_cells(), session.page.error
        series = session.run.chart_data.series
        for cell in tinyrnn.CELLS:
            expected = session.run.trainer.gradient_flow(cell=None if cell == "rnn" else cell, seq_len=60,
                                                     last_step=last_step)
            assert series["cmp_" + cell]["t"] == list(range(1, 61))
            assert np.allclose(series["cmp_" + cell]["norm"], np.maximum(expected, 1e-30), rtol=0, atol=0)
        assert "rnn is the current model" in session.views.compare_info and "gru, lstm are freshly initialised" in \
            session.views.compare_info
    # the quantities differ between cells (not one curve drawn three times)
    assert series["cmp_rnn"]["norm"] != series["cmp_gru"]["norm"] != series["cmp_lstm"]["norm"]
    session.form.compare_len = 201
    assert not session.views.compare_cells() and "from 2 to 200" in session.page.error
    short = app.TrainingSession(text=TEXT[:700], **SMALL)  # 4 streams of 157 characters
    assert short.controls.train() and short.run.trainer.stream_len < 200
    short.form.compare_len = 200
    assert not short.views.compare_cells() and f"at most {short.run.trainer.stream_len:,}" in short.page.error


def test_the_comparison_window_is_bounded_by_its_work(app):
    from tinyrnn_app import settings

    assert settings.compare_problem(200, 16, 128, 10_000) is None  # T=200 at the defaults
    assert "at most 52,428,800" in settings.compare_problem(200, 32, 128, 10_000)
    assert "window of at most 100" in settings.compare_problem(200, 32, 128, 10_000)
    assert "window of at most 50" in settings.compare_problem(200, 16, 256, 10_000)
    assert "too large for it" in settings.compare_problem(200, 512, 512, 10_000)


def test_the_comparison_chart_has_a_legend_per_cell_a_log_axis_and_a_placeholder(app, session):
    from bokeh.models import Label, Legend, LogScale

    tpl = app.create_app(session)
    chart = find(pn.Column(*tpl.main), "tr-compare-chart")
    fig = next(o.object for o in chart.select(pn.pane.Bokeh))
    legend = next(r for r in fig.below if isinstance(r, Legend))
    assert [item.label["value"] for item in legend.items] == ["tanh RNN", "GRU", "LSTM"]
    assert isinstance(fig.y_scale, LogScale)
    label = next(r for r in fig.center if isinstance(r, Label))
    assert label.visible and "Compare cells" in label.text
    session.controls.train()
    session.form.compare_len = 20
    assert session.views.compare_cells()
    assert not label.visible


def parsed_tags(markup: str) -> list[str]:
    from html.parser import HTMLParser

    tags = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)

    Collect().feed(markup)
    return tags


def test_the_hidden_state_view_colours_each_escaped_character(app, session):
    from tinyrnn_app import hidden

    assert hidden.colour(1.0) == "rgb(255,38,38)" and hidden.colour(-1.0) == "rgb(38,38,255)"
    assert hidden.colour(0.0) == "rgb(255,255,255)" and hidden.colour(5.0) == hidden.colour(1.0)
    assert not session.views.show_passage() and "press Train" in session.page.error
    assert session.controls.train()
    train_ticks(session, 2)
    start = TEXT.index(PAYLOAD) - 20
    session.form.passage_start, session.form.passage_length = start, 60
    assert session.views.show_passage(), session.page.error
    passage = TEXT[start:start + 60]
    assert PAYLOAD in passage and "\n" in passage
    view = session.views.passage_view
    assert set(parsed_tags(view)) == {"div", "span"}  # no tag from the text
    assert "<img" not in view and html.escape(PAYLOAD[0]) in view
    assert view.count("<span ") == len(passage) and view.count(hidden.NEWLINE_MARK) == passage.count("\n")
    # the colours are the unit's activations over the passage, read from a zero state
    trainer = session.run.trainer
    states, _ = tinyrnn.read_passage(trainer.params, trainer.vocab.encode(passage),
                                     np.zeros((1, 24), dtype=trainer.params["W_hh"].dtype), "rnn")
    colours = re.findall(r'background:(rgb\([0-9,]+\))', view)
    assert colours == [hidden.colour(v) for v in states[:, 0]]
    session.form.unit = 5
    assert re.findall(r'background:(rgb\([0-9,]+\))', session.views.passage_view) == [hidden.colour(v) for v in states[:, 5]]
    assert "Unit 5 of 24" in session.views.passage_info
    session.form.unit = 24
    assert "from 0 to 23" in session.views.passage_info
    tpl = app.create_app(session)
    session.form.unit = 3
    shown = decoded_once(find(pn.Column(*tpl.main), "tr-passage"))
    assert "<img" not in shown and set(parsed_tags(shown)) == {"div", "span"}


def test_the_units_that_track_a_property_are_listed_and_can_be_chosen(app, session):
    text = ('say "hello (there)" and "bye"\n(a [b] c) plain words\n' * 30)
    s = app.TrainingSession(text=text, **SMALL)
    assert s.controls.train()
    train_ticks(s, 2)
    s.form.passage_length = 500
    assert s.views.show_passage(), s.page.error
    states, _ = tinyrnn.read_passage(s.run.trainer.params, s.run.trainer.vocab.encode(text[:500]),
                                     np.zeros((1, 24), dtype=s.run.trainer.params["W_hh"].dtype), "rnn")
    expected = tinyrnn.unit_correlations(states.astype(np.float64), tinyrnn.text_features(text[:500]), per_feature=3)
    assert len(expected) == 9
    for m in expected:
        assert f"{m.feature}: unit {m.unit} (r = {m.correlation:+.2f})" in s.views.unit_list
    choice = s.views.param.unit_choice.objects[4]
    assert choice.startswith(expected[3].feature)
    s.views.unit_choice = choice
    assert s.form.unit == expected[3].unit and f"Unit {expected[3].unit} of 24" in s.views.passage_info


def test_the_passage_can_be_the_latest_sample_and_is_bounded(app, session):
    assert session.controls.train()
    train_ticks(session, 1)
    session.views.passage_source = "the latest sample"
    session.samples.sample_output = ""
    assert not session.views.show_passage() and "no sample yet" in session.page.error
    session.form.sample_length, session.samples.prime = 50, PAYLOAD
    assert session.samples.sample() and session.views.show_passage(), session.page.error
    assert session.views.passage_view.count("<span ") == len(session.samples.sample_output) and "<img" not in session.views.passage_view
    session.form.passage_length = 2001
    assert not session.views.show_passage() and "from 1 to 2,000" in session.page.error
    session.views.passage_source, session.form.passage_length, session.form.passage_start = "the training text", 10, len(TEXT)
    assert not session.views.show_passage() and "start before position" in session.page.error


def test_the_recall_corpus_takes_k_and_regenerates_the_text(app):
    s = app.TrainingSession()
    s.text.corpus = "recall"
    assert s.text.text == tinyrnn.recall_corpus(10) and s.text.corpus == "recall"
    s.form.recall_k = 25
    assert s.text.text == tinyrnn.recall_corpus(25) and s.text.corpus == "recall"
    s.form.recall_k = 201
    assert "from 2 to 200" in s.page.error and s.text.text == tinyrnn.recall_corpus(25)
    s.form.recall_k = 40
    assert s.page.error == "" and s.text.text == tinyrnn.recall_corpus(40)
    s.text.corpus = "macbeth"
    s.form.recall_k = 12  # only the recall corpus follows k
    assert s.text.text == tinyrnn.load_corpus("macbeth")


def test_the_memory_readout_scores_exactly_the_recall_positions(app):
    from tinyrnn_app import hidden, views

    clock = ManualClock()
    s = app.TrainingSession(corpus="recall", recall_k=6, hidden_size=16, seq_len=14, batch_size=8, cell="lstm",
                            clock=clock)
    assert s.views.memory_info == ""
    assert s.controls.train()
    assert "Recall at k=6" in s.views.memory_info and "step 0" in s.views.memory_info  # from the start: an untrained model
    train_ticks(s, 2)
    clock.advance(views.MEMORY_EVERY)
    train_ticks(s, 3)  # the flow, the live sample, the memory readout: one extra per tick
    m = re.search(r"(\d+)% of (\d+) held-out letters right at step (\d+) \(chance 12\.5%: one of 8 letters", s.views.memory_info)
    assert m, s.views.memory_info
    assert int(m.group(3)) == s.run.trainer.step_count  # refreshed by the ticks
    # the same number, computed independently: each held-out line read alone with read_passage
    trainer = s.run.trainer
    held_out = trainer.vocab.decode(trainer.val_ids)
    rows, k = hidden.recall_rows(held_out)
    assert k == 6 and len(rows) == int(m.group(2)) == min(64, 2000 // 8)
    hits = []
    for row in rows:
        ids = trainer.vocab.encode(row)
        _, logits = tinyrnn.read_passage(trainer.params, ids, np.zeros((1, 32), dtype=np.float32), "lstm")
        hits.append(tinyrnn.recall_accuracy(logits, ids, tinyrnn.recall_positions(row)))
        assert tinyrnn.recall_positions(row) == [k + 1]
    assert int(m.group(1)) == round(100 * float(np.mean(hits)))
    other = app.TrainingSession(text=TEXT, **SMALL)
    other.controls.train()
    other.views.refresh_memory()
    assert other.views.memory_info == ""  # not a recall text: no readout
    assert hidden.recall_rows("x\nab:c\nhello\n") == ([], None)


def test_an_lstm_on_the_recall_text_is_kept_and_restored_with_its_memory_readout(app):
    from tinyrnn_app.storage import MemoryStore

    store = MemoryStore()
    s = visit(app, store, corpus="recall", recall_k=4, hidden_size=16, seq_len=10, batch_size=8, cell="lstm")
    assert s.controls.train()
    train_ticks(s, 2)
    s.controls.pause()
    t = visit(app, store)
    assert t.form.cell == "lstm" and t.run.trainer.config.cell == "lstm" and not t.controls.model_is_stale()
    assert t.text.text == tinyrnn.recall_corpus(4) and "Recall at k=4" in t.views.memory_info
    for _ in range(2):
        a, b = s.run.trainer.step(), t.run.trainer.step()
        assert a.train_loss == b.train_loss


def test_the_workers_asked_for_in_the_address_are_read_and_bounded(app, monkeypatch):
    from tinyrnn_app import lifecycle

    for query, expected in [({}, None), ({"workers": "2"}, 2), ({"workers": "0"}, 1), ({"workers": "99"}, 16),
                            ({"workers": "two"}, None)]:
        monkeypatch.setattr(lifecycle, "page_query", lambda q=query: q)
        assert lifecycle.requested_workers() == expected, query
    s = app.TrainingSession(text=TEXT, **SMALL)  # natively: one worker, and the readout says so
    assert s.run.backend.endswith("\nTraining: one worker"), s.run.backend


# --- issue 18: the session by composition, the scheduler, samples at milestones -----------------------------------


def test_the_session_is_made_of_small_parts_that_do_not_inherit_from_each_other(app):
    import inspect

    import param

    s = app.TrainingSession(text=TEXT, **SMALL)
    parts = [s.page, s.form, s.text, s.run, s.controls, s.samples, s.views, s.kept]
    for obj in [s, *parts]:
        own = [c for c in type(obj).__mro__ if c.__module__.startswith("tinyrnn_app")]
        assert len(own) <= 2, (type(obj).__name__, own)  # the longest chain of the package's own classes
        methods = [n for n, v in inspect.getmembers(type(obj)) if callable(v) and not n.startswith("__")
                   and not hasattr(param.Parameterized, n)]
        assert len(methods) <= 30, (type(obj).__name__, len(methods))
    # the parts share no self: each is its own object, and they meet only through parameters and small methods
    assert len({id(p) for p in parts}) == len(parts)
    assert s.form.page is s.page and s.run.page is s.page and s.text.form is s.form and s.views.run is s.run


def test_the_scheduler_runs_each_job_on_its_period_of_an_injected_clock(app):
    from tinyrnn_app.loop import Scheduler

    clock, calls = ManualClock(), []
    scheduler = Scheduler(clock)
    scheduler.add("a", 2.0, lambda: calls.append("a"))
    scheduler.add("b", 3.0, lambda: calls.append("b"), when=lambda: len(calls) < 5)
    scheduler.restart({"b": 0.0})
    assert scheduler.run_first_due(["a", "b"]) == "b" and scheduler.run_first_due(["a", "b"]) is None
    assert scheduler.seconds_until("a") == 2.0
    clock.advance(2.0)
    assert scheduler.run_first_due(["a", "b"]) == "a" and scheduler.seconds_until("a") == 2.0
    clock.advance(1.0)
    assert scheduler.run_first_due(["a", "b"]) == "b"
    clock.advance(10.0)
    assert scheduler.run_first_due(["a", "b"]) == "a" and scheduler.run_first_due(["a", "b"]) == "b"
    assert calls == ["b", "a", "b", "a", "b"]
    clock.advance(10.0)
    assert not scheduler.run("b") and scheduler.run("a")  # b's condition no longer holds
    assert calls[-1] == "a" and not scheduler.run("a")
    assert scheduler.run("a", now=True) and scheduler.seconds_until("a") == 2.0  # run at once: its period restarts


def test_the_milestone_steps_are_one_and_three_times_powers_of_ten(app):
    from tinyrnn_app.loop import milestone_after
    from tinyrnn_app.samples import is_milestone

    assert [milestone_after(s) for s in (0, 99, 100, 299, 300, 999, 1000, 3000, 9999, 10000)] == [
        100, 100, 300, 300, 1000, 1000, 3000, 10000, 10000, 30000]
    assert [s for s in range(1, 40_001) if is_milestone(s)] == [100, 300, 1000, 3000, 10000, 30000]


def test_samples_are_kept_at_milestone_steps_with_their_loss_and_restored(app):
    from tinyrnn_app.samples import milestones_text
    from tinyrnn_app.storage import MemoryStore

    store = MemoryStore()
    s = visit(app, store, text=TEXT, **SMALL)
    assert s.samples.milestones == [] and "steps 100, 300" in milestones_text([])
    assert s.controls.train()
    while s.run.step < 300:  # (not past it: a fast tick from step 300 can reach the next milestone, 1000)
        s.run.tick(0.05)  # a tick stops at a milestone step, so its sample is taken there
    assert s.run.step == 300
    kept = s.samples.milestones
    assert [m["step"] for m in kept] == [100, 300], kept
    history = {m.step: m for m in s.run.trainer.history}
    for m in kept:
        assert len(m["text"]) == LIVE_SAMPLE_LENGTH and set(m["text"]) <= set(TEXT)
        assert m["val_loss"] == pytest.approx(history[m["step"]].val_loss)  # a milestone step validates
        assert m["train_loss"] > 0
    shown = milestones_text(kept)
    assert shown.index("Step 100 (train") < shown.index("Step 300 (train") and kept[1]["text"] in shown
    s.controls.pause()
    t = visit(app, store)
    assert t.samples.milestones == kept  # kept across visits
    t.controls.reset()
    assert t.samples.milestones == [] and t.samples.live_sample == ""


def test_a_milestone_sample_is_shown_escaped(app, session):
    layout = pn.Column(*app.create_app(session).main)
    session.samples.milestones = [dict(step=100, train_loss=2.0, val_loss=None, text=PAYLOAD)]
    shown = decoded_once(find(layout, "tr-milestones"))
    assert "<img" not in shown and html.escape(PAYLOAD) in shown and "Step 100 (train 2.00 nats/char)" in shown


def test_the_page_is_a_first_screen_and_tabs(app, session):
    from tinyrnn_app.sections import TAB_NAMES

    tpl = app.create_app(session)
    first, tabs = (pn.panel(item) for item in tpl.main[1:3])
    first_classes = {c for o in first.select() for c in (getattr(o, "css_classes", None) or [])}
    # the first screen: the text choice, Train/Pause/Resume/Reset, the status and the readouts
    assert {"tr-corpus", "tr-text-info", "tr-train", "tr-pause", "tr-resume", "tr-reset", "tr-status",
            "tr-readouts"} <= first_classes
    (tab_widget,) = [o for o in tabs.select(pn.Tabs)]
    assert [panel.title for panel in tab_widget.get_root().tabs] == list(TAB_NAMES) and tab_widget.active == 0


def test_the_charts_ranges_follow_the_data_and_log_axes_span_whole_decades(app, session):
    from bokeh.models import Range1d

    tpl = app.create_app(session)
    layout = pn.Column(*tpl.main)
    loss, flow, compare = (next(o.object for o in find(layout, c).select(pn.pane.Bokeh))
                           for c in ("tr-loss-chart", "tr-flow-chart", "tr-compare-chart"))
    for fig in (loss, flow, compare):  # explicit, finite ranges from the start: Bokeh has nothing to guess
        assert isinstance(fig.x_range, Range1d) and isinstance(fig.y_range, Range1d)
        assert all(np.isfinite([fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end]))
        assert fig.y_range.start < fig.y_range.end
    session.controls.train()
    train_ticks(session, 5)
    steps, losses = session.run.chart_data.loss["step"], session.run.chart_data.loss["loss"]
    assert loss.x_range.start <= min(steps) and max(steps) <= loss.x_range.end
    assert loss.y_range.start < min(losses) and max(losses) < loss.y_range.end
    norms = session.run.chart_data.flow["norm"] + session.run.chart_data.flow_ref["norm"]
    low, high = np.log10(flow.y_range.start), np.log10(flow.y_range.end)
    assert low == round(low) and high == round(high) and high >= low + 2  # whole decades, two at least
    assert "Math.log10(tick)" in flow.yaxis[0].formatter.code  # labels at powers of ten only
    assert flow.y_range.start <= min(norms) and max(norms) <= flow.y_range.end
    assert flow.yaxis[0].ticker.mantissas == [1] and flow.yaxis[0].ticker.num_minor_ticks == 0
    session.views.compare_cells()
    cmp_norms = [v for c in tinyrnn.CELLS for v in session.run.chart_data.series["cmp_" + c]["norm"]]
    assert compare.y_range.start <= min(cmp_norms) and max(cmp_norms) <= compare.y_range.end


def test_a_chart_the_reader_zoomed_keeps_its_view_until_reset_or_a_new_model(app, session):
    """Zooming or panning a chart (the browser sends the ranges' new start and end) holds its view while points
    arrive; the toolbar's reset (which sets the ranges to reset_start/reset_end) goes to the latest fit and lets
    the chart follow the data again; so does a new model."""
    tpl = app.create_app(session)
    loss = next(o.object for o in find(pn.Column(*tpl.main), "tr-loss-chart").select(pn.pane.Bokeh))
    session.controls.train()
    train_ticks(session, 3)
    fitted = (loss.x_range.start, loss.x_range.end), (loss.y_range.start, loss.y_range.end)
    assert [(r.reset_start, r.reset_end) for r in (loss.x_range, loss.y_range)] == list(fitted)
    zoomed = (fitted[0][0], (fitted[0][0] + fitted[0][1]) / 2), (fitted[1][0], fitted[1][0] + 0.01)
    loss.x_range.update(start=zoomed[0][0], end=zoomed[0][1])  # what a wheel zoom in the page does
    loss.y_range.update(start=zoomed[1][0], end=zoomed[1][1])
    sent = []  # changes Python tells the page about: the reader's view is sent back once (a fit on its way when
    loss.x_range.on_change("end", lambda attr, old, new: sent.append(new))  # the reader zoomed must not stay)
    steps_before = len(session.run.chart_data.loss["step"])
    train_ticks(session, 3)
    assert len(session.run.chart_data.loss["step"]) > steps_before  # new points arrived ...
    assert ((loss.x_range.start, loss.x_range.end), (loss.y_range.start, loss.y_range.end)) == zoomed  # ... view held
    assert sent == [zoomed[0][1]]
    latest = [(r.reset_start, r.reset_end) for r in (loss.x_range, loss.y_range)]
    assert latest[0][1] > fitted[0][1]  # reset would show the points that arrived meanwhile
    for r, (start, end) in zip((loss.x_range, loss.y_range), latest):  # the toolbar's reset
        r.update(start=start, end=end)
    train_ticks(session, 3)
    assert loss.x_range.end == max(session.run.chart_data.loss["step"]) > latest[0][1]  # following the data again
    loss.x_range.update(start=5, end=6)  # zoomed again, then a new model: the empty chart's view
    session.run.chart_data.clear()
    assert (loss.x_range.start, loss.x_range.end) == (0, 1) and loss.y_range.start < loss.y_range.end


# --- issue 18: the cells race and the explain views in the page -----------------------------------------------------


def test_the_cells_race_runs_a_turn_at_a_time_to_a_verdict_and_feeds_its_view(app):
    text = tinyrnn.recall_corpus(4)[:6000]
    s = app.TrainingSession(text=text, hidden_size=12, seq_len=10, batch_size=4)
    race = s.race
    race.budget = min(race.param.budget.objects)
    layout = pn.Column(*app.create_app(s).main)
    verdict = find(layout, "tr-race-verdict")
    assert race.start_race() and race.racing and set(race.curves) == set(tinyrnn.CELLS)
    assert "Racing:" in race.progress
    turns = 0
    while race.racing:
        assert race.race_tick(0.02) >= 1
        turns += 1
        seen = race.race.chars_seen()
        assert max(seen.values()) - min(seen.values()) <= 4 * 10  # the cell furthest behind always goes next
    assert turns > 1  # it ran in turns (the page yields between them)
    result = race.result
    assert result is not None and all(n >= race.budget for n in result.chars_seen.values())
    assert race.progress == tinyrnn.verdict(result) and "nats/char" in race.progress
    assert html.escape(tinyrnn.verdict(result)) in decoded_once(verdict)
    assert s.run.trainer is None  # the race trains its own models: the current model is untouched


def test_the_race_refuses_settings_one_of_its_cells_cannot_train_in_the_page(app):
    s = app.TrainingSession(text=TEXT, hidden_size=192, seq_len=50, batch_size=32)  # fine for the tanh RNN only
    assert s.form.settings_info == ""
    assert not s.race.start_race() and not s.race.racing
    assert "Cannot start the race" in s.page.error and "gru cell" in s.page.error
    s.text.text = "a"
    s.form.param.update(hidden_size=24, seq_len=12, batch_size=4)
    assert not s.race.start_race() and "Cannot start the race" in s.page.error


def test_a_stopped_race_stops(app):
    s = app.TrainingSession(text=TEXT, **SMALL)
    assert s.race.start_race()
    s.race.race_tick(0.01)
    s.race.stop_race()
    assert not s.race.racing and s.race.progress.startswith("Stopped.") and s.race.race_tick() == 0


def test_the_explain_views_show_the_current_model_and_then_the_races_models(app, session):
    assert session.controls.train()
    train_ticks(session, 2)
    session.form.passage_length = 80
    assert session.views.show_passage()
    inside = session.inside
    names = [m.name for m in inside.connectivity.models]
    assert len(names) == 1 and names[0].startswith("current model (tanh RNN, step")
    assert inside.gates.model.passage == TEXT[:80] and inside.expect.model.passage == TEXT[:80]
    assert "Run the cells race" in inside.note
    inside.connectivity.position = 40  # what a click does
    assert inside.connectivity.passages[0].spans.count("<span") == 80
    race = session.race
    race.budget = min(race.param.budget.objects)
    assert race.start_race()
    while race.racing:
        race.race_tick(0.05)
    names = [m.name for m in inside.connectivity.models]
    assert len(names) == 4 and [n.endswith("(race)") for n in names] == [False, True, True, True]
    assert "Showing: current model" in inside.note
    session.controls.reset()  # no model, no passage: the views are emptied
    assert inside.connectivity.models == [] and inside.gates.model is None and "Press Show" in inside.note
