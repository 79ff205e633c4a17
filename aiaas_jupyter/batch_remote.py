"""Batch inference on the workers: the per-partition functions of ``predict(on_cluster=True)``.

Why here, and why a cache: a task graph of N partitions calls :func:`score_partition` N times
on a handful of worker processes. The model's artifacts reach each worker once (the kernel
scatters them with ``broadcast=True``: they travel through Dask, never through a shared
disk); the first partition a process scores checks every file's sha256 against the registry's
record and loads the model with the safe loaders only (:mod:`.artifacts.codec`: skops with
exact trusted types, ONNX — never pickle); every later partition of that process, in any of
its threads, reuses the loaded model. A few models stay loaded per process (least recently
used first out), so scoring two versions side by side does not reload on every call.

Torch models run as ONNX in onnxruntime, which takes the worker's GPU when it has one (its
CUDA provider); embeddings run the built-in sentence-transformers model on the worker's GPU
when there is one.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, IntegrityError

#: models kept loaded per worker process (least recently used first out)
CACHED_MODELS = 2

_lock = threading.Lock()
_models: "OrderedDict[tuple, Any]" = OrderedDict()
_loads = {"count": 0}


def _model_key(shas: dict[str, str]) -> tuple:
    return tuple(sorted(shas.items()))


def _load(files: dict[str, bytes], spec: dict) -> Any:
    """The version's model, loaded once per process; the files' sha256 checked first."""
    embedding = spec["kind"] == "embedding"
    key = ("embedding",) if embedding else _model_key(spec["shas"])
    with _lock:  # loads are rare: one lock, so two threads of a worker never load the same model twice
        model = _models.get(key)
        if model is not None:
            _models.move_to_end(key)
            return model
        if embedding:
            from .serving.runtime import sentence_model

            model = sentence_model(limit_threads=False)
        else:
            _check(files, spec)
            from .artifacts.codec import load_model_files

            model = load_model_files(spec["framework"], files, extra=spec["extra"])
        _models[key] = model
        _loads["count"] += 1
        while len(_models) > CACHED_MODELS:
            _models.popitem(last=False)
        return model


def _check(files: dict[str, bytes], spec: dict) -> None:
    """The files the worker holds are exactly the registered version's, byte for byte."""
    if set(files) != set(spec["shas"]):
        raise IntegrityError(f"{spec['ref']}: the worker received the files {sorted(files)}, "
                             f"the registry records {sorted(spec['shas'])}")
    for filename, sha in spec["shas"].items():
        if hashlib.sha256(files[filename]).hexdigest() != sha:
            raise IntegrityError(f"{spec['ref']}: artifact {filename!r} reached the worker corrupted "
                                 "(sha256 mismatch); nothing was scored")


def model_loads() -> dict:
    """Run on a worker (``client.run``): how many models this process loaded, and how many it holds."""
    with _lock:
        return {"loads": _loads["count"], "cached": len(_models)}


def forget_models() -> int:
    """Run on a worker (``client.run``): drop the loaded models (their memory); how many there were."""
    with _lock:
        n = len(_models)
        _models.clear()
        return n


def _labels(pred: Any, dtype: str) -> np.ndarray:
    """Predictions as the dtype the output's meta promised (int64, float64, bool or object)."""
    pred = np.asarray(pred).reshape(len(pred), -1)[:, 0] if np.ndim(pred) > 1 else np.asarray(pred)
    return pred.astype(dtype, copy=False)


def _saved(out: pd.DataFrame, spec: dict, partition_info: dict | None) -> pd.DataFrame:
    """With ``spec["save"]``: the partition written as ``part.NNNNN.parquet`` under the URL (through
    fsspec: a local path, s3://, gs://, ...) and one row of counts returned; else ``out`` itself."""
    save = spec.get("save")
    if not save:
        return out
    import fsspec

    number = int((partition_info or {}).get("number", 0))
    fs, root = fsspec.core.url_to_fs(save["url"], **save.get("storage_options", {}))
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root.rstrip('/')}/part.{number:05d}.parquet", "wb") as f:
        out.to_parquet(f, index=True)
    return pd.DataFrame({"rows": [len(out)]}, index=[number])


def score_partition(part: pd.DataFrame, files: dict[str, bytes], spec: dict,
                    partition_info: dict | None = None) -> pd.DataFrame:
    """One partition's predictions (and probabilities), on the partition's own index."""
    return _saved(_predict(part, files, spec), spec, partition_info)


def _predict(part: pd.DataFrame, files: dict[str, bytes], spec: dict) -> pd.DataFrame:
    if len(part) == 0:
        return spec["meta"].iloc[:0].set_axis(part.index[:0])
    model = _load(files, spec)
    columns = spec["inputs"]
    X = part[columns[0]] if spec["kind"] == "text" else part[columns]
    out = {spec["prediction"]: _labels(model.predict(X), spec["prediction_dtype"])}
    if spec["proba_columns"]:
        if not hasattr(model, "predict_proba"):
            raise DataError(f"{spec['ref']} has no predict_proba ({type(model).__name__})",
                            hint="score without --proba")
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        if proba.shape[1] != len(spec["proba_columns"]):
            raise DataError(f"{spec['ref']} gave {proba.shape[1]} probabilities per row; "
                            f"its registered classes are {len(spec['proba_columns'])}")
        out.update(zip(spec["proba_columns"], proba.T))
    return pd.DataFrame(out, index=part.index)


def embed_partition(part: pd.DataFrame, spec: dict, partition_info: dict | None = None) -> pd.DataFrame:
    """One partition's embeddings of its text column: one float32 column per dimension."""
    return _saved(_embed(part, spec), spec, partition_info)


def _embed(part: pd.DataFrame, spec: dict) -> pd.DataFrame:
    if len(part) == 0:
        return spec["meta"].iloc[:0].set_axis(part.index[:0])
    model = _load({}, spec)
    texts = part[spec["inputs"][0]]
    if texts.isna().any():
        raise DataError(f"column {spec['inputs'][0]!r} has {int(texts.isna().sum())} missing texts in this "
                        "partition", hint="fill them (e.g. .fillna('')) or drop those rows first")
    vectors = model.encode(texts.astype(str).tolist(), batch_size=spec["batch_size"], convert_to_numpy=True,
                           show_progress_bar=False)
    return pd.DataFrame(np.asarray(vectors, dtype=np.float32), columns=spec["meta"].columns, index=part.index)
