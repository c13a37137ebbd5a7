"""tinyrnn in the browser: paste text, train a character-level RNN in the tab, watch it learn, sample, take it home.

One self-contained Panel script. It runs

* in the browser, converted with ``panel convert webapp/app.py --to pyodide-worker`` (Python in a Web Worker, so
  the page never freezes), and
* on a dev server, with ``panel serve webapp/app.py``.

It uses only the public ``tinyrnn`` API (docs/api.md), ``panel``, ``param``, ``numpy`` and ``bokeh``: no other local
imports, because ``panel convert`` ships this one file.

Design: all state lives in one ``param.Parameterized`` class, :class:`TrainingSession` (the trainer, the bounded
hyper-parameters, the readouts, the chart data and the actions train/pause/resume/reset/sample/gradient_check/
download/upload). :func:`create_app` lays it out; it holds no logic. Training runs in small increments from a
periodic callback (about ``TICK_SECONDS`` of steps per tick, then control goes back to the event loop), so Pause
takes effect within a second and the page stays responsive. ``tests/test_webapp.py`` drives the session directly.

Escaping: every piece of user or model text (the training text, samples, primes, file names, error messages) is
shown as plain text: in a text widget, or ``html.escape``-d into a ``<pre>`` by :func:`plain_html`. Nothing
user-controlled is ever rendered as HTML or Markdown. (Note: Panel 1.9.4's ``pn.pane.Str`` does NOT escape its
content -- it wraps it in ``<pre>`` and the browser parses it as HTML -- so this app never uses it.)

Stable selectors for browser tests
----------------------------------
Every interactive widget and readout carries a CSS class ``tr-<name>``. Widgets and panes get it through
``css_classes`` (Bokeh puts it on the component's host element; the content lives in an open shadow root, which
Playwright's CSS locators pierce): ``page.locator(".tr-train button")``, ``page.locator(".tr-text textarea")``,
``page.locator(".tr-status pre")``. The numeric readouts share one pane (``tr-readouts``, one update per refresh)
in which each is ``<div class="tr-NAME"><span class="tr-kv">TEXT</span></div>``: ``page.locator(".tr-step .tr-kv")``.

  text and corpus
    tr-text            text area with the training text (``textarea`` inside), pre-filled with the default corpus
    tr-upload-text     file input for a UTF-8 ``.txt`` file (``input[type=file]`` inside)
    tr-corpus          select of the built-in corpora (``select`` inside; first option "Custom text")
    tr-text-info       readout (``pre``): size in characters and bytes, vocabulary size, or what is wrong
  hyper-parameters (sidebar; ``input``/``select`` inside)
    tr-hidden-size, tr-seq-len, tr-batch-size, tr-lr, tr-optimizer, tr-clip-norm, tr-engine
    tr-backend         readout (``pre``): what computes the matrix products here (``tinyrnn.BACKEND``)
  training
    tr-train           button: start training (a new model if there is none or the text/settings changed)
    tr-pause           button: pause (disabled unless training)
    tr-resume          button: continue the current model (disabled unless paused with a model)
    tr-reset           button: discard the model and the charts
    tr-status          readout (``pre``): what the app is doing ("Training ...", "Paused at step N. ...", ...)
    tr-readouts        the pane holding the six readouts below (``.tr-NAME .tr-kv``), refreshed twice a second
    tr-step            "Step N"
    tr-loss            "Train loss X nats/char (Y bits/char)" (mean over the steps since the last refresh) or
                       "Train loss -"
    tr-val-loss        "Validation loss X nats/char (Y bits/char)" or "Validation loss -"
    tr-chars           "Chars seen N" (N with thousands separators)
    tr-speed           "N chars/s"
    tr-elapsed         "Elapsed S s" (training time)
    tr-loss-chart      Bokeh chart: training and validation loss against step
    tr-flow-chart      Bokeh chart: gradient norm ||dL/dh_t|| against t (log axis)
  sampling
    tr-prime           text input: priming text
    tr-temperature     number input: temperature (0 = greedy)
    tr-length          number input: characters to generate
    tr-sample          button: sample now (disabled without a model)
    tr-sample-output   readout (``pre``): the latest sample, prime + continuation, plain text
    tr-sample-info     readout (``pre``): where the latest sample came from (step, temperature)
  model file and checks
    tr-download        file-download button (``button`` inside): the checkpoint (.npz) of the current model
    tr-upload-model    file input: load a checkpoint (.npz)
    tr-gradcheck       button: gradient check on the current batch
    tr-gradcheck-output readout (``pre``): relative errors autograd / fused / manual BPTT / finite differences
  errors
    tr-error           alert with the last error message (``.tr-alert`` inside; the pane is hidden when there is
                       no error)
"""

from __future__ import annotations

import asyncio
import functools
import html
import io
import math
import time

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, CustomJSTickFormatter, HoverTool, Legend, LinearAxis
from bokeh.plotting import figure

import tinyrnn

# --------------------------------------------------------------------------------------------------------------------
# Limits and timing

MAX_TEXT_CHARS = 2_000_000  # a longer paste is refused with a message (the text area also stops at +1 char)
MAX_TEXT_FILE_BYTES = 8_000_000  # uploads: read_text_file refuses more than this; then MAX_TEXT_CHARS applies
TICK_SECONDS = 0.2  # training time per periodic-callback tick
TICK_PERIOD_MS = 50  # the callback's period; a tick always yields to the event loop afterwards
LIVE_SAMPLE_EVERY = 3.0  # seconds between live samples while training
LIVE_SAMPLE_LENGTH = 240
FLOW_EVERY = 2.0  # seconds between gradient-flow snapshots while training
UI_INTERVAL = 0.5  # seconds between readout/chart refreshes while training
CHART_ROLLOVER = 4000  # points kept per loss series
CUSTOM_TEXT = "Custom text"
NATS_TO_BITS = tinyrnn.NATS_TO_BITS

