"""Clients for our own model server and for remote endpoints (v2, OpenAI, REST).

Synchronous on purpose: they run on the notebook's thread, where a blocking call that
returns a value is what a cell wants. Timeouts, retries and the one-line errors are the
same for all of them (:mod:`.transport`); a key or token only ever travels in a header
and no repr here shows one. The v2 tensors are built with the server's own codec
(:mod:`aiaas_jupyter.serving.oip`, the one wire-format module both sides share), so what the client sends is by construction what the server parses.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Iterator

import httpx
import numpy as np

from ..errors import DataError, EndpointError
from .transport import Http, _json, bearer, safe_url

#: seconds a deploy may take: the server loads (and warms up) the model before it answers
DEPLOY_TIMEOUT = 300.0

__all__ = ["Http", "V2Client", "OpenAIClient", "RestClient", "OwnServer", "bearer", "safe_url"]


# ---- Open Inference Protocol v2 ----------------------------------------------------------

def v2_tensor(name: str, values: Any) -> dict:
    """One OIP input: name, shape, datatype and the data flattened in row-major order."""
    from ..serving import oip

    array = np.asarray(values)
    if array.dtype.kind in "mM":  # datetimes travel as ISO strings
        array = array.astype(str)
    try:
        return oip.encode_tensor(str(name), array)
    except oip.CodecError as exc:
        raise DataError(f"cannot send input {name!r} over the v2 protocol: {exc}",
                        "convert it to numbers, booleans or strings first") from None


def v2_inputs(inputs: Any) -> list[dict]:
    """numpy array → one input ``input-0``; DataFrame → one input [N] per column (named
    after it, so the server can order them by the model's feature names); list of str →
    one BYTES input [N]; dict name → array → one input each."""
    if hasattr(inputs, "columns") and hasattr(inputs, "to_numpy"):  # a pandas DataFrame
        return [v2_tensor(col, _column_values(inputs[col])) for col in inputs.columns]
    if isinstance(inputs, dict):
        return [v2_tensor(name, values) for name, values in inputs.items()]
    if isinstance(inputs, str):
        inputs = [inputs]
    return [v2_tensor("input-0", inputs)]


def _column_values(series) -> np.ndarray:
    if series.dtype.kind in "biuf":
        return series.to_numpy()
    if series.isna().any():  # NaN is refused for numbers (JSON); a text gap is no better as "nan"
        raise DataError(f"column {series.name!r} has missing values", "fill or drop them first (e.g. df.dropna())")
    return np.array([str(v) for v in series.tolist()], dtype=object)


def v2_decode(output: dict) -> np.ndarray:
    """One OIP output back to a numpy array of its shape and datatype."""
    from ..serving import oip

    datatype, shape = output.get("datatype"), output.get("shape")
    dtype = oip.DATATYPES.get(datatype)
    if dtype is None:
        raise EndpointError(f"the server answered with an unknown datatype {datatype!r}")
    array = np.array(output.get("data", []), dtype=dtype)
    return array.reshape(shape) if shape is not None else array


class V2Client:
    """A model behind an OIP v2 server: ``infer(inputs)`` → ``{output name: ndarray}``."""

    def __init__(self, url: str, model: str, headers: dict[str, str] | None = None, *,
                 version: int | str | None = None, http: Http | None = None, **http_options):
        self.url, self.model, self.version = url.rstrip("/"), model, version
        self.http = http or Http(headers, **http_options)

    def __repr__(self) -> str:
        return f"<V2Client {safe_url(self.url)} model={self.model!r}>"

    def model_url(self, version: int | str | None = None) -> str:
        version = self.version if version is None else version
        path = f"{self.url}/v2/models/{urllib.parse.quote(self.model, safe='')}"
        return f"{path}/versions/{version}" if version is not None else path

    def infer(self, inputs: Any, *, outputs: list[str] | None = None,
              version: int | str | None = None, parameters: dict | None = None) -> dict[str, np.ndarray]:
        body: dict[str, Any] = {"inputs": v2_inputs(inputs)}
        if outputs:
            body["outputs"] = [{"name": o} for o in outputs]
        if hasattr(inputs, "columns") and len(body["inputs"]) > 1:
            # one tensor per column: say it is a table (MLServer's "pd" codec rebuilds the frame)
            parameters = {"content_type": "pd", **(parameters or {})}
        if parameters:
            body["parameters"] = parameters
        answer = self.http.post_json(f"{self.model_url(version)}/infer", body)
        if not isinstance(answer, dict) or not isinstance(answer.get("outputs"), list):
            raise EndpointError(f"POST {safe_url(self.model_url(version))}/infer → 200: no 'outputs' in the answer")
        return {o.get("name", f"output-{i}"): v2_decode(o) for i, o in enumerate(answer["outputs"])}

    def metadata(self) -> dict:
        return self.http.get_json(self.model_url())

    def ready(self, timeout: float = 2.0) -> bool:
        try:
            self.http.request("GET", f"{self.model_url()}/ready", timeout=timeout, tries=1)
            return True
        except EndpointError:
            return False


# ---- OpenAI-compatible and plain REST ------------------------------------------------------

class OpenAIClient:
    """An OpenAI-compatible API rooted at ``url`` (e.g. ``https://api.openai.com/v1``)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, *, http: Http | None = None,
                 **http_options):
        self.url, self.model = url.rstrip("/"), model
        self.http = http or Http(bearer(api_key), **http_options)

    def __repr__(self) -> str:  # the key is deliberately absent
        return f"<OpenAIClient {safe_url(self.url)} model={self.model!r}>"

    def chat(self, prompt: str, *, system: str | None = None, **params) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + \
                   [{"role": "user", "content": prompt}]
        answer = self.http.post_json(f"{self.url}/chat/completions",
                                     {"model": self.model, "messages": messages, **params})
        try:
            return answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"POST {safe_url(self.url)}/chat/completions → 200: "
                                "no choices[0].message.content in the answer") from None

    def chat_stream(self, prompt: str, *, system: str | None = None, **params) -> Iterator[str]:
        """The answer's pieces as the endpoint streams them (``stream: true``, server-sent events).

        An error before the first piece is the same one line as :meth:`chat`'s; one in the
        middle — an ``error`` event, a broken connection, a stalled stream (the timeout applies
        to each read) — is one line saying how much had arrived."""
        messages = ([{"role": "system", "content": system}] if system else []) + \
                   [{"role": "user", "content": prompt}]
        where = f"POST {safe_url(self.url)}/chat/completions"
        received = 0
        with self.http.opened("POST", f"{self.url}/chat/completions", stream=True,
                              json={"model": self.model, "messages": messages, **params, "stream": True}) as response:
            try:
                for data in sse_data(response.iter_lines()):
                    if data == "[DONE]":
                        return
                    piece = _delta(data, where, received)
                    if piece:
                        received += len(piece)
                        yield piece
            except httpx.TimeoutException:
                raise EndpointError(f"{where} → the stream stalled after {received} characters "
                                    f"(no data within {self.http.timeout or 0:g} s)") from None
            except httpx.HTTPError as exc:
                raise EndpointError(f"{where} → the stream broke after {received} characters: "
                                    f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'connection closed'}") from None

    def embed(self, texts: str | list[str]) -> np.ndarray:
        """One text → a vector [D]; a list → a matrix [N, D] in the order given."""
        single = isinstance(texts, str)
        batch = [texts] if single else [str(t) for t in texts]
        answer = self.http.post_json(f"{self.url}/embeddings", {"model": self.model, "input": batch})
        try:
            rows = sorted(answer["data"], key=lambda d: d.get("index", 0))
            matrix = np.array([r["embedding"] for r in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            raise EndpointError(f"POST {safe_url(self.url)}/embeddings → 200: no data[].embedding in the answer") from None
        if len(matrix) != len(batch):
            raise EndpointError(f"POST {safe_url(self.url)}/embeddings → 200: "
                                f"{len(matrix)} embeddings for {len(batch)} inputs")
        return matrix[0] if single else matrix

    def models(self, timeout: float | None = None) -> list[str]:
        answer = self.http.get_json(f"{self.url}/models", timeout=timeout)
        return [m.get("id") for m in (answer or {}).get("data", []) if isinstance(m, dict)]


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined; comments and other
    fields skipped), as the SSE specification reads a stream."""
    buffer: list[str] = []
    for line in lines:
        if not line:  # a blank line ends an event
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)


def _delta(data: str, where: str, received: int) -> str:
    """The text of one chat-completion chunk; an ``error`` event as one line."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise EndpointError(f"{where} → the stream sent something that is not JSON after {received} "
                            f"characters: {data[:80]!r}") from None
    if isinstance(chunk, dict) and chunk.get("error"):
        err = chunk["error"]
        message = err.get("message", err) if isinstance(err, dict) else err
        raise EndpointError(f"{where} → the stream failed after {received} characters: "
                            f"{' '.join(str(message).split())[:300]}")
    try:
        return chunk["choices"][0].get("delta", {}).get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""  # role-only or usage chunks carry no text


