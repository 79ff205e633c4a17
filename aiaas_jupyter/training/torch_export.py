"""Packaging a fitted torch module: safetensors weights, an ONNX graph, and a JSON description.

Kept apart from the training loop because a sweep packages only the trial it keeps: the ONNX
export (a trace of the module) costs more than a short trial's training.
"""

from __future__ import annotations

import json

import pandas as pd

from . import common
from .base import Fitted, TrainResult


def package(fitted: Fitted, data: pd.DataFrame) -> TrainResult:
    from ..artifacts.codec import (ONNX_FILE, SAFETENSORS_FILE, TORCH_META_FILE,
                                   dump_onnx, dump_state_dict)
    from ..artifacts.onnx_model import outputs_are
    from .torch import last_leaf

    model, ex, extra = fitted.model, fitted.export, dict(fitted.extra)
    model.to("cpu").eval()
    task = extra["task"]
    meta = {"input_dim": ex["input_dim"], "output_dim": ex["out_units"],
            "output_shape": list(ex["out_shape"]), "task": task, "classes": extra["classes"],
            "loss": ex["loss_name"], "threshold": ex["threshold"],
            "module_class": type(model).__name__, "feature_names": extra["feature_names"],
            "target": extra["target"]}
    if task == "classification":  # how predict_proba reads the outputs: a fact of training, not a guess
        meta["outputs_are"] = outputs_are(ex["loss_name"], type(last_leaf(model)).__name__)
    artifacts = {SAFETENSORS_FILE: dump_state_dict(model.state_dict())}
    try:
        artifacts[ONNX_FILE] = dump_onnx(model, ex["sample"])
    except RuntimeError as e:
        extra["onnx_error"] = meta["onnx_error"] = str(e)
    artifacts[TORCH_META_FILE] = json.dumps(meta).encode()
    return TrainResult(
        framework="torch", params=fitted.params, metrics=fitted.metrics, artifacts=artifacts,
        library_versions=common.library_versions(), data_fingerprint=common.data_fingerprint(data),
        n_train=fitted.n_train, n_test=fitted.n_test, device=fitted.device,
        history=fitted.history, extra=extra)
