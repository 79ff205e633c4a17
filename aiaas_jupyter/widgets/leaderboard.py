"""SweepBoard: the live leaderboard a hyper-parameter sweep shows in its cell.

What a Ray Tune or Optuna user misses in a notebook (ray #4289: pages of log lines, no rich
output): one quiet picture that updates itself. A header (status, a bar of ended trials,
counts per status, the best so far), the trials ranked by the sweep's metric with the best row
highlighted and pruned / failed rows marked as such, and one PNG: the metric against each
hyper-parameter and, when trials report epochs (torch, stepped scikit-learn), the learning
curves, pruned ones dashed and ending where they were stopped.

Why it is built this way: the board follows its :class:`~aiaas_jupyter.sweep_handle.Sweep`
through ``add_listener``, on Dask's threads. Setting widget traits there is what
:class:`~.progress.JobProgress` does too (each change is a comm message routed by comm id, not
by the running cell), so no kernel round trip is needed. Hundreds of epoch events must not
become hundreds of redraws, so the table and the picture are redrawn by :class:`~.plot.Throttled`
timers (at most every ``table_interval`` / ``plot_interval`` s, and once at the end), and the
header only changes when a trial changes status. Nothing is printed or logged: a failed
redraw is shown as one line in the board itself.
"""

from __future__ import annotations

import html
import math
import threading

import ipywidgets as w

from ..registry.sweeps_table import SWEEP_TERMINAL, TRIAL_TERMINAL
from .feedback import error_html, note_html, num, one_line
from ..sweep_views import early_stop_text, rank_trials, shared_text, trial_value
from .plot import PLOT_INTERVAL, Throttled
from .sweep_plot import render_png

#: seconds between two redraws of the trials table
TABLE_INTERVAL = 0.3
#: rows of the table (the best ones); the rest is summed up as "… and K more"
TOP = 20
#: the order of the table's groups and of the counts line
_COUNT_ORDER = ("finished", "pruned", "error", "cancelled", "lost", "running", "pending")
_BAR_STYLE = {"finished": "success", "error": "danger", "cancelled": "warning", "lost": "warning"}
_ROW_STYLE = {"best": "background:#e8f5e9;font-weight:bold", "pruned": "color:#9e9e9e",
              "error": "color:#c62828", "cancelled": "color:#9e9e9e", "lost": "color:#9e9e9e"}
_CELL = "text-align:left;padding:1px 8px"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value(trial, metric: str) -> float | None:
    """The trial's value of the metric (:func:`~aiaas_jupyter.sweep_views.trial_value`: the
    table, ``%aiaas sweep show`` and this board rank trials the same way)."""
    return trial_value(trial, metric)


def counts_text(counts: dict[str, int]) -> str:
    """``9 finished · 5 pruned · 1 error · 1 running``: ended statuses first."""
    order = list(_COUNT_ORDER) + sorted(set(counts) - set(_COUNT_ORDER))
    return " · ".join(f"{counts[s]} {s}" for s in order if counts.get(s))


def _param(value) -> str:
    return num(value) if isinstance(value, float) else html.escape(str(value))


