"""How to reach a served model over HTTP: :class:`Deployment` (what ``%aiaas deploy`` shows)
and :class:`Access` (URLs and headers, what ``aiaas_jupyter.endpoint(name)`` answers).

``aiaas_jupyter.endpoint(name)`` answers an :class:`Access` so that a ``requests`` (or httpx,
curl, JavaScript) user never reads ``$AIAAS_HOME/server/token`` or ``server.json`` by hand::

    ep = aiaas_jupyter.endpoint("sentiment")
    requests.post(ep.predict_url, json={"text": "great film"}, headers=ep.headers,
                  verify=ep.verify).json()["label"]

The secret is never stored in the object: ``headers`` reads the server's token file (own
deployments) or the endpoint's API-key environment variable (remote endpoints) each time it
is used, and the key of a remote endpoint only ever goes with that endpoint's own URLs. No
repr shows more than the first four characters. Standard library only.
"""

from __future__ import annotations

import dataclasses
import html
import urllib.parse
from typing import Any, Callable

from . import BUILTIN_MODELS


def token_hint(token: str | None) -> str:
    return f"{token[:4]}…" if token else ""


@dataclasses.dataclass(frozen=True)
class Deployment:
    """A model served by this home's model server. ``token`` is shown only as ``abcd…``."""

    name: str
    version: int | None
    ref: str
    framework: str
    url: str                    # the model's OIP v2 address
    server_url: str
    token: str = dataclasses.field(default="", repr=False)
    #: a canary beside it: ``{"version", "ref", "percent"}`` (None: all requests go to ``version``)
    canary: dict | None = None

    @property
    def infer_url(self) -> str:
        return f"{self.url}/infer"

    @property
    def predict_url(self) -> str:
        """The plain ``POST /predict/{name}`` (``{"text": ...}`` or records → label, predictions)."""
        return f"{self.server_url}/predict/{self.name}"

    def __repr__(self) -> str:
        version = f":{self.version}" if self.version is not None else ""
        split = f" + canary v{self.canary['version']} {self.canary['percent']:g}%" if self.canary else ""
        return (f"<Deployment {self.name}{version}{split} ({self.ref}, {self.framework}) at {self.url} "
                f"and POST {self.predict_url} token {token_hint(self.token)}>")

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [("model", f"{self.name}:{self.version}" if self.version is not None else self.name),
                ("ref", self.ref), ("framework", self.framework)]
        if self.canary:
            rows.append(("canary", f"{self.canary['ref']} (version {self.canary['version']}) takes "
                                   f"{self.canary['percent']:g}% of the requests; %aiaas deploy {self.name} "
                                   "--promote | --rollback"))
        rows += [("plain", f"POST {self.predict_url}"), ("endpoint", self.url), ("infer", f"POST {self.infer_url}")]
        if self.ref in BUILTIN_MODELS.values():
            rows.append(("embeddings", f"POST {self.server_url}/v1/embeddings (OpenAI, model={self.name})"))
        rows += [("token", f"{token_hint(self.token)} (Bearer)"),
                 ("from Python", f"aiaas_jupyter.endpoint({self.name!r}) → .predict_url, .headers")]
        cells = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>"
                        f"<code>{esc(str(v))}</code></td></tr>" for k, v in rows)
        return f"<div class='aiaas-table'><b>deployed {esc(self.name)}</b><table>{cells}</table></div>"



