"""How hyper-parameter sweeps are shown: plain records in, a :class:`Table` (or a DataFrame) out.

Like :mod:`.views`, kept apart from the engine and the front-ends so ``%aiaas sweeps``, the
leaderboard widget, ``Sweep.trials`` and the sidebar rank and describe trials the same way.
It reads :class:`SweepRecord`, :class:`TrialRecord` and :class:`ModelVersion` by attribute
only and imports nothing from the registry: views sit below it in ``.importlinter``'s layers.
pandas is imported only by :func:`trials_frame` (the magics load without it).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .clock import short_time
from .sweep_options import LOWER_IS_BETTER
from .display import Table

#: leaderboard order of trial statuses: ranked ones first (finished, then pruned by their last
#: value), then the ones still going, then those that produced nothing. Covers every status of
#: ``registry.sweeps_table.TRIAL_STATUSES`` (a test holds the two together).
STATUS_RANK = {"finished": 0, "pruned": 1, "running": 2, "pending": 2, "error": 3, "cancelled": 3, "lost": 3}
#: trial statuses that count as done in a sweep's progress (``TRIAL_TERMINAL``)
ENDED = ("finished", "pruned", "error", "cancelled", "lost")


def _number(value: Any) -> float | None:
    """A finite float, or None (a diverged NaN loss ranks with the trials that have no value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def ended(sweep) -> int:
    """How many of the sweep's trials have ended, from its ``counts``."""
    return sum(int((sweep.counts or {}).get(s, 0)) for s in ENDED)


def shared_text(record) -> str:
    """``, one fit per n_estimators ladder`` when a forest grid shared its fits
    (``training.forest_prefix``: fewer fits than trials, and why), else nothing."""
    shared = (record.info or {}).get("shared_fits")
    return f", one fit per {shared} ladder" if shared else ""


def early_stop_text(record) -> str:
    """How the sweep stops weak trials, in words: ``asha (grace 4)`` or ``none``."""
    grace = (record.info or {}).get("grace_period")
    return f"{record.early_stop} (grace {grace})" if record.early_stop != "none" and grace else record.early_stop


def trial_value(trial, metric: str) -> float | None:
    """The trial's value of the sweep metric: its recorded ``value``, else the last epoch's."""
    value = _number(trial.value)
    if value is None:
        for step in reversed(trial.history or []):
            value = _number((step.get("metrics") or {}).get(metric))
            if value is not None:
                break
    return value


def rank_trials(sweep, trials: Sequence) -> list:
    """Best first: by status group (:data:`STATUS_RANK`), then by value in the sweep's
    direction (no value last), then by trial number, so equal trials keep a stable order."""
    sign = 1.0 if sweep.direction == "min" else -1.0

    def key(t):
        value = trial_value(t, sweep.metric)
        return (STATUS_RANK.get(t.status, 4), value is None, sign * value if value is not None else 0.0, t.number)

    return sorted(trials, key=key)


def _best_index(sweep, ranked: list) -> int | None:
    """The row of the sweep's best trial: the one the sweep recorded, else the top finished one."""
    for i, t in enumerate(ranked):
        if sweep.best_trial is not None and t.number == sweep.best_trial:
            return i
    if ranked and sweep.best_trial is None and ranked[0].status == "finished" \
            and trial_value(ranked[0], sweep.metric) is not None:
        return 0
    return None


def _union_keys(dicts) -> list[str]:
    """Every key of ``dicts``, in first-seen order."""
    names: dict[str, None] = {}
    for d in dicts:
        names.update(dict.fromkeys(d or {}))
    return list(names)


def _param_names(items: Sequence) -> list[str]:
    return _union_keys(t.params for t in items)


def _columns(sweep, params: list[str]) -> list[str]:
    return ["trial", "status", sweep.metric or "value", *params, "epochs", "worker", "seconds", "error"]


def _param_cell(params: dict | None, name: str, text: bool) -> Any:
    """A param's cell: in a Table, one left at None reads "None" and one the trial lacks is blank."""
    params = params or {}
    if text:
        if name not in params:
            return ""
        return "None" if params[name] is None else params[name]
    return params.get(name)


def _rows(sweep, ranked: list, params: list[str], text: bool) -> list[list]:
    return [[t.number, t.status, trial_value(t, sweep.metric), *(_param_cell(t.params, p, text) for p in params),
             len(t.history or []), t.worker, t.seconds, t.error] for t in ranked]


def leaderboard_table(sweep, trials: Sequence, limit: int | None = None) -> Table:
    """The sweep's trials, best first (see :func:`rank_trials`); the best trial's row marked."""
    ranked = rank_trials(sweep, trials)
    params = _param_names(trials)
    best = _best_index(sweep, ranked)
    shown = ranked[:limit] if limit is not None else ranked
    note = f"{len(ranked) - len(shown)} more trials not shown" if len(shown) < len(ranked) else ""
    title = (f"sweep {sweep.id} ({sweep.model}): {sweep.metric or 'value'}, "
             f"{'higher' if sweep.direction != 'min' else 'lower'} is better; "
             f"{ended(sweep)}/{sweep.n_trials} trials done, {sweep.status}")
    return Table(_columns(sweep, params), _rows(sweep, shown, params, text=True), title=title, note=note,
                 empty="no trials yet", highlight=best if best is not None and best < len(shown) else None)


def trials_frame(sweep, trials: Sequence):
    """The leaderboard as a pandas DataFrame (same columns, same order): ``Sweep.trials``."""
    import pandas as pd  # lazy: only a caller that asks for a frame pays for pandas

    params = _param_names(trials)
    return pd.DataFrame(_rows(sweep, rank_trials(sweep, trials), params, text=False), columns=_columns(sweep, params))


def sweeps_table(records: Sequence) -> Table:
    rows = []
    for r in records:
        best = ""
        if r.best_value is not None:
            best = f"{r.metric or 'value'}={r.best_value:.4g} (trial #{r.best_trial})"
        rows.append((r.id, r.model, r.status, f"{ended(r)}/{r.n_trials}", best,
                     r.version if r.version is not None else "", r.search, r.early_stop, short_time(r.submitted)))
    return Table(["id", "model", "status", "progress", "best", "version", "search", "early stop", "submitted"],
                 rows, title="aiaas sweeps", empty="no sweeps yet: run a %%aiaas sweep cell")


def _lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith("_loss") or metric.endswith("_error")


def _lineage(mv) -> str:
    extra = mv.extra or {}
    if extra.get("sweep"):
        return f"sweep {extra['sweep']} trial #{extra.get('trial')}"
    return f"job {mv.job_id}" if mv.job_id else ""


def compare_table(versions: Sequence) -> Table:
    """Versions side by side: the params that differ (all of them for one version), every
    metric with the best value per row marked ``*``, then lineage and creation time."""
    heads = [f"v{mv.version}" if len({m.name for m in versions}) <= 1 else mv.ref for mv in versions]
    missing = object()
    params = _param_names(versions)
    if len(versions) > 1:
        params = [p for p in params if len({repr(mv.params.get(p, missing)) for mv in versions}) > 1]
    rows: list[list] = [[p, *(_param_cell(mv.params, p, text=True) for mv in versions)] for p in params]
    for metric in _union_keys(mv.metrics for mv in versions):
        values = [_number((mv.metrics or {}).get(metric)) for mv in versions]
        present = [v for v in values if v is not None]
        best = (min if _lower_is_better(metric) else max)(present) if len(versions) > 1 and present else None
        rows.append([metric, *("" if v is None else f"{v:.4g}" + (" *" if v == best else "") for v in values)])
    rows.append(["lineage", *(_lineage(mv) for mv in versions)])
    rows.append(["created", *(short_time(mv.created) for mv in versions)])
    names = ", ".join(dict.fromkeys(mv.name for mv in versions))
    note = "* best value of the row" if len(versions) > 1 else ""
    return Table(["", *heads], rows, title=f"compare {names}", note=note, empty="no versions")

