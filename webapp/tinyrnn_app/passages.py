"""Pure functions behind the passage views (inside.py): a passage as one escaped, clickable span per character with
its own background and tooltip, and the colour scales. No Panel, no Bokeh.

Every character and every tooltip goes through ``html.escape`` (quotes too): text from the passage or the model is
never HTML.
"""

from __future__ import annotations

import html
import math

import numpy as np

from .hidden import NEWLINE_MARK

SHOWN = {"\n": NEWLINE_MARK, " ": "␣", "\t": "⇥", "\r": "␍"}  # characters a tooltip could not show
CONNECTIVITY_DECADES = 3  # the connectivity colour spans this many powers of ten below the largest value
LOW_QUANTILE, HIGH_QUANTILE = 0.02, 0.98  # a unit's colour scale: from its 2nd to its 98th percentile
SELECTED_STYLE = "outline:2px solid #d62728;outline-offset:-1px"


def char_label(char: str) -> str:
    """A character as a tooltip or sentence shows it (newline ↵, space ␣, tab ⇥), quoted: "'a'", "'␣'"."""
    return f"'{SHOWN.get(char, char)}'"


def spans_html(text: str, backgrounds, titles, selected: int | None = None) -> str:
    """``text`` with each character in a ``<span data-i="index">`` with its background (CSS colours, len(text))
    and tooltip (plain strings, len(text)); the ``selected`` character is outlined. Every character and tooltip is
    escaped; a newline shows as ``NEWLINE_MARK`` and still breaks the line."""
    spans = []
    for i, (char, background, title) in enumerate(zip(text, backgrounds, titles)):
        shown = NEWLINE_MARK + "\n" if char == "\n" else html.escape(char, quote=True)
        style = f"background:{background}" + (";" + SELECTED_STYLE if i == selected else "")
        spans.append(f'<span data-i="{i}" style="{style}" title="{html.escape(title, quote=True)}">{shown}</span>')
    return ('<div class="tr-passage-text" style="white-space:pre-wrap;word-break:break-all;line-height:1.6;'
            'cursor:pointer;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.9em">'
            + "".join(spans) + "</div>")


def diverging(x: float) -> str:
    """A CSS colour for x in [0, 1]: blue (0), white (0.5), red (1), light enough to read dark text on; x outside
    is clipped, NaN is white."""
    x = min(1.0, max(0.0, float(x))) if math.isfinite(x) else 0.5
    light = round(255 * (1 - 0.7 * abs(2 * x - 1)))
    return f"rgb(255,{light},{light})" if x > 0.5 else f"rgb({light},{light},255)"


def blend(x: float, end: tuple[int, int, int]) -> str:
    """A CSS colour for x in [0, 1] from white (0) to ``end`` (1); x outside is clipped, NaN is white."""
    x = min(1.0, max(0.0, float(x))) if math.isfinite(x) else 0.0
    return "rgb({},{},{})".format(*(round(255 + x * (channel - 255)) for channel in end))


def sequential(x: float) -> str:
    """White (0) to mid blue (1): connectivity and the gates."""
    return blend(x, (66, 146, 198))


def surprise(x: float) -> str:
    """White (0) to orange (1): how unexpected a character was."""
    return blend(x, (253, 174, 107))


def unit_range(values) -> tuple[float, float]:
    """One unit's colour scale over a passage: (low, high), its 2nd and 98th percentiles (so that a few extreme
    characters do not wash out the rest, and a unit that stays near ±1 still shows its variation)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.quantile(values, LOW_QUANTILE)), float(np.quantile(values, HIGH_QUANTILE))


def unit_colours(values, ramp=diverging) -> list[str]:
    """Colours of one unit's values (N,) on its own scale (``unit_range``): ``ramp``'s 0 at its low, 1 at its high
    (diverging: blue to red; sequential: white to blue); ``ramp(0.5)`` throughout if it does not vary."""
    low, high = unit_range(values)
    if not high > low:
        return [ramp(0.5)] * len(values)
    return [ramp((v - low) / (high - low)) for v in np.asarray(values, dtype=np.float64)]


def connectivity_colours(values, count: int) -> list[str]:
    """Sequential colours for ``count`` characters, the first len(values) coloured by ``values`` (connectivity) on
    a log scale: the largest dark, ``CONNECTIVITY_DECADES`` powers of ten below it (or less) white; the rest white."""
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max()) if values.size else 0.0
    colours = [sequential(0.0)] * count
    if top > 0:
        with np.errstate(divide="ignore"):
            shade = 1 + np.log10(values / top) / CONNECTIVITY_DECADES
        colours[:values.size] = [sequential(x) for x in shade]
    return colours


def top_next_words(chars, probs) -> str:
    """The most likely next characters in words: "'e' 31% · '␣' 12% · 'a' 8%"."""
    return " · ".join(f"{char_label(c)} {p:.0%}" for c, p in zip(chars, probs))
