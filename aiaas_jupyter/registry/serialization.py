"""The only place model artifacts become objects and back: skops, safetensors, ONNX.

A registry is shared: whoever can write an artifact could otherwise run code in every kernel
that loads it. So nothing here uses pickle or joblib. scikit-learn models are skops files
whose non-default types must all be on :data:`TRUSTED_TYPE_PREFIXES` *and* be classes (a
trusted module still has functions a ``FunctionTransformer`` could be pointed at, e.g.
``numpy.load``); torch models are plain tensors (safetensors) plus an ONNX graph, which
runs in onnxruntime without any of the user's Python code.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import warnings
from typing import Any

import numpy as np

from ..errors import ModelSpecError, RegistryError, UnsafeArtifactError

#: Modules whose *classes* a skops artifact may instantiate beyond skops' own defaults.
#: Kept explicit and small on purpose: extending it widens what a shared artifact can run.
TRUSTED_TYPE_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.", "collections.")

SKOPS_FILE = "model.skops"
SAFETENSORS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
TORCH_META_FILE = "model.json"


# ----------------------------------------------------------------------------- sklearn
def dump_sklearn(model: Any) -> bytes:
    import skops.io

    return skops.io.dumps(model)


def _is_trusted_type(name: str) -> bool:
    """A dotted name under a trusted prefix that resolves to a class (not a function)."""
    if not name.startswith(TRUSTED_TYPE_PREFIXES):
        return False
    module_name, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type)


def load_sklearn(data: bytes) -> Any:
    """Load a skops artifact, trusting only classes from :data:`TRUSTED_TYPE_PREFIXES`."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as e:  # skops raises zipfile/json/KeyError flavours on bad bytes
        raise RegistryError(f"not a readable skops artifact: {type(e).__name__}: {e}") from e
    refused = [t for t in untrusted if not _is_trusted_type(t)]
    if refused:
        raise UnsafeArtifactError(
            f"refusing to load a scikit-learn artifact that needs untrusted type(s): "
            f"{', '.join(refused)}",
            hint="only scikit-learn/numpy/scipy classes are loaded; custom code must be "
                 "imported and the model rebuilt by the user")
    return skops.io.loads(data, trusted=list(untrusted))


# ----------------------------------------------------------------------------- torch
def dump_state_dict(state_dict: dict) -> bytes:
    """safetensors bytes of a state_dict: CPU, contiguous, tied tensors de-aliased.

    safetensors refuses tensors that share storage (tied embeddings/heads); those get a
    copy, which ``load_state_dict`` restores as separate values of equal content.
    """
    import torch
    from safetensors.torch import save

    tensors, seen = {}, set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ModelSpecError(f"state_dict entry {key!r} is not a tensor; cannot save it safely")
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()
        elif ptr is not None:
            seen.add(ptr)
        tensors[key] = t
    return save(tensors)


def dump_onnx(model: "torch.nn.Module", sample: "torch.Tensor") -> bytes:
    """ONNX bytes of a CPU model in eval mode, with a dynamic batch axis, checked in
    onnxruntime against torch on ``sample`` rows. Raises RuntimeError naming each failure.

    The TorchScript exporter (``dynamo=False``) is fast and quiet once its deprecation
    warning is silenced; the torch.export one is the fallback. The check uses a batch size
    different from the traced one, which catches graphs that baked the batch size in.
    """
    import onnxruntime as ort
    import torch

    logger = logging.getLogger("torch.onnx")
    old_level = logger.level
    errors = []
    for dynamo in (False, True):
        buf = io.BytesIO()
        try:
            logger.setLevel(logging.ERROR)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (sample[:2],), buf, input_names=["input"],
                                  output_names=["output"], dynamo=dynamo,
                                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
            check = sample[:5]
            got = session.run(None, {"input": check.numpy()})[0]
            with torch.no_grad():
                want = model(check).numpy()
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
                raise ValueError("onnxruntime output differs from the torch model's")
            return buf.getvalue()
        except Exception as e:  # any exporter failure: try the next one, report if all fail
            errors.append(f"{'dynamo' if dynamo else 'torchscript'}: {type(e).__name__}: {e}"[:500])
        finally:
            logger.setLevel(old_level)
    raise RuntimeError("; ".join(errors))


