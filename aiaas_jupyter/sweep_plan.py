"""Everything a sweep needs checked before a single trial is submitted.

Why apart from the dispatcher: a sweep multiplies a mistake by its trial count, so every input
the kernel can check — the framework, the space against the search, the metric against what
the trainer reports, the target, GPU capacity, names, counts — fails here at once with one
line, and the dispatcher only ever sees a consistent :class:`SweepPlan`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from typing import Any, Callable

from .errors import SweepError
from .registry import SweepRecord, validate_name
from .sweep_space import SearchSpace
from .sweep_options import EARLY_STOPS, LOWER_IS_BETTER, REGISTER
from .sweep_study import rung_epochs
from .sweep_trial import TRAIN_KEYS, TrialPlan

#: the held-out metrics each trainer reports, by framework and task (the names of TrainResult.metrics)
METRICS = {
    ("sklearn", "classification"): ("accuracy", "f1_macro"),
    ("sklearn", "regression"): ("r2", "mae", "rmse"),
    ("torch", "classification"): ("accuracy", "val_loss", "loss"),
    ("torch", "regression"): ("r2", "mse", "val_loss", "loss"),
}
#: increments an iterative scikit-learn estimator is grown in when early stopping is on
SKLEARN_STEPS = 8
#: random/TPE trial count when --trials is not given
DEFAULT_TRIALS = 20
#: the default grace period is this share of the epochs: judged after its first epoch, a trial is
#: judged on its learning rate (a small lr starts last and may finish first); W3b's 16 MLPs lost
#: 2-3% of the best accuracy to a 1-epoch grace, none to a 4-epoch one (benchmarks/README.md)
GRACE_SHARE = 5


def resolve_grace(given: int | None, early_stop: str, max_resource: int) -> int:
    """Epochs (steps) a trial trains before the pruner may stop it: Ray Tune's ``grace_period``,
    Optuna's ``min_resource``. Default: a fifth of *max_resource*, at least 1."""
    if given is None:
        return max(1, max_resource // GRACE_SHARE)
    if early_stop == "none":
        raise SweepError("--grace-period applies to early stopping", hint="add --early-stop asha (or hyperband)")
    if not 1 <= given <= max_resource:
        raise SweepError(f"--grace-period must be between 1 and the {max_resource} epochs (steps) a trial has, "
                         f"got {given}")
    return given


@dataclasses.dataclass
class SweepPlan:
    record: SweepRecord
    space: SearchSpace
    trial_plan: TrialPlan
    gpus_per_trial: int
    register: str
    max_resource: int
    grace_period: int = 1


def _framework(model: Any, make_model: Callable | None) -> str:
    from .training import detect_framework

    if make_model is not None:
        if not callable(make_model):
            raise SweepError("make_model must be a function make_model(params) -> torch.nn.Module")
        if "torch" not in sys.modules:
            raise SweepError("make_model builds torch networks, but torch is not imported",
                             hint="import torch in the cell")
        return "torch"
    if model is None:
        raise SweepError("the cell defines no `model`",
                         hint="assign an estimator or torch.nn.Module to `model` (or define make_model(params))")
    return detect_framework(model)


def _task(framework: str, model: Any, loss: Any, y) -> str:
    from .training.common import looks_like_classes

    if framework == "sklearn":
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    elif loss is not None:
        from .training.torch import REGRESSION_LOSSES  # torch is imported: the cell made a torch loss

        if isinstance(loss, REGRESSION_LOSSES):
            return "regression"
    return "classification" if looks_like_classes(y) else "regression"


def _target_sample(frame, target: str):
    """The target column (a sample of a dask frame's) to tell classification from regression."""
    column = frame[target]
    return column.head(10_000) if hasattr(column, "npartitions") else column


def plan_sweep(model, frame, target: str, *, space: Any, name: str | None, metric: str | None,
               direction: str | None, search: str | None, trials: int | None, early_stop: str,
               grace_period: int | None, max_concurrent: int | None, slots: int, gpus_per_trial: int, seed: int,
               register: str,
               make_model: Callable | None, loss: Any, train_options: dict, source: str, data_name: str | None,
               scheduler: str, embedded: bool) -> SweepPlan:
    """Check the inputs (one clear line each) and lay out the sweep; submits nothing."""
    from .training.base import TrainSpec
    from .training import is_iterative

    framework = _framework(model, make_model)
    search = search or ("grid" if isinstance(space, dict) and all(
        isinstance(v, (list, tuple, range)) for v in space.values()) else "tpe")
    parsed = SearchSpace.parse(space, search)
    if early_stop not in EARLY_STOPS:
        raise SweepError(f"--early-stop must be one of {', '.join(EARLY_STOPS)}, got {early_stop!r}")
    if register not in REGISTER:
        raise SweepError(f"--register must be best or none, got {register!r}")
    if framework == "torch" and make_model is None:
        extra = [k for k in parsed.names if k not in TRAIN_KEYS]
        if extra:
            raise SweepError(f"space keys {', '.join(extra)} are not training options ({', '.join(TRAIN_KEYS)})",
                             hint="define make_model(params) in the cell to build the network from them")
    if train_options.get("optimizer") is not None:
        raise SweepError("a sweep builds each trial's optimizer (AdamW with the trial's lr); the cell's "
                         "`optimizer` would hold another network's parameters", hint="remove `optimizer`")
    task = _task(framework, model, loss, _target_sample(frame, target))
    valid = METRICS[(framework, task)]
    metric = metric or valid[0]
    if metric not in valid:
        raise SweepError(f"--metric {metric}: a {framework} {task} trial reports {', '.join(valid)}")
    direction = direction or ("min" if metric in LOWER_IS_BETTER else "max")
    if direction not in ("max", "min"):
        raise SweepError(f"--direction must be max or min, got {direction!r}")
    if trials is not None and trials < 1:
        raise SweepError(f"--trials must be >= 1, got {trials}")
    n_trials = (min(trials, parsed.grid_size()) if trials else parsed.grid_size()) if search == "grid" \
        else (trials or DEFAULT_TRIALS)
    if max_concurrent is not None and max_concurrent < 1:
        raise SweepError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    concurrent = max(1, min(max_concurrent or slots, slots, n_trials))
    if name is None:
        name = type(model).__name__.lower() if model is not None else "sweep"
    name = validate_name(name)

    opts = {k: v for k, v in train_options.items() if k != "optimizer"}
    spec = TrainSpec(model=model, target=target, loss=loss, seed=seed, gpus=gpus_per_trial, **opts)
    stepped = framework == "sklearn" and early_stop != "none" and is_iterative(model)
    if stepped:
        spec.steps = SKLEARN_STEPS
    epochs = max([spec.epochs] + [v for v in (space.get("epochs") if isinstance(space.get("epochs"), list)
                                              else []) if isinstance(v, int)])
    max_resource = SKLEARN_STEPS if stepped else epochs
    grace = resolve_grace(grace_period, early_stop, max_resource)
    sweep_id = uuid.uuid4().hex[:10]
    record = SweepRecord(
        id=sweep_id, model=name, status="pending", metric=metric, direction=direction, search=search,
        early_stop=early_stop, n_trials=n_trials, max_concurrent=concurrent, seed=seed, scheduler=scheduler,
        info={"framework": framework, "task": task, "target": target, "data": data_name, "source": source,
              "space": parsed.describe(), "space_text": parsed.text(), "gpus_per_trial": gpus_per_trial,
              "register": register, "stepped": stepped, "train": opts, "max_resource": max_resource,
              "grace_period": grace, "embedded": embedded, "pid": os.getpid()})
    plan = TrialPlan(sweep_id=sweep_id, spec=spec, make_model=make_model, metric=metric, direction=direction,
                     keep_best=register == "best", rungs=rung_epochs(early_stop, grace, max_resource))
    return SweepPlan(record=record, space=parsed, trial_plan=plan, gpus_per_trial=gpus_per_trial,
                     register=register, max_resource=max_resource, grace_period=grace)


__all__ = ["SweepPlan", "plan_sweep", "METRICS", "LOWER_IS_BETTER", "SKLEARN_STEPS", "DEFAULT_TRIALS",
           "GRACE_SHARE", "resolve_grace"]
