"""The training text: the text area's content, the built-in corpus picker, uploads and the size readout."""

from __future__ import annotations

import param

import tinyrnn

from . import settings
from .render import sentence, text_summary
from .state import PageStatus, SettingsForm, batched

MAX_TEXT_CHARS = 2_000_000  # a longer paste is refused with a message (the text area also stops at +1 char)
MAX_TEXT_FILE_BYTES = 8_000_000  # uploads: read_text_file refuses more than this; then MAX_TEXT_CHARS applies
CUSTOM_TEXT = "Custom text"
RECALL_CORPUS = "recall"  # the memory experiment (tinyrnn.recall_corpus): its text is made for the chosen k
RECALL_DEFAULT_K = next(s.default for s in settings.VIEWS if s.name == "recall_k")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be trained on here, as a sentence, or None (``tinyrnn.text_problem`` with the page's
    length limit). Cheap enough to run on every edit."""
    problem = tinyrnn.text_problem(text, max_chars=MAX_TEXT_CHARS)
    return None if problem is None else sentence(problem)


class TextPart(param.Parameterized):
    """The text to learn from: the text area, the corpus picker (the recall corpus made for ``form.recall_k``)."""

    form = param.ClassSelector(class_=SettingsForm, doc="The form (recall_k) and, through it, the page's messages.")
    text = param.String(default="", label="Training text", doc="The text to learn from.")
    corpus = param.Selector(default=CUSTOM_TEXT, objects=[CUSTOM_TEXT, *tinyrnn.corpus_names()], label="Built-in corpus")
    text_info = param.String(default="", doc="Size and vocabulary of the text, or what is wrong with it.")

    def __init__(self, **params):
        names = list(tinyrnn.corpus_names())
        params.setdefault("form", SettingsForm())
        params.setdefault("corpus", names[0] if names else CUSTOM_TEXT)
        if "text" not in params:
            params["text"] = (tinyrnn.recall_corpus(int(params["form"].recall_k))
                              if params["corpus"] == RECALL_CORPUS
                              else tinyrnn.load_corpus(params["corpus"]) if params["corpus"] != CUSTOM_TEXT else "")
        super().__init__(**params)
        self._setting_corpus = False
        self._update_text_info()

    @property
    def page(self) -> PageStatus:
        return self.form.page

    @param.depends("form.recall_k", watch=True)
    def _on_recall_k(self):
        if self.corpus == RECALL_CORPUS:
            self._on_corpus()

    @param.depends("corpus", watch=True)
    def _on_corpus(self):
        """Load the chosen corpus; the memory experiment's ("recall") with the recall distance ``recall_k``."""
        if self.corpus == CUSTOM_TEXT:
            return
        self.page.clear_error()
        self._setting_corpus = True
        try:
            if self.corpus == RECALL_CORPUS:
                problems = settings.view_problems(dict(recall_k=self.form.recall_k))
                if problems:
                    self.page.show_error(" ".join(problems), about_form=True)
                    return
                self.text = tinyrnn.recall_corpus(int(self.form.recall_k))
            else:
                self.text = tinyrnn.load_corpus(self.corpus)
        except (tinyrnn.TinyRNNError, KeyError, ValueError) as e:
            self.page.show_error(f"Could not load the corpus: {e}")
        finally:
            self._setting_corpus = False

    @param.depends("text", watch=True)
    def _on_text(self):
        if not self._setting_corpus and self.corpus != CUSTOM_TEXT:
            self.corpus = CUSTOM_TEXT
        problem = self._update_text_info()
        if problem is not None and len(self.text) > MAX_TEXT_CHARS:
            self.page.show_error(problem)
        elif self.page.error.startswith("The text is too long"):
            self.page.clear_error()

    def _update_text_info(self) -> str | None:
        problem = text_problem(self.text)
        self.text_info = problem if problem is not None else text_summary(self.text)
        return problem

    @batched
    def load_text_file(self, data: bytes | None, filename: str | None = None) -> bool:
        """Use an uploaded ``.txt`` file as the training text. Returns False (and shows why) if it is unusable."""
        if data is None:
            return False
        self.page.clear_error()
        name = filename or "the file"
        try:
            text = tinyrnn.read_text_file(bytes(data), max_bytes=MAX_TEXT_FILE_BYTES)
        except tinyrnn.TinyRNNError as e:
            self.page.show_error(f"Could not use {name} as training text: {e}")
            return False
        problem = text_problem(text)
        if problem is not None:
            self.page.show_error(f"Could not use {name} as training text. {problem}")
            return False
        self.text = text
        self.page.status = f"Loaded {name} as the training text."
        return True
