"""The only place model artifacts become objects and back: skops, safetensors, ONNX.

A registry is shared: whoever can write an artifact could otherwise run code in every kernel
that loads it. So nothing here uses pickle or joblib. scikit-learn models are skops files
whose every type must be on an exact list (:mod:`.trusted_types`: what fitted estimators
really contain, plus the user's per-type opt-in) — never a module prefix, because numpy,
scipy and scikit-learn re-export process and file constructors under harmless-looking
names. torch models are plain tensors (safetensors) plus an ONNX graph with no external
data (:mod:`.onnx_model`), which runs in onnxruntime without any of the user's Python code.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from typing import Any

import numpy as np

from ..errors import ModelSpecError, RegistryError, UnsafeArtifactError
from .onnx_model import OnnxModel  # noqa: F401  (re-exported: what load_model returns for torch)

SKOPS_FILE = "model.skops"
SAFETENSORS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
TORCH_META_FILE = "model.json"


# ----------------------------------------------------------------------------- sklearn
def dump_sklearn(model: Any) -> bytes:
    import skops.io

    return skops.io.dumps(model)


def _one_line(e: Exception) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def load_sklearn(data: bytes) -> Any:
    """Load a skops artifact whose every type is on an exact trusted list, else refuse it
    with one line naming the types — before skops imports or builds anything from it. Trees
    in the result are checked before anyone predicts with them (:mod:`.tree_check`)."""
    import skops.io

    from .tree_check import check_trees
    from .trusted_types import refused

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as e:  # skops raises zipfile/json/KeyError flavours on bad bytes
        raise RegistryError(f"not a readable skops artifact: {_one_line(e)}") from None
    bad = refused(untrusted)
    if bad:
        raise UnsafeArtifactError(
            f"refusing to load a scikit-learn artifact with untrusted type{'s' if len(bad) > 1 else ''} "
            f"{', '.join(bad)}",
            hint="if you trust it, add the exact name to aiaas.artifacts.trusted-types (docs/security.md)")
    try:
        model = skops.io.loads(data, trusted=list(untrusted))
    except Exception as e:  # trusted types fed values they cannot take: skops/sklearn raise any flavour
        raise RegistryError(f"cannot rebuild the scikit-learn model from its artifact: {_one_line(e)}") from None
    check_trees(model)
    return model


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
