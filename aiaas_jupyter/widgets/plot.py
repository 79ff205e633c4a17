"""Loss and metric curves of a training job, drawn as PNG bytes for an ``ipywidgets.Image``.

Why PNG through matplotlib's Agg (``matplotlib.figure.Figure``, never pyplot): the picture
travels as plain widget state, so it needs no front-end extension (a Plotly/bqplot figure
would), it never touches the user's pyplot state or backend, and a Figure drawn on its own
is safe off the main thread. Drawing costs ~70 ms, so :class:`Throttled` runs it on a timer
thread at most every ``interval`` seconds, never on Dask's event loop, plus once at the end.
"""

from __future__ import annotations

import io
import math
import threading
import time
from typing import Callable

#: seconds between two redraws of a running job's curves
PLOT_INTERVAL = 0.5
#: one figure drawn at a time in this process, whoever draws it (job curves, sweep leaderboards):
#: matplotlib is not thread-safe (two figures drawing log-scale tick labels at once broke its
#: mathtext parser, a shared pyparsing grammar)
DRAW_LOCK = threading.Lock()


def epoch_rows(events: list[dict]) -> list[dict]:
    """One row per finished epoch (the last report of each), in epoch order."""
    rows: dict[int, dict] = {}
    for e in events:
        if e.get("stage") == "epoch" and e.get("epoch") is not None:
            rows[int(e["epoch"])] = e
    return [rows[k] for k in sorted(rows)]


def render_png(rows: list[dict], title: str = "") -> bytes | None:
    """Loss (train, validation) on the left, validation metrics on the right; None: no epochs."""
    if not rows:
        return None
    from matplotlib.figure import Figure

    x = [r["epoch"] for r in rows]
    losses = [k for k in ("loss", "val_loss") if any(_finite(r.get(k)) for r in rows)]
    metrics = sorted({k for r in rows for k in r if k.startswith("val_") and k not in ("val_loss", "val_mse")
                      and _finite(r.get(k))})
    panels = [("loss", losses)] + ([("validation", metrics)] if metrics else [])
    fig = Figure(figsize=(3.4 * len(panels), 2.5), dpi=80)
    for i, (name, keys) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for key in keys:
            ax.plot(x, [r.get(key, math.nan) for r in rows], marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
        if len(x) == 1:
            ax.set_xlim(0.5, 1.5)
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    with DRAW_LOCK:
        fig.tight_layout()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


class Throttled:
    """Run ``fn`` on a timer thread at most every ``interval`` s (``request``); ``final`` runs
    it once more now, in the caller's thread, and ignores every later request."""

    def __init__(self, fn: Callable[[], None], interval: float = PLOT_INTERVAL):
        self._fn, self._interval = fn, interval
        self._lock = threading.Lock()      # guards the pending timer and the closed flag
        self._run_lock = threading.Lock()  # one draw at a time
        self._timer: threading.Timer | None = None
        self._last = -math.inf
        self._closed = False

    def request(self) -> None:
        with self._lock:
            if self._timer is not None or self._closed:
                return  # the pending run will draw the newest state anyway
            delay = max(0.0, self._last + self._interval - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        self._run(final=False)

    def final(self) -> None:
        self.stop()
        self._run(final=True)

    def stop(self) -> None:
        """Drop what is pending and ignore later requests (the widget was closed)."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _run(self, final: bool) -> None:
        with self._run_lock:
            if self._closed and not final:
                return
            self._last = time.monotonic()
            self._fn()
