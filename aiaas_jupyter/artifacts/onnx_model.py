"""A trained torch model with scikit-learn's surface, run by onnxruntime (no user code, no torch).

``load_model(ref)`` returns an :class:`OnnxModel` for a torch model, so code written for a
scikit-learn classifier works unchanged: ``predict`` gives labels of the training classes,
``predict_proba`` rows of probabilities of shape ``(n, n_classes)`` in the order of
``classes_`` (``[1 - p, p]`` for a one-output binary net), regressors give ``(n,)``.

What a network's last layer emits — logits, probabilities or log-probabilities — cannot be
read off its numbers, so it is decided from facts recorded at training: the trainer writes
``outputs_are`` into the artifact's JSON, chosen from the loss it trained with
(:data:`LOSS_OUTPUTS`: CrossEntropyLoss / BCEWithLogitsLoss → logits, BCELoss → probabilities,
NLLLoss → log-probabilities), or, for a loss it does not know (a custom function), from the
network's last layer (:data:`LAYER_OUTPUTS`). Versions registered before that field existed
are read the same way from their recorded ``loss``; failing that from the last operator of the
ONNX graph; failing that the outputs count as logits (softmax / sigmoid).

A graph is data too: :func:`check_onnx` refuses tensors stored as *external data* (a path
onnxruntime would read from the loading machine — ``/etc/passwd``, another user's file)
before a session is created, and turns a file onnxruntime cannot parse into one
:class:`~aiaas_jupyter.errors.RegistryError` line instead of a runtime traceback.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, RegistryError, UnsafeArtifactError

#: The loss a classifier trained with → what its outputs are.
LOSS_OUTPUTS = {"CrossEntropyLoss": "logits", "BCEWithLogitsLoss": "logits",
                "BCELoss": "probabilities", "NLLLoss": "log_probabilities"}
#: A last layer (torch module class = ONNX operator) → what the outputs are, for other losses.
LAYER_OUTPUTS = {"Softmax": "probabilities", "Sigmoid": "probabilities", "LogSoftmax": "log_probabilities"}


def outputs_are(loss: str | None, last_layer: str | None) -> str:
    """``"logits"``, ``"probabilities"`` or ``"log_probabilities"``: the loss decides, then the
    last layer, else logits."""
    return LOSS_OUTPUTS.get(loss or "") or LAYER_OUTPUTS.get(last_layer or "") or "logits"


def _last_onnx_op(onnx_bytes: bytes) -> str | None:
    """The operator producing the graph's first output (fallback for old, custom-loss versions)."""
    try:
        import onnx

        graph = onnx.load_model_from_string(onnx_bytes).graph
    except Exception:  # no onnx package or an unreadable graph: no structural fact to use
        return None
    out = graph.output[0].name if graph.output else None
    ops = [n.op_type for n in graph.node if out in n.output]
    return ops[-1] if ops else None


def _tensors(graph):
    """Every tensor a graph carries: initializers, sparse initializers, node attributes,
    recursively through subgraphs (If/Loop/Scan bodies)."""
    for t in graph.initializer:
        yield t
    for st in graph.sparse_initializer:
        yield st.values
        yield st.indices
    for node in graph.node:
        yield from _attribute_tensors(node.attribute)


def _attribute_tensors(attributes):
    for a in attributes:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        if a.HasField("sparse_tensor"):
            yield a.sparse_tensor.values
            yield a.sparse_tensor.indices
        for st in a.sparse_tensors:
            yield st.values
            yield st.indices
        if a.HasField("g"):
            yield from _tensors(a.g)
        for g in a.graphs:
            yield from _tensors(g)


def check_onnx(onnx_bytes: bytes) -> None:
    """Refuse a graph that is unreadable or keeps any tensor outside the file."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(onnx_bytes)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise RegistryError(f"not a readable ONNX model: {' '.join(str(e).split())[:200]}") from None
    functions = (n.attribute for f in model.functions for n in f.node)
    for t in (*_tensors(model.graph), *(t for attrs in functions for t in _attribute_tensors(attrs))):
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            where = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise UnsafeArtifactError(
                f"refusing to load an ONNX model whose tensor {t.name or '?'!r} reads external data from {where!r}",
                hint="registered ONNX graphs must carry their weights inside the file")


def _session(onnx_bytes: bytes):
    """An onnxruntime session over a checked graph; a graph it rejects is one RegistryError."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    check_onnx(onnx_bytes)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # its own refusals come back as the exception below, not as log noise
    rejected = tuple(getattr(ort_errors, n) for n in (
        "Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NotImplemented",
        "RuntimeException", "NoModel") if hasattr(ort_errors, n))
    try:
        return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=ort.get_available_providers())
    except rejected as e:
        raise RegistryError(f"onnxruntime cannot load this model: {' '.join(str(e).split())[:300]}") from None


