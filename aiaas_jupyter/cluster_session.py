"""ClusterSession: this kernel's connection to one Dask cluster, embedded or external.

Why a part of its own: the façade used to hold the Dask client, the embedded cluster, the idle
watch and the close lock next to the jobs and the serving calls, and each piece read the
others' private flags. Here is everything about *being connected*: connect, disconnect, the
idle timeout of the embedded cluster, ``require_dask`` (the one "not connected" error), the
cluster summary, the GPU-capacity check and the kernel/worker version check. The low-level
start/connect helpers stay in :mod:`.cluster`, the closing order in :mod:`.cluster_life`.

Whoever must act before the cluster goes (the job dispatcher: an embedded cluster's running
jobs are lost) registers with :meth:`on_close`; the session never imports the jobs.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Callable

from . import cluster as _cluster
from . import cluster_snapshot, dashboard_link
from . import settings as _settings
from .errors import AiaasVersionWarning, ClusterError, ResourceError


class ClusterSession:
    """The Dask client (``dask``) and, when we started it, the embedded cluster (``cluster``)."""

    def __init__(self, home: str | os.PathLike):
        self.home = home
        self.dask = None            # distributed.Client
        self.cluster = None         # the embedded cluster, when we started one
        self.gateway_cluster = None  # a dask-gateway cluster (dask_gateway.GatewayCluster), when we hold one
        self.versions_checked = False
        self._closing = False
        self._ended: str | None = None  # why the embedded cluster went away by itself (idle)
        self._close_lock = threading.RLock()  # one close at a time (disconnect vs. the idle close)
        self._on_close: list[Callable[[bool], None]] = []

    @property
    def embedded(self) -> bool:
        return self.cluster is not None

    @property
    def closing(self) -> bool:
        """True while this session closes its client on purpose (done-callbacks then stand back)."""
        return self._closing

    def on_close(self, fn: Callable[[bool], None]) -> None:
        """Call ``fn(embedded)`` under the close lock just before the cluster connection closes."""
        self._on_close.append(fn)

    # -- connecting -------------------------------------------------------------------------
    def connect(self, address: str | None = None, *, scheduler_file: str | None = None,
                n_workers: int | None = None, threads_per_worker: int | None = None,
                gpus: int | str | None = None, timeout: float | str | None = None,
                gateway: str | None = None, cluster_name: str | None = None,
                cluster_options: dict | None = None, adapt=None) -> None:
        """Start the embedded cluster (no address), attach to a scheduler, or create / attach to a
        cluster of a dask-gateway (*gateway*, or an address ``gateway://HOST:PORT``)."""
        from .cluster_args import check_layout, check_timeout

        check_layout(n_workers, threads_per_worker, gpus)  # bad numbers: one ClusterError, before any work
        if timeout is not None:
            check_timeout(timeout)
        address = address or (None if scheduler_file or gateway else _settings.config("cluster.address"))
        if gateway is None and address and str(address).startswith("gateway://"):
            gateway, address = address, None
        if gateway is None and (cluster_name or cluster_options or adapt is not None):
            raise ClusterError("--cluster, --cluster-options and --adapt go with a dask-gateway",
                               hint="%aiaas connect --gateway URL ...")
        gateway_cluster = None
        # the new connection first: a mistyped address must not cost the cluster we have
        if gateway is not None:
            from . import gateway as _gateway

            bounds = _gateway.parse_adapt(adapt) if adapt is not None else None
            gateway_cluster, dask_client = _gateway.connect_gateway(
                gateway, cluster_name=cluster_name, options=cluster_options, n_workers=n_workers, adapt=bounds,
                timeout_s=check_timeout(timeout) if timeout is not None else 120.0)
            cluster = None
        elif address or scheduler_file:
            cluster, dask_client = None, _cluster.connect_external(address, scheduler_file, timeout)
        else:
            spec = _cluster.ClusterSpec.for_machine(n_workers, threads_per_worker, gpus)
            if self.dask is not None:  # one embedded cluster at a time (Dask's log levels don't nest)
                self.disconnect()
            cluster, dask_client = _cluster.start_embedded(spec)
        if self.dask is not None:
            self.disconnect()
        self.cluster, self.dask, self._ended = cluster, dask_client, None
        self.gateway_cluster = gateway_cluster
        if cluster is not None:
            self._watch_embedded(cluster)
        self.versions_checked = not _settings.config("jobs.check-versions")

    def disconnect(self, shutdown: bool = False) -> None:
        """Close the connection. Jobs on an external cluster keep running (``%aiaas attach``), and
        so does a gateway cluster unless *shutdown* (which only a gateway cluster takes: a
        scheduler someone started by hand is theirs to stop)."""
        from . import cluster_life

        if shutdown and self.gateway_cluster is None and not self.embedded:
            raise ClusterError("--shutdown stops a dask-gateway cluster; this kernel is attached to a scheduler "
                               "it did not start", hint="%aiaas disconnect (the scheduler keeps running)")
        with self._close_lock:
            self._closing = True
            try:
                for fn in self._on_close:
                    fn(self.embedded)
                dask_client, cluster, self.dask, self.cluster, self._ended = self.dask, self.cluster, None, None, None
                gateway_cluster, self.gateway_cluster = self.gateway_cluster, None
                cluster_life.close(dask_client, cluster)  # quiet, client first, about a second
                if gateway_cluster is not None:
                    from . import gateway as _gateway

                    _gateway.release(gateway_cluster, shutdown=shutdown)
            finally:
                self._closing = False
        cluster_snapshot.record_disconnected(self.home)

    def require_dask(self):
        if self._ended:
            raise ClusterError(self._ended, hint="run %aiaas connect (or aiaas_jupyter.connect()) to start a new one")
        if self.dask is None or self.dask.status in ("closed", "closing"):
            raise ClusterError("not connected to a Dask cluster",
                               hint="run %aiaas connect (or aiaas_jupyter.connect())")
        return self.dask

    def _watch_embedded(self, cluster) -> None:
        """Close the embedded cluster at interpreter exit, and after ``aiaas.cluster.idle-timeout``."""
        from . import cluster_life
        from .serving.lifetime import parse_duration

        cluster_life.close_at_exit(self)
        idle = _settings.config("cluster.idle-timeout")
        seconds = parse_duration(idle)
        if not seconds:
            return
        shown = idle if isinstance(idle, str) else f"{seconds:g} s"

        def closed_when_idle() -> None:  # on a thread, once the scheduler closes itself
            if self.cluster is not cluster or self._closing:
                return
            self._ended = f"the embedded cluster shut down after {shown} idle"  # every call says so now
            with self._close_lock:
                if self.cluster is not cluster:  # disconnected meanwhile
                    return
                cluster_life.wait_closed(cluster)
                cluster_life.close(self.dask, cluster)
                self.dask = self.cluster = None
            cluster_snapshot.record_disconnected(self.home)

        cluster_life.arm_idle_timeout(cluster, seconds, closed_when_idle)

    # -- what the cluster is ------------------------------------------------------------------
    def summary(self) -> dict:
        summary = _cluster.summarize(self.require_dask())
        if self.gateway_cluster is not None:  # the scheduler is not reachable from the browser: the proxy is
            summary["dashboard"] = self.gateway_cluster.dashboard_link
            summary["scheduler"] = self.gateway_cluster.scheduler_address  # gateway://PROXY/NAME
            summary["gateway"] = {"cluster": self.gateway_cluster.name}
        elif summary.get("dashboard"):  # through the kernel's Jupyter server when it proxies
            mode = _settings.config("cluster.dashboard-proxy")
            if mode not in ("auto", "never"):
                raise ClusterError(f"aiaas.cluster.dashboard-proxy must be auto or never, got {str(mode)[:40]!r}")
            link, note = dashboard_link.browser_link(summary["dashboard"], mode)
            if link != summary["dashboard"]:
                summary["dashboard_direct"] = summary["dashboard"]
                summary["dashboard"] = link
            if note:
                summary["dashboard_note"] = note
        return summary

    def check_gpu_capacity(self, gpus: int) -> None:
        summary = self.summary()
        if summary["max_gpus_per_worker"] < gpus:
            have = summary["max_gpus_per_worker"]
            raise ResourceError(
                f"no worker can hold {gpus} GPU(s): the largest worker has {have} "
                f"({summary['gpus']} GPU(s) on {summary['n_workers']} worker(s))",
                hint="lower --gpus, or connect to a cluster whose workers advertise --resources GPU=N")

    def check_versions(self, framework: str | None = None, stacklevel: int = 3) -> list[str]:
        """Compare the packages a job needs in the kernel and on every worker; warn once
        (*stacklevel*: the warning names the caller of the façade method that got here)."""
        from .dependencies import package_versions

        self.versions_checked = True
        mine = package_versions()
        theirs = self.require_dask().run(package_versions)
        problems = []
        for pkg, ours in mine.items():
            if ours is None or (pkg == "torch" and framework != "torch"):
                continue
            differing = sorted({v for v in (w.get(pkg) for w in theirs.values()) if v != ours}, key=str)
            if differing:
                problems.append(f"{pkg} {ours} in the kernel, {' / '.join(str(v or 'missing') for v in differing)} on workers")
        if problems:
            warnings.warn("version mismatch between kernel and workers: " + "; ".join(problems)
                          + " (jobs may fail or behave differently)", AiaasVersionWarning, stacklevel=stacklevel)
        return problems

    def ensure_versions(self, framework: str | None = None) -> None:
        """The version check, once per connection (setting ``aiaas.jobs.check-versions``)."""
        if not self.versions_checked:
            self.check_versions(framework, stacklevel=4)


__all__ = ["ClusterSession"]
