"""Built-in corpora: a public-domain play and generated texts that show what memory an RNN needs."""

from __future__ import annotations

import random
from importlib import resources

# macbeth: Shakespeare's Macbeth (public domain), about 96 KB; alphabet: the alphabet over and over, learnable with
# almost no memory; brackets: random nested brackets, where closing them right needs memory of what was opened;
# recall: a letter to be recalled RECALL_DEFAULT_K characters later (see recall_corpus).
_NAMES = ("macbeth", "alphabet", "brackets", "recall")

RECALL_LETTERS = "abcdefgh"  # what is to be remembered: a guess is right 1 time in 8
RECALL_FILLER = "0123456789"  # what comes between: random, so nothing else in a line can be learned
RECALL_CUE = ":"
RECALL_DEFAULT_K = 10
MAX_RECALL_K = 200


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
    memory of k steps; every other character is random or fixed. ``recall_positions`` finds the recalled letters."""
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= MAX_RECALL_K:
        raise ValueError(f"k must be a whole number from 2 to {MAX_RECALL_K}, got {k!r}")
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        letter = rng.choice(RECALL_LETTERS)
        lines.append(letter + "".join(rng.choice(RECALL_FILLER) for _ in range(k - 2)) + RECALL_CUE + letter)
    return "\n".join(lines) + "\n"


def recall_positions(text: str) -> list[int]:
    """Indices of the recalled letters of a ``recall_corpus`` text: the characters right after each cue."""
    return [i + 1 for i, c in enumerate(text[:-1]) if c == RECALL_CUE]


def recall_lines(text: str) -> tuple[list[str], int | None]:
    """The complete lines of a slice of a ``recall_corpus`` text (the first and last may be cut, so they are left
    out) and their recall distance k; ``([], None)`` if ``text`` holds no such lines of one length."""
    lines = text.split("\n")[1:-1]
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
