"""Sweep: the handle of one hyper-parameter sweep, as :class:`~.job_handle.Job` is of one job.

What ``%%aiaas sweep`` returns (``-o VAR``) and ``aiaas_jupyter.sweep(...)`` too: a thin,
read-only view of a :class:`~.sweep_state.SweepState` (status, trials, best, registered version)
plus ``cancel()``, which the dispatcher that drives the sweep carries out. Modelled on Ray Tune's
``ResultGrid`` (a table of trials, the best one) and ``distributed.Future`` (``result()`` waits).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Callable

from .display import fmt, progress_bar_html
from .errors import AiaasError, SweepError
from .registry.sweeps_table import TRIAL_TERMINAL

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .registry import ModelVersion, SweepRecord, TrialRecord
    from .sweep_state import SweepState

_COLORS = {"finished": "#2e7d32", "error": "#c62828", "cancelled": "#757575", "lost": "#757575"}


class Sweep:
    """Handle to one sweep. Returned at once; ``result()`` waits for the best model's version."""

    def __init__(self, state: "SweepState", canceller: Callable[[], None] | None = None):
        self._state = state
        self._canceller = canceller  # the dispatcher's, while this kernel drives the sweep

    # -- what it is ------------------------------------------------------------------------
    @property
    def record(self) -> "SweepRecord":
        return self._state.record

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def name(self) -> str:
        return self.record.model

    @property
    def metric(self) -> str:
        return self.record.metric

    @property
    def direction(self) -> str:
        return self.record.direction

    @property
    def framework(self) -> str:
        return (self.record.info or {}).get("framework", "")

    @property
    def status(self) -> str:
        return self._state.status

    @property
    def counts(self) -> dict[str, int]:
        return self._state.counts()

    @property
    def param_names(self) -> list[str]:
        return list((self.record.info or {}).get("space", {}))

    @property
    def progress(self) -> float:
        """Ended trials / planned trials."""
        n = self.record.n_trials or 0
        ended = sum(v for k, v in self.counts.items() if k in TRIAL_TERMINAL)
        return min(1.0, ended / n) if n else 0.0

    # -- its trials ----------------------------------------------------------------------------
    def trial_records(self) -> "list[TrialRecord]":
        return self._state.trial_records()

    @property
    def trials(self) -> "pd.DataFrame":
        """One row per trial, best first: trial, status, the metric, each parameter, epochs,
        worker, seconds, error."""
        from .sweep_views import trials_frame

        return trials_frame(self.record, self.trial_records())

    @property
    def best(self) -> "TrialRecord | None":
        """The finished trial with the best value (None until one finished)."""
        return self._state.best()

    @property
    def version(self) -> "ModelVersion | None":
        """The model version the best trial was registered as (``--register best``)."""
        return self._state.version

    @property
    def error(self) -> AiaasError | None:
        return self._state.exception

    # -- the Future-like API -------------------------------------------------------------------
    def done(self) -> bool:
        return self._state.done()

    def wait(self, timeout: float | None = None) -> bool:
        return self._state.wait(timeout)

    def result(self, timeout: float | None = None) -> "ModelVersion | None":
        """Wait for the sweep; the registered version of its best trial (None with
        ``register="none"``), or the error it ended with."""
        if not self._state.wait(timeout):
            raise TimeoutError(f"sweep {self.id} still {self.status} after {timeout} s")
        if self._state.exception is not None:
            raise self._state.exception
        return self._state.version

    def cancel(self) -> None:
        """Stop the sweep: pending trials are dropped, running ones stop after their epoch;
        nothing is registered. The trials that ended stay in the registry."""
        if self.done():
            return
        if self._canceller is None:
            raise SweepError(f"sweep {self.id} is not driven by this kernel",
                             hint=f"%aiaas sweep attach {self.id} first")
        self._canceller()

    def add_listener(self, fn: Callable[["Sweep", "dict | None"], None]) -> Callable[[], None]:
        """``fn(sweep, event)`` after each trial event (``{"kind": "trial"|"epoch", "number", ...}``)
        and ``fn(sweep, None)`` once the sweep ended; what was missed is replayed first.
        Listeners run on Dask's threads and must be quick. Returns the remover."""
        return self._state.add_listener(lambda event: fn(self, event))

    # -- how it looks ----------------------------------------------------------------------------
    def _summary(self) -> dict:
        from .sweep_views import early_stop_text, shared_text

        r, best = self.record, self.best
        counts = self.counts
        out = {"sweep": r.id, "model": r.model, "status": r.status,
               "trials": f"{sum(counts.get(s, 0) for s in TRIAL_TERMINAL)}/{r.n_trials}",
               "counts": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
               "search": f"{r.search}, early stop {early_stop_text(r)}{shared_text(r)}"}
        if best is not None:
            out["best"] = f"{r.metric}={fmt(best.value)} (trial {best.number}: " \
                          + ", ".join(f"{k}={fmt(v)}" for k, v in best.params.items()) + ")"
        if self.version is not None:
            out["registered"] = self.version.ref
        if r.error:
            out["error"] = r.error
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in self._summary().items() if v not in (None, ""))
        return f"<Sweep {parts}>"

    def _repr_html_(self) -> str:
        s = self._summary()
        color = _COLORS.get(self.status, "#1565c0")
        rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in s.items() if v not in (None, ""))
        return (f"<div class='aiaas-sweep'><b>aiaas sweep {html.escape(self.id)}</b> "
                f"<span style='color:{color}'>{html.escape(self.status)}</span><br>"
                f"{progress_bar_html(self.progress, color)}<table>{rows}</table></div>")


__all__ = ["Sweep"]
