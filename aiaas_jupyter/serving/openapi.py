"""The OpenAPI 3.0 document of the model server, written by hand.

Hand-written because the app has no schema layer to derive it from (on purpose: no
validation framework on the hot path). The schemas state the server's limits (rank, values,
texts per request), so schemathesis' conformance checks hold the document to the behaviour.

It is public at ``/openapi.json``, like the health probes, on purpose: it describes routes,
shapes and limits only — no token, no deployed model's name or details (those need the token:
``/v2/models/...``, ``/admin/deployments``) — so tools (schemathesis, Swagger UI, generated
clients) can read it before they hold a token. It tells a caller what the open health probes
already do: that this is an aiaas model server, and its version.
"""

from __future__ import annotations

from typing import Any

from ..signature import KINDS
from .embeddings import MAX_INPUTS
from .oip import MAX_ELEMENTS, MAX_NAME, MAX_RANK

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES"]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict, required: list[str] | None = None, **kw) -> dict:
    d = {"type": "object", "properties": props, **kw}
    if required:
        d["required"] = required
    return d


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict, *codes: int, body: dict | None = None, params: list | None = None,
        public: bool = False, tag: str = "") -> dict:
    responses = {"200": ok}
    for c in ((401, 403) if not public else ()) + codes + (500,):
        responses[str(c)] = {"$ref": f"#/components/responses/E{c}"}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "tags": [tag] if tag else []}
    if public:
        op["security"] = []
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "deployment name (the registry model name unless deployed under another)"}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "must equal the deployed version"}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": {"type": "string"}}, ["error"]),
    "Tensor": _obj({"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                    "shape": {"type": "array", "maxItems": MAX_RANK,
                              "items": {"type": "integer", "minimum": 0, "maximum": MAX_ELEMENTS},
                              "description": f"at most {MAX_RANK} dimensions and {MAX_ELEMENTS} values"},
                    "datatype": {"type": "string", "enum": DATATYPES},
                    "parameters": {"type": "object"},
                    "data": {"type": "array", "items": {},
                             "description": "row-major flattened values (nested lists accepted); BYTES as UTF-8 strings"}},
                   ["name", "shape", "datatype", "data"]),
    "InferenceRequest": _obj({"id": {"type": "string"}, "parameters": {"type": "object"},
                              "inputs": {"type": "array", "minItems": 1, "items": _ref("Tensor")},
                              "outputs": {"type": "array", "items": _obj({"name": {"type": "string",
                                          "enum": ["predict", "predict_proba", "embedding"]},
                                          "parameters": {"type": "object"}}, ["name"])}},
                             ["inputs"]),
    "InferenceResponse": _obj({"model_name": {"type": "string"}, "model_version": {"type": "string"},
                               "id": {"type": "string"}, "parameters": {"type": "object"},
                               "outputs": {"type": "array", "items": _ref("Tensor")}},
                              ["model_name", "outputs"]),
    "TensorMetadata": _obj({"name": {"type": "string"}, "datatype": {"type": "string", "enum": DATATYPES},
                            "shape": {"type": "array", "items": {"type": "integer"}}}, ["name", "datatype", "shape"]),
    "ModelMetadata": _obj({"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                           "platform": {"type": "string"},
                           "inputs": {"type": "array", "items": _ref("TensorMetadata")},
                           "outputs": {"type": "array", "items": _ref("TensorMetadata")},
                           "parameters": _obj({"signature": {
                               "oneOf": [_ref("Signature"), {"type": "null"}],
                               "description": "the input columns the version was trained on (null: registered "
                                              "before signatures); requests that contradict it get 400 naming the "
                                              "column"}})}, ["name", "platform", "inputs", "outputs"]),
    "Signature": _obj({"inputs": {"type": "array", "items": _obj({
                           "name": {"type": "string"}, "dtype": {"type": "string", "description": "pandas dtype"},
                           "kind": {"type": "string", "enum": list(KINDS)}}, ["name", "dtype", "kind"])},
                       "target": _obj({"name": {"type": "string"}, "dtype": {"type": "string"}}),
                       "classes": {"type": "array", "items": {}}}, ["inputs"]),
    "ServerMetadata": _obj({"name": {"type": "string"}, "version": {"type": "string"},
                            "extensions": {"type": "array", "items": {"type": "string"}}},
                           ["name", "version", "extensions"]),
    "Ready": _obj({"name": {"type": "string"}, "ready": {"type": "boolean"}}, ["ready"]),
    "Live": _obj({"live": {"type": "boolean"}}, ["live"]),
    "PlainRequest": {"anyOf": [
        _obj({"text": {"type": "string"}}, ["text"], additionalProperties=False,
             description="one text → a single answer (label, probabilities)"),
        _obj({"text": {"type": "array", "minItems": 1, "items": {"type": "string"}}}, ["text"],
             additionalProperties=False, description="texts → one prediction per text"),
        _obj({"record": {"type": "object"}}, ["record"], additionalProperties=False,
             description="one record (feature → value) → a single answer"),
        {"type": "array", "minItems": 1, "items": {"oneOf": [{"type": "object"}, {"type": "string"},
                                                            {"type": "array", "items": {"type": "number"}}]},
         "description": "records (feature → value), texts, or rows of numbers → one prediction each"},
        _obj({"records": {"type": "array", "minItems": 1}}, ["records"], additionalProperties=False),
        _obj({"instances": {"type": "array", "minItems": 1}}, ["instances"], additionalProperties=False,
             description="KServe v1 style"),
        {"type": "object", "description": "any other object: one record, its keys the model's features"}]},
    "Probabilities": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
                      "description": "class (as a string) → probability; the values sum to 1"},
    "PlainResponse": _obj({
        "label": {"description": "classification, one input: the predicted class"},
        "prediction": {"description": "regression, one input: the predicted value"},
        "embedding": {"type": "array", "items": {"type": "number"}, "description": "embedding model, one input"},
        "predictions": {"type": "array", "items": {}, "description": "one entry per input"},
        "probabilities": {"oneOf": [_ref("Probabilities"), {"type": "array", "items": _ref("Probabilities")}],
                          "description": "classifiers with probabilities: an object for one input, "
                                         "a list (one per input) for several"}},
        ["predictions"]),
    "DeployRequest": _obj({"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
                           "ref": {"type": "string", "description": "NAME, NAME:VERSION, NAME@ALIAS or "
                                                                    "builtin:all-minilm-l6-v2"}}, ["ref"]),
    "DeployResponse": _obj({"name": {"type": "string"}, "version": {"type": "integer"}, "ref": {"type": "string"},
                            "framework": {"type": "string"}, "url": {"type": "string", "description": "OIP v2 model URL"},
                            "predict_url": {"type": "string", "description": "plain POST /predict/{name} URL"}},
                           ["name", "version", "ref", "framework", "url", "predict_url"]),
    "Deployment": _obj({"name": {"type": "string"}, "ref": {"type": "string"}, "version": {"type": "integer"},
                        "framework": {"type": "string"}, "loaded_at": {"type": "string", "format": "date-time"},
                        "url": {"type": "string"}, "predict_url": {"type": "string"}},
                       ["name", "ref", "version", "framework", "loaded_at", "url", "predict_url"]),
    "Deployments": _obj({"deployments": {"type": "array", "items": _ref("Deployment")}}, ["deployments"]),
    "Undeployed": _obj({"name": {"type": "string"}, "undeployed": {"type": "boolean"}}, ["name", "undeployed"]),
    "Stats": _obj({"uptime_s": {"type": "number"}, "models": {"type": "object", "additionalProperties": _obj({
        "version": {"type": "integer"}, "batches": {"type": "integer"}, "requests": {"type": "integer"},
        "rows": {"type": "integer"}, "max_batch_requests": {"type": "integer"},
        "mean_batch_requests": {"type": "number"},
        "batch_sizes": {"type": "object", "additionalProperties": {"type": "integer"}}})}}, ["models"]),
    "OpenAIModels": _obj({"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": _obj(
        {"id": {"type": "string"}, "object": {"type": "string"}, "created": {"type": "integer"},
         "owned_by": {"type": "string"}}, ["id", "object"])}}, ["object", "data"]),
    "EmbeddingRequest": _obj({"input": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1,
                                                                      "maxItems": MAX_INPUTS,
                                                                      "items": {"type": "string"}}],
                                        "description": f"at most {MAX_INPUTS} texts and 300000 tokens"},
                              "model": {"type": "string"},
                              "encoding_format": {"type": "string", "enum": ["float", "base64"]}}, ["input"]),
    "EmbeddingResponse": _obj({
        "object": {"type": "string", "enum": ["list"]}, "model": {"type": "string"},
        "data": {"type": "array", "items": _obj({"object": {"type": "string", "enum": ["embedding"]},
                                                 "index": {"type": "integer"},
                                                 "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}},
                                                                         {"type": "string", "format": "byte"}]}},
                                                ["object", "index", "embedding"])},
        "usage": _obj({"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}})},
        ["object", "data", "model", "usage"]),
}