class OnnxModel:
    """A trained torch model as an onnxruntime session: no user code, no torch needed.

    ``predict`` gives labels (classification, using the classes recorded at training) or
    values (regression); ``predict_proba`` and calling the object give the raw outputs.
    """

    def __init__(self, onnx_bytes: bytes, meta: dict | None = None):
        import onnxruntime as ort

        self.meta = dict(meta or {})
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(onnx_bytes, sess_options=opts,
                                            providers=ort.get_available_providers())
        self.input_name = self.session.get_inputs()[0].name
        self.classes = self.meta.get("classes")
        self.task = self.meta.get("task", "classification" if self.classes else "regression")
        self.feature_names = self.meta.get("feature_names")

    def __repr__(self) -> str:
        return f"OnnxModel({self.meta.get('module_class', '?')}, task={self.task})"

    def _as_input(self, X) -> np.ndarray:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            if self.feature_names and set(self.feature_names) <= set(map(str, X.columns)):
                X = X[self.feature_names]
            X = X.to_numpy(dtype=np.float32)
        arr = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        return arr.reshape(1, -1) if arr.ndim == 1 else arr

    def predict_proba(self, X) -> np.ndarray:
        """Raw model outputs (probabilities or logits, depending on the model's last layer)."""
        return self.session.run(None, {self.input_name: self._as_input(X)})[0]

    __call__ = predict_proba

    def predict(self, X) -> np.ndarray:
        out = self.predict_proba(X)
        if self.task != "classification":
            return out.reshape(len(out)) if out.ndim == 2 and out.shape[1] == 1 else out
        if out.ndim == 2 and out.shape[1] >= 2:
            idx = out.argmax(axis=1)
        else:
            idx = (out.reshape(len(out)) > float(self.meta.get("threshold", 0.5))).astype(int)
        if not self.classes:
            return idx
        return np.asarray(self.classes, dtype=object)[idx] if _mixed(self.classes) \
            else np.asarray(self.classes)[idx]


def _mixed(values: list) -> bool:
    return len({type(v) for v in values}) > 1


def load_torch(files: dict[str, bytes], module: Any = None) -> Any:
    """With ``module``: load the weights into it (strict) and return it in eval mode.
    Without: an :class:`OnnxModel` over the exported graph."""
    meta = json.loads(files[TORCH_META_FILE]) if TORCH_META_FILE in files else {}
    if module is not None:
        import torch
        from safetensors.torch import load

        if not isinstance(module, torch.nn.Module):
            raise ModelSpecError(f"module must be a torch.nn.Module instance, got {type(module).__name__}")
        if SAFETENSORS_FILE not in files:
            raise RegistryError(f"this model version has no {SAFETENSORS_FILE} artifact")
        state = load(files[SAFETENSORS_FILE])
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ModelSpecError(
                f"the weights do not fit {type(module).__name__}: {e}",
                hint=f"build the same architecture as at training ({meta.get('module_class', '?')})"
            ) from e
        return module.eval()
    if ONNX_FILE not in files:
        why = f" (export failed: {meta['onnx_error']})" if meta.get("onnx_error") else ""
        raise ModelSpecError(
            f"this torch model has no ONNX artifact{why}",
            hint=f"pass module={meta.get('module_class', 'YourModule')}() to load its weights")
    return OnnxModel(files[ONNX_FILE], meta)


def load_model_files(framework: str, files: dict[str, bytes], **kw) -> Any:
    """Artifacts (file name -> bytes) of one registered version -> a usable model."""
    if framework == "sklearn":
        if SKOPS_FILE not in files:
            raise RegistryError(f"this scikit-learn model version has no {SKOPS_FILE} artifact")
        if kw:
            raise ModelSpecError(f"unexpected options for a scikit-learn model: {', '.join(kw)}")
        return load_sklearn(files[SKOPS_FILE])
    if framework == "torch":
        return load_torch(files, **kw)
    raise RegistryError(f"unknown framework {framework!r}; expected 'sklearn' or 'torch'")
