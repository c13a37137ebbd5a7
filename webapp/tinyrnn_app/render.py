"""Plain-text rendering: the only way user or model text reaches the page outside text widgets.

Every string here is ``html.escape``-d; nothing user-controlled is ever rendered as HTML or Markdown. (Panel
1.9.4's ``pn.pane.Str`` does NOT escape its content, so the app never uses it.)
"""

from __future__ import annotations

import html
import math

import tinyrnn

GRADCHECK_LABELS = {
    "autograd_vs_manual": "autograd vs manual BPTT",
    "fused_vs_autograd": "fused engine vs autograd",
    "fd_vs_autograd": "finite differences vs autograd",
    "fd_vs_manual": "finite differences vs manual BPTT",
}


def plain_html(text: str, css_class: str = "tr-pre") -> str:
    """``text`` as an HTML ``<pre>`` that the browser shows literally (every ``<``, ``&``, quote escaped)."""
    return f'<pre class="{css_class}">{html.escape(text, quote=True)}</pre>'


def alert_html(message: str) -> str:
    """The error alert's content: ``message`` escaped inside ``<div class="tr-alert">``."""
    return f'<div class="tr-alert" role="alert">{html.escape(message)}</div>'


def sentence(error: BaseException | str) -> str:
    """An error or message as a sentence: stripped, capital first letter, final full stop."""
    text = str(error).strip() or (type(error).__name__ if isinstance(error, BaseException) else "")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def format_loss(label: str, nats: float | None) -> str:
    if nats is None or not math.isfinite(nats):
        return f"{label} -"
    return f"{label} {nats:.4f} nats/char ({nats * tinyrnn.NATS_TO_BITS:.4f} bits/char)"


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


def text_summary(text: str) -> str:
    """Size and vocabulary of a usable text, e.g. "5,286 characters, 5.2 KiB UTF-8, vocabulary of 41 characters"."""
    n_bytes = len(text.encode("utf-8", "surrogatepass"))
    return f"{len(text):,} characters, {describe_bytes(n_bytes)} UTF-8, vocabulary of {len(set(text))} characters"


def gradcheck_text(report, step: int) -> str:
    """A ``tinyrnn.GradCheckReport`` as the lines the page shows."""
    lines = [
        f"Gradient check at step {step}: {'PASSED' if report.passed else 'FAILED'}",
        "max relative error over all parameters:",
    ]
    for key, value in report.max_rel_error.items():
        lines.append(f"  {GRADCHECK_LABELS[key]:<34} {value:.2e}")
    lines.append("per parameter (autograd vs manual BPTT, finite differences vs autograd):")
    for name, errs in report.per_param.items():
        lines.append(f"  {name:<6} {errs['autograd_vs_manual']:.2e}  {errs['fd_vs_autograd']:.2e}")
    lines.append(f"pass if exact methods agree within {report.tolerance_exact:g} and finite differences "
                 f"within {report.tolerance_fd:g}")
    return "\n".join(lines)