_ERROR_TEXT = {400: "bad request: malformed JSON (not UTF-8, nested over 64 levels, invalid Unicode), "
                    "tensor, shape, datatype or data length",
               401: "missing bearer token", 403: "wrong bearer token", 404: "unknown model, version or route",
               413: "request too large: body over the limit, or too many embedding texts or tokens", 422: "well formed, but the model cannot take it",
               503: "not ready yet (restoring deployments)", 504: "request timed out",
               500: "internal error (logged by the server)"}


def openapi_document(server_url: str = "") -> dict:
    """The document, with ``server_url`` as its server when known."""
    s = _ref
    model_paths = {}
    for prefix, params in (("/v2/models/{name}", [_NAME]), ("/v2/models/{name}/versions/{version}", [_NAME, _VERSION])):
        model_paths[prefix] = {"get": _op("model metadata", _json(s("ModelMetadata")), 404, params=params, tag="v2")}
        model_paths[prefix + "/ready"] = {"get": _op("model readiness", _json(s("Ready")), 404, params=params, tag="v2")}
        model_paths[prefix + "/infer"] = {"post": _op(
            "inference (Open Inference Protocol v2)", _json(s("InferenceResponse")), 400, 404, 413, 422, 504,
            body=s("InferenceRequest"), params=params, tag="v2")}
    paths = {
        "/v2/health/live": {"get": _op("liveness", _json(s("Live")), public=True, tag="health")},
        "/v2/health/ready": {"get": _op("readiness", _json(s("Ready")), 503, public=True, tag="health")},
        "/v2": {"get": _op("server metadata", _json(s("ServerMetadata")), tag="v2")},
        **model_paths,
        "/predict/{name}": {"post": _op("plain prediction: {\"text\": ...} or records → label, predictions, "
                                        "probabilities", _json(s("PlainResponse")),
                                        400, 404, 413, 422, 504, body=s("PlainRequest"), params=[_NAME], tag="plain")},
        "/v1/models": {"get": _op("deployed models (OpenAI-compatible)", _json(s("OpenAIModels")), tag="openai")},
        "/v1/embeddings": {"post": _op("text embeddings (OpenAI-compatible)", _json(s("EmbeddingResponse")),
                                       400, 404, 413, 422, 504, body=s("EmbeddingRequest"), tag="openai")},
        "/admin/deployments": {
            "get": _op("list deployments", _json(s("Deployments")), tag="admin"),
            "post": _op("deploy (or atomically redeploy) a registry model", _json(s("DeployResponse")),
                        400, 404, 413, 422, body=s("DeployRequest"), tag="admin")},
        "/admin/deployments/{name}": {"delete": _op("undeploy", _json(s("Undeployed")), 404, params=[_NAME],
                                                    tag="admin")},
        "/admin/stats": {"get": _op("batching statistics per deployment", _json(s("Stats")), tag="admin")},
        "/openapi.json": {"get": _op("this document", {"description": "OpenAPI 3.0 document",
                                                       "content": {"application/json": {"schema": {"type": "object"}}}},
                                     public=True, tag="meta")},
    }
    from .._version import __version__

    doc = {
        "openapi": "3.0.3",
        "info": {"title": "aiaas-jupyter model server", "version": __version__,
                 "description": "Deployed registry models: Open Inference Protocol v2, plain /predict, "
                                "OpenAI-compatible embeddings, admin. Errors are {\"error\": \"message\"}."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "token from HOME/server/token"}},
            "responses": {f"E{c}": _json(s("Error"), text) for c, text in _ERROR_TEXT.items()},
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
