"""The model server's admin routes: deploy (and start a canary), promote, roll back, undeploy,
list and stats — apart from :mod:`.app` so the hot-path module stays small. The routes run on
the server's event loop; loading happens in :class:`~.deployments.Deployments` on a worker thread.
"""

from __future__ import annotations

import logging
import time

from .peers import PeersError
from .responses import ApiError, json_response

log = logging.getLogger("aiaas_jupyter.serving")


class AdminRoutes:
    """``/admin/...`` handlers of one :class:`~.app.Server`."""

    def __init__(self, server):
        self.server = server
        self.deployments = server.deployments

    async def deploy(self, request):
        from ..errors import AiaasError, InvalidNameError, ModelNotFoundError, RegistryError

        body = await self.server.read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("ref"), str) \
                or not isinstance(body.get("name", ""), (str, type(None))):
            raise ApiError(400, 'expected {"name": "iris", "ref": "iris@prod"[, "canary": 10]}')
        if body.get("canary") is not None:
            return await self.deploy_canary(request, body)
        try:
            dep = await self.deployments.deploy(body.get("name") or None, body["ref"])
        except PeersError as e:  # served here, not by every process of the server
            raise ApiError(503, str(e)) from None
        except InvalidNameError as e:
            raise ApiError(400, str(e)) from None
        except ModelNotFoundError as e:
            raise ApiError(404, str(e)) from None
        except RegistryError as e:  # integrity, unsafe artifact, unreadable file
            raise ApiError(422, str(e)) from None
        except AiaasError as e:  # e.g. a bad aiaas.artifacts.trusted-types setting: one line, no trace
            raise ApiError(422, str(e)) from None
        except Exception as e:
            log.exception("deploying %s failed", body["ref"])
            raise ApiError(422, f"cannot load {body['ref']}: {type(e).__name__}: {e}"[:500]) from None
        info = dep.info(self.server.url(request))
        return json_response({k: info[k] for k in ("name", "version", "ref", "framework", "url", "predict_url")})

    async def deploy_canary(self, request, body: dict):
        """``{"name", "ref", "canary": percent}``: *ref* beside the deployed primary, taking that share."""
        from ..errors import AiaasError, InvalidNameError, ModelNotFoundError
        from ..registry import validate_name

        try:
            name = validate_name(body.get("name") or self.deployments.default_name(body["ref"]), "deployment")
            split = await self.deployments.deploy_canary(name, body["ref"], body["canary"])
        except PeersError as e:
            raise ApiError(503, str(e)) from None
        except (InvalidNameError, ValueError) as e:
            raise ApiError(400, str(e)) from None
        except (LookupError, ModelNotFoundError) as e:
            raise ApiError(404, str(e).strip("'\"")) from None
        except AiaasError as e:
            raise ApiError(422, str(e)) from None
        info = self.deployments.get(name).info(self.server.url(request))
        return json_response({**{k: info[k] for k in ("name", "version", "ref", "framework", "url", "predict_url")},
                              "canary": _canary_info(split)})

    async def promote(self, request):
        return await self._end_canary(request, promote=True)

    async def rollback(self, request):
        return await self._end_canary(request, promote=False)

    async def _end_canary(self, request, promote: bool):
        name = request.path_params["name"]
        if self.deployments.get(name) is None:
            raise ApiError(404, f"no model deployed as {name!r}")
        try:
            dep = await self.deployments.end_canary(name, promote)
        except PeersError as e:
            raise ApiError(503, str(e)) from None
        except LookupError as e:
            raise ApiError(409, str(e).strip("'\"")) from None
        return json_response({"name": name, "version": dep.version, "ref": dep.ref,
                              "promoted" if promote else "rolled_back": True})

    async def undeploy(self, request):
        name = request.path_params["name"]
        try:
            undeployed = await self.deployments.undeploy(name)
        except PeersError as e:
            raise ApiError(503, str(e)) from None
        if not undeployed:
            raise ApiError(404, f"no model deployed as {name!r}")
        return json_response({"name": name, "undeployed": True})

    async def list_deployments(self, request):
        base = self.server.url(request)
        out = []
        for name, dep in self.deployments.live.items():
            info = dep.info(base)
            canary = self.deployments.canaries.get(name)
            if canary is not None:
                info["canary"] = _canary_info(canary)
            out.append(info)
        return json_response({"deployments": out})

    async def stats(self, request):
        return json_response({"uptime_s": time.time() - self.server.started, "models": {
            n: {"version": d.version, **d.batcher.stats()} for n, d in self.deployments.live.items()}})


def _canary_info(canary) -> dict:
    return {"version": canary.model.version, "ref": canary.model.ref, "percent": canary.percent,
            "loaded_at": canary.model.loaded_at}
