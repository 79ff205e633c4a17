"""Batch inference on the cluster: ``predict(NAME, DDF, on_cluster=True)`` and ``embed(..., on_cluster=True)``.

Why not the model server: a server is one process answering requests; a frame of millions of
rows belongs where the data already is. Here the registered version's artifacts are read from
the registry (each file checked against its sha256) and scattered once to every worker
(``broadcast``; content-addressed, so scoring again with the same version sends nothing new);
each worker loads the model once (:mod:`.batch_remote`) and applies it to its partitions with
``map_partitions``. The output is a dask DataFrame aligned to the input's index: ``prediction``
(and ``proba_<class>`` per class), or the embedding's dimensions ``emb_0 … emb_<D-1>``.

Everything that can be checked before any task runs is checked here, with one line: the
version exists, the frame has the model's input columns, a text model's column holds text.
Results stay in the workers' memory (``persist``) — or, with ``save=URL``, every partition is
written by the worker that scored it as ``URL/part.NNNNN.parquet`` (fsspec: a local path on
this machine's cluster, or s3://, gs://, ... that every worker reaches) and nothing is kept.
"""

from __future__ import annotations

from typing import Any

from .batch_job import BatchJob
from .errors import DataError, ModelSpecError

PREDICTION = "prediction"
EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_DIM = 384


def _frame(data: Any, namespace: dict | None, n_threads: int, dask_client=None):
    """The input as a dask DataFrame: a dask or pandas frame (a pandas one cut in about two
    partitions per worker thread), a notebook variable's name, or a path glob the workers read."""
    from .data import read_input

    return read_input(data, namespace, npartitions=max(2, 2 * n_threads), client=dask_client)


def _label_dtype(task: str | None, classes: list | None) -> str:
    if task == "regression" or not classes:
        return "float64"
    if all(isinstance(c, bool) for c in classes):
        return "bool"
    if all(isinstance(c, int) for c in classes):
        return "int64"
    if all(isinstance(c, (int, float)) for c in classes):
        return "float64"
    return "object"


def _text_column(frame, column: str | None, who: str) -> str:
    """*column* (checked), or the frame's only text column; one line when there is none or several."""
    have = [str(c) for c in frame.columns]
    if column is None:
        text_cols = [str(c) for c, t in frame.dtypes.items() if t == object or str(t) in ("string", "str")]
        if len(text_cols) != 1:
            raise DataError(f"{who} one text column; which column holds the text? the frame has {have[:20]}",
                            hint="name it: --column COL (Python: column='COL')")
        return text_cols[0]
    if column not in have:
        raise DataError(f"the frame has no column {column!r}, which {who} its text from",
                        hint=f"its columns: {', '.join(have[:20])}")
    return column


def _inputs(mv, frame, column: str | None) -> tuple[str, list[str]]:
    """("text" | "tabular", the input columns), checked against the frame's columns."""
    from .artifacts.text_model import declared_text

    have = [str(c) for c in frame.columns]
    is_text, text_column = declared_text(mv.extra) if mv.framework == "sklearn" else (False, None)
    if is_text:
        return "text", [_text_column(frame, column or text_column, f"{mv.ref} reads")]
    if column is not None:
        raise DataError(f"--column names a text column; {mv.ref} takes numeric features")
    features = mv.extra.get("feature_names")
    if not features:
        raise ModelSpecError(f"{mv.ref} records no feature names, so its columns cannot be picked from a frame",
                             hint="retrain it on a DataFrame with named columns")
    missing = [f for f in features if f not in have]
    if missing:
        raise DataError(f"the frame lacks {len(missing)} of {mv.ref}'s {len(features)} input columns: "
                        f"{', '.join(map(repr, missing[:10]))}{' …' if len(missing) > 10 else ''}",
                        hint="score a frame with the columns the model was trained on (extra columns are ignored)")
    return "tabular", [str(f) for f in features]


def _check_kinds(mv, frame, columns: list[str]) -> None:
    """The frame's columns against the version's signature: a string column where the model was
    trained on numbers (or numbers for its text column) is one line now, not a failed partition."""
    import pandas as pd

    entries = {e["name"]: e for e in (mv.extra.get("signature") or {}).get("inputs", [])}
    for col in columns:
        entry, dtype = entries.get(col), frame.dtypes[col]
        if entry is None:
            continue
        numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        if entry["kind"] in ("numeric", "boolean") and not numeric:
            raise DataError(f"column {col!r} is {entry['kind']} ({entry['dtype']}) in {mv.ref}'s signature; "
                            f"the frame has it as {dtype}", hint=f"convert it first, e.g. ddf[{col!r}].astype(float)")
        if entry["kind"] == "text" and numeric:
            raise DataError(f"column {col!r} is text in {mv.ref}'s signature; the frame has it as {dtype}")


