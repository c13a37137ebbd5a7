"""Built-in corpora: a public-domain play and generated texts that show what memory an RNN needs."""

from __future__ import annotations

import numbers
import random
from importlib import resources

from ..errors import ConfigError

# macbeth: Shakespeare's Macbeth (public domain), about 96 KB; alphabet: the alphabet over and over, learnable with
# almost no memory; brackets: random nested brackets, where closing them right needs memory of what was opened;
# recall: a letter to be recalled RECALL_DEFAULT_K characters later (see recall_corpus).
_NAMES = ("macbeth", "alphabet", "brackets", "recall")

RECALL_LETTERS = "abcdefgh"  # what is to be remembered: a guess is right 1 time in 8
RECALL_FILLER = "0123456789"  # what comes between: random, so nothing else in a line can be learned
RECALL_CUE = ":"
RECALL_DEFAULT_K = 10
MAX_RECALL_K = 200
MAX_RECALL_LINES = 100_000  # at k = 200, 20 million characters (a few seconds to generate)
MAX_SEED = 2**32 - 1


def _whole_number(name: str, value, low: int, high: int) -> int:
    """``value`` as an int if it is a whole number (numpy's included, never a bool) in [low, high], else
    ``ConfigError`` naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return int(value)


def _text(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def corpus_names() -> list[str]:
    """Names of the built-in corpora; the first is the default."""
    return list(_NAMES)


def _brackets(n_lines: int = 1500, seed: int = 0) -> str:
    rng = random.Random(seed)
    pairs = {"(": ")", "[": "]", "{": "}"}
    lines = []
    for _ in range(n_lines):
        stack, out = [], []
        for _ in range(rng.randint(4, 24)):
            if stack and (rng.random() < 0.45 or len(stack) > 5):
                out.append(pairs[stack.pop()])
            else:
                opener = rng.choice("([{")
                stack.append(opener)
                out.append(opener)
        out.extend(pairs[o] for o in reversed(stack))
        lines.append("".join(out))
    return "\n".join(lines) + "\n"


def recall_corpus(k: int, n_lines: int = 3000, seed: int = 0) -> str:
    """The memory experiment: lines ``L d…d : L`` where the letter L (one of ``RECALL_LETTERS``) comes back exactly
    ``k`` characters after it was seen, behind k - 2 random digits and the cue ":". Predicting the second L needs a
    memory of k steps; every other character is random or fixed. ``recall_positions`` finds the recalled letters.
    ``k``: 2 to ``MAX_RECALL_K``; ``n_lines``: 1 to ``MAX_RECALL_LINES``; ``seed``: 0 to 2**32 - 1 (numpy integers
    too); otherwise ``ConfigError``."""
    k = _whole_number("k", k, 2, MAX_RECALL_K)
    n_lines = _whole_number("n_lines", n_lines, 1, MAX_RECALL_LINES)
    rng = random.Random(_whole_number("seed", seed, 0, MAX_SEED))
    lines = []
    for _ in range(n_lines):
        letter = rng.choice(RECALL_LETTERS)
        lines.append(letter + "".join(rng.choice(RECALL_FILLER) for _ in range(k - 2)) + RECALL_CUE + letter)
    return "\n".join(lines) + "\n"


def recall_positions(text: str) -> list[int]:
    """Indices of the recalled letters of a ``recall_corpus`` text: the characters right after each cue."""
    text = _text("text", text)
    return [i + 1 for i, c in enumerate(text[:-1]) if c == RECALL_CUE]


def recall_lines(text: str) -> tuple[list[str], int | None]:
    """The complete lines of a slice of a ``recall_corpus`` text (the first and last may be cut, so they are left
    out) and their recall distance k; ``([], None)`` if ``text`` holds no such lines of one length."""
    lines = _text("text", text).split("\n")[1:-1]
    if not lines or len({len(line) for line in lines}) != 1 or len(lines[0]) < 3:
        return [], None
    k = len(lines[0]) - 1
    body = set(RECALL_FILLER)
    for line in lines:
        if not (line[0] == line[-1] and line[0] in RECALL_LETTERS and line[-2] == RECALL_CUE
                and set(line[1:-2]) <= body):
            return [], None
    return lines, k


def load_corpus(name: str) -> str:
    """The text of a built-in corpus by name (see ``corpus_names()``)."""
    if name == "macbeth":
        return resources.files(__name__).joinpath("macbeth.txt").read_text(encoding="utf-8")
    if name == "alphabet":
        return "abcdefghijklmnopqrstuvwxyz\n" * 2000
    if name == "brackets":
        return _brackets()
    if name == "recall":
        return recall_corpus(RECALL_DEFAULT_K)
    raise KeyError(f"no built-in corpus named {name!r}; choose one of {', '.join(corpus_names())}")


def default_corpus() -> str:
    """The default training text (Macbeth)."""
    return load_corpus(corpus_names()[0])