@dataclasses.dataclass(frozen=True)
class Access:
    """How to call one deployment or remote endpoint over HTTP.

    * ``url`` — the service's base URL (our model server's root; a remote endpoint's URL);
    * ``predict_url`` — where a plain ``POST`` of JSON gets predictions: our ``/predict/{name}``
      (``{"text": ...}`` or records → ``{"label", "predictions", "probabilities"}``), a rest
      endpoint's URL, a v2 endpoint's ``.../infer``; None for an openai endpoint;
    * ``infer_url`` — the Open Inference Protocol v2 ``/infer`` URL (None where there is none);
    * ``openai_url`` — the OpenAI-compatible base (``.../v1``) for the ``openai`` client, or None;
    * ``model`` — the model's name on that service (the ``model`` field of OpenAI requests);
    * ``headers`` — ``{"Authorization": "Bearer …"}`` (empty when the endpoint needs no key);
      ``api_key`` — the secret alone, for clients that take it so (``OpenAI(api_key=...)``);
    * ``verify`` — for ``requests``/httpx ``verify=``: our server's certificate file when it
      serves self-signed HTTPS, else True.
    """

    name: str
    kind: str                      # "deployment" (our model server) or "endpoint" (remote)
    protocol: str                  # "own" (v2 + plain + openai) or the endpoint's v2 / openai / rest
    url: str
    predict_url: str | None
    infer_url: str | None
    openai_url: str | None
    model: str
    verify: str | bool = True
    _secret: Callable[[], str | None] = dataclasses.field(default=lambda: None, repr=False, compare=False)

    @property
    def headers(self) -> dict[str, str]:
        """The auth header, its secret read now (a restarted server has a new token)."""
        secret = self._secret()
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    @property
    def api_key(self) -> str:
        """The bearer secret alone (for ``OpenAI(api_key=...)``), read now; "" when none is needed."""
        return self._secret() or ""

    def _shown_auth(self) -> str:
        try:
            secret = self._secret()
        except Exception as exc:  # noqa: BLE001 - a display must not fail (e.g. key variable unset)
            return f"unavailable: {str(exc).splitlines()[0]}"
        return f"Bearer {token_hint(secret)}" if secret else "none"

    def example(self) -> str:
        """A ``requests`` call that works as written in this kernel."""
        call = f"ep = aiaas_jupyter.endpoint({self.name!r})\n"
        if self.predict_url is None:
            return (call + "from openai import OpenAI\n"
                    "OpenAI(base_url=ep.openai_url, api_key=ep.api_key)")
        body = '{"text": "..."}' if self.kind == "deployment" else "..."
        verify = ", verify=ep.verify" if self.verify is not True else ""
        return call + f"requests.post(ep.predict_url, json={body}, headers=ep.headers{verify}).json()"

    def __repr__(self) -> str:
        where = self.predict_url or self.openai_url or self.url
        return f"<Access {self.name} ({self.kind}, {self.protocol}) POST {where} auth {self._shown_auth()}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [("kind", f"{self.kind} ({self.protocol})"), ("url", self.url),
                ("predict_url", self.predict_url), ("infer_url", self.infer_url),
                ("openai_url", self.openai_url), ("model", self.model),
                ("headers", f"Authorization: {self._shown_auth()}"),
                ("verify", self.verify)]
        cells = "".join(f"<tr><th style='text-align:left'>.{esc(k)}</th><td style='text-align:left'>"
                        f"<code>{esc(str(v))}</code></td></tr>" for k, v in rows if v is not None)
        return (f"<div class='aiaas-table'><b>{esc(self.name)}</b><table>{cells}</table>"
                f"<pre>{esc(self.example())}</pre></div>")


def own(name: str, server_url: str, token: Callable[[], str], verify: str | bool = True,
        embedding: bool = False) -> Access:
    """A deployment on this home's model server."""
    base = server_url.rstrip("/")
    quoted = urllib.parse.quote(name, safe="")
    return Access(name=name, kind="deployment", protocol="own", url=base,
                  predict_url=f"{base}/predict/{quoted}", infer_url=f"{base}/v2/models/{quoted}/infer",
                  openai_url=f"{base}/v1" if embedding else None, model=name, verify=verify, _secret=token)


def remote(ep: Any, key: Callable[[], str | None]) -> Access:
    """A remote endpoint (a registry :class:`~aiaas_jupyter.registry.Endpoint`)."""
    base = ep.url.rstrip("/")
    model = ep.remote_model
    infer = f"{base}/v2/models/{urllib.parse.quote(model, safe='')}/infer" if ep.protocol == "v2" else None
    predict = {"v2": infer, "rest": ep.url, "openai": None}[ep.protocol]
    return Access(name=ep.name, kind="endpoint", protocol=ep.protocol, url=ep.url, predict_url=predict,
                  infer_url=infer, openai_url=base if ep.protocol == "openai" else None, model=model,
                  _secret=key)
