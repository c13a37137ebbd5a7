"""The page's stable selectors: one table that the layout, the tests and docs/app.md read.

Every interactive widget and readout carries a CSS class ``tr-<name>``. Widgets and panes get it through
``css_classes`` (Bokeh puts it on the component's host element; the content lives in an open shadow root, which
Playwright's CSS locators pierce): ``page.locator(".tr-train button")``, ``page.locator(".tr-text textarea")``,
``page.locator(".tr-status pre")``. The numeric readouts share one pane (``tr-readouts``, one update per refresh)
in which each is ``<div class="tr-NAME"><span class="tr-kv">TEXT</span></div>``: ``page.locator(".tr-step .tr-kv")``.
"""

from __future__ import annotations

# (selector, what it is and what is inside it), grouped as on the page
WIDGETS: dict[str, str] = {
    # text and corpus
    "tr-text": "text area with the training text (`textarea` inside), pre-filled with the default corpus",
    "tr-upload-text": "file input for a UTF-8 `.txt` file (`input[type=file]` inside)",
    "tr-corpus": 'select of the built-in corpora (`select` inside; first option "Custom text")',
    "tr-recall-k": 'number input: the memory experiment\'s recall distance k (shown only for the "recall" corpus)',
    "tr-text-info": "readout (`pre`): size in characters and bytes, vocabulary size, or what is wrong",
    # settings (`input`/`select` inside)
    "tr-cell": "select: the recurrent cell (rnn = tanh RNN, gru, lstm)",
    "tr-cell-info": "readout (`pre`): one line per cell saying what it is, the selected one marked",
    "tr-hidden-size": "number input: hidden size",
    "tr-seq-len": "number input: sequence length (BPTT window)",
    "tr-batch-size": "number input: batch size",
    "tr-lr": "number input: learning rate",
    "tr-optimizer": "select: optimiser",
    "tr-clip-norm": "number input: gradient clipping by global norm (0 = off)",
    "tr-engine": "select: gradient engine",
    "tr-settings-info": "note (`pre` inside `.tr-note`): why a setting is not allowed, naming the range; hidden if none",
    "tr-backend": ("readout (`pre`): what computes the matrix products here (`tinyrnn.BACKEND`), and on how many "
                   "workers the model trains and why (`tinyrnn.workers()`, `Trainer.engine_choice`)"),
    # training
    "tr-train": "button: start training (a new model if there is none or the text/settings changed)",
    "tr-pause": "button: pause (disabled unless training)",
    "tr-resume": "button: continue the current model (disabled unless paused with a model)",
    "tr-reset": "button: discard the model and the charts",
    "tr-status": 'readout (`pre`): what the app is doing ("Loading ...", "Training ...", "Paused at step N. ...")',
    "tr-notice": "note (`pre` inside `.tr-note`): a warning about the run (diverging); hidden if none",
    "tr-readouts": "the pane holding the readouts below (`.tr-NAME .tr-kv`), refreshed twice a second",
    "tr-loss-chart": "Bokeh chart: training and validation loss against step",
    "tr-flow-chart": "Bokeh chart: gradient norm ||dL/dh_t|| against t (log axis)",
    "tr-memory": "readout (`pre`): recall accuracy at the memory positions beside chance; hidden unless a recall text",
    # the cells race
    "tr-race-budget": "select: the race's budget, training characters per cell",
    "tr-race-start": "button: start the cells race (the three cells on the current text and settings)",
    "tr-race-stop": "button: stop the race",
    "tr-race-progress": "readout (`pre`): how far each cell has come, then the verdict",
    "tr-race": "the race's charts (`tr-race-loss-chart`, `tr-race-reach-chart`) and verdict (`tr-race-verdict`)",
    # inside the model: connectivity, gates and memory, what the model expects
    "tr-inside-note": "readout (`pre`): which models the views below show (the current one, the race's)",
    "tr-connectivity": ("connectivity: click a character (`.tr-connectivity-passage [data-i=N]`), every earlier one "
                        "coloured by how much its prediction depends on it, one column per model"),
    "tr-gates": ("gates and memory: `tr-gates-trace` (select), `tr-gates-unit` (number), `tr-gates-tracking` "
                 "(select), the passage `tr-gates-passage`, the unit list `tr-gates-units`"),
    "tr-expect": "what the model expects: hover or tap a character (`.tr-expect-passage [data-i=N]`) for the top five",
    # the cells compared
    "tr-compare-len": "number input: the comparison's window T (2 to 200)",
    "tr-compare-last-step": "checkbox: compare the gradient of the last character's loss only",
    "tr-compare": "button: compute the comparison (disabled without a trainable model)",
    "tr-compare-info": "readout (`pre`): what the comparison's curves are (window, batch, which model is trained)",
    "tr-compare-chart": "Bokeh chart: one gradient-norm curve per cell against t (log axis)",
    # sampling
    "tr-prime": "text input: priming text",
    "tr-temperature": "number input: temperature (0 = greedy)",
    "tr-length": "number input: characters to generate",
    "tr-sample": "button: sample now (disabled without a model)",
    "tr-sample-output": "readout (`pre`): the sample asked for, prime + continuation, plain text (stays until the next)",
    "tr-sample-info": "readout (`pre`): where the latest sample came from (step, temperature)",
    "tr-live-sample": "readout (`pre`): the latest live sample while training (its own line: an asked-for sample stays)",
    "tr-live-info": "readout (`pre`): the live sample's step and temperature",
    "tr-milestones": "readout (`pre`): the samples kept at steps 100, 300, 1,000, 3,000, ... with their step and loss",
    # the hidden-state view
    "tr-passage-source": "select: the passage (the training text, or the latest sample)",
    "tr-passage-start": "number input: where the passage starts in the training text",
    "tr-passage-length": "number input: the passage's length (1 to 2,000 characters)",
    "tr-show-passage": "button: read the passage with the model and colour it (disabled without a model)",
    "tr-unit": "number input: the hidden unit shown (0 to H-1)",
    "tr-unit-choice": "select: one of the listed units that track a property of the passage",
    "tr-passage-info": "readout (`pre`): which unit, passage and model the colours show, or what is wrong",
    "tr-unit-list": "readout (`pre`): the units that best track inside quotes / brackets / position in line, with r",
    "tr-passage": "the passage (`.tr-passage-text` inside), one `span` per character coloured by the unit",
    # model file and checks
    "tr-download": "file-download button (`button` inside): the checkpoint (.npz) of the current model",
    "tr-download-best": "file-download button (`button` inside): the checkpoint of the best-validation model so far",
    "tr-upload-model": "file input: load a checkpoint (.npz)",
    "tr-gradcheck": "button: gradient check on the current batch",
    "tr-gradcheck-output": "readout (`pre`): relative errors autograd / fused / manual BPTT / finite differences",
    # kept in this browser
    "tr-forget": "button: clear what this browser keeps (text, settings, model, charts)",
    "tr-storage": "readout (`pre`): what this browser keeps (saved HH:MM, step N), or why it could not keep it",
    # the page's tabs
    "tr-tabs": ('the tabs after the first screen: "Train", "Text and settings", "Inside the model", "The cells '
                'compared", "Model file" (`.bk-tab` headers inside)'),
    # errors
    "tr-error": "alert with the last error message (`.tr-alert` inside; hidden when there is no error)",
}

# inside tr-readouts: <div class="tr-NAME"><span class="tr-kv">TEXT</span></div>
READOUTS: dict[str, str] = {
    "tr-step": '"Step N"',
    "tr-loss": '"Train loss X nats/char (Y bits/char)" (mean since the last refresh) or "Train loss -"',
    "tr-val-loss": '"Validation loss X nats/char (Y bits/char)" or "Validation loss -"',
    "tr-chars": '"Chars seen N" (N with thousands separators)',
    "tr-speed": '"N chars/s"',
    "tr-elapsed": '"Elapsed S s" (training time)',
}


def css(name: str) -> list[str]:
    """``css_classes`` for the component with selector ``name`` (which must be in the table)."""
    if name not in WIDGETS:
        raise KeyError(f"{name} is not in tinyrnn_app.selectors.WIDGETS")
    return [name]
