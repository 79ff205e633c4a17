"""The serving service: deploy registered models, call them and remote endpoints.

:class:`ServingService` is held by the façade (:class:`~aiaas_jupyter.client.AiaasClient`), so
magics, widgets, the sidebar and plain Python share one behaviour. Deployments live on this registry home's own
model server (:mod:`.serving.state` starts it on the first deploy; it outlives the kernel);
remote endpoints live in the registry's ``endpoints`` table.

Which thing a NAME means (predict / embed): a model deployed on our own server under that
name wins; a remote endpoint is used when no deployment has that name, or when the caller
says so explicitly (``endpoint=True``, ``--endpoint`` in the magics). So deploying a model
never silently redirects calls to a remote service, and a same-named endpoint is still
reachable on request. ``ask`` (chat) only exists on remote ``openai`` endpoints.

API keys are read from the endpoint's environment variable at call time, never stored or
shown; the server token is shown only as its first four characters.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Any

from .display import Answer, Table
from .errors import DataError, EndpointAuthError, EndpointError, EndpointNotFoundError, ModelNotFoundError
from .registry import Endpoint, parse_ref, validate_name
from .serving_client import BUILTIN_MODELS, payloads
from .serving_client.access import Deployment, token_hint  # noqa: F401  (part of this module's API)
from .serving_client.traffic import TrafficWatch
from .serving_health import HEALTH_TIMEOUT, HealthReport, remote_health

if TYPE_CHECKING:
    from .serving_client.access import Access

BUILTIN_PREFIX = "builtin:"


class ServingService:
    """Deploy / undeploy / endpoints / predict / ask / embed over one registry home; the
    façade (:class:`~aiaas_jupyter.client.AiaasClient`) holds one and delegates to it."""

    def __init__(self, registry, timeout: float = 30.0):
        self.registry = registry
        #: seconds each serving call may take (per call: ``timeout=``)
        self.timeout = timeout
        self._traffic = TrafficWatch()  # the previous look at the server's /metrics (req/s, p99 windows)

    # -- our own server ---------------------------------------------------------------
    def _own_server(self, start: bool = False, **server_options):
        """The running server of this home as an :class:`OwnServer` (None if not running)."""
        from .serving import state
        from .serving_client.clients import OwnServer

        home = self.registry.home
        info = state.ensure_server(home, **server_options) if start else state.find_server(home)
        if info is None:
            return None
        return OwnServer(info, state.read_token(home), timeout=self.timeout)

    def _deployments(self, server) -> dict[str, dict]:
        return {d["name"]: d for d in server.deployments()} if server is not None else {}

    def deploy(self, ref: str, *, canary: float | None = None, promote: bool = False, rollback: bool = False,
               **server_options) -> Deployment:
        """Serve ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` — or a built-in model such as
        ``all-minilm-l6-v2`` (also ``builtin:all-minilm-l6-v2``) — under the model's name,
        starting the model server if needed (a running one loads it, no restart).
        Re-deploying a name swaps the version atomically on the server (and ends a canary). A
        registered model named like a built-in one wins; its ``builtin:`` ref still reaches the built-in.

        Traffic split: ``canary=10`` loads *ref* (e.g. ``NAME@candidate``) beside the deployed
        version of NAME and sends it 10% of NAME's requests; ``deploy(NAME, promote=True)`` makes
        the canary the deployed version, ``rollback=True`` drops it. Requests in flight finish on
        the version they started on."""
        if sum((canary is not None, promote, rollback)) > 1:
            raise DataError("choose one of canary=, promote=True and rollback=True")
        if promote or rollback:
            return self._end_canary(str(ref).strip(), promote)
        ref = self._builtin_ref(str(ref).strip())
        if ref.startswith(BUILTIN_PREFIX):
            name = ref[len(BUILTIN_PREFIX):]
        else:
            name = parse_ref(ref)[0]
            try:
                self.registry.get(ref)  # unknown model/version/alias: fail here, before starting a server
            except ModelNotFoundError as exc:
                close = difflib.get_close_matches(name, list(BUILTIN_MODELS), n=1)
                if close and not self._registered(name):
                    raise ModelNotFoundError(exc.message, f"a built-in model is called {close[0]}: "
                                                          f"%aiaas deploy {close[0]}") from None
                raise
        if canary is not None:
            server = self._own_server()
            if server is None or name not in self._deployments(server):
                raise EndpointNotFoundError(f"no deployment named {name!r} to split traffic with",
                                            f"deploy the current version first: %aiaas deploy {name}")
            return self._deployment(server, name, ref, server.deploy(name, ref, canary=canary))
        server = self._own_server(start=True, **server_options)
        return self._deployment(server, name, ref, server.deploy(name, ref))

    def _end_canary(self, name: str, promote: bool) -> Deployment:
        validate_name(name)
        server = self._own_server()
        deployed = self._deployments(server)
        if name not in deployed:
            raise EndpointNotFoundError(f"no deployment named {name!r}", "see %aiaas endpoints")
        if not deployed[name].get("canary"):
            raise EndpointError(f"{name!r} has no canary to {'promote' if promote else 'roll back'}",
                                f"start one: %aiaas deploy {name}@candidate --canary 10")
        server.end_canary(name, promote)
        return self._deployment(server, name, name, self._deployments(server)[name])

    @staticmethod
    def _deployment(server, name: str, ref: str, answer: dict) -> Deployment:
        return Deployment(name=answer.get("name", name), version=answer.get("version"),
                          ref=answer.get("ref", ref), framework=answer.get("framework", ""),
                          url=answer.get("url") or f"{server.url}/v2/models/{name}",
                          server_url=server.url, token=_token_of(server), canary=answer.get("canary"))

    def _builtin_ref(self, ref: str) -> str:
        """``all-minilm-l6-v2`` → ``builtin:all-minilm-l6-v2`` unless a registered model has that
        name; an unknown ``builtin:`` ref is refused here, before any server starts."""
        if ref.startswith(BUILTIN_PREFIX):
            if ref not in BUILTIN_MODELS.values():
                raise ModelNotFoundError(f"unknown built-in model {ref!r}",
                                         f"built in: {', '.join(BUILTIN_MODELS)} (%aiaas deploy NAME)")
            return ref
        if ref in BUILTIN_MODELS and not self._registered(ref):
            return BUILTIN_MODELS[ref]
        return ref

    def _registered(self, name: str) -> bool:
        try:
            return bool(self.registry.versions(name))
        except ModelNotFoundError:
            return False

    def undeploy(self, name: str) -> None:
        validate_name(name)
        server = self._own_server()
        if server is None or name not in self._deployments(server):
            raise EndpointNotFoundError(f"no deployment named {name!r}", "see %aiaas endpoints")
        server.undeploy(name)

    def deployments(self) -> list[dict]:
        """What the own model server serves now (empty when it is not running)."""
        return list(self._deployments(self._own_server()).values())

    def stop_server(self) -> None:
        """Stop this home's model server (deployments are restored on its next start)."""
        from .serving import state

        state.stop_server(self.registry.home)

    # -- remote endpoints ---------------------------------------------------------------
    def add_endpoint(self, name: str, url: str, protocol: str, api_key_env: str | None = None,
                     model: str | None = None) -> Endpoint:
        """Record a remote endpoint. ``api_key_env`` names the environment variable holding
        its key (read at call time; the key itself is never stored)."""
        return self.registry.add_endpoint(name, url, protocol, api_key_env=api_key_env, model=model)

    def remove_endpoint(self, name: str) -> None:
        self.registry.remove_endpoint(name)

    def health_report(self, *, send_keys: bool = False) -> HealthReport:
        """Own deployments with their readiness and remote endpoints with a quick health check,
        all checked at once in one small thread pool: the one health check, for ``endpoints()``
        and the sidebar. *send_keys*: only the user's own kernel sends an endpoint's key (see
        :func:`.serving_health.remote_health`); by default no credential of any kind is sent."""
        from concurrent.futures import ThreadPoolExecutor

        server = self._own_server()
        deployed = list(self._deployments(server).values())
        remote = self.registry.list_endpoints()
        checks = [lambda n=d["name"]: "ready" if server.ready(n, HEALTH_TIMEOUT) else "not ready" for d in deployed]
        checks += [lambda ep=ep: remote_health(ep, _key if send_keys else None) for ep in remote]
        with ThreadPoolExecutor(max_workers=8) as pool:
            health = list(pool.map(lambda check: check(), checks))
        return HealthReport(server=server, deployments=list(zip(deployed, health[:len(deployed)])),
                            endpoints=list(zip(remote, health[len(deployed):])))

    def endpoints(self) -> Table:
        """Own deployments (with readiness) and remote endpoints (with a quick health check)."""
        # the user's own kernel, listing the user's endpoints: the key goes where it belongs
        report = self.health_report(send_keys=True)
        server = report.server
        traffic = self._traffic_now(server)
        rows = []
        for d, health in report.deployments:
            url = d.get("url") or f"{server.url}/v2/models/{d['name']}"
            canary = d.get("canary")
            kind = f"deployment {100 - canary['percent']:g}%" if canary else "deployment"
            rows.append((d["name"], kind, "v2", url,
                         f"{d.get('ref', '')} (v{d['version']})" if d.get("version") else d.get("ref", ""),
                         "server token", health, *_traffic_cells(traffic.get((d["name"], str(d.get("version", "")))))))
            if canary:  # its own row: the two versions' traffic side by side
                rows.append((d["name"], f"canary {canary['percent']:g}%", "v2", url,
                             f"{canary['ref']} (v{canary['version']})", "server token", health,
                             *_traffic_cells(traffic.get((d["name"], str(canary["version"]))))))
        rows += [(ep.name, "endpoint", ep.protocol, ep.url, ep.model or "",
                  f"{ep.api_key_env} ({'set' if ep.key_is_set() else 'not set'})" if ep.api_key_env else "",
                  health, "", "") for ep, health in report.endpoints]
        note = f"model server: {server.url} (token {_token_of(server, hint=True)})" if server else \
            "model server: not running (%aiaas deploy MODEL starts it)"
        if traffic:
            note += "; req/s and p99 since the last %aiaas endpoints (or since loaded), from its /metrics"
        return Table(["name", "kind", "protocol", "url", "model", "api key", "health", "req/s", "p99"], rows,
                     title="aiaas endpoints", note=note,
                     empty="no deployments or endpoints: %aiaas deploy MODEL, %aiaas endpoints add NAME ...")

    def _traffic_now(self, server) -> dict:
        """Each deployment's req/s and p99 from the server's /metrics; {} when it cannot say."""
        if server is None:
            return {}
        try:
            return self._traffic.look(server.metrics_text(timeout=HEALTH_TIMEOUT))
        except (EndpointError, ValueError):  # an older server without /metrics, one going away, a torn answer
            return {}

    # -- calling ----------------------------------------------------------------------
    def _resolve(self, name: str, endpoint: bool):
        """``("own", server)`` or ``("endpoint", Endpoint)`` per the rule in the module docstring."""
        validate_name(name)
        if endpoint:
            return "endpoint", self.registry.get_endpoint(name)
        server = self._own_server()
        deployed = self._deployments(server)
        if name in deployed:
            return "own", server
        ep = self.registry.find_endpoint(name)
        if ep is not None:
            return "endpoint", ep
        known = list(deployed) + [e.name for e in self.registry.list_endpoints()]
        close = difflib.get_close_matches(name, known, n=3)
        registered = any(m["name"] == name for m in self.registry.list_models())
        if name in BUILTIN_MODELS and not registered:
            hint = f"the built-in model is one line away: %aiaas deploy {name}  (Python: aiaas_jupyter.deploy({name!r}))"
        elif close:
            hint = f"did you mean {' or '.join(map(repr, close))}? see %aiaas endpoints"
        elif registered:
            hint = f"model {name!r} is registered but not deployed: %aiaas deploy {name}"
        else:
            hint = "%aiaas deploy MODEL, or %aiaas endpoints add NAME --url URL --protocol v2|openai|rest"
        where = "" if server is not None else " (the model server is not running)"
        raise EndpointNotFoundError(f"no deployment or endpoint named {name!r}{where}", hint)

    def endpoint(self, name: str, *, endpoint: bool = False) -> Access:
        """How to call ``name`` over HTTP from anything (``requests``, curl, another program):
        an :class:`~.serving_client.access.Access` with ``.predict_url``, ``.infer_url``, ``.headers``
        (``Authorization: Bearer …``, read when used), ``.verify``. ``name`` is resolved as for
        :meth:`predict`; a remote endpoint's headers carry its own API key (from its environment
        variable), never our server's token."""
        from .serving import state
        from .serving_client import access

        kind, target = self._resolve(name, endpoint)
        if kind == "own":
            home = self.registry.home
            ref = self._deployments(target).get(name, {}).get("ref", "")
            return access.own(name, target.url, lambda: state.read_token(home),
                              verify=getattr(target.info, "verify", True),
                              embedding=ref in BUILTIN_MODELS.values())
        return access.remote(target, lambda: _key(target))

    def predict(self, name: str, data: Any, *, endpoint: bool = False, version: int | None = None,
                outputs: list[str] | None = None, timeout: float | None = None):
        """Predictions of a deployed model (OIP v2) or of a remote v2/rest endpoint.

        ``data``: a DataFrame, numpy array, list of records, list of strings or one string.
        Returns the ``predict`` output as a numpy array (a dict of arrays when ``outputs``
        is given; whatever JSON the endpoint answers for ``rest``)."""
        from .serving_client.clients import RestClient, V2Client

        kind, target = self._resolve(name, endpoint)
        data = payloads.as_inputs(data)
        if kind == "own":
            data = payloads.only_features(data, target, name)
            result = target.infer(name, data, version=version, outputs=outputs)
        elif target.protocol == "v2":
            result = V2Client(target.url, target.remote_model, _auth(target), version=version,
                              timeout=timeout or self.timeout).infer(data, outputs=outputs)
        elif target.protocol == "rest":
            answer = RestClient(target.url, _auth(target), timeout=timeout or self.timeout).post(
                payloads.rest_payload(data))
            return answer["predictions"] if isinstance(answer, dict) and "predictions" in answer else answer
        else:
            raise EndpointError(f"endpoint {name!r} speaks openai, which has no predict",
                                f"use %%aiaas ask {name} (chat) or %aiaas embed {name}")
        if outputs:
            return result
        pred = result["predict"] if "predict" in result else next(iter(result.values()))
        # servers differ on [N] vs [N, 1] for one value per row (MLServer answers [N, 1])
        return pred.reshape(-1) if getattr(pred, "ndim", 0) == 2 and pred.shape[1] == 1 else pred

    def ask(self, name: str, prompt: str, *, timeout: float | None = None, stream: bool = False, **params):
        """Send ``prompt`` to an OpenAI-compatible endpoint's chat API; the answer as Markdown.
        ``stream=True``: an iterator of the answer's pieces as the endpoint streams them
        (server-sent events; ``"".join(...)`` is the answer); *timeout* then bounds each read."""
        from .serving_client.clients import OpenAIClient

        ep = self.registry.get_endpoint(validate_name(name, "endpoint"))
        if ep.protocol != "openai":
            raise EndpointError(f"endpoint {name!r} speaks {ep.protocol}; chat needs an openai endpoint",
                                f"use %aiaas predict {name}")
        if not str(prompt).strip():
            raise DataError("the prompt is empty", "write the question in the cell below %%aiaas ask NAME")
        client = OpenAIClient(ep.url, ep.remote_model, _key(ep), timeout=timeout or self.timeout)
        if stream:
            return client.chat_stream(str(prompt), **params)
        return Answer(client.chat(str(prompt), **params))

    def embed(self, name: str, texts: Any, *, endpoint: bool = False, timeout: float | None = None):
        """Embeddings ([D] for one text, [N, D] for several) from an own embedding deployment
        (its OpenAI ``/v1/embeddings``) or from a remote openai (or v2) endpoint."""
        from .serving_client.clients import OpenAIClient, V2Client

        texts = payloads.as_texts(texts)
        kind, target = self._resolve(name, endpoint)
        if kind == "own":
            return target.openai(name).embed(texts)
        timeout = timeout or self.timeout
        if target.protocol == "openai":
            return OpenAIClient(target.url, target.remote_model, _key(target), timeout=timeout).embed(texts)
        if target.protocol == "v2":
            import numpy as np

            out = V2Client(target.url, target.remote_model, _auth(target), timeout=timeout).infer(
                [texts] if isinstance(texts, str) else texts)
            vectors = np.asarray(out.get("embedding", next(iter(out.values()))), dtype=np.float32)
            return vectors[0] if isinstance(texts, str) else vectors
        raise EndpointError(f"endpoint {name!r} speaks rest, which has no embeddings",
                            f"use %aiaas predict {name}")


# -- helpers ---------------------------------------------------------------------------

def _token_of(server, hint: bool = False) -> str:
    return token_hint(server.token) if hint else server.token


def _key(ep: Endpoint) -> str | None:
    """The endpoint's API key from its environment variable, read now; never stored. A variable
    outside the API-key rule (:func:`~.registry.endpoints_table.allowed_key_env`) is never read:
    a row written straight into the database must not send, say, ``JUPYTER_TOKEN`` to its URL."""
    from .registry.endpoints_table import KEY_ENV_RULE, allowed_key_env

    if not ep.api_key_env:
        return None
    if not allowed_key_env(ep.api_key_env):
        raise EndpointAuthError(f"endpoint {ep.name!r} names {str(ep.api_key_env)[:80]!r} as its key variable, "
                                "which is not an API-key variable; its key is not sent",
                                f"re-add the endpoint with --api-key-env set to {KEY_ENV_RULE}")
    value = os.environ.get(ep.api_key_env)
    if not value:
        raise EndpointAuthError(
            f"endpoint {ep.name!r} needs an API key in the environment variable {ep.api_key_env}, which is not set",
            f"set it in the kernel, e.g. import os, getpass; os.environ[{ep.api_key_env!r}] = getpass.getpass()")
    return value


def _auth(ep: Endpoint) -> dict[str, str]:
    from .serving_client.clients import bearer

    return bearer(_key(ep))


def _traffic_cells(t) -> tuple[str, str]:
    """("12.5", "3.1 ms") for a deployment's traffic; blanks without requests in the window."""
    import math

    if t is None or math.isnan(t.per_s):
        return "", ""
    p99 = "" if math.isnan(t.p99_s) else f"{t.p99_s * 1000:.1f} ms"
    return f"{t.per_s:.1f}", p99
