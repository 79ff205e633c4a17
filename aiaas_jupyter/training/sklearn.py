"""The scikit-learn trainer: fit on the train split, score on the held-out split, skops out.

Runs on a Dask worker. ``fit`` leaves the estimator live (a sweep may drop it); ``package``
turns it into skops bytes, so the kernel registers it without unpickling anything.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..errors import ModelSpecError
from . import common
from .base import Emit, Fitted, StopCheck, TrainResult, TrainSpec


def is_classification(model, y: pd.Series) -> bool:
    """The estimator's own declaration wins; the target decides for undeclared ones."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(model):
        return True
    if is_regressor(model):
        return False
    return common.looks_like_classes(y)


def _seed_random_states(model, seed: int) -> dict:
    """Give every unset ``random_state`` (also inside pipelines) the job's seed.

    Without this a RandomForest trained twice from the same cell differs, and the registry
    could not say how to reproduce a version. Explicit user values are left alone.
    """
    try:
        params = model.get_params(deep=True)
    except (AttributeError, TypeError):
        return {}
    unset = {k: seed for k, v in params.items()
             if (k == "random_state" or k.endswith("__random_state")) and v is None}
    if unset:
        model.set_params(**unset)
    return unset


def _metrics(classification: bool, y_true, y_pred) -> dict[str, float]:
    """Held-out metrics (see :mod:`.metrics`: scikit-learn's formulas without its per-call checks)."""
    from . import metrics

    return metrics.classification(y_true, y_pred) if classification else metrics.regression(y_true, y_pred)


def score(model, classification: bool, X_test, y_test) -> dict[str, float]:
    """The held-out metrics of a fitted *model* (a job's, a sweep trial's, a forest prefix's)."""
    return _metrics(classification, y_test, model.predict(X_test))


def fit(spec: TrainSpec, data: pd.DataFrame, emit: Emit,
        should_stop: StopCheck | None = None) -> Fitted:
    """Fit on the train split and score the held-out split; the estimator stays live.

    ``spec.steps > 0`` grows an iterative estimator in steps (see :mod:`.sklearn_steps`),
    reporting each step's metrics and asking ``should_stop`` between steps; otherwise (and
    for any other estimator) it is today's single ``fit``, which ``should_stop`` cannot cut.
    """
    from ..artifacts.text_model import takes_text
    from .sklearn_steps import fit_in_steps, step_kind

    model = spec.model
    if spec.optimizer is not None or spec.loss is not None:
        raise ModelSpecError("`optimizer` and `loss` only apply to torch models; "
                             "a scikit-learn estimator brings its own")
    X, y = common.features_and_target(spec, data)
    text_input = X.shape[1] == 1 and takes_text(model) == (True, None)  # a text vectorizer first in line
    if text_input:  # a vectorizer wants the documents, not a one-column frame (it would iterate the header)
        X = X.iloc[:, 0]
    classification = is_classification(model, y)
    X_train, X_test, y_train, y_test = common.split(spec, X, y, classification)
    seeded = _seed_random_states(model, spec.seed)
    kind = step_kind(model) if spec.steps and spec.steps > 0 else None

    emit({"stage": "fit", "progress": 0.0, "n_train": len(X_train)})
    t0 = time.perf_counter()
    run = None
    if kind is None:
        model.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - t0
        emit({"stage": "evaluate", "progress": 0.9})
        metrics = score(model, classification, X_test, y_test)
    else:  # the last step's model is the final one: its metrics are the final metrics
        run = fit_in_steps(model, kind, spec, X_train, y_train, X_test, y_test,
                           lambda y_true, y_pred: _metrics(classification, y_true, y_pred),
                           emit, should_stop)
        fit_seconds = run.seconds
        metrics = dict(run.history[-1]["metrics"])

    params = {k: common.jsonable(v) for k, v in model.get_params(deep=False).items()}
    extra = {
        "task": "classification" if classification else "regression",
        "feature_names": [str(X.name)] if text_input else [str(c) for c in X.columns],
        "target": spec.target,
        "estimator_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "evaluated_on": "test" if spec.test_size and spec.test_size > 0 else "train",
        "fit_seconds": fit_seconds,
    }
    if text_input:
        extra["input_kind"] = "text"
    if seeded:
        extra["seeded_random_state"] = sorted(seeded)
    if run is not None:
        extra["steps"] = {"kind": run.kind, "planned": run.planned, "run": run.steps_run,
                          "stopped": run.stopped}
    if classification:
        classes = getattr(model, "classes_", None)
        extra["classes"] = common.jsonable_list(classes if classes is not None
                                                else np.unique(y.dropna()))
    return Fitted(
        framework="sklearn", model=model, params=params, metrics=metrics,
        n_train=len(X_train), n_test=len(X_test), device="cpu",
        history=run.history if run is not None else [], extra=extra,
        stopped=bool(run and run.stopped), epochs_run=run.steps_run if run is not None else 1)


def package(fitted: Fitted, data: pd.DataFrame) -> TrainResult:
    """The fitted estimator as skops bytes, with what the registry records beside it."""
    from ..artifacts.codec import SKOPS_FILE, dump_sklearn

    return TrainResult(
        framework="sklearn", params=fitted.params, metrics=fitted.metrics,
        artifacts={SKOPS_FILE: dump_sklearn(fitted.model)},
        library_versions=common.library_versions(),
        data_fingerprint=common.data_fingerprint(data),
        n_train=fitted.n_train, n_test=fitted.n_test, device=fitted.device,
        history=fitted.history, extra=fitted.extra)
