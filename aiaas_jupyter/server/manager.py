"""What the sidebar API answers, as plain JSON-able dicts: no tornado here, so it is tested
(and timed) directly. Every method is synchronous and may block (SQLite, HTTP health checks,
the model server); the handlers run them in a worker thread.

The registry home is the kernel's (``$AIAAS_HOME`` or the default), so the sidebar shows what
the notebooks register. API keys of remote endpoints are never read here: only the *name*
of their environment variable and whether it is set. The model server's token never leaves
this module. Health checks of remote endpoints carry no credentials, and the cluster view is a
file the kernel wrote: this process never opens a Dask connection (see :meth:`cluster`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import AiaasError, InvalidNameError
from ..registry import TRIAL_TERMINAL, Registry, parse_ref, validate_name
from ..serving.state import server_info_problem
from ..views import headline

#: how many jobs ``GET jobs`` lists
JOBS_LIMIT = 200
#: how many sweeps ``GET sweeps`` lists (newest first)
SWEEPS_LIMIT = 50


class BadRequestError(AiaasError):
    """A request the API cannot read (bad JSON, wrong shape, too big): answered ``http_status``."""

    def __init__(self, message: str, hint: str | None = None, http_status: int = 400):
        super().__init__(message, hint)
        self.http_status = http_status


def headline_metric(metrics: dict | None) -> dict | None:
    """The sidebar's shape of :func:`..views.headline` (the one list of headline metrics)."""
    found = headline(metrics)
    return {"name": found[0], "value": found[1]} if found else None


