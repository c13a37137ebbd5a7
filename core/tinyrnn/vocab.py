"""Vocabulary: characters (Unicode code points) <-> integer ids, and reading text files safely."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from .errors import TextError, UnknownCharacterError
from .files import read_source

MAX_TEXT_BYTES = 64 * 1024 * 1024  # 64 MiB: larger files are refused with a clear message
MAX_TEXT_CHARS = MAX_TEXT_BYTES  # a text read from at most MAX_TEXT_BYTES of UTF-8 has at most this many characters
MAX_VOCAB_SIZE = 65_536
_SURROGATE = re.compile("[\ud800-\udfff]")


def _describe(char: str) -> str:
    name = unicodedata.name(char, "unnamed character")
    return f"{char!r} (U+{ord(char):04X} {name})"


def _surrogate_problem(where: str, text: str) -> str | None:
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (f"{where} contains a lone surrogate U+{ord(found.group()):04X} at position {found.start()}, which is not "
            f"a character and cannot be saved as UTF-8; decode the text as UTF-8 without errors='surrogateescape'")


def text_problem(text, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Why ``text`` cannot be trained on, as one sentence a person can act on, or None if it can.

    The one home of the text rules: the trainer, the CLI and the web app all show these messages."""
    if not isinstance(text, str):
        return f"the text must be a str, got {type(text).__name__}"
    if len(text) > max_chars:
        return f"the text is too long: {len(text):,} characters, more than the limit of {max_chars:,}; give a shorter text"
    if not text:
        return "the text is empty; give at least a few sentences to learn from"
    first = text[0]
    if text.count(first) == len(text):
        return f"the text has only one distinct character ({_describe(first)}); there is nothing to predict"
    return _surrogate_problem("the text", text)


def check_text(text, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``text`` if it can be trained on, else ``TextError`` with ``text_problem``'s message."""
    problem = text_problem(text, max_chars)
    if problem is not None:
        raise TextError(problem)
    return text


@dataclass(frozen=True)
class Vocabulary:
    """An ordered set of symbols. A symbol is one Unicode code point, so an emoji with a skin-tone modifier or a
    letter with a combining accent is several symbols. Ids follow code-point order, so the same text always gives
    the same vocabulary. ``unknown`` (optional) is a reserved symbol that characters outside the vocabulary map to.
    """

    chars: tuple[str, ...]
    unknown: str | None = None

    def __post_init__(self):
        if any(not isinstance(c, str) or len(c) != 1 for c in self.chars):
            raise TextError("every vocabulary symbol must be exactly one Unicode code point")
        problem = _surrogate_problem("the vocabulary", "".join(self.chars))
        if problem:
            raise TextError(problem)
        if len(set(self.chars)) != len(self.chars):
            raise TextError("the vocabulary lists a symbol twice")
        if len(self.chars) < 2:
            raise TextError(f"a vocabulary needs at least 2 distinct characters, got {len(self.chars)}")
        if len(self.chars) > MAX_VOCAB_SIZE:
            raise TextError(f"the vocabulary has {len(self.chars)} symbols; at most {MAX_VOCAB_SIZE} are supported")
        if self.unknown is not None and self.unknown not in self.chars:
            raise TextError(f"the unknown symbol {self.unknown!r} is not in the vocabulary")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str, unknown: str | None = None) -> "Vocabulary":
        """Every distinct code point of ``text`` (plus ``unknown`` if given), sorted by code point."""
        symbols = set(check_text(text))
        if unknown is not None:
            symbols.add(unknown)
        return cls(tuple(sorted(symbols)), unknown)

    @property
    def size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text``'s characters, shape (N,), int64."""
        if not isinstance(text, str):
            raise TypeError(f"the text to encode must be a str, got {type(text).__name__}")
        index = self._index
        if self.unknown is not None:
            fallback = index[self.unknown]
            return np.fromiter((index.get(c, fallback) for c in text), dtype=np.int64, count=len(text))
        try:
            return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError:
            position, char = next((i, c) for i, c in enumerate(text) if c not in index)
            raise UnknownCharacterError(
                f"character {_describe(char)} at position {position} is not in the model's vocabulary"
            ) from None

    def decode(self, ids) -> str:
        """The text for ``ids`` (any iterable of ints in [0, V))."""
        ids = check_ids(ids, self.size)
        chars = self.chars
        return "".join(chars[i] for i in ids.ravel().tolist())

    def to_dict(self) -> dict:
        return {"chars": list(self.chars), "unknown": self.unknown}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        if not isinstance(data, dict) or not isinstance(data.get("chars"), list):
            raise TextError("a vocabulary must be a dict with a list under 'chars'")
        return cls(tuple(data["chars"]), data.get("unknown"))


def check_ids(ids, vocab_size: int, name: str = "ids") -> np.ndarray:
    """``ids`` as an int64 array if every entry is a whole number in [0, vocab_size), else ``ValueError`` (a
    ``UnknownCharacterError``) naming ``name`` and the range; ``TypeError`` if they are not integers."""
    array = np.asarray(ids)
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer character ids in [0, {vocab_size}), got dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= vocab_size:
        raise UnknownCharacterError(f"{name} must lie in [0, {vocab_size}) (the vocabulary size), got {low if low < 0 else high}")
    return array.astype(np.int64, copy=False)


def read_text_file(source, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Text from a path (``-``: standard input), bytes or a binary file object, read in chunks up to ``max_bytes``
    from any of them (files, pipes, devices; a named pipe with no writer is refused). UTF-8 only (a leading BOM
    is dropped); raises ``TextError`` for empty, binary (NUL bytes), invalid UTF-8 or larger than ``max_bytes``
    input."""
    label = "the uploaded data" if isinstance(source, (bytes, bytearray, memoryview)) else "the file"
    data, label = read_source(source, max_bytes, TextError, label)
    if not data:
        raise TextError(f"{label} is empty")
    if b"\x00" in data:
        raise TextError(f"{label} looks binary (it contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextError(f"{label} is not valid UTF-8 (bad byte at offset {e.start}); save it as UTF-8 text") from None
    return text.removeprefix("\ufeff")
