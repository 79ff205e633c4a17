"""Small rich-display objects: a table that renders as HTML in a notebook and text elsewhere.

Kept dependency-free (no pandas) because the magics return these on every listing and the
extension must load light. Every cell is HTML-escaped: names come from users.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Sequence


def fmt(value: Any, inner: bool = False) -> str:
    """A cell's text. An empty cell is blank, but a value inside a dict or list is written as
    Python would (``max_depth=None``), so a parameter left at None never reads as missing."""
    if value is None:
        return "None" if inner else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v, True)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, True) for v in value)
    return str(value)


class Table:
    """Rows of values under column names, with an optional title and footer note.

    ``highlight``: the index of one row to mark (a sweep's best trial): bold in HTML, a ``*``
    in front of it in text."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                 title: str = "", note: str = "", empty: str = "(none)", highlight: int | None = None):
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]
        self.title, self.note, self.empty = title, note, empty
        self.highlight = highlight

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]

    def __repr__(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            lines.append(self.empty)
        else:
            cells = [[fmt(v) for v in r] for r in self.rows]
            widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
            pad = "" if self.highlight is None else "  "
            lines.append(pad + "  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip())
            lines.extend(("* " if i == self.highlight else pad) + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                         for i, r in enumerate(cells))
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        out = [f"<div class='aiaas-table'><b>{esc(self.title)}</b>" if self.title else "<div class='aiaas-table'>"]
        if not self.rows:
            out.append(f"<p>{esc(self.empty)}</p>")
        else:
            out.append("<table><thead><tr>")
            out.extend(f"<th style='text-align:left'>{esc(c)}</th>" for c in self.columns)
            out.append("</tr></thead><tbody>")
            for i, r in enumerate(self.rows):
                tr = "<tr style='font-weight:bold'>" if i == self.highlight else "<tr>"
                out.append(tr + "".join(f"<td style='text-align:left'>{esc(fmt(v))}</td>" for v in r) + "</tr>")
            out.append("</tbody></table>")
        if self.note:
            out.append(f"<p>{esc(self.note)}</p>")
        out.append("</div>")
        return "".join(out)


def progress_bar_html(fraction: float, color: str = "#2e7d32") -> str:
    pct = max(0.0, min(1.0, fraction or 0.0)) * 100
    return ("<div style='width:220px;height:10px;background:#ddd;border-radius:3px;display:inline-block'>"
            f"<div style='width:{pct:.0f}%;height:10px;background:{color};border-radius:3px'></div></div>"
            f" {pct:.0f}%")


class Answer:
    """A chat answer: Markdown in a notebook, its plain text in a terminal.

    IPython's rich-display protocol (``_repr_markdown_``) without importing IPython, so the
    serving layer stays free of Jupyter libraries (``.importlinter``)."""

    def __init__(self, text: str):
        self.text = text

    @property
    def data(self) -> str:  # the name IPython's Markdown object uses
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__
