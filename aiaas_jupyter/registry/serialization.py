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
from .onnx_model import OnnxModel  # noqa: F401  (re-exported: what load_model returns for torch)

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


def load_torch(files: dict[str, bytes], module: Any = None) -> Any:
    """With ``module``: load the weights into it (strict) and return it in eval mode.
    Without: an :class:`~.onnx_model.OnnxModel` over the exported graph."""
    meta = json.loads(files[TORCH_META_FILE]) if TORCH_META_FILE in files else {}
    if module is not None:
        return _into_module(files, module, meta.get("module_class", "?"))
    if ONNX_FILE not in files:
        why = f" (export failed: {meta['onnx_error']})" if meta.get("onnx_error") else ""
        raise ModelSpecError(
            f"this torch model has no ONNX artifact{why}",
            hint=f"pass module={meta.get('module_class', 'YourModule')}() to load its weights")
    return OnnxModel(files[ONNX_FILE], meta)


def _into_module(files: dict[str, bytes], module: Any, trained_class: str) -> Any:
    """The registered weights loaded into ``module``; a mismatch is one line naming the keys."""
    import torch
    from safetensors.torch import load

    if isinstance(module, type) and issubclass(module, torch.nn.Module):
        raise ModelSpecError(f"module must be an instance, got the class {module.__name__}",
                             hint=f"module={module.__name__}()")
    if not isinstance(module, torch.nn.Module):
        raise ModelSpecError(f"module must be a torch.nn.Module instance, got {type(module).__name__}")
    if SAFETENSORS_FILE not in files:
        raise RegistryError(f"this model version has no {SAFETENSORS_FILE} artifact")
    state, own = load(files[SAFETENSORS_FILE]), module.state_dict()
    problems = [(what, keys) for what, keys in (
        ("missing", [k for k in own if k not in state]),
        ("unexpected", sorted(k for k in state if k not in own)),
        ("shape", [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in state
                   if k in own and tuple(state[k].shape) != tuple(own[k].shape)])) if keys]
    detail = "; ".join(f"{what}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}" for what, keys in problems)
    hint = f"build the same architecture as at training ({trained_class})"
    if detail:
        raise ModelSpecError(f"the weights do not fit {type(module).__name__}: {detail}", hint=hint)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelSpecError(f"the weights do not fit {type(module).__name__}: {' '.join(str(e).split())[:300]}",
                             hint=hint) from None
    return module.eval()


def load_model_files(framework: str, files: dict[str, bytes], *, extra: dict | None = None, **kw) -> Any:
    """Artifacts (file name -> bytes) of one registered version -> a usable model.

    scikit-learn: the estimator/pipeline itself, except that with the version's ``extra`` a
    pipeline trained on one text column comes as a :class:`~.text_model.TextModel` (one
    prediction per document, whatever holds them). torch: :func:`load_torch`."""
    if framework == "sklearn":
        if SKOPS_FILE not in files:
            raise RegistryError(f"this scikit-learn model version has no {SKOPS_FILE} artifact")
        if kw:
            raise ModelSpecError(f"unexpected options for a scikit-learn model: {', '.join(kw)}",
                                 hint="module= applies to torch models only")
        from .text_model import wrap

        return wrap(load_sklearn(files[SKOPS_FILE]), extra)
    if framework == "torch":
        unknown = sorted(set(kw) - {"module"})
        if unknown:
            raise ModelSpecError(f"unexpected options for a torch model: {', '.join(unknown)}",
                                 hint="load_model(ref) or load_model(ref, module=YourNet())")
        return load_torch(files, **kw)
    raise RegistryError(f"unknown framework {framework!r}; expected 'sklearn' or 'torch'")