class SidebarManager:
    """The sidebar's view of one registry home, over the façade (:class:`AiaasClient`)."""

    def __init__(self, home: str | os.PathLike | None = None):
        self.registry = Registry(home)
        self.home = self.registry.home
        self._client = None

    @property
    def client(self):
        """The façade, created on first use (its module imports more than the registry's)."""
        if self._client is None:
            from ..client import AiaasClient

            self._client = AiaasClient(registry=self.registry)  # one Registry (and database handle)
        return self._client

    # -- models ---------------------------------------------------------------------------
    def registry_status(self) -> dict[str, Any]:
        """Where the registry lives and whether its database exists yet, so the sidebar can
        tell "nothing registered yet" apart from "no registry here at all" (a home that was
        never written to: the user has not run ``%load_ext aiaas_jupyter`` + a train cell, or
        the server sees another ``$AIAAS_HOME`` than the kernel). Only looks: creates nothing."""
        return {"home": str(self.home), "exists": self.registry.db.path.is_file()}

    def models(self) -> dict[str, Any]:
        """The answer of ``GET models``: the list plus :meth:`registry_status`."""
        return {"models": self.list_models(), "registry": self.registry_status()}

    def _deployed(self) -> dict[str, dict]:
        return {d["name"]: d for d in self.client.deployments()}

    def list_models(self) -> list[dict[str, Any]]:
        """One entry per model, sorted by name (three SQLite queries whatever the count)."""
        summaries = self.registry.list_models()
        numbers = self.registry.version_numbers()
        deployed = self._deployed() if summaries else {}
        out = []
        for s in summaries:
            dep = deployed.get(s["name"])
            out.append({"name": s["name"], "latest": s["latest"], "versions": numbers.get(s["name"], []),
                        "aliases": s["aliases"], "framework": s["framework"],
                        "metric": headline_metric(s["metrics"]), "created": s["created"],
                        "deployed": dep is not None, "endpoint": dep.get("url") if dep else None,
                        "deployed_version": dep.get("version") if dep else None})
        return out

    def get_model(self, name: str) -> dict[str, Any]:
        """Every version of ``name`` (newest first). Unknown: :class:`ModelNotFoundError`."""
        versions = self.registry.versions(validate_name(name))
        if not versions:
            self.registry.get(name)  # raises ModelNotFoundError with a did-you-mean hint
        dep = self._deployed().get(name)
        return {"name": name, "deployed": dep is not None, "endpoint": dep.get("url") if dep else None,
                "deployed_version": dep.get("version") if dep else None,
                "versions": [{"version": mv.version, "ref": mv.ref, "framework": mv.framework,
                              "metrics": mv.metrics, "params": mv.params, "aliases": list(mv.aliases),
                              "created": mv.created, "job_id": mv.job_id}
                             for mv in reversed(versions)]}

    # -- deployments ----------------------------------------------------------------------
    def deploy(self, name: str, ref: str | None = None) -> dict[str, Any]:
        """Deploy ``ref`` (default ``name``, i.e. its latest version) under ``name``."""
        validate_name(name)
        ref = name if ref is None else ref
        if not isinstance(ref, str) or parse_ref(ref)[0] != name:
            raise InvalidNameError(f"ref {ref!r} is not a version of model {name!r}",
                                   f"write {name}, {name}:VERSION or {name}@ALIAS")
        dep = self.client.deploy(ref)
        return {"name": dep.name, "version": dep.version, "ref": dep.ref, "framework": dep.framework,
                "url": dep.url, "predict_url": dep.predict_url}

    def undeploy(self, name: str) -> dict[str, Any]:
        self.client.undeploy(name)  # EndpointNotFoundError when not deployed
        return {"name": name, "undeployed": True}

    def endpoints(self) -> dict[str, Any]:
        """Own deployments (with readiness) and remote endpoints (with a quick health check,
        no credentials: see :meth:`~aiaas_jupyter.serving_service.ServingService.health_report`)."""
        report = self.client.serving.health_report()
        server_block = {"running": report.server is not None, "url": report.server_url}
        problem = None if report.server is not None else server_info_problem(self.home)
        if problem:  # a damaged server.json: not running, and the sidebar can say why
            server_block["problem"] = problem
        return {
            "server": server_block,
            "deployments": [{"name": d["name"], "version": d.get("version"), "ref": d.get("ref"),
                             "framework": d.get("framework"), "url": d.get("url"),
                             "predict_url": d.get("predict_url"),
                             "loaded_at": d.get("loaded_at"), "health": health}
                            for d, health in report.deployments],
            "endpoints": [{"name": ep.name, "protocol": ep.protocol, "url": ep.url, "model": ep.model,
                           "api_key_env": ep.api_key_env, "api_key_set": ep.key_is_set(),
                           "health": health} for ep, health in report.endpoints],
        }

    # -- jobs and cluster -----------------------------------------------------------------
    def jobs(self, limit: int = JOBS_LIMIT) -> list[dict[str, Any]]:
        return [{"id": r.id, "model": r.model, "status": r.status, "progress": r.progress,
                 "worker": r.worker, "gpus": r.gpus, "submitted": r.submitted, "started": r.started,
                 "finished": r.finished, "duration_s": r.duration_s, "version": r.version,
                 "error": r.error}
                for r in self.registry.list_jobs(limit)]

    def sweeps(self, limit: int = SWEEPS_LIMIT) -> dict[str, Any]:
        """The answer of ``GET sweeps``: one entry per sweep, newest first. ``progress`` is the
        fraction of planned trials that ended (finished, pruned or failed), 0..1. Best values
        are plain JSON: the registry stores a NaN/inf metric as null."""
        out = []
        for r in self.registry.list_sweeps(limit):
            ended = sum(int(r.counts.get(s, 0)) for s in TRIAL_TERMINAL)
            out.append({"id": r.id, "model": r.model, "status": r.status,
                        "progress": min(1.0, ended / r.n_trials) if r.n_trials > 0 else 0.0,
                        "counts": r.counts, "n_trials": r.n_trials, "metric": r.metric,
                        "direction": r.direction, "best_value": r.best_value, "best_trial": r.best_trial,
                        "version": r.version, "submitted": r.submitted, "finished": r.finished})
        return {"sweeps": out}

    def cluster(self) -> dict[str, Any]:
        """The cluster as its kernel last recorded it (:mod:`aiaas_jupyter.cluster_snapshot`),
        with its age. Only reads a file: the server never connects to a scheduler, because
        Dask's comms unpickle what the peer sends (a registry row or a fake scheduler would
        run code in this process)."""
        from ..cluster_snapshot import view

        return view(self.home)


#: the deploy body is ``{"ref": "NAME@ALIAS"}``: a few hundred bytes; anything this big is not one
MAX_BODY_BYTES = 64 * 1024


def parse_deploy_body(body: bytes) -> str | None:
    """The optional JSON body of ``POST models/NAME/deploy``: ``{"ref": "NAME@ALIAS"}`` or empty.

    Every way a body can be wrong is a :class:`BadRequestError` (400, or 413 when too big):
    not UTF-8, not JSON, nested deeper than Python recurses, not an object, ref not a string.
    """
    if len(body) > MAX_BODY_BYTES:
        raise BadRequestError(f"the request body is {len(body)} bytes; at most {MAX_BODY_BYTES} are read",
                              'send {"ref": "NAME@ALIAS"} or nothing', http_status=413)
    if not body or not body.strip():
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequestError(f"the request body is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise BadRequestError("the request body is JSON nested too deeply",
                              'send {"ref": "NAME@ALIAS"} or nothing') from None
    if not isinstance(data, dict):
        raise BadRequestError("the request body must be a JSON object like {\"ref\": \"NAME@ALIAS\"}")
    ref = data.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise BadRequestError(f"ref must be a string, not {type(ref).__name__}")
    return ref


__all__ = ["SidebarManager", "BadRequestError", "headline_metric", "parse_deploy_body"]
