"""The picture of a sweep's leaderboard: the metric against each hyper-parameter, and learning curves.

Apart from :mod:`.leaderboard` (the widget) because drawing is its own concern: matplotlib's
object API on an Agg ``Figure`` (never pyplot), PNG bytes for an ``ipywidgets.Image``, drawn
under :data:`.plot.DRAW_LOCK`, which every figure of this process shares — matplotlib is not
thread-safe, and two boards drawing log-scale tick labels at once broke its mathtext parser.
"""

from __future__ import annotations

import io
import math

from .plot import DRAW_LOCK


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value(trial, metric: str) -> float | None:
    from ..sweep_views import trial_value

    return trial_value(trial, metric)


def curve(trial, metric: str) -> tuple[list, list]:
    """(epochs, values) of a trial's history: the metric each epoch/rung reported."""
    xs, ys = [], []
    for i, entry in enumerate(trial.history or [], start=1):
        v = entry.get("value")
        v = v if _finite(v) else (entry.get("metrics") or {}).get(metric)
        if _finite(v):
            xs.append(entry.get("epoch") or i)
            ys.append(float(v))
    return xs, ys


def _axis(values: list) -> tuple[list, str, list[str]]:
    """x positions, scale ("linear" / "log") and category labels (numeric: none) of a parameter."""
    if values and all(_finite(v) for v in values):
        lo, hi = min(values), max(values)
        scale = "log" if lo > 0 and hi / lo > 100 else "linear"
        return [float(v) for v in values], scale, []
    labels = sorted({str(v) for v in values})
    return [labels.index(str(v)) for v in values], "linear", labels


def render_figure(sweep, trials: list, best: int | None):
    """Metric vs each parameter (finished filled, pruned hollow grey, best a red star) and the
    learning curves when any trial has more than one epoch; None while no trial has a value."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    metric = sweep.metric or "value"
    scored = [(t, value(t, metric)) for t in trials if t.status in ("finished", "pruned", "running")]
    scored = [(t, v) for t, v in scored if v is not None]
    curves = [(t, *curve(t, metric)) for t in trials]
    curves = [c for c in curves if c[1]]
    with_curves = any(len(xs) > 1 for _, xs, _ in curves)
    if not scored and not with_curves:
        return None
    params = (sweep.param_names or sorted({k for t in trials for k in t.params}))[:8]
    n = len(params) + (1 if with_curves else 0)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.0 * ncols, 2.4 * nrows), dpi=80)
    for i, p in enumerate(params, start=1):
        ax = fig.add_subplot(nrows, ncols, i)
        pts = [(t, v) for t, v in scored if p in t.params]
        xs, scale, labels = _axis([t.params[p] for t, _ in pts])
        for status, style in (("finished", {"color": "#1565c0"}), ("running", {"color": "#ef6c00", "marker": "x"}),
                              ("pruned", {"facecolors": "none", "edgecolors": "#9e9e9e"})):
            sel = [(x, v) for x, (t, v) in zip(xs, pts) if t.status == status]
            if sel:
                ax.scatter(*zip(*sel), s=20, label=status, **style)
        mark = [(x, v) for x, (t, v) in zip(xs, pts) if t.number == best]
        if mark:
            ax.scatter(*zip(*mark), s=140, marker="*", color="#c62828", zorder=3, label="best")
        ax.set_xscale(scale)
        if labels:
            ax.set_xticks(range(len(labels)), labels, fontsize=8)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_title(p, fontsize=10)
        ax.grid(alpha=0.3)
        if (i - 1) % ncols == 0:
            ax.set_ylabel(metric)
    if with_curves:
        ax = fig.add_subplot(nrows, ncols, n)
        for t, xs, ys in sorted(curves, key=lambda c: c[0].number == best):
            if t.number == best:
                ax.plot(xs, ys, color="#c62828", linewidth=2, label=f"best (trial {t.number})")
            elif t.status == "pruned":
                ax.plot(xs, ys, color="#9e9e9e", linestyle="--", linewidth=1, marker="x", markevery=[-1],
                        markersize=5)
            elif t.status in ("finished", "running"):
                ax.plot(xs, ys, color="#ef6c00" if t.status == "running" else "#1565c0", linewidth=1, alpha=0.6)
            else:  # error, cancelled, lost: where they were when they ended
                ax.plot(xs, ys, color="#c62828", linestyle=":", linewidth=1, alpha=0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(f"{metric} per epoch", fontsize=10)
        ax.grid(alpha=0.3)
        if best is not None:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def render_png(sweep, trials: list, best: int | None) -> "tuple[bytes, list[dict]] | None":
    """The PNG of :func:`render_figure` and what each panel holds (title, x scale, lines)."""
    with DRAW_LOCK:
        fig = render_figure(sweep, trials, best)
        if fig is None:
            return None
        axes = [{"title": ax.get_title(), "xscale": ax.get_xscale(),
                 "dashed": sum(ln.get_linestyle() == "--" for ln in ax.get_lines()),
                 "lines": [[float(x) for x in ln.get_xdata()] for ln in ax.get_lines()]} for ax in fig.axes]
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue(), axes


__all__ = ["render_png", "render_figure", "curve"]