# The library's defaults are the app's: in 5 minutes of in-browser training they reach about 1.74 nats/char on
# tinyshakespeare, and none of the other settings tried at H=128 did better (docs/performance.md, "Learning quality").
_LIBRARY_DEFAULTS = tinyrnn.TrainConfig()
DEFAULTS = {name: getattr(_LIBRARY_DEFAULTS, name)
            for name in ("hidden_size", "seq_len", "batch_size", "lr", "optimizer", "clip_norm", "engine")}
MAX_HIDDEN_SIZE = tinyrnn.SETTINGS["hidden_size"].high


# --------------------------------------------------------------------------------------------------------------------
# Plain-text rendering helpers (the only way user/model text reaches the page outside text widgets)


def plain_html(text: str, css_class: str = "tr-pre") -> str:
    """``text`` as an HTML ``<pre>`` that the browser shows literally (every ``<``, ``&``, quote escaped)."""
    return f'<pre class="{css_class}">{html.escape(text, quote=True)}</pre>'


def format_loss(label: str, nats: float | None) -> str:
    if nats is None or not math.isfinite(nats):
        return f"{label} -"
    return f"{label} {nats:.4f} nats/char ({nats * NATS_TO_BITS:.4f} bits/char)"


def readouts_html(step, chars_seen, chars_per_sec, elapsed, train_loss, val_loss) -> str:
    """The training readouts (numbers only), each in a ``div`` whose class is its stable selector."""
    items = [
        ("tr-step", f"Step {step}"),
        ("tr-chars", f"Chars seen {chars_seen:,}"),
        ("tr-speed", f"{chars_per_sec:,.0f} chars/s"),
        ("tr-elapsed", f"Elapsed {elapsed:.1f} s"),
        ("tr-loss", format_loss("Train loss", train_loss)),
        ("tr-val-loss", format_loss("Validation loss", val_loss)),
    ]
    cells = "".join(f'<div class="{cls}"><span class="tr-kv">{html.escape(text)}</span></div>' for cls, text in items)
    return f'<div class="tr-readout-grid">{cells}</div>'


def describe_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be trained on, in one sentence, or None. Cheap enough to run on every edit."""
    if len(text) > MAX_TEXT_CHARS:
        return (
            f"The text is too long: more than {MAX_TEXT_CHARS:,} characters (the limit for training in the browser). "
            "Paste or upload a shorter text."
        )
    if not text:
        return "The text is empty: paste a few sentences (or pick a built-in corpus) to train on."
    if len(set(text)) < 2:
        return "The text has only one distinct character, so there is nothing to predict: give a real text."
    return None


def sentence(error: BaseException | str) -> str:
    """An error message as a sentence: capital first letter, final full stop."""
    text = str(error).strip() or type(error).__name__
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def batched(method):
    """Run an action with the Bokeh document held: its changes (including direct ColumnDataSource updates, which
    must not happen outside the document lock under ``panel serve``) go to the browser together when it returns."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with pn.io.hold():
            return method(self, *args, **kwargs)

    return wrapper


def _ui_clip(value: float | None) -> float:
    return 0.0 if value is None else float(value)


# --------------------------------------------------------------------------------------------------------------------
# State


