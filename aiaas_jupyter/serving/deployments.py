"""Deployment name → live model (a :class:`LoadedModel`), swapped atomically and persisted
across server restarts.

A (re)deploy loads the new version completely — registry lookup, sha256-checked artifacts,
safe loader, one warm-up call — on a worker thread, and only then replaces the dict entry,
in a single assignment on the event loop. A request looks its deployment up once, so
requests already in flight finish on the old version (its batcher drains, then its thread
stops) while new ones go to the new version: no request ever sees a half-loaded model.

``HOME/server/deployments.json`` (``{name: {"ref", "version"[, "canary": {"ref", "version",
"percent"}]}}``) is rewritten atomically on every change; a restarted server reloads the same
versions (and splits) from it.

A deployment may have a **canary** (:mod:`.traffic_split`): a candidate version loaded beside the
primary that takes a set share of the name's requests. ``promote`` makes it the primary,
``rollback`` drops it; both are one assignment on the event loop, like a redeploy, and the version
that leaves finishes the requests it already holds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import now_iso
from ..errors import ModelNotFoundError
from ..registry.private_files import make_private_dir, write_private
from .batching import Batcher
from .runtime import EMBEDDING_NAME, EMBEDDING_REF, Runtime
from .traffic_split import Canary, check_percent

log = logging.getLogger("aiaas_jupyter.serving")

#: Refs of models that ship with the server instead of living in the registry.
BUILTIN_REFS = {EMBEDDING_REF: EMBEDDING_NAME}


@dataclass
class LoadedModel:
    """One model this server has loaded and serves under ``name``: its runtime and batcher.

    The server's side of a deployment; what a kernel gets back from ``deploy`` is the
    :class:`~aiaas_jupyter.serving_client.access.Deployment` (addresses and token), a different thing."""

    name: str
    ref: str
    version: int
    framework: str
    runtime: Runtime
    batcher: Batcher = field(repr=False)
    loaded_at: str = ""

    def info(self, base_url: str) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref, "version": self.version,
                "framework": self.framework, "loaded_at": self.loaded_at,
                "url": f"{base_url}/v2/models/{self.name}", "predict_url": f"{base_url}/predict/{self.name}"}


def state_file(home: str | os.PathLike) -> Path:
    return Path(home) / "server" / "deployments.json"


class Deployments:
    """The live deployments of one server (used from its event loop only)."""

    def __init__(self, home: str | os.PathLike, *, max_batch_size: int = 64, max_wait_ms: float = 2.0,
                 metrics=None):
        self.home = Path(home)
        self.metrics = metrics  # a ServerMetrics (:mod:`.metrics`), or None
        self.max_batch_size, self.max_wait_ms = max_batch_size, max_wait_ms
        self.live: dict[str, LoadedModel] = {}
        self.canaries: dict[str, Canary] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._registry = None

    def get(self, name: str) -> LoadedModel | None:
        return self.live.get(name)

    def pick(self, name: str, version: str | None = None, split: bool = True) -> LoadedModel | None:
        """The version that answers this request: the one asked for, else (*split*: an inference)
        the canary for its share of requests, else the primary."""
        primary, canary = self.live.get(name), self.canaries.get(name)
        if version is not None:
            return next((d for d in (primary, canary and canary.model) if d is not None and str(d.version) == version),
                        None)
        if split and canary is not None and canary.take():
            return canary.model
        return primary

    def loaded(self) -> list[LoadedModel]:
        """Every loaded version: primaries and canaries (what the metrics read)."""
        return [*self.live.values(), *(c.model for c in self.canaries.values())]

    @property
    def registry(self):
        if self._registry is None:
            from ..registry import Registry

            self._registry = Registry(self.home)
        return self._registry

    @staticmethod
    def default_name(ref: str) -> str:
        if ref in BUILTIN_REFS:
            return BUILTIN_REFS[ref]
        from ..registry import parse_ref

        return parse_ref(ref)[0]

    async def deploy(self, name: str | None, ref: str, *, version: int | None = None) -> LoadedModel:
        """Load ``ref`` (or exactly ``version`` of its model, on restore), then swap it in.

        Raises the registry's errors (ModelNotFoundError, InvalidNameError, IntegrityError,
        UnsafeArtifactError) or whatever the loader raised; the live model is unchanged then.
        """
        from ..registry import validate_name

        if not isinstance(ref, str):
            raise TypeError("'ref' must be a string")
        if ref.startswith("builtin:") and ref not in BUILTIN_REFS:
            raise ModelNotFoundError(f"unknown built-in model {ref!r}; built in: {', '.join(BUILTIN_REFS)}")
        name = validate_name(name if name is not None else self.default_name(ref), "deployment")
        async with self._locks.setdefault(name, asyncio.Lock()):
            loop = asyncio.get_running_loop()
            dep = await loop.run_in_executor(None, self._load, name, ref, version)
            old = self.live.get(name)
            self.live[name] = dep  # the swap: one assignment on the event loop
            canary = self.canaries.pop(name, None)  # a plain redeploy ends a split
            self._save()
            if canary is not None:  # out of the metrics first: it may be the version just deployed
                self._tell_metrics(canary.model, None)
            self._tell_metrics(old, dep)
            # The freshly imported ML stack is ~300k long-lived objects: a full GC pass over
            # them stalls every request for ~200 ms. Frozen, collections skip them.
            gc.freeze()
        for leaving in (old, canary and canary.model):  # each drains its queue, then its thread stops
            if leaving is not None:
                leaving.batcher.close()
        log.info("deployed %s = %s (version %s)", name, ref, dep.version)
        return dep

    async def undeploy(self, name: str) -> bool:
        async with self._locks.setdefault(name, asyncio.Lock()):
            dep = self.live.pop(name, None)
            if dep is None:
                return False
            canary = self.canaries.pop(name, None)
            self._save()
        self._retire(dep)
        if canary is not None:
            self._retire(canary.model)
        log.info("undeployed %s", name)
        return True

    async def deploy_canary(self, name: str, ref: str, percent: float, *, version: int | None = None) -> Canary:
        """Load *ref* beside the primary of *name* and send it *percent* % of the requests (a
        canary already there is replaced). ValueError when there is nothing to split with."""
        percent = check_percent(percent)
        async with self._locks.setdefault(name, asyncio.Lock()):
            primary = self.live.get(name)
            if primary is None:
                raise LookupError(f"no deployment named {name!r} to split traffic with; deploy it first")
            loop = asyncio.get_running_loop()
            dep = await loop.run_in_executor(None, self._load, name, ref, version)
            if dep.version == primary.version:
                dep.batcher.close()
                raise ValueError(f"{name} version {dep.version} is already the primary; a canary must be "
                                 "another version")
            old = self.canaries.get(name)
            self.canaries[name] = Canary(dep, percent)
            self._save()
            if old is not None:  # out of the metrics first: it may be the same version again
                self._tell_metrics(old.model, None)
            self._tell_metrics(None, dep)
            gc.freeze()
        if old is not None:
            old.model.batcher.close()
        log.info("canary %s = %s (version %s) takes %g%%", name, ref, dep.version, percent)
        return self.canaries[name]

    async def end_canary(self, name: str, promote: bool) -> LoadedModel:
        """``promote``: the canary becomes the primary; else (rollback) it is dropped. The
        version that leaves drains its queue first. LookupError when *name* has no canary."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            canary = self.canaries.get(name)
            if canary is None:
                raise LookupError(f"{name!r} has no canary to {'promote' if promote else 'roll back'}")
            leaving = self.live[name] if promote else canary.model
            if promote:
                self.live[name] = canary.model
            del self.canaries[name]
            self._save()
        self._retire(leaving)
        log.info("%s: %s version %s", name, "promoted" if promote else "rolled back", canary.model.version)
        return self.live[name]

    async def restore(self) -> None:
        """Reload the versions ``deployments.json`` lists. A version deleted meanwhile falls
        back to its ref (e.g. the alias' current version); one that still cannot be loaded is
        logged and skipped, so the rest still come up."""
        path = state_file(self.home)
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("cannot read %s: %s", path, e)
            return
        for name, entry in saved.items():
            try:
                try:
                    await self.deploy(name, entry["ref"], version=entry.get("version"))
                except ModelNotFoundError:
                    log.warning("%s version %s is gone; deploying %s", name, entry.get("version"), entry["ref"])
                    await self.deploy(name, entry["ref"])
                split = entry.get("canary")
                if split:
                    await self.deploy_canary(name, split["ref"], split["percent"], version=split.get("version"))
            except Exception as e:  # keep serving the others
                log.error("could not restore deployment %s (%s): %s", name, entry, e)

    def _retire(self, dep: LoadedModel) -> None:
        """A version that no longer takes requests: out of the metrics; its queue drains, then its thread stops."""
        self._tell_metrics(dep, None)
        dep.batcher.close()

    def _tell_metrics(self, gone: LoadedModel | None, new: LoadedModel | None) -> None:
        if self.metrics is None:
            return
        if gone is not None:
            self.metrics.deployment(gone.name, str(gone.version), gone.ref, present=False)
        if new is not None:
            self.metrics.deployment(new.name, str(new.version), new.ref, present=True)

    def _save(self) -> None:
        state = {n: {"ref": d.ref, "version": d.version} for n, d in self.live.items()}
        for n, c in self.canaries.items():
            state[n]["canary"] = {"ref": c.model.ref, "version": c.model.version, "percent": c.percent}
        make_private_dir(state_file(self.home).parent)
        write_private(state_file(self.home), json.dumps(state, indent=1, sort_keys=True).encode())

    def _load(self, name: str, ref: str, version: int | None) -> LoadedModel:
        """On a worker thread: everything slow happens here, before any swap."""
        if ref in BUILTIN_REFS:
            from .runtime import load_embedding_runtime

            rt, framework, version = load_embedding_runtime(), "sentence-transformers", 1
        else:
            from ..registry import parse_ref
            from .runtime import load_runtime

            lookup = ref
            if version is not None:
                lookup = f"{parse_ref(ref)[0]}:{int(version)}"
            mv = self.registry.get(lookup)
            files = self.registry.read_artifacts(mv)
            rt, framework, version = load_runtime(mv.framework, files, mv.extra or {}), mv.framework, mv.version
        observe = self.metrics.batch_observer(name, str(version)) if self.metrics is not None else None
        batcher = Batcher(rt.run, rt.concat, max_batch_size=self.max_batch_size,
                          max_wait_ms=self.max_wait_ms, name=name, on_batch=observe)
        return LoadedModel(name=name, ref=ref, version=version, framework=framework, runtime=rt,
                           batcher=batcher, loaded_at=now_iso())
