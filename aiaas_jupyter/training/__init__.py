"""Training entry points: which framework a ``model`` belongs to, and running its trainer.

``run_training`` is what the Dask task calls on a worker. The framework trainers are imported
lazily so that a scikit-learn job never imports torch (slow, and maybe not installed), and
``detect_framework`` only looks for torch when the user's cell already imported it: a
``torch.nn.Module`` cannot exist unless ``torch`` is in ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ModelSpecError
from .base import Emit, TrainResult, TrainSpec
from .common import data_fingerprint

__all__ = ["detect_framework", "run_training", "data_fingerprint",
           "TrainSpec", "TrainResult", "Emit"]


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


def run_training(spec: TrainSpec, data, emit: Emit) -> TrainResult:
    """Train ``spec.model`` on ``data`` with the trainer of its framework."""
    framework = detect_framework(spec.model)
    if framework == "torch":
        from .torch import train
    else:
        from .sklearn import train
    return train(spec, data, emit)
