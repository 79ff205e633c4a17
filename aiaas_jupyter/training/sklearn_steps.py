"""Fitting an iterative scikit-learn estimator in steps, scoring the held-out split after each.

A sweep's pruner (ASHA, Hyperband) decides from intermediate values whether a trial is worth
finishing; a scikit-learn ``fit`` gives none. Two kinds of estimator can be grown instead:

* ensembles with ``warm_start`` and ``n_estimators`` (random forests, extra trees, gradient
  boosting, bagging): fit with ``n_estimators`` raised step by step; each fit only adds trees,
  and with a fixed ``random_state`` the final forest is the one a single fit builds;
* estimators with ``partial_fit`` (SGD*, MLP* with an sgd/adam solver, naive Bayes ...): one
  pass over the train split per step, in a seeded shuffled order.

In a Pipeline only the final step is iterative: the steps before it are fitted once (as
``Pipeline.fit`` would) and the data they produce are reused by every step.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import time
from typing import Any, Callable

import numpy as np

from ..errors import ModelSpecError
from .base import Emit, StopCheck, TrainSpec

WARM_START = "warm_start"
PARTIAL_FIT = "partial_fit"


@dataclasses.dataclass
class StepRun:
    kind: str                      # WARM_START | PARTIAL_FIT
    planned: int                   # steps planned (K)
    history: list[dict]            # the emitted "epoch" events
    stopped: bool
    seconds: float

    @property
    def steps_run(self) -> int:
        return len(self.history)


def final_estimator(model: Any) -> Any:
    """The estimator that predicts: the last step of a (nested) Pipeline, else the model."""
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def step_kind(model: Any) -> str | None:
    """How ``model`` can be fitted in steps: WARM_START, PARTIAL_FIT, or None (one fit only)."""
    est = final_estimator(model)
    if est is None or isinstance(est, str):  # "passthrough"
        return None
    try:
        params = est.get_params(deep=False)
    except (AttributeError, TypeError):
        return None
    n = params.get("n_estimators")
    if "warm_start" in params and isinstance(n, numbers.Integral) and n >= 1 \
            and not (params.get("oob_score") and _is_bagging(est)):  # bagging refuses oob + warm_start
        return WARM_START
    # available_if hides partial_fit where the configuration lacks it (MLP with lbfgs)
    if callable(getattr(est, "partial_fit", None)):
        return PARTIAL_FIT
    return None


def _is_bagging(est: Any) -> bool:
    from sklearn.ensemble import BaggingClassifier, BaggingRegressor

    return isinstance(est, (BaggingClassifier, BaggingRegressor))


def warm_start_sizes(n_final: int, steps: int) -> list[int]:
    """``n_estimators`` after each step: round(n_final*k/K) for k = 1..K, K = min(steps, n_final),
    so that every step adds at least one estimator (half-up rounding: strictly increasing)."""
    k_max = max(1, min(steps, n_final))
    return [max(1, math.floor(n_final * k / k_max + 0.5)) for k in range(1, k_max + 1)]


def _fit_head(model: Any, X, y):
    """Fit every step before the final estimator once, in place, as ``Pipeline.fit`` does.

    Returns (final estimator, its training input, a function mapping raw X to its input).
    """
    from sklearn.pipeline import Pipeline

    heads = []
    while isinstance(model, Pipeline):
        if len(model.steps) > 1:
            head = model[:-1]
            X = head.fit_transform(X, y)
            # with ``memory`` set the head fits clones: the pipeline must hold the fitted ones
            model.steps = list(head.steps) + [model.steps[-1]]
            heads.append(head)
        model = model.steps[-1][1]

    def transform(Z):
        for head in heads:
            Z = head.transform(Z)
        return Z

    return model, X, transform


def _rows(X, idx: np.ndarray):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def fit_in_steps(model: Any, kind: str, spec: TrainSpec, X_train, y_train, X_test, y_test,
                 score: Callable[[Any, Any], dict[str, float]], emit: Emit,
                 should_stop: StopCheck | None = None) -> StepRun:
    """Fit ``model`` in steps of ``kind``; after each: score the test split, emit an "epoch"
    event with those metrics, then ask ``should_stop``. The model is left fitted as of the last
    step run (a stopped forest keeps the trees it has, and ``n_estimators`` says how many)."""
    t0 = time.perf_counter()
    est, Xt_train, transform = _fit_head(model, X_train, y_train)
    Xt_test = transform(X_test)
    if kind == WARM_START:
        sizes = warm_start_sizes(int(est.get_params(deep=False)["n_estimators"]), spec.steps)
        planned = len(sizes)
        user_warm_start = est.get_params(deep=False)["warm_start"]
        est.set_params(warm_start=True)
    else:
        if spec.epochs < 1:
            raise ModelSpecError(f"epochs must be >= 1 for partial_fit steps (got {spec.epochs})")
        planned = spec.epochs
        rng = np.random.default_rng(spec.seed)
        y_arr = np.asarray(y_train)
        takes_classes = "classes" in inspect.signature(est.partial_fit).parameters
    history: list[dict] = []
    stopped = False
    try:
        for k in range(1, planned + 1):
            ts = time.perf_counter()
            if kind == WARM_START:
                est.set_params(n_estimators=sizes[k - 1])
                est.fit(Xt_train, y_train)
            else:
                perm = rng.permutation(len(y_arr))
                extra = {"classes": np.unique(y_arr)} if k == 1 and takes_classes else {}
                est.partial_fit(_rows(Xt_train, perm), y_arr[perm], **extra)
            metrics = score(y_test, est.predict(Xt_test))
            # val_* beside ``metrics``: the names the job's epoch plot already draws (as torch's)
            event = {"stage": "epoch", "epoch": k, "epochs": planned, "metrics": metrics,
                     **{f"val_{name}": value for name, value in metrics.items()},
                     "progress": k / planned, "seconds": time.perf_counter() - ts}
            if kind == WARM_START:
                event["n_estimators"] = sizes[k - 1]
            history.append(event)
            emit(event)
            if should_stop is not None and k < planned and should_stop():
                stopped = True
                break
    finally:
        if kind == WARM_START:  # the registered params are the user's, not our stepping switch
            est.set_params(warm_start=user_warm_start)
    return StepRun(kind=kind, planned=planned, history=history, stopped=stopped,
                   seconds=time.perf_counter() - t0)
