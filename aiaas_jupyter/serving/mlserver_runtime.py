"""MLServer runtime for a folder written by ``aiaas export --to mlserver`` (:mod:`aiaas_jupyter.model_export`).

Runs inside a stock MLServer (and so under KServe or Seldon Core): ``model-settings.json`` names
``aiaas_jupyter.serving.mlserver_runtime.AiaasRuntime``. Loading checks every artifact against the
sha256 in ``aiaas-model.json`` and uses our safe loaders only (skops with exact trusted types, or
ONNX in onnxruntime; never joblib or pickle); requests go through the same runtime as our own
server (:mod:`.runtime`: the same input forms, the same signature checks, the same outputs), so
the predictions are ours. Imported only by MLServer: ``mlserver`` is not a dependency of this
package. Needs ``aiaas-jupyter``, ``skops`` (scikit-learn models) or ``onnxruntime`` (torch
models) in MLServer's environment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

from .input_errors import InputError, SignatureError
from .runtime import load_runtime

MANIFEST = "aiaas-model.json"


def _decode(inp) -> np.ndarray:
    arr = NumpyCodec.decode_input(inp)
    if arr.dtype.kind in "OSU":  # BYTES arrive as bytes (or numpy strings): our runtimes read text as str objects
        arr = np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v, otypes=[object])(arr)
    return arr


def _encode(name: str, values: np.ndarray):
    """One output, shaped as our server shapes it (``predict`` is ``[N]``; MLServer's codecs would
    answer ``[N, 1]``), so a client sees the same answer from either server."""
    if values.dtype.kind in "OUS":
        out = StringCodec.encode_output(name, [str(v) for v in values.reshape(-1)])
    else:
        out = NumpyCodec.encode_output(name, values)
    out.shape = list(values.shape)
    return out


class AiaasRuntime(MLModel):
    """One exported aiaas version, served by MLServer."""

    async def load(self) -> bool:
        folder = Path(await get_model_uri(self._settings))
        folder = folder if folder.is_dir() else folder.parent
        manifest = json.loads((folder / MANIFEST).read_text())
        files = {}
        for filename, sha in manifest["artifacts"].items():
            data = (folder / filename).read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                raise MLServerError(f"{filename} does not match its sha256 in {MANIFEST}; refusing to load it", 500)
            files[filename] = data
        self._runtime = load_runtime(manifest["framework"], files, manifest.get("extra") or {})
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rt = self._runtime
        try:
            part, n = rt.from_tensors([(inp.name, _decode(inp)) for inp in payload.inputs])
            names = [o.name for o in payload.outputs] if payload.outputs else None
            wanted = rt.check_outputs(names)
        except SignatureError as e:
            raise MLServerError(str(e), 400) from None
        except InputError as e:
            raise MLServerError(str(e), 422) from None
        out = rt.run(part, frozenset(wanted))
        return InferenceResponse(model_name=self.name, model_version=self.version, id=payload.id,
                                 outputs=[_encode(k, out[k]) for k in wanted])
