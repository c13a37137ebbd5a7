"""Built-in corpora: a public-domain play and two generated texts that show what memory an RNN needs."""

from __future__ import annotations

import random
from importlib import resources

# macbeth: Shakespeare's Macbeth (public domain), about 96 KB; alphabet: the alphabet over and over, learnable with
# almost no memory; brackets: random nested brackets, where closing them right needs memory of what was opened.
_NAMES = ("macbeth", "alphabet", "brackets")


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


def load_corpus(name: str) -> str:
    """The text of a built-in corpus by name (see ``corpus_names()``)."""
    if name == "macbeth":
        return resources.files(__name__).joinpath("macbeth.txt").read_text(encoding="utf-8")
    if name == "alphabet":
        return "abcdefghijklmnopqrstuvwxyz\n" * 2000
    if name == "brackets":
        return _brackets()
    raise KeyError(f"no built-in corpus named {name!r}; choose one of {', '.join(corpus_names())}")


def default_corpus() -> str:
    """The default training text (Macbeth)."""
    return load_corpus(corpus_names()[0])
