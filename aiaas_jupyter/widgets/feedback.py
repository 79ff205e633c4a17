"""How the widgets show results and errors: inside the widget, as one line, never only in a log.

A button callback that raises is reported by ipywidgets to the kernel's log, where a notebook
user never looks; so every callback of JobProgress, PredictForm and ClusterWidget catches and
shows the error here. Outputs are written as ``Output.outputs`` records rather than through
``with output: display(...)``: that works from any thread (job updates arrive on Dask's) and
without a kernel (tests drive the widgets headless), and the records are what a test reads.
"""

from __future__ import annotations

import html
import logging

from ..errors import AiaasError

_log = logging.getLogger("aiaas_jupyter.widgets")

#: the CSS class of every one-line error a widget shows (forms and tests look for it)
ERROR_CLASS = "aiaas-form-error"


def one_line(exc: BaseException) -> str:
    """``ErrorType: message (hint: ...)`` on one line; unexpected errors are logged in full too."""
    if not isinstance(exc, AiaasError):
        _log.error("aiaas widget: unexpected error", exc_info=exc)
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text}"


def error_html(line: str) -> str:
    return f"<div class='{ERROR_CLASS}' style='color:#c62828'>{html.escape(line)}</div>"


def note_html(text: str, color: str = "#555") -> str:
    return f"<span style='color:{color}'>{html.escape(text)}</span>"


def record(html_text: str, plain: str) -> dict:
    """One ``display_data`` output record (for ``Output.outputs``)."""
    return {"output_type": "display_data", "data": {"text/html": html_text, "text/plain": plain},
            "metadata": {}}


def show(output, html_text: str, plain: str) -> None:
    output.outputs = (record(html_text, plain),)


def show_error(output, exc: BaseException) -> str:
    line = one_line(exc)
    show(output, error_html(line), line)
    return line


def num(value) -> str:
    """Metric values: 4 decimals (0.9667, 1.0000), large or tiny ones in 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.4g}"
    return html.escape(str(value))
