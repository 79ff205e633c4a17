"""Thin, authenticated tornado handlers for ``{base_url}/aiaas/api/...``.

Each verb is ``@tornado.web.authenticated`` (``ServerApp.allow_unauthenticated_access``
defaults to True, so a forgotten decorator would leave a route open). The work is done by
:class:`~.manager.SidebarManager` in a worker thread, so slow calls (health checks, loading a
model on deploy) never block the server. Only the project's own errors become 4xx/502
answers ``{"message", "hint"}``; anything else is a bug and stays a logged 500.
"""

from __future__ import annotations

import asyncio
import json

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..errors import (AiaasError, ConfigError, DataError, EndpointError, EndpointNotFoundError, IntegrityError,
                      InvalidNameError, JobNotFoundError, ModelNotFoundError, ServingError, SweepNotFoundError,
                      UnsafeArtifactError)
from .manager import BadRequestError, SidebarManager, parse_deploy_body

API_PREFIX = ("aiaas", "api")
_NAME = r"([^/]+)"

#: domain error -> HTTP status, first match wins (subclasses before their bases)
ERROR_STATUS = (
    ((ModelNotFoundError, EndpointNotFoundError, JobNotFoundError, SweepNotFoundError), 404),
    ((InvalidNameError, BadRequestError, DataError), 400),
    ((UnsafeArtifactError,), 422),  # the model exists but will not be loaded
    ((ServingError, EndpointError), 502),
    # The server's own registry is unusable (a damaged database, an unwritable home): not the
    # requester's fault, so a 5xx, but with the one-line reason instead of a bare "500". A damaged
    # server.json is not an error at all: the endpoints answer says "not running" and why.
    ((ConfigError, IntegrityError), 500),
    ((AiaasError,), 400),  # any other domain error: the request could not be done as asked
)
_DOMAIN_ERRORS = tuple(cls for classes, _ in ERROR_STATUS for cls in classes)


class AiaasHandler(APIHandler):
    def initialize(self, manager: SidebarManager) -> None:
        self.manager = manager

    async def respond(self, fn, *args, status: int = 200) -> None:
        try:
            result = await asyncio.to_thread(fn, *args)
        except _DOMAIN_ERRORS as exc:
            code = getattr(exc, "http_status", None) or next(c for classes, c in ERROR_STATUS
                                                              if isinstance(exc, classes))
            self.set_status(code)
            self.finish(json.dumps({"message": getattr(exc, "message", str(exc)),
                                    "hint": getattr(exc, "hint", None), "error": type(exc).__name__}))
            return
        self.set_status(status)
        self.finish(json.dumps(result))


class ModelsHandler(AiaasHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(self.manager.models)


class ModelHandler(AiaasHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self.respond(self.manager.get_model, name)


class DeployHandler(AiaasHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self.respond(lambda: self.manager.deploy(name, parse_deploy_body(self.request.body)))


class UndeployHandler(AiaasHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self.respond(self.manager.undeploy, name)


class EndpointsHandler(AiaasHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(self.manager.endpoints)


class JobsHandler(AiaasHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(lambda: {"jobs": self.manager.jobs()})


class SweepsHandler(AiaasHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(self.manager.sweeps)


class ClusterHandler(AiaasHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(self.manager.cluster)


class NoRouteHandler(AiaasHandler):
    """Any other path under ``/aiaas/api/``: a JSON 404 like the rest of the API (not the
    server's HTML page), whatever the method."""

    async def prepare(self) -> None:
        await super().prepare()  # authenticates (and checks the origin)
        if not self.current_user:  # what @authenticated would do; no route list for strangers
            raise tornado.web.HTTPError(403)
        self.set_status(404)
        self.finish(json.dumps({"message": "no such aiaas API route", "error": "NotFound",
                                "hint": "routes: models, models/NAME, models/NAME/deploy, "
                                        "models/NAME/undeploy, endpoints, jobs, sweeps, cluster"}))


ROUTES = (
    ("models", ModelsHandler),
    (f"models/{_NAME}", ModelHandler),
    (f"models/{_NAME}/deploy", DeployHandler),
    (f"models/{_NAME}/undeploy", UndeployHandler),
    ("endpoints", EndpointsHandler),
    ("jobs", JobsHandler),
    ("sweeps", SweepsHandler),
    ("cluster", ClusterHandler),
    (".*", NoRouteHandler),  # last: tornado takes the first pattern that matches
)


def setup_handlers(web_app, manager: SidebarManager) -> list[str]:
    """Add the API routes to the server's tornado application; returns their patterns."""
    base_url = web_app.settings.get("base_url", "/")
    patterns = [url_path_join(base_url, *API_PREFIX, path) for path, _ in ROUTES]
    handlers = [handler for _, handler in ROUTES]
    # the bare prefix too (``models/..`` normalises to it): a JSON 404, not the server's HTML page
    patterns.append(url_path_join(base_url, *API_PREFIX))
    handlers.append(NoRouteHandler)
    web_app.add_handlers(".*$", [(pattern, handler, {"manager": manager})
                                 for pattern, handler in zip(patterns, handlers)])
    return patterns