class TrainingSession(param.Parameterized):
    """Everything the app knows and does; the layout only displays it."""

    # Text -------------------------------------------------------------------------------------------------------------
    text = param.String(default="", label="Training text", doc="The text to learn from.")
    corpus = param.Selector(default=CUSTOM_TEXT, objects=[CUSTOM_TEXT, *tinyrnn.corpus_names()], label="Built-in corpus")
    text_info = param.String(default="", doc="Size and vocabulary of the text, or what is wrong with it.")

    # Hyper-parameters (bounds follow TrainConfig.validate) ------------------------------------------------------------
    hidden_size = param.Integer(default=DEFAULTS["hidden_size"], bounds=(1, MAX_HIDDEN_SIZE), label="Hidden size H")
    seq_len = param.Integer(default=DEFAULTS["seq_len"], bounds=(1, 1000), label="Sequence length T (BPTT window)")
    batch_size = param.Integer(default=DEFAULTS["batch_size"], bounds=(1, 1024), label="Batch size B")
    lr = param.Number(default=DEFAULTS["lr"], bounds=(1e-6, 10.0), label="Learning rate")
    optimizer = param.Selector(default=DEFAULTS["optimizer"], objects=list(tinyrnn.OPTIMIZERS), label="Optimiser")
    clip_norm = param.Number(default=DEFAULTS["clip_norm"], bounds=(0.0, 1e6), label="Clip gradient norm (0 = off)")
    engine = param.Selector(default=DEFAULTS["engine"], objects=list(tinyrnn.ENGINES), label="Gradient engine")

    # Sampling ---------------------------------------------------------------------------------------------------------
    prime = param.String(default="", label="Priming text")
    temperature = param.Number(default=0.8, bounds=(0.0, 5.0), label="Temperature (0 = greedy)")
    sample_length = param.Integer(default=300, bounds=(1, 5000), label="Length (characters)")

    # Readouts ---------------------------------------------------------------------------------------------------------
    running = param.Boolean(default=False, doc="True while the training loop runs.")
    has_model = param.Boolean(default=False)
    trainable = param.Boolean(default=False, doc="The model has training text attached (not sampling-only).")
    status = param.String(default="")
    error = param.String(default="", doc="The last error message ('' when there is none).")
    step = param.Integer(default=0)
    chars_seen = param.Integer(default=0)
    chars_per_sec = param.Number(default=0.0)
    elapsed = param.Number(default=0.0)
    train_loss = param.Number(default=None, allow_None=True)
    val_loss = param.Number(default=None, allow_None=True)
    sample_output = param.String(default="")
    sample_info = param.String(default="")
    gradcheck_output = param.String(default="")

    def __init__(self, use_periodic_callback: bool = False, **params):
        names = list(tinyrnn.corpus_names())
        params.setdefault("corpus", names[0] if names else CUSTOM_TEXT)
        if "text" not in params:
            params["text"] = tinyrnn.load_corpus(params["corpus"]) if params["corpus"] != CUSTOM_TEXT else ""
        super().__init__(**params)
        self.use_periodic_callback = use_periodic_callback
        self.trainer = None
        self._model_text: str | None = None  # the text the current model trains on (None: sampling only)
        self._checkpoint = None  # an uploaded checkpoint that has no text to train on (sampling only)
        self._checkpoint_data: bytes | None = None  # its bytes, so Download hands back the same file
        self._callback = None
        self._setting_corpus = False
        self._last_sample_time = 0.0
        self._last_flow_time = 0.0
        self._last_flush = 0.0
        self._pending = []  # StepMetrics not yet shown
        self._pending_chars = 0
        self._pending_wall = 0.0
        self.ui_interval = UI_INTERVAL
        self.loss_source = ColumnDataSource(data=dict(step=[], loss=[], bits=[]))
        self.val_source = ColumnDataSource(data=dict(step=[], loss=[], bits=[]))
        self.flow_source = ColumnDataSource(data=dict(t=[], norm=[]))
        self.flow_ref_source = ColumnDataSource(data=dict(t=[], norm=[]))
        self._update_text_info()
        self.status = "Ready. Press Train to start learning the text."

    # ----------------------------------------------------------------------------------------------------------------
    # Text

    @param.depends("corpus", watch=True)
    def _on_corpus(self):
        if self.corpus == CUSTOM_TEXT:
            return
        self.clear_error()
        self._setting_corpus = True
        try:
            self.text = tinyrnn.load_corpus(self.corpus)
        except tinyrnn.TinyRNNError as e:
            self.show_error(f"Could not load the corpus: {e}")
        finally:
            self._setting_corpus = False

    @param.depends("text", watch=True)
    def _on_text(self):
        if not self._setting_corpus and self.corpus != CUSTOM_TEXT:
            self.corpus = CUSTOM_TEXT
        self._update_text_info()
        problem = text_problem(self.text)
        if problem is not None and len(self.text) > MAX_TEXT_CHARS:
            self.show_error(problem)
        elif self.error.startswith("The text is too long"):
            self.clear_error()
        if self.has_model and not self.running:
            self._hint_if_changed()

    def _update_text_info(self):
        text = self.text
        problem = text_problem(text)
        if problem is not None:
            self.text_info = problem
            return
        n_bytes = len(text.encode("utf-8", "surrogatepass"))
        self.text_info = (
            f"{len(text):,} characters, {describe_bytes(n_bytes)} UTF-8, vocabulary of {len(set(text))} characters"
        )

    @batched
    def load_text_file(self, data: bytes | None, filename: str | None = None) -> bool:
        """Use an uploaded ``.txt`` file as the training text. Returns False (and shows why) if it is unusable."""
        if data is None:
            return False
        self.clear_error()
        name = filename or "the file"
        try:
            text = tinyrnn.read_text_file(bytes(data), max_bytes=MAX_TEXT_FILE_BYTES)
        except tinyrnn.TinyRNNError as e:
            self.show_error(f"Could not use {name} as training text: {e}")
            return False
        problem = text_problem(text)
        if problem is not None:
            self.show_error(f"Could not use {name} as training text. {problem}")
            return False
        self.text = text
        self.status = f"Loaded {name} as the training text."
        return True

    # ----------------------------------------------------------------------------------------------------------------
    # Messages

    def show_error(self, message: str):
        message = message.strip()
        if message and message[-1] not in ".!?":
            message += "."
        self.error = message

    def clear_error(self):
        if self.error:
            self.error = ""

    # ----------------------------------------------------------------------------------------------------------------
    # Model lifecycle

    def current_config(self):
        """A TrainConfig from the hyper-parameter inputs (not yet validated)."""
        return tinyrnn.TrainConfig(
            hidden_size=int(self.hidden_size),
            seq_len=int(self.seq_len),
            batch_size=int(self.batch_size),
            lr=float(self.lr),
            optimizer=self.optimizer,
            clip_norm=None if self.clip_norm == 0 else float(self.clip_norm),
            engine=self.engine,
        )

    def model_config(self):
        """The TrainConfig of the current model (trainer or uploaded checkpoint), or None."""
        if self.trainer is not None:
            return self.trainer.config
        if self._checkpoint is not None:
            return self._checkpoint.config
        return None

    def _settings_match_model(self) -> bool:
        c = self.model_config()
        if c is None:
            return False
        return (
            c.hidden_size == self.hidden_size
            and c.seq_len == self.seq_len
            and c.batch_size == self.batch_size
            and c.lr == self.lr
            and c.optimizer == self.optimizer
            and _ui_clip(c.clip_norm) == self.clip_norm
            and c.engine == self.engine
        )

    def model_is_stale(self) -> bool:
        """True if there is no model or the text or settings differ from the current model's; Train then starts a
        new model. (A model uploaded without matching text is not stale: Train attaches the current text to it.)"""
        if not self.has_model or not self._settings_match_model():
            return True
        return self.trainer is not None and self._model_text != self.text

    @param.depends("hidden_size", "seq_len", "batch_size", "lr", "optimizer", "clip_norm", "engine", watch=True)
    def _on_settings(self):
        if self.has_model and not self.running:
            self._hint_if_changed()

    def _hint_if_changed(self):
        if self.model_is_stale():
            self.status = (
                f"Paused at step {self.step}. The text or settings changed: Train starts a new model with them, "
                "Resume continues the current model unchanged."
            )

    def build_model(self) -> bool:
        """A fresh model from the current text and settings. Returns False (and shows why) if that is impossible."""
        problem = text_problem(self.text)
        if problem is not None:
            self.show_error(problem)
            return False
        try:
            config = self.current_config()
            config.validate()
            trainer = tinyrnn.Trainer(self.text, config)
        except tinyrnn.TinyRNNError as e:
            self.show_error(f"Cannot start training: {e}")
            return False
        self._install_trainer(trainer, self.text)
        return True

    def _clear_charts(self):
        self._pending, self._pending_chars, self._pending_wall = [], 0, 0.0
        self.loss_source.data = dict(step=[], loss=[], bits=[])
        self.val_source.data = dict(step=[], loss=[], bits=[])
        self.flow_source.data = dict(t=[], norm=[])
        self.flow_ref_source.data = dict(t=[], norm=[])

    def _install_trainer(self, trainer, text):
        """Make ``trainer`` (training on ``text``) the current model; the charts restart from its history."""
        self.trainer = trainer
        self._model_text = text
        self._checkpoint = None
        self._checkpoint_data = None
        self._clear_charts()
        self._replay_history(trainer.history)
        self.has_model = True
        self.trainable = True
        self.step = int(trainer.step_count)
        self.chars_seen = int(trainer.chars_seen)
        self.chars_per_sec = 0.0
        self.elapsed = float(trainer.elapsed)
        self.gradcheck_output = ""
        self._refresh_flow(reference=True)

    def _install_sampling_only(self, checkpoint, data: bytes):
        """An uploaded model without text it can train on: it can sample (and be downloaded again) only."""
        self.trainer = None
        self._model_text = None
        self._checkpoint = checkpoint
        self._checkpoint_data = bytes(data)
        self._clear_charts()
        self._replay_history(checkpoint.history)
        self.has_model = True
        self.trainable = False
        progress = checkpoint.progress or {}
        self.step = int(progress.get("step", 0))
        self.chars_seen = int(progress.get("chars_seen", 0))
        self.chars_per_sec = 0.0
        self.elapsed = float(progress.get("elapsed", 0.0))
        self.gradcheck_output = ""

    def _replay_history(self, history):
        """Put a loaded model's training history on the loss chart (averaged down to at most CHART_ROLLOVER/2)."""
        self.train_loss = None
        self.val_loss = None
        if not history:
            return
        steps = np.array([m.step for m in history], dtype=np.float64)
        losses = np.array([m.train_loss for m in history], dtype=np.float64)
        chunk = max(1, math.ceil(len(history) / (CHART_ROLLOVER // 2)))
        n = len(history) // chunk * chunk
        if n:
            s = steps[:n].reshape(-1, chunk)[:, -1]
            l_ = losses[:n].reshape(-1, chunk).mean(axis=1)
            self.loss_source.data = dict(step=s.tolist(), loss=l_.tolist(), bits=(l_ * NATS_TO_BITS).tolist())
        vals = [(m.step, float(m.val_loss)) for m in history if m.val_loss is not None]
        if vals:
            self.val_source.data = dict(
                step=[s for s, _ in vals], loss=[v for _, v in vals], bits=[v * NATS_TO_BITS for _, v in vals]
            )
            self.val_loss = vals[-1][1]
        self.train_loss = float(losses[-min(len(losses), 20):].mean())

    def _ensure_trainable(self) -> bool:
        """A sampling-only model (uploaded without matching text) gets the current text attached if it fits."""
        if self.trainer is not None:
            return True
        if self._checkpoint is None:
            return False
        problem = text_problem(self.text)
        if problem is not None:
            self.show_error(problem)
            return False
        try:
            trainer = tinyrnn.Trainer.from_checkpoint(self._checkpoint, self.text)
        except tinyrnn.TinyRNNError as e:
            self.show_error(
                f"The loaded model cannot train on the current text: {e}. Paste text that fits it, "
                "or press Reset and then Train to start a new model on this text"
            )
            return False
        self._install_trainer(trainer, self.text)
        return True

    @batched
    def train(self) -> bool:
        """Start training: continue the current model if the text and settings still match it, else a new model."""
        if self.running:
            return True
        self.clear_error()
        if self.model_is_stale():
            if not self.build_model():
                return False
            self._start(new_model=True)
            return True
        if not self._ensure_trainable():
            return False
        self._start(new_model=False)
        return True

    @batched
    def resume(self) -> bool:
        """Continue training the current model unchanged (its own text and settings)."""
        if self.running:
            return True
        self.clear_error()
        if not self.has_model:
            return self.train()
        if not self._ensure_trainable():
            return False
        self._start(new_model=False)
        return True

    def _start(self, new_model: bool):
        self.running = True
        what = "a new model" if new_model else f"from step {self.step}"
        self.status = f"Training {what} (H={self.trainer.config.hidden_size}) ..."
        now = time.perf_counter()
        self._last_sample_time = now - LIVE_SAMPLE_EVERY + 1.0  # first live sample after about a second
        self._last_flow_time = now
        self._last_flush = 0.0  # the first tick shows its numbers at once
        if self.use_periodic_callback and self._callback is None:
            # background=True: the ticks do not toggle the page's busy indicator (two page updates per tick)
            self._callback = pn.io.PeriodicCallback(callback=self._periodic, period=TICK_PERIOD_MS, background=True)
            self._callback.start()

    def _stop_loop(self):
        self.running = False
        if self._callback is not None:
            try:
                self._callback.stop()
            except Exception:  # noqa: BLE001 - a stopped/cleaned-up callback must not break Pause
                pass
            self._callback = None

    @batched
    def pause(self):
        if not self.running:
            return
        self._stop_loop()
        self.flush()
        self.status = f"Paused at step {self.step}. Resume continues; Reset discards the model."

    @batched
    def reset(self):
        """Discard the model and the charts; the text and settings stay."""
        self._stop_loop()
        self.trainer = None
        self._model_text = None
        self._checkpoint = None
        self._checkpoint_data = None
        self.has_model = False
        self.trainable = False
        self._clear_charts()
        self.step = 0
        self.chars_seen = 0
        self.chars_per_sec = 0.0
        self.elapsed = 0.0
        self.train_loss = None
        self.val_loss = None
        self.sample_output = ""
        self.sample_info = ""
        self.gradcheck_output = ""
        self.clear_error()
        self.status = "Reset. Press Train to start a new model."

    # ----------------------------------------------------------------------------------------------------------------
    # The training loop

    async def _periodic(self):
        self.tick()
        # Hand control back to the browser's event loop (a real timer, not a microtask) so that clicks such as Pause
        # are processed between ticks even if a tick took longer than the callback's period.
        await asyncio.sleep(0.005)

    def tick(self, budget: float = TICK_SECONDS) -> int:
        """Run training steps for about ``budget`` seconds (at least one). Readouts and charts are refreshed at
        most every ``ui_interval`` seconds (and on pause/stop), which keeps the page's update traffic small.
        Returns the number of steps run. Does nothing unless training is running."""
        if not self.running or self.trainer is None:
            return 0
        trainer = self.trainer
        n_steps = 0
        chars_before = trainer.chars_seen
        start = time.perf_counter()
        failure = None
        try:
            while True:
                metrics = trainer.step()
                n_steps += 1
                self._pending.append(metrics)
                if time.perf_counter() - start >= budget:
                    break
        except tinyrnn.TrainingDiverged as e:
            failure = (
                f"{sentence(e)} Training is paused at step {trainer.step_count} with the last good model: lower "
                "the learning rate (or turn gradient clipping on) and press Train to start a new model"
            )
        except tinyrnn.TinyRNNError as e:
            failure = f"Training stopped: {sentence(e)}"
        except Exception as e:  # noqa: BLE001 - show anything unexpected instead of dying silently in a callback
            failure = f"Training stopped by an unexpected error: {type(e).__name__}: {e}"
        self._pending_chars += trainer.chars_seen - chars_before
        self._pending_wall += time.perf_counter() - start
        now = time.perf_counter()
        with pn.io.hold():  # also required under `panel serve` for the ColumnDataSource updates
            if failure is not None:
                self._stop_loop()
                self.flush()
                self.show_error(failure)
                self.status = f"Stopped at step {trainer.step_count} (see the message above)."
                return n_steps
            if now - self._last_flush >= self.ui_interval:
                self.flush()
            if now - self._last_flow_time >= FLOW_EVERY:
                self._last_flow_time = now
                self._refresh_flow()
            if now - self._last_sample_time >= LIVE_SAMPLE_EVERY:
                self._last_sample_time = now
                self._live_sample()
        return n_steps

    def flush(self):
        """Show the steps run since the last flush: readouts, one point per flush on the loss chart (the mean
        training loss of those steps) and every validation point."""
        self._last_flush = time.perf_counter()
        pending, self._pending = self._pending, []
        if not pending or self.trainer is None:
            return
        last = pending[-1]
        mean_loss = float(np.mean([m.train_loss for m in pending]))
        self.loss_source.stream(
            dict(step=[last.step], loss=[mean_loss], bits=[mean_loss * NATS_TO_BITS]), rollover=CHART_ROLLOVER
        )
        vals = [(m.step, float(m.val_loss)) for m in pending if m.val_loss is not None]
        updates = dict(
            train_loss=mean_loss, step=int(last.step), chars_seen=int(last.chars_seen), elapsed=float(last.elapsed)
        )
        if vals:
            self.val_source.stream(
                dict(step=[s for s, _ in vals], loss=[v for _, v in vals], bits=[v * NATS_TO_BITS for _, v in vals]),
                rollover=CHART_ROLLOVER,
            )
            updates["val_loss"] = vals[-1][1]
        if self._pending_wall > 0:
            updates["chars_per_sec"] = self._pending_chars / self._pending_wall
        self._pending_chars, self._pending_wall = 0, 0.0
        self.param.update(**updates)  # one batch: the readout pane re-renders once, not once per number

    def _refresh_flow(self, reference: bool = False):
        try:
            norms = np.asarray(self.trainer.gradient_flow(), dtype=np.float64)
        except tinyrnn.TinyRNNError:
            return
        norms = np.where(np.isfinite(norms), np.maximum(norms, 1e-30), np.nan)
        data = dict(t=list(range(1, len(norms) + 1)), norm=norms.tolist())
        if reference:
            self.flow_ref_source.data = data
        self.flow_source.data = data

    def _live_sample(self):
        try:
            out = self.trainer.sample(LIVE_SAMPLE_LENGTH, prime="", temperature=self.temperature)
        except (tinyrnn.TinyRNNError, ValueError):
            return
        self.sample_output = out
        self.sample_info = f"Live sample at step {self.trainer.step_count} (temperature {self.temperature:g})"

    # ----------------------------------------------------------------------------------------------------------------
    # Sampling, gradient check

    def _sample_text(self, length: int, prime: str, temperature: float) -> str:
        if self.trainer is not None:
            return self.trainer.sample(length, prime=prime, temperature=temperature)
        ckpt = self._checkpoint
        return tinyrnn.sample(ckpt.params, ckpt.vocab, length, prime=prime, temperature=temperature)

    @batched
    def sample(self) -> bool:
        """Sample ``sample_length`` characters after ``prime``; shows prime + continuation."""
        self.clear_error()
        if not self.has_model:
            self.show_error("There is no model yet: press Train (or load a model file) first")
            return False
        try:
            out = self._sample_text(int(self.sample_length), self.prime, float(self.temperature))
        except (tinyrnn.TinyRNNError, ValueError) as e:
            self.show_error(f"Cannot sample: {e}")
            return False
        self.sample_output = self.prime + out
        self.sample_info = (
            f"Sample at step {self.step}: {len(out)} characters after a {len(self.prime)}-character prime "
            f"(temperature {self.temperature:g})"
        )
        return True

    @batched
    def gradient_check(self) -> bool:
        """Compare autograd, the fused engine, manual BPTT and finite differences on the current batch."""
        self.clear_error()
        if not self.has_model and not self.build_model():
            return False
        if not self._ensure_trainable():
            return False
        try:
            report = self.trainer.gradient_check()
        except (tinyrnn.TinyRNNError, ValueError) as e:
            self.show_error(f"Gradient check failed to run: {e}")
            return False
        labels = {
            "autograd_vs_manual": "autograd vs manual BPTT",
            "fused_vs_autograd": "fused engine vs autograd",
            "fd_vs_autograd": "finite differences vs autograd",
            "fd_vs_manual": "finite differences vs manual BPTT",
        }
        lines = [
            f"Gradient check at step {self.trainer.step_count}: {'PASSED' if report.passed else 'FAILED'}",
            "max relative error over all parameters:",
        ]
        for key, value in report.max_rel_error.items():
            lines.append(f"  {labels[key]:<34} {value:.2e}")
        lines.append("per parameter (autograd vs manual BPTT, finite differences vs autograd):")
        for name, errs in report.per_param.items():
            lines.append(f"  {name:<6} {errs['autograd_vs_manual']:.2e}  {errs['fd_vs_autograd']:.2e}")
        lines.append(f"pass if exact methods agree within {report.tolerance_exact:g} and finite differences "
                     f"within {report.tolerance_fd:g}")
        self.gradcheck_output = "\n".join(lines)
        self.status = f"Gradient check at step {self.trainer.step_count}: {'passed' if report.passed else 'FAILED'}."
        return True

    # ----------------------------------------------------------------------------------------------------------------
    # Checkpoints

    def checkpoint_file(self) -> io.BytesIO | None:
        """The current model as a checkpoint file (FileDownload's callback)."""
        if self.trainer is not None:
            return io.BytesIO(tinyrnn.checkpoint_bytes(self.trainer.state()))
        if self._checkpoint_data is not None:  # a sampling-only upload: hand back the same file
            return io.BytesIO(self._checkpoint_data)
        self.show_error("There is no model to download yet: press Train first")
        return None

    @batched
    def load_model(self, data: bytes | None, filename: str | None = None) -> bool:
        """Load an uploaded checkpoint. On any problem the message is shown and the current model is kept."""
        if data is None:
            return False
        self.clear_error()
        name = filename or "the file"
        try:
            ckpt = tinyrnn.load_checkpoint(bytes(data))
        except tinyrnn.TinyRNNError as e:
            self.show_error(f"Could not load {name} as a model: {e}. The current model is kept")
            return False
        except Exception as e:  # noqa: BLE001 - a hostile file must never crash the app
            self.show_error(f"Could not load {name} as a model ({type(e).__name__}: {e}). The current model is kept")
            return False
        self._stop_loop()
        trainer, why_not = None, None
        problem = text_problem(self.text)
        if problem is None:
            try:
                trainer = tinyrnn.Trainer.from_checkpoint(ckpt, self.text)
            except tinyrnn.TinyRNNError as e:
                why_not = str(e)
        else:
            why_not = problem
        if trainer is not None:
            self._install_trainer(trainer, self.text)
            note = " Resume continues training it on the current text; Sample generates from it."
        else:
            self._install_sampling_only(ckpt, data)
            note = (
                f" It can sample but cannot train on the current text ({why_not.rstrip('.')}). "
                "Paste text that fits it and press Resume to train it."
            )
        self._apply_config_to_inputs(ckpt.config)
        self.sample_output = ""
        self.sample_info = ""
        self.status = (
            f"Loaded {name}: H={ckpt.config.hidden_size}, vocabulary of {ckpt.vocab.size}, step {self.step}." + note
        )
        return True

    def _apply_config_to_inputs(self, config):
        values = dict(
            hidden_size=config.hidden_size,
            seq_len=config.seq_len,
            batch_size=config.batch_size,
            lr=config.lr,
            optimizer=config.optimizer,
            clip_norm=_ui_clip(config.clip_norm),
            engine=config.engine,
        )
        for key, value in values.items():
            try:
                setattr(self, key, value)
            except ValueError:  # outside the inputs' bounds: the model keeps its own config regardless
                pass


# --------------------------------------------------------------------------------------------------------------------
# Layout

CSS = """
.tr-pre { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, Menlo, Consolas, monospace;
          font-size: 0.9em; margin: 0; }
.tr-kv { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.95em; }
.tr-readout-grid { display: flex; flex-wrap: wrap; gap: 4px 24px; }
.tr-alert { background: #fdecea; color: #611a15; border: 1px solid #f5c2c0; border-radius: 6px; padding: 8px 12px; }
"""


# Page-level CSS for the template: on phone-width screens the sidebar (settings) goes below the main column and the
# whole page scrolls, instead of the two columns squeezing each other.
PAGE_CSS = """
@media (max-width: 767.98px) {
  body { height: auto !important; }
  #container { height: auto !important; min-height: 100vh; overflow: visible !important; }
  #content { flex-direction: column; flex-wrap: nowrap; height: auto !important; overflow: visible !important; }
  #main { order: 1; width: 100%; overflow: visible !important; padding: 8px 6px 16px 6px; }
  #sidebar { order: 2; width: 100% !important; max-width: 100% !important; height: auto !important;
             overflow: visible !important; border-right: none; border-top: 1px solid var(--bs-border-color); }
  #header .title { font-size: 1.1em; white-space: normal; line-height: 1.3em; }
}
"""


def _chart(title: str, x_label: str, y_label: str, **options):
    """A Bokeh figure with the app's common size, tools and toolbar."""
    return figure(height=330, sizing_mode="stretch_width", min_width=260, tools="pan,wheel_zoom,box_zoom,reset,save",
                  toolbar_location="above", title=title, x_axis_label=x_label, y_axis_label=y_label, **options)


def _loss_figure(session: TrainingSession):
    fig = _chart("Loss", "step", "loss (nats/char)")
    train = fig.line("step", "loss", source=session.loss_source, line_width=2, color="#1f77b4")
    val = fig.scatter("step", "loss", source=session.val_source, size=7, color="#d62728")
    fig.line("step", "loss", source=session.val_source, line_width=1, color="#d62728", line_dash="dashed")
    fig.add_layout(
        LinearAxis(
            axis_label="bits/char",
            formatter=CustomJSTickFormatter(code=f"return (tick * {NATS_TO_BITS!r}).toFixed(2)"),
        ),
        "right",
    )
    fig.add_tools(
        HoverTool(
            renderers=[train, val],
            tooltips=[("step", "@step"), ("nats/char", "@loss{0.0000}"), ("bits/char", "@bits{0.0000}")],
        )
    )
    fig.add_layout(Legend(items=[("train", [train]), ("validation", [val])], orientation="horizontal"), "below")
    return fig


def _flow_figure(session: TrainingSession):
    fig = _chart("Gradient flow (manual BPTT, current batch)", "t (position in the BPTT window)", "‖∂L/∂h_t‖",
                 y_axis_type="log")
    ref = fig.line("t", "norm", source=session.flow_ref_source, color="#999999", line_dash="dashed", line_width=1.5)
    cur = fig.line("t", "norm", source=session.flow_source, color="#2ca02c", line_width=2)
    fig.scatter("t", "norm", source=session.flow_source, color="#2ca02c", size=4)
    fig.add_tools(HoverTool(renderers=[cur], tooltips=[("t", "@t"), ("‖∂L/∂h_t‖", "@norm{0.000e}")]))
    fig.add_layout(Legend(items=[("at the start", [ref]), ("latest", [cur])], orientation="horizontal"), "below")
    return fig


def on_upload(widget, handler):
    """Call ``handler(data, filename)`` once per upload (also when the same file comes twice)."""
    pending = {"upload": False}

    def handle():
        if pending["upload"]:
            pending["upload"] = False
            handler(widget.value, widget.filename)

    async def settle():
        # In the Pyodide worker the page's value and filename changes arrive as separate updates; wait until
        # both have landed so that messages name the right file.
        await asyncio.sleep(0.1)
        handle()

    def watcher(*events):
        if any(event.name == "value" for event in events):
            pending["upload"] = True
        if not pending["upload"]:
            return
        if pn.state.curdoc is None:  # no page (tests, scripts): nothing else is coming
            handle()
        else:
            pn.state.execute(settle)

    widget.param.watch(watcher, ["value", "filename"], onlychanged=False)


def create_app(session: TrainingSession | None = None):
    """The page: a thin layout over a TrainingSession."""
    if session is None:
        session = TrainingSession(use_periodic_callback=True)
    stylesheets = [CSS]

    def html_pane(fn, *deps, css_class, **kw):
        kw.setdefault("sizing_mode", None if "width" in kw else "stretch_width")
        return pn.pane.HTML(pn.bind(fn, *deps), css_classes=[css_class], stylesheets=stylesheets, **kw)

    # Text ----------------------------------------------------------------------------------------------------------
    corpus = pn.widgets.Select.from_param(session.param.corpus, css_classes=["tr-corpus"], sizing_mode="stretch_width")
    upload_text = pn.widgets.FileInput(accept=".txt,text/plain", css_classes=["tr-upload-text"], multiple=False)
    on_upload(upload_text, session.load_text_file)
    text_area = pn.widgets.TextAreaInput.from_param(
        session.param.text,
        max_length=MAX_TEXT_CHARS + 1,
        rows=10,
        css_classes=["tr-text"],
        sizing_mode="stretch_width",
        placeholder="Paste any text here (or upload a .txt file, or pick a built-in corpus).",
    )
    text_info = html_pane(plain_html, session.param.text_info, css_class="tr-text-info")

    # Settings (sidebar) --------------------------------------------------------------------------------------------
    def num(p, css, widget=pn.widgets.IntInput, **kw):
        return widget.from_param(p, css_classes=[css], sizing_mode="stretch_width", **kw)

    settings = pn.Column(
        pn.pane.Markdown("### Model and training settings"),
        num(session.param.hidden_size, "tr-hidden-size", step=16),
        num(session.param.seq_len, "tr-seq-len", step=5),
        num(session.param.batch_size, "tr-batch-size", step=4),
        num(session.param.lr, "tr-lr", pn.widgets.FloatInput, step=1e-3, format="0.[000000]"),
        pn.widgets.Select.from_param(session.param.optimizer, css_classes=["tr-optimizer"], sizing_mode="stretch_width"),
        num(session.param.clip_norm, "tr-clip-norm", pn.widgets.FloatInput, step=1.0),
        pn.widgets.Select.from_param(session.param.engine, css_classes=["tr-engine"], sizing_mode="stretch_width"),
        pn.pane.HTML(plain_html(f"Matrix products: {tinyrnn.BACKEND}"), css_classes=["tr-backend"],
                     stylesheets=stylesheets, sizing_mode="stretch_width"),
        pn.pane.Markdown(
            "Changes apply to a new model: **Train** starts one when the text or a setting changed; "
            "**Resume** continues the current model as it is.",
        ),
        sizing_mode="stretch_width",
    )

    # Training controls ------------------------------------------------------------------------------------------------
    train_btn = pn.widgets.Button(label="Train", color="primary", css_classes=["tr-train"])
    pause_btn = pn.widgets.Button(label="Pause", color="warning", css_classes=["tr-pause"], disabled=True)
    resume_btn = pn.widgets.Button(label="Resume", color="success", css_classes=["tr-resume"], disabled=True)
    reset_btn = pn.widgets.Button(label="Reset", color="light", css_classes=["tr-reset"])
    train_btn.on_click(lambda event: session.train())
    pause_btn.on_click(lambda event: session.pause())
    resume_btn.on_click(lambda event: session.resume())
    reset_btn.on_click(lambda event: session.reset())

    download = pn.widgets.FileDownload(
        callback=session.checkpoint_file,
        filename="tinyrnn-model.npz",
        label="Download model (.npz)",
        color="primary",
        variant="outline",
        css_classes=["tr-download"],
        disabled=True,
    )
    upload_model = pn.widgets.FileInput(accept=".npz", css_classes=["tr-upload-model"], multiple=False)
    on_upload(upload_model, session.load_model)
    sample_btn = pn.widgets.Button(label="Sample", color="primary", css_classes=["tr-sample"], disabled=True)
    sample_btn.on_click(lambda event: session.sample())
    gradcheck_btn = pn.widgets.Button(label="Gradient check", color="default", css_classes=["tr-gradcheck"])
    gradcheck_btn.on_click(lambda event: session.gradient_check())

    def sync_buttons(*_):
        train_btn.disabled = session.running
        pause_btn.disabled = not session.running
        resume_btn.disabled = session.running or not session.has_model
        download.disabled = not session.has_model
        sample_btn.disabled = not session.has_model

    session.param.watch(sync_buttons, ["running", "has_model"])
    sync_buttons()

    error_pane = pn.pane.HTML(
        pn.bind(lambda e: f'<div class="tr-alert" role="alert">{html.escape(e)}</div>', session.param.error),
        visible=pn.bind(bool, session.param.error),
        css_classes=["tr-error"],
        stylesheets=stylesheets,
        sizing_mode="stretch_width",
        styles={"position": "sticky", "top": "0", "z-index": "10"},  # stays in view while the page scrolls
    )
    status = html_pane(plain_html, session.param.status, css_class="tr-status")
    # All numeric readouts in one pane (one update per refresh; in the browser every pane update costs a few ms of
    # Python in the worker). Each readout is a <div class="tr-NAME"><span class="tr-kv">...</span></div> inside it.
    readouts = pn.pane.HTML(
        pn.bind(
            readouts_html, session.param.step, session.param.chars_seen, session.param.chars_per_sec,
            session.param.elapsed, session.param.train_loss, session.param.val_loss,
        ),
        css_classes=["tr-readouts"],
        stylesheets=stylesheets,
        sizing_mode="stretch_width",
    )

    def chart(fig, css_class):  # the Bokeh pane itself does not carry css_classes onto the page
        return pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width"), css_classes=[css_class],
                         sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 420px"})

    charts = pn.FlexBox(
        chart(_loss_figure(session), "tr-loss-chart"),
        chart(_flow_figure(session), "tr-flow-chart"),
        flex_wrap="wrap",
        gap="12px",
        sizing_mode="stretch_width",
    )

    sampling = pn.Column(
        pn.pane.Markdown("### Sample"),
        pn.FlexBox(
            pn.widgets.TextInput.from_param(session.param.prime, css_classes=["tr-prime"], width=260,
                                            placeholder="optional text to start from"),
            pn.widgets.FloatInput.from_param(session.param.temperature, css_classes=["tr-temperature"], step=0.1,
                                             width=160),
            pn.widgets.IntInput.from_param(session.param.sample_length, css_classes=["tr-length"], step=50, width=160),
            pn.Column(pn.Spacer(height=18), sample_btn, width=120),
            flex_wrap="wrap",
            gap="0 12px",
            sizing_mode="stretch_width",
        ),
        html_pane(plain_html, session.param.sample_info, css_class="tr-sample-info"),
        html_pane(plain_html, session.param.sample_output, css_class="tr-sample-output", min_height=60),
        sizing_mode="stretch_width",
    )

    model_io = pn.Column(
        pn.pane.Markdown("### Model file and gradient check"),
        pn.FlexBox(
            download,
            pn.Column(pn.pane.HTML("Load a model (.npz):", margin=(0, 5)), upload_model),
            gradcheck_btn,
            flex_wrap="wrap",
            gap="8px 16px",
            align_items="center",
            sizing_mode="stretch_width",
        ),
        html_pane(plain_html, session.param.gradcheck_output, css_class="tr-gradcheck-output"),
        sizing_mode="stretch_width",
    )

    text_section = pn.Column(
        pn.pane.Markdown("### Text to learn"),
        pn.FlexBox(
            pn.Column(corpus, width=280),
            pn.Column(pn.pane.HTML("Or upload a UTF-8 .txt file:", margin=(0, 5)), upload_text, width=300),
            flex_wrap="wrap",
            gap="0 16px",
            sizing_mode="stretch_width",
        ),
        text_area,
        text_info,
        sizing_mode="stretch_width",
    )

    training_section = pn.Column(
        pn.pane.Markdown("### Train"),
        pn.FlexBox(train_btn, pause_btn, resume_btn, reset_btn, flex_wrap="wrap", gap="8px",
                   sizing_mode="stretch_width"),
        status,
        readouts,
        charts,
        sizing_mode="stretch_width",
    )

    # BootstrapTemplate: responsive (the sidebar folds away on phones) and it fetches nothing from third-party hosts
    # (FastListTemplate pulls a Google font, which an offline page cannot load).
    template = pn.template.BootstrapTemplate(
        title="tinyrnn: train a character-level RNN in your browser",
        sidebar=[settings],
        main=[error_pane, text_section, training_section, sampling, model_io],
        sidebar_width=300,
        header_background="#1f6feb",
        meta_viewport="width=device-width, initial-scale=1",
    )
    template.config.raw_css.append(PAGE_CSS)

    return template


pn.extension()

if __name__ == "__main__" or __name__.startswith("bokeh"):
    # `panel serve webapp/app.py` (module name bokeh_app_...) and the converted pyodide app (__main__).
    # Importing this module (tests) builds nothing and starts nothing.
    create_app().servable()

