"""The HTTP API (docs/serving.md): Open Inference Protocol v2, plain ``/predict``, OpenAI
embeddings, admin, health and ``/openapi.json`` — a bare Starlette app.

Starlette directly, with hand-written checks, keeps the hot path short: no validation
framework, one JSON parse, one dump. Every error is ``{"error": "message"}``: bad JSON or
tensors 400, a model that cannot take the input 422, unknown model 404, too large 413,
too slow 504. Anything unexpected is logged and answered with a generic 500, never a trace.
CPU work that grows with the request (parsing and decoding a large body, tokenising, encoding
a large answer) runs in worker threads, so one heavy request cannot stall the others.
Auth is a pure-ASGI middleware (bearer token, constant-time compare) in front of every route
but the health probes and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import embeddings, jsonio, oip, plain
from .admin_routes import AdminRoutes
from .deployments import Deployments, LoadedModel
from .input_errors import InputError, SignatureError
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ServerMetrics
from .responses import ApiError, json_response

log = logging.getLogger("aiaas_jupyter.serving")
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/openapi.json"})
#: bodies and answers larger than this are parsed / encoded in a worker thread
THREAD_BYTES = 64 << 10
THREAD_VALUES = 8192


async def off_loop(fn: Callable[[], Any], heavy: bool) -> Any:
    """``fn()`` in a worker thread when ``heavy``, inline otherwise (a hop costs ~0.1 ms)."""
    return await run_in_threadpool(fn) if heavy else fn()


async def encoded(obj: Callable[[], Any], heavy: bool) -> Response:
    """A 200 JSON answer built and encoded by ``obj()`` (off the loop when heavy)."""
    body = await off_loop(lambda: jsonio.encode(obj()), heavy)
    return Response(body, 200, media_type="application/json")


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return json_response({"error": message}, status, headers)


class AuthMiddleware:
    """401 without ``Authorization: Bearer``, 403 with a wrong token; health probes are open."""

    def __init__(self, app, token: str):
        self.app, self._token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        auth = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v
                break
        if auth is None or not auth[:7].lower() == b"bearer ":
            resp = _error(401, "missing bearer token (Authorization: Bearer <token>)",
                          {"WWW-Authenticate": "Bearer"})
        elif not hmac.compare_digest(auth[7:].strip(), self._token):
            resp = _error(403, "invalid token")
        else:
            return await self.app(scope, receive, send)
        await resp(scope, receive, send)


class Server:
    """Routes over one :class:`Deployments`; limits come from the server options."""

    def __init__(self, deployments: Deployments, *, max_body_bytes: int = 8 << 20,
                 timeout_s: float = 30.0, base_url: str = "", metrics: ServerMetrics | None = None):
        self.deployments = deployments
        self.metrics = metrics if metrics is not None else ServerMetrics(deployments.loaded)
        self.max_body_bytes, self.timeout_s = int(max_body_bytes), float(timeout_s)
        self.base_url = base_url
        self.ready = False
        self.started = time.time()

    # -- plumbing -----------------------------------------------------------------------
    def endpoint(self, fn: Callable[[Request], Awaitable[Response]]):
        """*fn* with the server's error mapping, time limit and metrics (per deployment once the
        handler has resolved one, :meth:`bind`; under model "" otherwise)."""
        route = fn.__name__.rstrip("_")
        answer = self._answer(fn)

        async def handler(request: Request) -> Response:
            t0 = time.perf_counter()
            response = await answer(request)
            dep = request.scope.get("aiaas.deployment")
            if dep is None:
                self.metrics.answered("", "", route, response.status_code, t0, counted=False)
            else:
                self.metrics.answered(dep.name, str(dep.version), route, response.status_code, t0)
            return response
        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    def _answer(self, fn: Callable[[Request], Awaitable[Response]]):
        timeout = getattr(asyncio, "timeout", None)  # Python ≥ 3.11: no extra task per request

        async def handler(request: Request) -> Response:
            try:
                if timeout is not None:
                    async with timeout(self.timeout_s):
                        return await fn(request)
                return await asyncio.wait_for(fn(request), self.timeout_s)
            except ApiError as e:
                return _error(e.status, e.message)
            except (oip.CodecError, jsonio.BodyError) as e:
                return _error(400, str(e))
            except embeddings.RequestError as e:
                return _error(e.status, e.message)
            except SignatureError as e:  # before InputError, its base
                return _error(400, str(e))
            except InputError as e:
                return _error(422, str(e))
            except (TimeoutError, asyncio.TimeoutError):
                return _error(504, f"the request took longer than {self.timeout_s:g} s")
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return _error(500, "internal server error (logged in the server log)")
        return handler

    def bind(self, request: Request, dep: LoadedModel) -> LoadedModel:
        """The request is for *dep*: its metrics go under that model and version."""
        request.scope["aiaas.deployment"] = dep
        self.metrics.entered(dep.name, str(dep.version))
        return dep

    async def read_json(self, request: Request) -> Any:
        body = await self.read_body(request)
        return await off_loop(lambda: jsonio.parse(body), len(body) > THREAD_BYTES)

    async def read_body(self, request: Request) -> bytes:
        """The raw body, within ``max_body_bytes`` (413), non-empty, JSON tensors only."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise ApiError(413, f"request body over {self.max_body_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ApiError(413, f"request body over {self.max_body_bytes} bytes")
            chunks.append(chunk)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not body:
            raise ApiError(400, "empty request body; expected JSON")
        if "inference-header-content-length" in request.headers:
            raise ApiError(400, "the binary tensor data extension is not supported; send JSON tensors "
                                "(tritonclient: binary_data=False)")
        return body

    def deployment(self, request: Request, split: bool = True) -> LoadedModel:
        """The version that answers: ``versions/{v}`` if given, else (*split*: an inference, not a
        metadata or readiness call) the canary for its share of the name's requests, else the primary."""
        p = request.path_params
        v = p.get("version")
        dep = self.deployments.pick(p["name"], v, split)
        if dep is None:
            primary = self.deployments.get(p["name"])
            if primary is None:
                raise ApiError(404, f"no model deployed as {p['name']!r}")
            canary = self.deployments.canaries.get(p["name"])
            also = f" (canary: version {canary.model.version})" if canary is not None else ""
            raise ApiError(404, f"{p['name']!r} is deployed at version {primary.version}{also}, not {v}")
        return self.bind(request, dep)

    async def run(self, dep: LoadedModel, part: Any, n: int, want: frozenset) -> dict:
        if n == 0:
            raise InputError("the request has no rows")
        try:
            return await dep.batcher.submit(part, n, want)
        except Exception as e:  # raised by the model for this request only
            msg = f"{type(e).__name__}: {e}"
            raise InputError(f"the model could not run on this input: {' '.join(msg.split())[:500]}") from None

    # -- health and metadata ---------------------------------------------------------------
    async def live(self, request):
        return json_response({"live": True})

    async def ready_(self, request):
        return json_response({"ready": self.ready}, 200 if self.ready else 503)

    async def server_meta(self, request):
        from .._version import __version__

        return json_response({"name": "aiaas-jupyter", "version": __version__,
                              "extensions": ["admin", "predict", "openai-embeddings", "adaptive-batching"]})

    async def model_meta(self, request):
        dep = self.deployment(request, split=False)
        rt = dep.runtime
        canary = self.deployments.canaries.get(dep.name)
        versions = [str(v.version) for v in (self.deployments.get(dep.name), canary and canary.model) if v is not None]
        return json_response({
            "name": dep.name, "versions": versions, "platform": rt.platform,
            "inputs": rt.input_meta, "outputs": rt.output_meta(),
            "parameters": {**rt.parameters(), "ref": dep.ref, "framework": dep.framework,
                           "loaded_at": dep.loaded_at, "outputs_available": list(rt.outputs),
                           "batching": dep.batcher.stats()}})

    async def model_ready(self, request):
        dep = self.deployment(request, split=False)
        return json_response({"name": dep.name, "ready": True})

    # -- inference ---------------------------------------------------------------------------
    async def infer(self, request):
        dep = self.deployment(request)
        body = await self.read_body(request)
        rt = dep.runtime

        def decode():
            tensors, names, req_id = oip.decode_request(jsonio.parse(body))
            try:
                wanted = rt.check_outputs(names)
            except InputError as e:
                raise ApiError(400, str(e)) from None
            return (*rt.from_tensors(tensors), wanted, req_id)

        part, n, wanted, req_id = await off_loop(decode, len(body) > THREAD_BYTES)
        out = await self.run(dep, part, n, frozenset(wanted))
        out = {k: out[k] for k in wanted}
        return await encoded(lambda: oip.encode_response(dep.name, str(dep.version), out, req_id),
                             sum(v.size for v in out.values()) > THREAD_VALUES)

    async def predict(self, request):
        """The plain form (:mod:`.plain`): ``{"text": ...}`` or records → ``label``/``predictions``."""
        dep = self.deployment(request)
        body = await self.read_body(request)
        rt = dep.runtime

        def decode():
            try:
                return plain.read(rt, jsonio.parse(body))
            except plain.BadBody as e:
                raise ApiError(400, str(e)) from None

        part, n, single = await off_loop(decode, len(body) > THREAD_BYTES)
        out = await self.run(dep, part, n, frozenset(plain.outputs(rt)))
        return await encoded(lambda: plain.answer(rt, out, single),
                             sum(getattr(v, "size", 0) for v in out.values()) > THREAD_VALUES)

    async def openai_models(self, request):
        return json_response({"object": "list", "data": [
            {"id": d.name, "object": "model", "created": int(self.started), "owned_by": "aiaas"}
            for d in self.deployments.live.values()]})

    async def embeddings(self, request):
        """OpenAI embeddings (:mod:`.embeddings`): limits first, tokens and answer off the loop."""
        model, texts, fmt = embeddings.read(await self.read_json(request))
        deps = [d for d in self.deployments.live.values() if d.runtime.kind == "embedding"]
        dep = next((d for d in deps if d.name == model), None)
        if dep is None and model is None and len(deps) == 1:
            dep = deps[0]
        if dep is None:
            raise ApiError(404, f"no embedding model deployed as {model!r:.200}"
                                f"{'; deployed: ' + ', '.join(d.name for d in deps) if deps else ''}")
        self.bind(request, dep)
        tokens = await run_in_threadpool(embeddings.count_tokens, dep.runtime, texts)
        emb = (await self.run(dep, texts, len(texts), frozenset({"embedding"})))["embedding"]
        return await encoded(lambda: embeddings.answer(dep.name, emb, fmt, tokens),
                             getattr(emb, "size", 0) > THREAD_VALUES)

    async def metrics_(self, request):
        """Prometheus exposition (:mod:`.metrics`): behind the token like every model route."""
        body = await off_loop(self.metrics.exposition, True)
        return Response(body, 200, media_type=METRICS_CONTENT_TYPE)

    async def openapi(self, request):
        from .openapi import openapi_document

        return json_response(openapi_document(self.url(request)))

    def url(self, request: Request) -> str:
        return self.base_url or str(request.base_url).rstrip("/")

    # -- assembly --------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        e, admin = self.endpoint, AdminRoutes(self)
        m, mv = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
        return [
            Route("/v2/health/live", e(self.live)), Route("/v2/health/ready", e(self.ready_)),
            Route("/v2", e(self.server_meta)),
            Route(m, e(self.model_meta)), Route(mv, e(self.model_meta)),
            Route(m + "/ready", e(self.model_ready)), Route(mv + "/ready", e(self.model_ready)),
            Route(m + "/infer", e(self.infer), methods=["POST"]),
            Route(mv + "/infer", e(self.infer), methods=["POST"]),
            Route("/predict/{name}", e(self.predict), methods=["POST"]),
            Route("/v1/models", e(self.openai_models)),
            Route("/v1/embeddings", e(self.embeddings), methods=["POST"]),
            Route("/admin/deployments", e(admin.list_deployments), methods=["GET"]),
            Route("/admin/deployments", e(admin.deploy), methods=["POST"]),
            Route("/admin/deployments/{name}", e(admin.undeploy), methods=["DELETE"]),
            Route("/admin/deployments/{name}/promote", e(admin.promote), methods=["POST"]),
            Route("/admin/deployments/{name}/rollback", e(admin.rollback), methods=["POST"]),
            Route("/admin/stats", e(admin.stats)),
            Route("/openapi.json", e(self.openapi)),
            Route("/metrics", e(self.metrics_)),
        ]


def create_app(deployments: Deployments, token: str, *, max_body_bytes: int = 8 << 20,
               timeout_s: float = 30.0, base_url: str = "",
               startup: Callable[[], Awaitable[None]] | None = None,
               metrics: ServerMetrics | None = None) -> Starlette:
    """The ASGI app. ``startup`` (restore + initial deploys) runs in the background after the
    server starts; ``/v2/health/ready`` answers 503 until it has finished."""
    from contextlib import asynccontextmanager

    from starlette.exceptions import HTTPException

    server = Server(deployments, max_body_bytes=max_body_bytes, timeout_s=timeout_s, base_url=base_url,
                    metrics=metrics)

    async def http_error(request, exc: HTTPException):
        msg = {404: f"no route {request.url.path}", 405: f"method {request.method} not allowed here"}
        return _error(exc.status_code, msg.get(exc.status_code, str(exc.detail)), exc.headers)

    async def start():
        try:
            if startup is not None:
                await startup()
        except Exception:
            log.exception("start-up deployments failed")
        finally:
            server.ready = True

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(start())
        yield
        task.cancel()

    app = Starlette(routes=server.routes(), exception_handlers={HTTPException: http_error},
                    lifespan=lifespan)
    app.state.server = server
    app.add_middleware(AuthMiddleware, token=token)
    return app
