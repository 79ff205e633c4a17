"""The search maths of a sweep, which are Optuna's: samplers, pruners, ask/tell.

Why a module: the dispatcher should read as dispatch (submit, follow, record), and everything
that knows Optuna's API stays here, driven through ask/tell from the sweep's one driver thread
(Optuna's in-memory storage is never touched from two threads at once by us).

* grid   — every point enqueued (``enqueue_trial``) in a seeded shuffled order, or, for a whole grid
  without early stopping, the longest predicted first (:mod:`.sweep_order`); Optuna's
  ``GridSampler`` cannot be driven to its end through ask/tell (it stops the study from ``tell``);
* random — ``RandomSampler(seed)``;
* tpe    — ``TPESampler(seed, constant_liar=True)``: with trials in flight, the liar keeps TPE from
  proposing the same point to every free worker;
* asha   — ``SuccessiveHalvingPruner`` (asynchronous successive halving), rungs at g, 4g, 16g, ...
  epochs for a grace period of g epochs (``sweep_plan.resolve_grace``);
* hyperband — ``HyperbandPruner`` over g..max epochs (brackets of successive halving).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SweepError
from .sweep_options import EARLY_STOPS
from .sweep_order import LongestFirst

if TYPE_CHECKING:  # pragma: no cover
    from .registry import TrialRecord
    from .sweep_space import SearchSpace

#: Optuna's and Ray's default: keep the best quarter at each rung
REDUCTION_FACTOR = 4


def rung_epochs(early_stop: str, min_resource: int, max_resource: int) -> tuple[int, ...]:
    """The epochs (steps) at which the pruner may stop a trial: min_resource x 4^k, before the
    last. Hyperband's brackets start at min_resource x 4^s, so theirs are among these too."""
    if early_stop == "none":
        return ()
    out, epoch = [], max(1, min_resource)
    while epoch < max_resource:
        out.append(epoch)
        epoch *= REDUCTION_FACTOR
    return tuple(out)


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no per-trial log lines in the cell
    return optuna


def pruner(early_stop: str, max_resource: int, min_resource: int = 1):
    optuna = _quiet_optuna()
    if early_stop == "none":
        return optuna.pruners.NopPruner()
    if early_stop == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=REDUCTION_FACTOR)
    if early_stop == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=max(min_resource, max_resource),
                                              reduction_factor=REDUCTION_FACTOR)
    raise SweepError(f"--early-stop must be one of {', '.join(EARLY_STOPS)}, got {early_stop!r}")


def sampler(search: str, seed: int, n_trials: int):
    optuna = _quiet_optuna()
    if search == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                          n_startup_trials=max(4, min(10, n_trials // 3)))
    return optuna.samplers.RandomSampler(seed=seed)  # grid points are enqueued, never sampled


class Study:
    """One sweep's Optuna study, with our trial numbers mapped to Optuna's trials."""

    def __init__(self, space: "SearchSpace", *, search: str, early_stop: str, direction: str, seed: int,
                 n_trials: int, max_resource: int, min_resource: int = 1, done_points: list[dict] | None = None,
                 ladder: str | None = None):
        optuna = _quiet_optuna()
        self.space = space
        self.distributions = space.distributions()
        self.study = optuna.create_study(
            direction="maximize" if direction == "max" else "minimize",
            sampler=sampler(search, seed, n_trials), pruner=pruner(early_stop, max_resource, min_resource))
        self._live: dict[int, object] = {}   # our number -> optuna Trial still being run
        #: the epochs at which the pruner may decide (a trial waits there for the verdict)
        self.rungs = rung_epochs(early_stop, min_resource, max_resource)
        self.order: LongestFirst | None = None
        self._pending: list[dict] = []       # grid points not yet asked for, when self.order picks them
        #: the axis along which grid points share one fit (``forest_prefix.ladder_key``), when ordered
        self.ladder: str | None = None
        if search == "grid":
            # re-attached: a point already run is not run again
            points = [p for p in space.grid(seed, limit=n_trials) if p not in (done_points or ())]
            if early_stop == "none" and n_trials == space.grid_size() and LongestFirst.applies(space.axes):
                self.order, self._pending = LongestFirst(space.axes), points
                self.ladder = ladder if ladder in space.axes else None
            else:
                for point in points:
                    self.study.enqueue_trial(point)

    def ask(self, number: int) -> dict:
        """The parameters of our trial *number* (our numbers are the sweep's own: a re-attached
        sweep's Optuna history lacks the trials that were still running, so the two may differ)."""
        if self._pending:
            self.study.enqueue_trial(self.order.take(self._pending))
        trial = self.study.ask(self.distributions)
        self._live[number] = trial
        return dict(trial.params)

    def ask_ladder(self, number: int) -> list[dict]:
        """The parameters of the next task's trials, numbered from *number*: one trial, or, along
        :attr:`ladder`, the longest pending point and every pending point that differs from it
        only on that axis, the largest value first (one fit serves them all)."""
        if not (self.ladder and self._pending):
            return [self.ask(number)]
        first = self.order.take(self._pending)
        same = {k: v for k, v in first.items() if k != self.ladder}
        rungs = [first] + [p for p in self._pending if {k: v for k, v in p.items() if k != self.ladder} == same]
        self._pending = [p for p in self._pending if not any(p is r for r in rungs)]
        out = []
        for i, point in enumerate(sorted(rungs, key=lambda p: -p[self.ladder])):
            self.study.enqueue_trial(point)
            trial = self.study.ask(self.distributions)
            self._live[number + i] = trial
            out.append(dict(trial.params))
        return out

    def report(self, number: int, value: float, step: int) -> bool:
        """Tell the pruner one epoch's value; True when the trial should stop now."""
        trial = self._live.get(number)
        if trial is None or value is None:
            return False
        trial.report(float(value), step)
        return trial.should_prune()

    def tell(self, number: int, status: str, value: float | None, seconds: float | None = None) -> None:
        """The trial ended: finished (with its value, after *seconds*), pruned, or failed (anything else)."""
        optuna = _quiet_optuna()
        trial = self._live.pop(number, None)
        if trial is None:  # not asked here (re-attached while running): add_ended tells Optuna
            return
        state = optuna.trial.TrialState
        if self.order is not None and status == "finished":
            self.order.observe(trial.params, seconds)
        if status == "finished" and value is not None:
            self.study.tell(trial, float(value))
        elif status == "pruned":
            self.study.tell(trial, state=state.PRUNED)
        else:
            self.study.tell(trial, state=state.FAIL)

    def add_ended(self, trials: "list[TrialRecord]") -> None:
        """Rebuild from the registry (``%aiaas sweep attach``): ended trials become Optuna's
        history, so the sampler and the pruner's rungs go on from where they were."""
        optuna = _quiet_optuna()
        state = optuna.trial.TrialState
        for t in trials:
            if t.status not in ("finished", "pruned") or not set(t.params) >= set(self.distributions):
                continue
            if self.order is not None and t.status == "finished":
                self.order.observe(t.params, t.seconds)
            inter = {int(h["epoch"]): float(h["value"]) for h in t.history
                     if h.get("value") is not None and h.get("epoch") is not None}
            frozen = optuna.trial.create_trial(
                params={k: t.params[k] for k in self.distributions}, distributions=self.distributions,
                value=t.value if t.status == "finished" else None, intermediate_values=inter,
                state=state.COMPLETE if t.status == "finished" else state.PRUNED)
            self.study.add_trial(frozen)


__all__ = ["Study", "EARLY_STOPS", "pruner", "sampler", "REDUCTION_FACTOR", "rung_epochs"]
