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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import now_iso
from ..errors import ModelNotFoundError
from ..registry.private_files import make_private_dir, write_private
from .batching import Batcher
from .runtime import ECHO_NAME, ECHO_REF, EMBEDDING_NAME, EMBEDDING_REF, Runtime
from .traffic_split import Canary, check_percent

log = logging.getLogger("aiaas_jupyter.serving")

#: Refs of models that ship with the server instead of living in the registry.
BUILTIN_REFS = {EMBEDDING_REF: EMBEDDING_NAME, ECHO_REF: ECHO_NAME}


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
    loaded_ts: float = field(default_factory=time.time)  #: the same instant, for the metrics

    def info(self, base_url: str) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref, "version": self.version,
                "framework": self.framework, "loaded_at": self.loaded_at,
                "url": f"{base_url}/v2/models/{self.name}", "predict_url": f"{base_url}/predict/{self.name}"}


def state_file(home: str | os.PathLike) -> Path:
    return Path(home) / "server" / "deployments.json"


class Deployments:
    """The live deployments of one server (used from its event loop only)."""

    def __init__(self, home: str | os.PathLike, *, max_batch_size: int = 64, max_wait_ms: float = 2.0,
                 metrics=None, peers=None):
        self.home = Path(home)
        self.metrics = metrics  # a ServerMetrics (:mod:`.metrics`), or None
        self.peers = peers      # the other processes of this server (:mod:`.peers`), or None: only this one
        self.max_batch_size, self.max_wait_ms = max_batch_size, max_wait_ms
        self.live: dict[str, LoadedModel] = {}
        self.canaries: dict[str, Canary] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failing: set[str] = set()  # names deployments.json lists that this process cannot load
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
        """Load ``ref`` (or exactly ``version`` of its model, on restore), then swap it in, and
        return once every process of the server serves it.

        Raises the registry's errors (ModelNotFoundError, InvalidNameError, IntegrityError,
        UnsafeArtifactError) or whatever the loader raised; the live model is unchanged then.
        """
        from ..registry import validate_name

        if not isinstance(ref, str):
            raise TypeError("'ref' must be a string")
        if ref.startswith("builtin:") and ref not in BUILTIN_REFS:
            raise ModelNotFoundError(f"unknown built-in model {ref!r}; built in: {', '.join(BUILTIN_REFS)}")
        name = validate_name(name if name is not None else self.default_name(ref), "deployment")
        dep = await self._deploy(name, ref, version)
        await self._announce(name)
        return dep

    async def _deploy(self, name: str, ref: str, version: int | None) -> LoadedModel:
        async with self._locks.setdefault(name, asyncio.Lock()):
            loop = asyncio.get_running_loop()
            dep = await loop.run_in_executor(None, self._load, name, ref, version)
            old = self.live.get(name)
            self.live[name] = dep  # the swap: one assignment on the event loop
            canary = self.canaries.pop(name, None)  # a plain redeploy ends a split
            # The freshly imported ML stack is ~300k long-lived objects: a full GC pass over
            # them stalls every request for ~200 ms. Frozen, collections skip them.
            gc.freeze()
        for leaving in (old, canary and canary.model):  # each drains its queue, then its thread stops
            if leaving is not None:
                leaving.batcher.close()
        log.info("deployed %s = %s (version %s)", name, ref, dep.version)
        return dep

    async def undeploy(self, name: str) -> bool:
        if not await self._undeploy(name):
            return False
        await self._announce(name)
        return True

    async def _undeploy(self, name: str) -> bool:
        async with self._locks.setdefault(name, asyncio.Lock()):
            dep = self.live.pop(name, None)
            if dep is None:
                return False
            canary = self.canaries.pop(name, None)
        self._retire(dep)
        if canary is not None:
            self._retire(canary.model)
        log.info("undeployed %s", name)
        return True

    async def deploy_canary(self, name: str, ref: str, percent: float, *, version: int | None = None) -> Canary:
        """Load *ref* beside the primary of *name* and send it *percent* % of the requests (a
        canary already there is replaced). ValueError when there is nothing to split with."""
        split = await self._deploy_canary(name, ref, check_percent(percent), version)
        await self._announce(name)
        return split

    async def _deploy_canary(self, name: str, ref: str, percent: float, version: int | None) -> Canary:
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
            gc.freeze()
        if old is not None:
            old.model.batcher.close()
        log.info("canary %s = %s (version %s) takes %g%%", name, ref, dep.version, percent)
        return self.canaries[name]

    async def end_canary(self, name: str, promote: bool) -> LoadedModel:
        """``promote``: the canary becomes the primary; else (rollback) it is dropped. The
        version that leaves drains its queue first. LookupError when *name* has no canary."""
        dep = await self._end_canary(name, promote)
        await self._announce(name)
        return dep

    async def _end_canary(self, name: str, promote: bool) -> LoadedModel:
        async with self._locks.setdefault(name, asyncio.Lock()):
            canary = self.canaries.get(name)
            if canary is None:
                raise LookupError(f"{name!r} has no canary to {'promote' if promote else 'roll back'}")
            leaving = self.live[name] if promote else canary.model
            if promote:
                self.live[name] = canary.model
            del self.canaries[name]
        self._retire(leaving)
        log.info("%s: %s version %s", name, "promoted" if promote else "rolled back", canary.model.version)
        return self.live[name]

    async def restore(self) -> None:
        """Reload the versions ``deployments.json`` lists. A version deleted meanwhile falls
        back to its ref (e.g. the alias' current version); one that still cannot be loaded is
        logged and skipped, so the rest still come up."""
        await self.reconcile(fallback=True)

    async def reconcile(self, fallback: bool = False) -> list[str]:
        """Make this process serve what ``deployments.json`` says, name by name: what another
        process of the server deployed, split, promoted, rolled back or undeployed (:mod:`.peers`).
        A promote or rollback is the same swap here, never a second load. *fallback* (at
        start): a version deleted meanwhile is replaced by its ref's current version, and the
        file is rewritten when that changed what it says. Returns the names it could not follow
        that it could last time."""
        saved = _read_state(state_file(self.home))
        if saved is None:
            return []
        for name in [n for n in self.live if n not in saved]:
            await self._undeploy(name)
        failed = []
        for name, entry in saved.items():
            try:
                if await self._follow(name, entry, fallback):
                    await self._save(name)
            except Exception as e:  # keep serving the others
                log.error("could not restore deployment %s (%s): %s", name, entry, e)
                failed.append(name)
        # an entry that already failed last time (its model deleted, say) is no news to whoever
        # changed another name now
        news, self._failing = [n for n in failed if n not in self._failing], set(failed)
        return news

    async def _follow(self, name: str, entry: dict, fallback: bool) -> bool:
        """Bring *name* to *entry*; True when a deleted version had to be replaced (*fallback*)."""
        primary, canary, split = self.live.get(name), self.canaries.get(name), entry.get("canary")
        version, replaced = entry.get("version"), False
        if primary is not None and str(primary.version) == str(version) and primary.ref == entry["ref"]:
            pass
        elif canary is not None and str(canary.model.version) == str(version):  # promoted elsewhere
            await self._end_canary(name, promote=True)
            canary = None
        else:
            try:
                await self._deploy(name, entry["ref"], version)
            except ModelNotFoundError:
                if not fallback:
                    raise
                log.warning("%s version %s is gone; deploying %s", name, version, entry["ref"])
                await self._deploy(name, entry["ref"], None)
                replaced = True
            canary = None
        canary = self.canaries.get(name)
        if split is None:
            if canary is not None:  # rolled back elsewhere
                await self._end_canary(name, promote=False)
        elif canary is None or str(canary.model.version) != str(split.get("version")) \
                or canary.percent != split["percent"]:
            await self._deploy_canary(name, split["ref"], check_percent(split["percent"]), split.get("version"))
        return replaced

    def _retire(self, dep: LoadedModel) -> None:
        """A version that no longer takes requests: its queue drains, then its thread stops."""
        dep.batcher.close()

    async def _announce(self, name: str) -> None:
        """Write *name*'s entry and, with other processes, wait until each serves the same."""
        await self._save(name)
        if self.peers is not None:
            await self.peers.announce()

    async def _save(self, name: str) -> None:
        """Rewrite *name*'s entry of ``deployments.json`` from this process' state, leaving the
        others' entries as they are (another process may have just written one), under a file lock."""
        entry = None
        dep, canary = self.live.get(name), self.canaries.get(name)
        if dep is not None:
            entry = {"ref": dep.ref, "version": dep.version}
            if canary is not None:
                entry["canary"] = {"ref": canary.model.ref, "version": canary.model.version,
                                   "percent": canary.percent}
        await asyncio.get_running_loop().run_in_executor(None, _write_entry, state_file(self.home), name, entry)

    def _load(self, name: str, ref: str, version: int | None) -> LoadedModel:
        """On a worker thread: everything slow happens here, before any swap."""
        if ref in BUILTIN_REFS:
            from .runtime import load_builtin

            (rt, framework), version = load_builtin(ref), 1
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


def _read_state(path: Path) -> dict | None:
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.error("cannot read %s: %s", path, e)
        return None
    return saved if isinstance(saved, dict) else None


def _write_entry(path: Path, name: str, entry: dict | None) -> None:
    """Read-modify-write one name of the state file, under an exclusive ``flock`` on a lock file
    beside it: two processes of one server changing two names at once both keep their change."""
    import fcntl

    make_private_dir(path.parent)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = _read_state(path) or {}
        if entry is None:
            state.pop(name, None)
        else:
            state[name] = entry
        write_private(path, json.dumps(state, indent=1, sort_keys=True).encode())
    finally:
        os.close(fd)
