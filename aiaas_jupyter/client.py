"""The façade: the one Python API that magics, widgets and the server extension all call.

``AiaasClient`` owns the Dask client (embedded or external), the registry, and the live
jobs of this kernel. Module-level functions (``aiaas_jupyter.connect``, ``train``, ...) use
one default instance, as ``distributed`` does with its default client.

Training data flow: the kernel checks everything it can up front (framework, data, target,
GPU capacity, names) so that bad input fails at once with one line; then the task runs on a
worker and returns plain data + safe artifact bytes; the kernel registers the model only
after the task succeeded (atomic registry write), so a failed job registers nothing.

Serving (deploy, endpoints, predict, ask, embed) lives in :mod:`.serving_service`, mixed in here.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
import warnings
from typing import Any

from . import cluster as _cluster
from . import settings as _settings
from . import cluster_snapshot
from .data import check_target, resolve_frame, run_preprocess
from .display import Table
from .errors import (AiaasError, AiaasVersionWarning, ClusterError, JobError, JobNotFoundError,
                     ResourceError)
from .job_handle import Job, now_iso
from .registry.jobs_table import TERMINAL
from .registry import JobRecord, Registry, validate_name
from .serving_service import ServingMixin
from .tracebacks import index_of
from .views import cluster_table, jobs_table, model_card, models_table


#: in-kernel pandas frames below this size travel inside the task instead of a scatter round trip
SMALL_FRAME_BYTES = 1_000_000


class AiaasClient(ServingMixin):
    def __init__(self, home: str | os.PathLike | None = None):
        self.registry = Registry(home)
        self.dask = None            # distributed.Client
        self.cluster = None         # the embedded cluster, when we started one
        self._jobs: dict[str, Job] = {}
        self._versions_checked = False
        self._closing = False
        self._recorder = None       # ProgressRecorder, created with the first job
        self._ended: str | None = None  # why the embedded cluster went away by itself (idle)
        self._close_lock = threading.RLock()  # one close at a time (disconnect vs. the idle close)

    @property
    def progress_recorder(self):
        """Writes running jobs' progress to the registry, throttled (see :mod:`.job_progress`)."""
        if self._recorder is None:
            from .job_progress import ProgressRecorder

            self._recorder = ProgressRecorder(self._write_progress, _settings.config("jobs.record-interval"))
        return self._recorder

    def _write_progress(self, job_id: str, fields: dict) -> None:
        self.registry.update_live_job(job_id, **fields)  # the registry as it is now (the server swaps it)

    # -- cluster -------------------------------------------------------------------------
    def connect(self, address: str | None = None, *, scheduler_file: str | None = None,
                n_workers: int | None = None, threads_per_worker: int | None = None,
                gpus: int | str | None = None, timeout: float | str | None = None) -> Table:
        """Start the embedded cluster (no address) or attach to a scheduler; show its status."""
        from .cluster_args import check_layout, check_timeout

        check_layout(n_workers, threads_per_worker, gpus)  # bad numbers: one ClusterError, before any work
        if timeout is not None:
            check_timeout(timeout)
        address = address or (None if scheduler_file else _settings.config("cluster.address"))
        # the new connection first: a mistyped address must not cost the cluster we have
        if address or scheduler_file:
            cluster, dask_client = None, _cluster.connect_external(address, scheduler_file, timeout)
        else:
            spec = _cluster.ClusterSpec.for_machine(n_workers, threads_per_worker, gpus)
            if self.dask is not None:  # one embedded cluster at a time (Dask's log levels don't nest)
                self.disconnect()
            cluster, dask_client = _cluster.start_embedded(spec)
        if self.dask is not None:
            self.disconnect()
        self.cluster, self.dask, self._ended = cluster, dask_client, None
        if cluster is not None:
            self._watch_embedded(cluster)
        self._versions_checked = not _settings.config("jobs.check-versions")
        self._forget_orphans()
        return self.status()

    def disconnect(self) -> None:
        """Close the connection. Jobs on an external cluster keep running (``%aiaas attach``)."""
        with self._close_lock:
            self._disconnect()
        cluster_snapshot.record_disconnected(self.registry.home)

    def _disconnect(self) -> None:
        self._closing = True
        if self.embedded:  # the embedded cluster dies with us, and so do its running jobs
            for job in self._jobs.values():
                if not job.done():
                    self.progress_recorder.end(job.id)
                    self.registry.update_job(job.id, status="lost", error="the embedded cluster was closed")
                    job._finish("lost", error=JobError(f"job {job.id} was lost: the embedded cluster was closed"))
        from . import cluster_life

        dask_client, cluster, self.dask, self.cluster, self._ended = self.dask, self.cluster, None, None, None
        cluster_life.close(dask_client, cluster)  # quiet, client first, about a second
        self._jobs = {j: job for j, job in self._jobs.items() if job.done()}
        self._closing = False

    @property
    def embedded(self) -> bool:
        return self.cluster is not None

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
            cluster_snapshot.record_disconnected(self.registry.home)

        cluster_life.arm_idle_timeout(cluster, seconds, closed_when_idle)

    def cluster_summary(self) -> dict:
        return _cluster.summarize(self.require_dask())

    def status(self) -> Table:
        summary = self.cluster_summary()
        cluster_snapshot.record(self.registry.home, summary)  # what the sidebar shows (never asks Dask)
        return cluster_table(summary, embedded=self.embedded)

    # -- preprocessing -------------------------------------------------------------------
    def preprocess(self, input: Any, output: str = "df", body=None, *, namespace: dict | None = None,
                   per_partition: bool = False, save: str | None = None):
        """Run *body* over *input* on the cluster; the persisted result is bound to *output*."""
        if not output.isidentifier():
            raise AiaasError(f"--output must be a Python identifier, got {output!r}")
        result = run_preprocess(self.require_dask(), input, output, body, namespace, per_partition, save)
        if namespace is not None:
            namespace[output] = result.frame
        return result

    # -- plain functions -------------------------------------------------------------------
    def map(self, func, *iterables, chunksize: int | None = None, errors: str = "raise", retries: int = 0,
            gpus: int = 0, resources: dict | None = None, block: bool = True, progress: bool = True):
        """``func(*args)`` for each item of the zipped *iterables*, on the cluster; the results in
        order (or a :class:`~.fanout.MapJob` with ``block=False``). See :mod:`.fanout`."""
        from .fanout import run_map

        dask_client = self.require_dask()
        if gpus:
            self._check_gpu_capacity(gpus)
            resources = {**(resources or {}), "GPU": gpus}
        if not self._versions_checked:
            self.check_versions()
        ipython = sys.modules.get("IPython")  # a live bar only where a kernel renders it; no import here
        in_kernel = ipython is not None and type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"
        return run_map(dask_client, func, iterables, chunksize=chunksize, errors=errors, retries=retries,
                       resources=resources, block=block, progress=progress, in_kernel=in_kernel,
                       display_interval=_settings.config("jobs.display-interval"))

    # -- training ------------------------------------------------------------------------
    def train(self, model, data, target: str, *, name: str | None = None, optimizer=None, loss=None,
              test_size: float = 0.2, gpus: int = 0, epochs: int = 10, batch_size: int = 32,
              lr: float | None = None, seed: int = 0, source: str = "", namespace: dict | None = None,
              block: bool = False, display: bool = False) -> Job:
        """Dispatch a training job; return its :class:`Job` at once (or when done, with *block*)."""
        from .remote import event_topic, train_task
        from .training import detect_framework
        from .training.base import TrainSpec

        dask_client = self.require_dask()
        framework = detect_framework(model)
        frame = resolve_frame(data, namespace)
        check_target(frame, target)
        name = validate_name(name or type(model).__name__.lower())
        if not 0.0 < test_size < 1.0:
            raise AiaasError(f"--test-size must be between 0 and 1, got {test_size}")
        if gpus:
            self._check_gpu_capacity(gpus)
        if not self._versions_checked:
            self.check_versions(framework)

        job_id = uuid.uuid4().hex[:10]
        record = JobRecord(
            id=job_id, model=name, status="pending", progress=0.0, worker=None, gpus=gpus,
            scheduler=dask_client.scheduler.address, key=f"aiaas-train-{job_id}",
            submitted=now_iso(), info={"framework": framework, "target": target, "source": source,
                                       "data": data if isinstance(data, str) else None,
                                       "embedded": self.embedded, "pid": os.getpid(),
                                       # what "Copy as magic" needs to write the cell back
                                       "train": {"test_size": test_size, "gpus": gpus, "epochs": epochs,
                                                 "batch_size": batch_size, "lr": lr, "seed": seed}})
        self.registry.record_job(record)
        job = Job(record, display_interval=_settings.config("jobs.display-interval"),
                  on_progress=self.progress_recorder.observe,
                  code_index=index_of(model, optimizer, loss))
        job.client = self
        self._jobs[job_id] = job
        spec = TrainSpec(model=model, target=target, optimizer=optimizer, loss=loss, test_size=test_size,
                         seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, gpus=gpus)
        dask_client.subscribe_topic(event_topic(job_id), job._on_event)
        # a small in-kernel frame rides in the task, a large one is scattered once, and a
        # dask frame is gathered from worker memory
        if _is_pandas(frame):
            small = frame.memory_usage(deep=False).sum() < SMALL_FRAME_BYTES
            data_future = frame if small else dask_client.scatter(frame)
        else:
            data_future = dask_client.compute(frame)
        job.future = dask_client.submit(train_task, spec, data_future, job_id, key=record.key, pure=False,
                                        resources={"GPU": gpus} if gpus else None)
        if not self.embedded:  # keep it on the cluster so another kernel can re-attach
            dask_client.publish_dataset(job.future, name=record.key)
        if display:
            job.display()
        job.future.add_done_callback(lambda fut: self._complete(job, fut))
        if block:
            job.wait()
        return job

    def _check_gpu_capacity(self, gpus: int) -> None:
        summary = self.cluster_summary()
        if summary["max_gpus_per_worker"] < gpus:
            have = summary["max_gpus_per_worker"]
            raise ResourceError(
                f"no worker can hold {gpus} GPU(s): the largest worker has {have} "
                f"({summary['gpus']} GPU(s) on {summary['n_workers']} worker(s))",
                hint="lower --gpus, or connect to a cluster whose workers advertise --resources GPU=N")

    def check_versions(self, framework: str | None = None) -> list[str]:
        """Compare the packages a job needs in the kernel and on every worker; warn once."""
        from .remote import package_versions

        self._versions_checked = True
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
                          + " (jobs may fail or behave differently)", AiaasVersionWarning, stacklevel=3)
        return problems

    def _complete(self, job: Job, fut) -> None:
        """Dask done-callback: register the model, or record the failure. Never raises.

        Order matters: registry first, then the cluster-side clean-up, and only then is the
        job marked done, so whoever waits on it sees every side effect already in place.
        """
        if self._closing:  # our client is closing: the job itself goes on (or dies with its cluster)
            return
        duration = time.time() - job._t0
        fields: dict[str, Any] = {"finished": now_iso(), "duration_s": duration}
        version, error, remote_tb = None, None, ""
        try:
            if fut.status == "finished":
                version, more = self._register(job, fut.result())
                fields.update(more, status="finished", progress=1.0, version=version.version)
            elif fut.status == "cancelled":
                error = Job.cancelled_error(job.id)
                fields.update(status="cancelled")
            else:
                error = Job.describe_remote_failure(job.id, fut.exception(), fut.traceback(), job.code_index)
                remote_tb = getattr(error, "remote_traceback", "")
                fields.update(status="error", error=str(error))
        except Exception as exc:  # noqa: BLE001 - a callback that raised would leave the job hanging
            error = exc if isinstance(exc, AiaasError) else Job.describe_remote_failure(job.id, exc, exc.__traceback__)
            fields.update(status="error", error=str(error))
        try:
            self.progress_recorder.end(job.id)  # no live write after this (none could land anyway)
            self.registry.update_job(job.id, **fields)
            self._release(job)
        finally:
            for key, value in fields.items():
                setattr(job.record, key, value)
            job._finish(fields["status"], version=version, error=error, remote_traceback=remote_tb)

    def _register(self, job: Job, res) -> tuple:
        """Register a finished job's model (atomically: blobs first, then one row)."""
        extra = dict(res.extra)
        extra.update(n_train=res.n_train, n_test=res.n_test, device=res.device, history=res.history,
                     target=job.record.info.get("target"))
        version = self.registry.register(
            job.record.model, framework=res.framework, artifacts=res.artifacts, params=res.params,
            metrics=res.metrics, library_versions=res.library_versions,
            data_fingerprint=res.data_fingerprint, source=job.record.info.get("source", ""),
            job_id=job.id, extra=extra)
        return version, {"worker": res.extra.get("worker"),
                         "gpu_seconds": float(res.extra.get("gpu_seconds") or 0.0)}

    def _release(self, job: Job) -> None:
        """Stop listening for the job's events; drop the published future of an external job."""
        from .remote import event_topic

        if self.dask is None or self.dask.status != "running":
            return
        self.dask.unsubscribe_topic(event_topic(job.id))
        if not self.embedded and job.record.key in (self.dask.list_datasets() or ()):
            self.dask.unpublish_dataset(job.record.key)

    # -- jobs ----------------------------------------------------------------------------
    def jobs(self, limit: int = 50) -> Table:
        records = self.registry.list_jobs(limit)
        live = {j: self._jobs[j].record for j in self._jobs}
        return jobs_table([live.get(r.id, r) for r in records])

    def job(self, job_id: str) -> Job:
        if job_id in self._jobs:
            return self._jobs[job_id]
        return self._job_from_record(self.registry.get_job(job_id))

    def _job_from_record(self, record: JobRecord) -> Job:
        """A finished job of an earlier kernel, with its registered version when it has one."""
        job = Job(record)
        job.client = self
        if record.status == "finished" and record.version is not None:
            job.version = self.registry.get(f"{record.model}:{record.version}")
        elif record.status in TERMINAL:
            job._exception = JobError(f"job {record.id} ended as {record.status}: {record.error or 'no details'}")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        if job.status in TERMINAL:
            raise JobError(f"job {job_id} is already {job.status}")
        if job.future is None:
            raise JobError(f"job {job_id} is not attached to this kernel",
                           hint=f"%aiaas attach {job_id} first")
        job.cancel()
        job.wait(30)
        return job

    def result(self, job_id: str, timeout: float | None = None):
        return self.job(job_id).result(timeout)

    def attach(self, job_id: str) -> Job:
        """Re-attach a job started by another kernel that is still on an external cluster."""
        from .remote import event_topic

        if job_id in self._jobs:
            return self._jobs[job_id]
        record = self.registry.get_job(job_id)
        if record.status in TERMINAL:
            return self._job_from_record(record)
        dask_client = self.require_dask()
        if record.scheduler != dask_client.scheduler.address:
            raise JobError(f"job {job_id} runs on {record.scheduler}, this kernel is connected to "
                           f"{dask_client.scheduler.address}", hint=f"%aiaas connect {record.scheduler}")
        future = dask_client.get_dataset(record.key, default=None)
        if future is None:
            self.registry.update_job(job_id, status="lost", error="no longer on the cluster")
            raise JobNotFoundError(f"job {job_id} is no longer on the cluster at {record.scheduler}",
                                   hint="only jobs on an external cluster outlive their kernel")
        job = Job(record, future=future, display_interval=_settings.config("jobs.display-interval"),
                  on_progress=self.progress_recorder.observe)
        job._t0 = time.time() - _age_seconds(record.submitted)
        job.client = self
        self._jobs[job_id] = job
        for event in dask_client.get_events(event_topic(job_id)):
            job._on_event(event)
        dask_client.subscribe_topic(event_topic(job_id), job._on_event)
        future.add_done_callback(lambda fut: self._complete(job, fut))
        return job

    def _forget_orphans(self) -> None:
        """Jobs of an embedded cluster whose kernel is gone can never finish: mark them lost."""
        from .serving.state import pid_alive

        for rec in self.registry.list_jobs(1000):
            info = rec.info or {}
            if (rec.status not in TERMINAL and info.get("embedded") and info.get("pid") != os.getpid()
                    and not (isinstance(info.get("pid"), int) and pid_alive(info["pid"]))):
                self.registry.update_job(rec.id, status="lost", error="its kernel and embedded cluster ended")

    # -- models --------------------------------------------------------------------------
    def models(self) -> Table:
        return models_table(self.registry.list_models())

    def model(self, ref: str):
        """The registered :class:`~aiaas_jupyter.registry.ModelVersion` for NAME, NAME:V or NAME@ALIAS."""
        return self.registry.get(ref)

    def show(self, ref: str) -> Table:
        return model_card(self.registry.get(ref))

    def alias(self, name: str, version: int, alias: str) -> None:
        self.registry.set_alias(name, int(version), alias)

    def delete(self, ref: str) -> None:
        from .registry import parse_ref

        name, version, alias = parse_ref(ref)
        if alias is not None:
            version = self.registry.get(ref).version
        self.registry.delete(name, version)

    def load_model(self, ref: str, **kwargs):
        """Load a registered model from its safe artifact (sha256-checked).

        scikit-learn: the fitted estimator/pipeline (a pipeline trained on one text column as a
        :class:`~.registry.text_model.TextModel`, taking a DataFrame, Series or list of texts);
        torch: an :class:`~.registry.onnx_model.OnnxModel` with scikit-learn's surface, or with
        ``module=YourNet()`` that module holding the registered weights (eval mode)."""
        from .registry.serialization import load_model_files

        mv = self.registry.get(ref)
        return load_model_files(mv.framework, self.registry.read_artifacts(mv), extra=mv.extra, **kwargs)


def _is_pandas(frame) -> bool:
    import pandas as pd

    return isinstance(frame, pd.DataFrame)


def _age_seconds(iso: str | None) -> float:
    import datetime as dt

    if not iso:
        return 0.0
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(iso)).total_seconds()


_default: AiaasClient | None = None


def get_client() -> AiaasClient:
    """The kernel's default façade (created on first use)."""
    global _default
    if _default is None:
        _default = AiaasClient()
    return _default