def _save_spec(save: str | None, overwrite: bool, dask_client=None) -> dict | None:
    """``save`` as the workers will write it; an existing non-empty target is refused up front, and
    so is a local folder the workers do not see as the kernel does (:mod:`.worker_reach`)."""
    if not save:
        return None
    import fsspec

    from .worker_reach import check_workers_write, is_url

    url = str(save)
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root) and (not fs.isdir(root) or fs.ls(root)):
        if not overwrite:
            raise DataError(f"{url} exists and is not empty; nothing was scored",
                            hint="choose another --save location, or add --overwrite")
        fs.rm(root, recursive=True)
    if not is_url(url):
        created = not fs.exists(root)
        fs.makedirs(root, exist_ok=True)
        try:
            check_workers_write(dask_client, root)
        except DataError:
            if created:
                fs.rm(root, recursive=True)
            raise
    return {"url": url}


def _scatter_files(dask_client, files: dict[str, bytes], shas: dict[str, str]):
    """The version's files on every worker, as one Dask key named after their sha256s: scoring the
    same version again finds them there, and Dask never hashes 50 MB of bytes to name them (its
    ``hash=True`` tokenising took 1.1 s for a 50 MB forest, longer than sending it)."""
    import hashlib

    key = "aiaas-artifacts-" + hashlib.sha256(repr(sorted(shas.items())).encode()).hexdigest()[:32]
    return dask_client.scatter({key: files}, broadcast=True)[key]


def _scored(dask_client, frame, fn, args: tuple, spec: dict, what: str) -> BatchJob:
    """Map *fn* over the partitions, persist, and hand back the job that follows them."""
    from distributed import futures_of

    meta = spec["meta"]
    if spec.get("save"):
        import pandas as pd

        meta = pd.DataFrame({"rows": pd.Series(dtype="int64")})
    out = frame.map_partitions(fn, *args, spec, meta=meta, align_dataframes=False)
    job = BatchJob(what, frame.npartitions, save=spec["save"]["url"] if spec.get("save") else None)
    persisted = dask_client.persist(out)
    job.follow(dask_client, persisted, futures_of(persisted), keep=list(args))
    return job


def predict_on_cluster(dask_client, registry, ref: str, data: Any, *, namespace: dict | None = None,
                       proba: bool = False, column: str | None = None, save: str | None = None,
                       overwrite: bool = False, n_threads: int = 1) -> BatchJob:
    """Score *data* with the registered version *ref* on the workers; see the module docstring."""
    import pandas as pd

    from .batch_remote import score_partition

    mv = registry.get(ref)
    frame = _frame(data, namespace, n_threads, dask_client)
    kind, inputs = _inputs(mv, frame, column)
    _check_kinds(mv, frame, inputs)
    task, classes = mv.extra.get("task"), mv.extra.get("classes")
    if proba and (task == "regression" or not classes):
        raise DataError(f"{mv.ref} is a regressor: it has no class probabilities", hint="drop --proba")
    proba_columns = [f"proba_{c}" for c in classes] if proba else []
    label_dtype = _label_dtype(task, classes)
    meta = pd.DataFrame({PREDICTION: pd.Series(dtype=label_dtype),
                         **{c: pd.Series(dtype="float64") for c in proba_columns}},
                        index=frame._meta.index[:0])
    spec = {"ref": mv.ref, "kind": kind, "framework": mv.framework, "shas": dict(mv.artifacts),
            "extra": mv.extra, "inputs": inputs, "prediction": PREDICTION, "prediction_dtype": label_dtype,
            "proba_columns": proba_columns, "meta": meta, "save": _save_spec(save, overwrite, dask_client)}
    files = registry.read_artifacts(mv)  # checked against the registry's sha256 here, and on each worker
    files_future = _scatter_files(dask_client, files, mv.artifacts)
    return _scored(dask_client, frame, score_partition, (files_future,), spec, f"predict {mv.ref}")


def embed_on_cluster(dask_client, name: str, data: Any, *, namespace: dict | None = None,
                     column: str | None = None, save: str | None = None, overwrite: bool = False,
                     batch_size: int = 64, n_threads: int = 1) -> BatchJob:
    """Embed a text column of *data* on the workers with the built-in model (the one ``%aiaas
    deploy all-minilm-l6-v2`` serves), each worker loading it once, on its GPU when it has one."""
    import numpy as np
    import pandas as pd

    from .batch_remote import embed_partition

    if name != EMBEDDING_MODEL:
        raise ModelSpecError(f"on the cluster, embeddings come from the built-in {EMBEDDING_MODEL}, not {name!r}",
                             hint=f"%aiaas embed {EMBEDDING_MODEL} --input DDF --on-cluster; a remote endpoint "
                                  "is called from the kernel (without --on-cluster)")
    frame = _frame(data, namespace, n_threads, dask_client)
    column = _text_column(frame, column, f"{EMBEDDING_MODEL} reads")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= 4096:
        raise DataError(f"batch_size must be a whole number from 1 to 4096, got {batch_size!r}")
    meta = pd.DataFrame(np.zeros((0, EMBEDDING_DIM), dtype=np.float32),
                        columns=[f"emb_{i}" for i in range(EMBEDDING_DIM)], index=frame._meta.index[:0])
    spec = {"ref": EMBEDDING_MODEL, "kind": "embedding", "inputs": [column], "meta": meta,
            "batch_size": batch_size, "save": _save_spec(save, overwrite, dask_client)}
    return _scored(dask_client, frame, embed_partition, (), spec, f"embed {EMBEDDING_MODEL}")