def table_html(sweep, trials: list, best: int | None, top: int = TOP, live: bool = True) -> str:
    """The ranked trials as an HTML table; *live* adds worker and seconds (left out of the
    saved fallback, which must not change between two runs of a notebook)."""
    params = sweep.param_names or sorted({k for t in trials for k in t.params})
    cols = ["", "trial", "status", sweep.metric or "value", *params, "epochs"] + (["worker", "seconds"] if live else [])
    head = "".join(f"<th style='{_CELL}'>{html.escape(c)}</th>" for c in cols + ["error"])
    rows = []
    order = rank_trials(sweep, trials)
    for t in order[:top]:
        v = value(t, sweep.metric)
        kind = "best" if t.number == best else t.status
        status = f"pruned @ epoch {len(t.history)}" if t.status == "pruned" and t.history else t.status
        cells = ["★" if kind == "best" else "", str(t.number), status, num(v) if v is not None else "",
                 *(_param(t.params[p]) if p in t.params else "" for p in params),
                 str(len(t.history)) if t.history else ""]
        if live:
            worker = (t.worker or "").rsplit("/", 1)[-1]
            cells += [html.escape(worker), f"{t.seconds:.1f}" if _finite(t.seconds) else ""]
        error = " ".join(str(t.error or "").split())
        short = error if len(error) <= 120 else error[:119] + "…"
        cells.append(f"<span title='{html.escape(error, quote=True)}'>{html.escape(short)}</span>" if error else "")
        rows.append(f"<tr class='aiaas-trial aiaas-{kind}' style='{_ROW_STYLE.get(kind, '')}'>"
                    + "".join(f"<td style='{_CELL}'>{c}</td>" for c in cells) + "</tr>")
    more = len(order) - top
    note = f"<div class='aiaas-more' style='color:#555'>… and {more} more</div>" if more > 0 else ""
    if not rows:
        return "<div class='aiaas-trials' style='color:#555'>no trials yet</div>"
    return (f"<table class='aiaas-trials'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + note)


class SweepBoard(w.VBox):
    """Live leaderboard of one :class:`~aiaas_jupyter.sweep_handle.Sweep` (see the module docstring)."""

    def __init__(self, sweep, top: int = TOP, table_interval: float = TABLE_INTERVAL,
                 plot_interval: float = PLOT_INTERVAL, **kwargs):
        self.sweep, self.top = sweep, top
        r = sweep.record
        self.title = w.HTML(f"<b>aiaas sweep</b> <code>{html.escape(sweep.id)}</code> · model "
                            f"<b>{html.escape(sweep.name or '')}</b> · {html.escape(sweep.metric)} "
                            f"({html.escape(sweep.direction)}) · {html.escape(r.search)} search, "
                            f"early stop {html.escape(early_stop_text(r) + shared_text(r))}")
        self.bar = w.IntProgress(value=0, min=0, max=max(1, r.n_trials), layout=w.Layout(width="240px"))
        self.progress = w.Label("", layout=w.Layout(margin="0 0 0 1em"))
        self.status = w.Label("", layout=w.Layout(margin="0 0 0 1em"))
        self.counts = w.Label("")
        self.best = w.HTML("")
        self.table = w.HTML("")
        self.plot = w.Image(format="png", layout=w.Layout(display="none"))
        self.final = w.HTML("")
        self.error = w.HTML("")
        self.cancel_button = w.Button(description="Cancel", icon="stop", tooltip="stop the sweep: pending trials "
                                      "are dropped, running ones stop after their epoch")
        self.message = w.HTML("")
        self.cancel_button.on_click(self._on_cancel)
        super().__init__([self.title, w.HBox([self.bar, self.progress, self.status]), self.counts, self.best,
                          self.table, self.plot, self.final, self.error, self.cancel_button, self.message], **kwargs)
        self.add_class("aiaas-sweep-board")
        self._lock = threading.Lock()
        self._synced_counts: dict[str, int] = {}
        self._tabler = Throttled(self._guarded(self._draw_table), table_interval)
        self._plotter = Throttled(self._guarded(self._draw_plot), plot_interval)
        self.tables_drawn = 0  # redraws of the table and of the picture (tests read these)
        self.plots_drawn = 0
        self.plot_axes: list[dict] = []  # what the last picture holds, per panel
        self._sync()
        self._draw_table()  # "no trials yet" until the first event
        self._remove_listener = sweep.add_listener(self._on_sweep)

    # -- following the sweep (Dask threads) ------------------------------------------------
    def _on_sweep(self, sweep, event) -> None:
        if event is None:
            self._sync()
            self._tabler.final()
            self._plotter.final()
            self._show_final()
            return
        if event.get("kind") == "trial" or self.sweep.counts != self._synced_counts:
            self._sync()  # an epoch event changes the header only when it implied "running"
        self._tabler.request()
        self._plotter.request()

    def _guarded(self, fn):
        """A redraw that fails says so in the board, in one line, instead of in the kernel's log."""
        def run():
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - shown, never printed or raised on a timer thread
                self.message.value = error_html(f"leaderboard: {type(exc).__name__}: {' '.join(str(exc).split())}")
        return run

    def _sync(self) -> None:
        sweep = self.sweep
        with self._lock:
            status, counts, n = sweep.status, sweep.counts, sweep.record.n_trials
            self._synced_counts = counts
            ended = sum(v for k, v in counts.items() if k in TRIAL_TERMINAL)
            self.bar.max = max(1, n, ended)
            self.bar.value = ended
            self.bar.bar_style = _BAR_STYLE.get(status, "info")
            self.progress.value = f"{ended}/{n or '?'} trials"
            self.status.value = status
            self.counts.value = counts_text(counts)
            best = sweep.best
            if best is not None:
                ps = ", ".join(f"{k}={_param(v)}" for k, v in best.params.items())
                self.best.value = (f"best <b>{html.escape(sweep.metric)}={num(best.value)}</b> "
                                   f"(trial {best.number}: {ps})")
            # the state calls its last listeners before done() is true: the status says it first
            self.cancel_button.disabled = status in SWEEP_TERMINAL or sweep.done()

    def _draw_table(self) -> None:
        best = self.sweep.best
        self.table.value = table_html(self.sweep, self.sweep.trial_records(), best.number if best else None,
                                      self.top)
        self.tables_drawn += 1

    def _draw_plot(self) -> None:
        best = self.sweep.best
        drawn = render_png(self.sweep, self.sweep.trial_records(), best.number if best else None)
        if drawn is None:
            return
        self.plot.value, axes = drawn
        self.plot.layout.display = None
        self.plot_axes = axes  # last: what it describes is shown
        self.plots_drawn += 1

    def _show_final(self) -> None:
        v, r = self.sweep.version, self.sweep.record
        if v is not None:
            self.final.value = f"registered <code class='aiaas-registered'>{html.escape(v.ref)}</code>"
        elif r.status == "finished":
            self.final.value = note_html("nothing registered")
        if "cancelling" in self.message.value:
            self.message.value = ""
        exc = self.sweep.error
        line = f"{type(exc).__name__}: {' '.join(str(exc).split())}" if exc is not None else r.error
        if line:
            self.error.value = error_html(" ".join(str(line).split()))

    # -- the button (the kernel's thread) ----------------------------------------------------
    def _on_cancel(self, _=None) -> None:
        try:
            self.cancel_button.disabled = True
            self.sweep.cancel()
            if not self.sweep.done():
                self.message.value = note_html("cancelling…")
        except Exception as exc:  # noqa: BLE001 - shown in the board, not lost in a log
            self.cancel_button.disabled = self.sweep.done()
            self.message.value = error_html(one_line(exc))

    def close(self) -> None:
        self._remove_listener()
        self._tabler.stop()
        self._plotter.stop()
        super().close()

    # -- how it looks without a widget front-end (no ids, addresses or timings) ------------------
    def _summary(self) -> list[tuple[str, str]]:
        s, r, best = self.sweep, self.sweep.record, self.sweep.best
        ended = sum(v for k, v in s.counts.items() if k in TRIAL_TERMINAL)
        out = [("model", s.name or ""), ("metric", f"{s.metric} ({s.direction})"), ("status", s.status),
               ("trials", f"{ended}/{r.n_trials}"), ("counts", counts_text(s.counts).replace(" · ", ", "))]
        if best is not None:
            out.append(("best", f"{s.metric}={num(best.value)} (trial {best.number})"))
        if s.version is not None:
            out.append(("registered", s.version.ref))
        if s.error is not None or r.error:
            out.append(("error", type(s.error).__name__ if s.error is not None else "error"))
        return [(k, v) for k, v in out if v]

    def __repr__(self) -> str:
        return "SweepBoard(" + ", ".join(f"{k}={v}" for k, v in self._summary()) + ")"

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if data is None:  # a closed widget
            return None
        data["text/plain"] = repr(self)
        rows = "".join(f"<tr><th style='{_CELL}'>{html.escape(k)}</th><td style='{_CELL}'>{html.escape(v)}</td></tr>"
                       for k, v in self._summary())
        best = self.sweep.best
        trials = table_html(self.sweep, self.sweep.trial_records(), best.number if best else None, self.top,
                            live=False)
        data["text/html"] = f"<div class='aiaas-sweep'><b>aiaas sweep</b><table>{rows}</table>{trials}</div>"
        return data


__all__ = ["SweepBoard", "value", "ranked", "counts_text", "table_html", "render_figure", "render_png"]