class RestClient:
    """Any JSON-over-HTTP model: POST a JSON body to ``url``, get JSON back."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, *, http: Http | None = None,
                 **http_options):
        self.url = url
        self.http = http or Http(headers, **http_options)

    def __repr__(self) -> str:
        return f"<RestClient {safe_url(self.url)}>"

    def post(self, payload: Any) -> Any:
        return self.http.post_json(self.url, payload)

    __call__ = post


# ---- our own model server -----------------------------------------------------------------

class OwnServer:
    """This registry home's model server (see :mod:`aiaas_jupyter.serving.state`): admin calls, v2, plain, /v1."""

    def __init__(self, info, token: str, *, http: Http | None = None, **http_options):
        self.info, self.url, self.token = info, info.url.rstrip("/"), token
        if getattr(info, "tls", False) and "verify" not in http_options:  # its self-signed cert
            http_options["verify"] = getattr(info, "verify", True)
        self.http = http or Http(bearer(token), **http_options)

    def __repr__(self) -> str:  # no token
        return f"<OwnServer {self.url}>"

    def deploy(self, name: str, ref: str, timeout: float | None = DEPLOY_TIMEOUT, canary: float | None = None) -> dict:
        """Loading a model (torch, sentence-transformers) can take far longer than a call.
        *canary*: load *ref* beside the deployed *name* and send it that percent of the requests."""
        body = {"name": name, "ref": ref, **({"canary": canary} if canary is not None else {})}
        return self.http.post_json(f"{self.url}/admin/deployments", body, timeout=timeout)

    def end_canary(self, name: str, promote: bool) -> dict:
        """Promote *name*'s canary to primary, or roll it back."""
        action = "promote" if promote else "rollback"
        return self.http.post_json(f"{self.url}/admin/deployments/{urllib.parse.quote(name, safe='')}/{action}", {})

    def undeploy(self, name: str) -> dict:
        return _json(self.http.request("DELETE", f"{self.url}/admin/deployments/{urllib.parse.quote(name, safe='')}"))

    def deployments(self, timeout: float | None = None) -> list[dict]:
        return self.http.get_json(f"{self.url}/admin/deployments", timeout=timeout).get("deployments", [])

    def v2(self, name: str, version: int | str | None = None) -> V2Client:
        return V2Client(self.url, name, version=version, http=self.http)

    def infer(self, name: str, inputs: Any, version: int | str | None = None,
              outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        return self.v2(name).infer(inputs, outputs=outputs, version=version)

    def predict_plain(self, name: str, records_or_text: Any) -> list:
        """``POST /predict/{name}``: a str or list of str as ``{"text": ...}``, records as a list."""
        data = records_or_text
        if hasattr(data, "to_dict") and hasattr(data, "columns"):
            data = data.to_dict(orient="records")
        if isinstance(data, str) or (isinstance(data, list) and data and all(isinstance(t, str) for t in data)):
            data = {"text": data}
        answer = self.http.post_json(f"{self.url}/predict/{urllib.parse.quote(name, safe='')}", data)
        return answer.get("predictions") if isinstance(answer, dict) else answer

    def openai(self, model: str) -> OpenAIClient:
        return OpenAIClient(f"{self.url}/v1", model, http=self.http)

    def metrics_text(self, timeout: float | None = None) -> str:
        """``GET /metrics``: the Prometheus exposition (:mod:`.traffic` reads it)."""
        return self.http.request("GET", f"{self.url}/metrics", timeout=timeout, tries=1).text

    def ready(self, name: str | None = None, timeout: float = 2.0) -> bool:
        """The server (no name) or one deployed model answers ready."""
        if name is not None:
            return self.v2(name).ready(timeout)
        try:
            self.http.request("GET", f"{self.url}/v2/health/ready", timeout=timeout, tries=1)
            return True
        except EndpointError:
            return False