def to_proba(raw: np.ndarray, kind: str, n_classes: int | None) -> np.ndarray:
    """Network outputs → probabilities ``(n, n_classes)``, each row summing to 1.

    One output per row is the positive class (``classes_[1]``): ``[1 - p, p]``. With more
    outputs than training classes (labels absent from the training data) the extra outputs
    were never a target and are dropped before normalising.
    """
    z = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    if z.shape[1] == 1:
        z = z[:, 0]
        if kind == "logits":
            p = np.exp(-np.logaddexp(0.0, -z))  # sigmoid without overflow
        elif kind == "log_probabilities":
            p = np.exp(z)
        else:
            p = z
        p = np.clip(p, 0.0, 1.0)
        return np.column_stack([1.0 - p, p])
    if n_classes and n_classes < z.shape[1]:
        z = z[:, :n_classes]
    if kind in ("logits", "log_probabilities"):  # softmax; exp(log p) renormalised is the same
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p = np.clip(z, 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    return np.divide(p, s, out=np.full_like(p, 1.0 / p.shape[1]), where=s > 0)


class OnnxModel:
    """A trained torch model as an onnxruntime session, with scikit-learn's surface.

    ``predict(X)`` labels (classifiers) or values ``(n,)`` (regressors); ``predict_proba(X)``
    probabilities ``(n, n_classes)`` (classifiers only, like scikit-learn's); ``model(X)`` the
    network's raw outputs (e.g. logits). ``classes_``, ``n_features_in_`` and
    ``feature_names_in_`` as scikit-learn sets them. ``X`` is a DataFrame (columns picked by
    name: any order, extra columns ignored), an array ``(n, n_features)`` or one row.
    """

    def __init__(self, onnx_bytes: bytes, meta: dict | None = None):
        self.meta = dict(meta or {})
        self.session = _session(onnx_bytes)
        self.input_name = self.session.get_inputs()[0].name
        self.classes = self.meta.get("classes")
        self.task = self.meta.get("task", "classification" if self.classes else "regression")
        self.feature_names = self.meta.get("feature_names")
        width = self.session.get_inputs()[0].shape[-1]
        self.n_features_in_ = self.meta.get("input_dim") or (width if isinstance(width, int) else None)
        if self.feature_names:
            self.feature_names_in_ = np.asarray(self.feature_names, dtype=object)
        if self.task == "classification":
            self.outputs_are = self.meta.get("outputs_are") or outputs_are(
                self.meta.get("loss"), None if self.meta.get("loss") in LOSS_OUTPUTS else _last_onnx_op(onnx_bytes))
            n_out = int(self.meta.get("output_dim") or 2)
            classes = self.classes if self.classes else list(range(max(n_out, 2)))
            self.classes_ = np.asarray(classes, dtype=object if len({type(c) for c in classes}) > 1 else None)

    def __repr__(self) -> str:
        return f"OnnxModel({self.meta.get('module_class', '?')}, task={self.task})"

    def _as_input(self, X) -> np.ndarray:
        import pandas as pd

        names = self.feature_names
        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            if names and any(isinstance(c, str) for c in X.columns):  # by name, like a ColumnTransformer
                missing = [f for f in names if f not in cols]
                if missing:
                    raise DataError(f"the frame lacks the model's feature column(s) {missing}; it takes {names}",
                                    hint="pass a frame with these columns (any order; extra columns are ignored)")
                X = X.set_axis(cols, axis=1)[names]
        elif isinstance(X, pd.Series) and names and set(names) <= set(map(str, X.index)):
            X = X.set_axis([str(i) for i in X.index])[names]
        try:
            arr = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise DataError(f"torch models take numeric features: {e}",
                            hint="encode text/categories the way the training data were encoded") from None
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or (self.n_features_in_ and arr.shape[1] != self.n_features_in_):
            raise DataError(f"expected rows of {self.n_features_in_ or 'F'} features, got shape {list(arr.shape)}")
        return np.ascontiguousarray(arr)

    def __call__(self, X) -> np.ndarray:
        """The network's raw outputs (logits, probabilities, ... as its last layer emits them)."""
        return self.session.run(None, {self.input_name: self._as_input(X)})[0]

    @property
    def predict_proba(self):
        """``predict_proba(X)`` → probabilities ``(n, n_classes)``; only classifiers have it
        (``hasattr`` is False for a regressor, as in scikit-learn)."""
        if self.task != "classification":
            raise AttributeError("this torch model is a regressor: it has predict, not predict_proba")
        return self._predict_proba

    def _predict_proba(self, X) -> np.ndarray:
        return to_proba(self(X), self.outputs_are, len(self.classes_))

    def predict(self, X) -> np.ndarray:
        out = self(X)
        if self.task != "classification":
            return out.reshape(len(out)) if out.ndim == 2 and out.shape[1] == 1 else out
        return self.classes_[to_proba(out, self.outputs_are, len(self.classes_)).argmax(axis=1)]

