"""Training entry points: which framework a ``model`` belongs to, and running its trainer.

``run_training`` is what the Dask task calls on a worker: ``package(fit(...))``. A sweep calls
the two halves itself: ``fit`` every trial (asking it to stop early through ``should_stop``)
and ``package`` only the one it keeps. The framework trainers are imported
lazily so that a scikit-learn job never imports torch (slow, and maybe not installed), and
``detect_framework`` only looks for torch when the user's cell already imported it: a
``torch.nn.Module`` cannot exist unless ``torch`` is in ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ModelSpecError
from .base import Emit, Fitted, StopCheck, TrainResult, TrainSpec
from .common import data_fingerprint

__all__ = ["detect_framework", "run_training", "fit", "package", "is_iterative",
           "data_fingerprint", "TrainSpec", "TrainResult", "Fitted", "Emit", "StopCheck"]


def detect_framework(model: Any) -> str:
    """``"torch"`` for an ``nn.Module``, ``"sklearn"`` for anything with fit and predict."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    if isinstance(model, type):
        raise ModelSpecError(
            f"model must be a scikit-learn estimator/pipeline or a torch.nn.Module instance, "
            f"got the class {model.__name__}", hint=f"use model = {model.__name__}()")
    if callable(getattr(model, "fit", None)) and callable(getattr(model, "predict", None)):
        return "sklearn"
    raise ModelSpecError(
        "model must be a scikit-learn estimator/pipeline or a torch.nn.Module, "
        f"got {type(model).__name__}",
        hint="assign the estimator or module to a variable named `model` in the cell")


def is_iterative(model: Any) -> bool:
    """Whether a fit of ``model`` reports per-epoch/step metrics (so a pruner can cut it short).

    A torch module always trains in epochs; a scikit-learn estimator (or Pipeline ending in
    one) when it can be grown with ``warm_start`` + ``n_estimators`` or has ``partial_fit``,
    and then only with ``TrainSpec.steps > 0``.
    """
    if detect_framework(model) == "torch":
        return True
    from .sklearn_steps import step_kind

    return step_kind(model) is not None


def fit(spec: TrainSpec, data, emit: Emit, should_stop: StopCheck | None = None, checkpoints=None) -> Fitted:
    """Fit ``spec.model`` on ``data`` with the trainer of its framework; the model stays live.

    Events: "fit", then "epoch" (torch, stepped scikit-learn; each with ``metrics`` under the
    final metrics' names), "train" ticks (torch) or "evaluate" (one-shot scikit-learn). No
    "done": :func:`run_training` sends it once the artifacts exist; a sweep knows by the return.

    *checkpoints* (:class:`~.checkpoints.JobCheckpoints`): a torch fit saves its state after
    each epoch and resumes from the one it finds; a scikit-learn fit starts from scratch."""
    if detect_framework(spec.model) == "torch":
        from .partitions import PartitionStream

        if isinstance(data, PartitionStream):  # a dask frame, read one partition at a time
            from .torch_stream import fit_stream

            return fit_stream(spec, data, emit, should_stop, checkpoints)
        from .torch import fit as torch_fit

        return torch_fit(spec, data, emit, should_stop, checkpoints)
    from .sklearn import fit as sklearn_fit

    return sklearn_fit(spec, data, emit, should_stop)


def package(fitted: Fitted, data) -> TrainResult:
    """Export a :class:`Fitted` model as safe artifact bytes (``data``: what it was fitted on,
    for the fingerprint)."""
    if fitted.framework == "torch":
        from .torch_export import package as framework_package
    else:
        from .sklearn import package as framework_package
    from ..signature import of_training

    result = framework_package(fitted, data)
    signature = of_training(data, result.extra.get("target"), result.extra, text_column=_text_column(fitted))
    if signature is not None:
        result.extra["signature"] = signature
    return result


def run_training(spec: TrainSpec, data, emit: Emit,
                 should_stop: StopCheck | None = None, checkpoints=None) -> TrainResult | None:
    """Train ``spec.model`` on ``data`` with the trainer of its framework; None when
    ``should_stop`` ended the fit (a cancelled job: nothing to package).

    The "done" event comes once the artifacts exist: a job is done when its result is."""
    fitted = fit(spec, data, emit, should_stop, checkpoints)
    if fitted.stopped:
        return None
    result = package(fitted, data)
    emit({"stage": "done", "progress": 1.0, "metrics": result.metrics})
    return result


def _text_column(fitted: Fitted) -> str | None:
    """The column a scikit-learn text model vectorises (its signature's ``text`` input), if any."""
    if fitted.framework != "sklearn":
        return None
    from ..artifacts.text_model import takes_text

    is_text, column = takes_text(fitted.model, fitted.extra)
    names = fitted.extra.get("feature_names") or []
    return column or (names[0] if is_text and len(names) == 1 else None)
