"""JobDispatcher: the Dask side of training jobs — submit, complete, register, release, attach.

Why apart from the façade: this is where a job meets the cluster (the event topic, the data
shipped with the task, the published future of an external job) and where it ends (the model
registered atomically, then the clean-up, then the state transition). The façade validates the
user's input and hands over; views follow the :class:`~.job_handle.Job` it returns. The
dispatcher moves a job only through :class:`~.job_state.JobState` transitions.

Order at the end of a job (:meth:`JobDispatcher.complete`): registry first, then the
cluster-side clean-up, and only then the transition that marks the job done, so whoever waits
on it sees every side effect in place. A failed job registers nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import job_recovery
from . import settings as _settings
from .clock import age_seconds, now_iso
from .data import is_pandas
from .errors import AiaasError, JobCancelledError, JobError, JobFailedError, JobNotFoundError
from .job_handle import Job
from .job_state import JobState
from .registry import JobRecord
from .registry.jobs_table import TERMINAL
from .tracebacks import format_remote_traceback

if TYPE_CHECKING:  # pragma: no cover
    from .cluster_session import ClusterSession
    from .registry import Registry

_log = logging.getLogger(__name__)

#: in-kernel pandas frames below this size travel inside the task instead of a scatter round trip
SMALL_FRAME_BYTES = 1_000_000
_NO_RESULT = object()  # the task ended without one (failed, cancelled)


def describe_remote_failure(job_id: str, exc: BaseException, tb, code_index=None) -> AiaasError:
    """Turn the exception a task raised into the one clear error the user sees.

    The remote traceback shows the lines of notebook-defined code (*code_index*, see
    :mod:`.tracebacks`), whatever the pickled code's file was called on the worker."""
    if isinstance(exc, AiaasError):  # a domain error raised on the worker: already clear
        return exc
    text = format_remote_traceback(exc, tb, code_index)
    where = " on the worker" if text else ""
    return JobFailedError(f"job {job_id} failed{where}: {type(exc).__name__}: {exc}", remote_traceback=text)


def cancelled_error(job_id: str) -> JobCancelledError:
    return JobCancelledError(f"job {job_id} was cancelled; nothing was registered")


class JobDispatcher:
    """The live jobs of this kernel and their way through Dask."""

    def __init__(self, registry: "Registry", session: "ClusterSession"):
        self.registry = registry
        self.session = session
        self._jobs: dict[str, Job] = {}
        self._states: dict[str, JobState] = {}  # the state behind each live handle, driven from here
        self._recorder = None       # ProgressRecorder, created with the first job
        self._events_client = None  # the Dask client whose kernel topic we follow (see _kernel_topic)
        self._job_topics: set[str] = set()  # jobs followed on their own topic (attached ones)
        self._completer = None      # the thread that runs complete(), created with the first job
        self._runs = job_recovery.RunWatch()  # which run of each job we heard from: a new one is a retry
        self._resend: dict[str, tuple] = {}  # job id -> what to submit again if its scattered data dies
        session.on_close(self._cluster_closing)

    @property
    def progress_recorder(self):
        """Writes running jobs' progress to the registry, throttled (see :mod:`.job_progress`)."""
        if self._recorder is None:
            from .job_progress import ProgressRecorder

            self._recorder = ProgressRecorder(self._write_progress, _settings.config("jobs.record-interval"))
        return self._recorder

    def _write_progress(self, job_id: str, fields: dict) -> None:
        self.registry.update_live_job(job_id, **fields)

    def _follow(self, state: JobState, future=None, code_index=None, recorded: threading.Event | None = None) -> Job:
        """A live Job of this kernel: its progress is recorded while it runs (once *recorded*
        is set, when given: the job's row exists)."""
        job = Job(state, future=future, code_index=code_index)
        recorder = self.progress_recorder

        def record(event) -> None:
            live = state.live_fields() if event is not None else None
            if live is not None and (recorded is None or recorded.is_set()):
                recorder.observe(state.id, live, event.get("stage"))

        state.add_listener(record)
        self._jobs[state.id], self._states[state.id] = job, state
        return job

    def _kernel_topic(self, dask_client) -> str:
        """The topic this kernel's jobs report to, subscribed once per Dask client (see
        :func:`.remote.kernel_topic`); its handler hands each event to its job's state."""
        from .remote import kernel_topic

        topic = kernel_topic(dask_client.id)
        if self._events_client is not dask_client:
            dask_client.subscribe_topic(topic, self._on_kernel_event)
            self._events_client = dask_client
        return topic

    def _on_kernel_event(self, event: Any) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        state = self._states.get(msg.get("job")) if isinstance(msg, dict) else None
        if state is not None:
            self._on_event(state, event)

    def _on_event(self, state: JobState, event: Any) -> None:
        """Dask ``subscribe_topic`` handler: ``event`` is ``(timestamp, msg)``. A start of a
        new run is a retry (the job's worker died); a "resumed" event is noted in its record."""
        msg = event[1] if isinstance(event, tuple) else event
        if not isinstance(msg, dict):
            return
        try:
            if self._runs.restarted(state.id, msg):
                self._retried(state)
            state.progress(msg)
            if msg.get("stage") == "resumed":
                self._persist_info(state.id, state.annotate(resumed_epoch=msg.get("epoch")))
        except JobError:  # an event after the end (it raced the result): nothing to change
            _log.debug("aiaas: event for ended job %s ignored", state.id)

    def _retried(self, state: JobState) -> None:
        """The job's worker died and Dask runs it again: say so, and give up past the retries."""
        attempt = state.retry(f"worker {state.record.worker or '(not known yet)'} died")
        self._persist_info(state.id, dict(state.record.info))
        job = self._jobs.get(state.id)
        if job is not None and attempt > job_recovery.retries() + 1:
            self.completer.submit(job.give_up, job_recovery.gave_up_reason(attempt))

    def _persist_info(self, job_id: str, info: dict) -> None:
        """The live row's ``info``, written off the event loop (the registry does I/O)."""
        self.completer.submit(self.registry.update_live_job, job_id, info=info)

    # -- submit ---------------------------------------------------------------------------
    def submit(self, spec, frame, *, name: str, info: dict, gpus: int, code_index=None,
               workers: int = 1) -> Job:
        """Ship the data, submit ``train_task``, then record the pending job (the write runs
        while the task travels: it is off the critical path, and the completion callback,
        added after it, can never register before the row exists). Events come on the
        kernel's topic; any that come before the row are recorded once it exists."""
        from .remote import train_task

        dask_client = self.session.require_dask()
        job_id = uuid.uuid4().hex[:10]
        checkpoints = (job_recovery.checkpoint_target(self.registry.home, self.session.embedded)
                       if info.get("framework") == "torch" and workers <= 1 else None)
        if checkpoints is not None:  # the URL only: storage options may hold secrets
            info = {**info, "checkpoints": checkpoints["url"]}
            if not self.session.embedded:
                job_recovery.warn_unless_shared(dask_client, checkpoints["url"])
        record = JobRecord(id=job_id, model=name, status="pending", progress=0.0, worker=None, gpus=gpus,
                           scheduler=dask_client.scheduler.address, key=f"aiaas-train-{job_id}",
                           submitted=now_iso(),
                           info={**info, "embedded": self.session.embedded, "pid": os.getpid()})
        pending = dataclasses.replace(record)  # the row as submitted (events change the live record)
        state, recorded = JobState(record), threading.Event()
        job = self._follow(state, code_index=code_index, recorded=recorded)
        topic = self._kernel_topic(dask_client)
        try:
            if workers > 1:  # one model on N workers: N ranks and one collect (see job_ddp)
                job.future = self._submit_group(dask_client, spec, frame, record, topic, workers, gpus)
            # a small in-kernel frame rides in the task, a large one is scattered once; a dask
            # frame is streamed to a torch job, or else computed into the job's worker
            elif is_pandas(frame):
                small = _shallow_nbytes(frame) < SMALL_FRAME_BYTES
                data_future = frame if small else dask_client.scatter(frame)
                if not small:  # its only copy dies with its worker: kept to send again (see _send_again)
                    self._resend[job_id] = (spec, frame, topic, checkpoints, gpus)
            elif info.get("framework") == "torch" and _streamable(frame):
                # read partition by partition on the worker: the frame may not fit in its memory
                from .job_ddp import classes
                from .training.partitions import PartitionStream

                data_future = PartitionStream(list(frame.to_delayed()), classes(frame, spec.target))
            else:
                data_future = dask_client.compute(frame)
            if workers <= 1:
                job.future = dask_client.submit(train_task, spec, data_future, job_id, topic,
                                                float(_settings.config("jobs.event-delay")), checkpoints,
                                                key=record.key,
                                                pure=False, resources={"GPU": gpus} if gpus else None)
            self.registry.record_job(pending)
        except BaseException:  # nothing recorded, nothing left running
            if job.future is not None:
                job.future.cancel()
            self._resend.pop(job_id, None)
            self._jobs.pop(job_id, None)
            self._states.pop(job_id, None)
            raise
        recorded.set()
        live = state.live_fields()
        if live is not None and state.events:  # events that came before the row: record them now
            self.progress_recorder.observe(job_id, live, state.events[-1].get("stage"))
        if not self.session.embedded:  # keep it on the cluster so another kernel can re-attach
            dask_client.publish_dataset(job.future, name=record.key)
        self._when_done(job, state, job.future)
        return job

    def _submit_group(self, dask_client, spec, frame, record: JobRecord, topic: str, n: int, gpus: int):
        """A data-parallel job: one ``rank_task`` per worker (its shard already there), pinned
        to it, and the ``collect`` task over them, whose future is the job's."""
        from . import job_ddp
        from .remote_ddp import collect, rank_task

        placed = job_ddp.place(dask_client, n, gpus)
        init = job_ddp.rendezvous(dask_client, placed[0])
        labels = job_ddp.classes(frame, spec.target)
        data = job_ddp.shards(dask_client, frame, placed, spec, labels)
        timeout = float(_settings.config("jobs.data-parallel-timeout"))
        delay = float(_settings.config("jobs.event-delay"))
        ranks = [dask_client.submit(rank_task, spec, data[r], record.id, topic if r == 0 else None, r, n, init,
                                    labels, timeout, delay, key=f"{record.key}-rank{r}", workers=[w],
                                    allow_other_workers=False, pure=False,
                                    resources={"GPU": gpus} if gpus else None)
                 for r, w in enumerate(placed)]
        return dask_client.submit(collect, ranks, gpus, key=record.key, pure=False)

    def _when_done(self, job: Job, state: JobState, fut) -> None:
        """Run :meth:`complete` once the task ended, with its result already fetched.

        The result is gathered on the event loop the moment the task ends, as
        ``future.result()`` would; then one thread of ours registers it. (A Dask done-callback
        ran on Dask's callback thread, which asked the loop for the result and waited: two
        more thread hand-overs, each a GIL hand-over too, on every job's critical path.)"""
        client = fut.client

        async def fetch() -> None:
            try:
                result = await client.gather(fut, asynchronous=True)
            except BaseException:  # noqa: BLE001 - failed or cancelled: complete() reads the future
                result = _NO_RESULT
            self.completer.submit(self.complete, job, state, fut, result)

        client.loop.add_callback(fetch)

    @property
    def completer(self):
        """The thread that registers ended jobs (off the event loop: the registry does I/O)."""
        if self._completer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._completer = ThreadPoolExecutor(1, thread_name_prefix="aiaas-job-complete")
        return self._completer

    # -- the end of a job ----------------------------------------------------------------------
    def complete(self, job: Job, state: JobState, fut, result: Any = None) -> None:
        """Register the model (*result*: the task's, if already fetched), or record the
        failure. Never raises.

        A finished job costs one registry transaction: the version row and the job's final
        fields go in together (:meth:`register`); a failure is one ``update_job``."""
        if self.session.closing:  # our client is closing: the job itself goes on (or dies with its cluster)
            return
        if (fut.status == "cancelled" and not job.cancel_requested and not job.gave_up
                and self._send_again(job, state)):
            return  # running again, with a completion of its own
        fields: dict[str, Any] = {"finished": now_iso(), "duration_s": time.time() - state.started_at}
        version, error, remote_tb, recorded = None, None, "", False
        self.progress_recorder.end(job.id)  # no live write after this (none could land anyway)
        try:
            if fut.status == "finished":
                fetched = result is not None and result is not _NO_RESULT
                version, fields = self.register(job, result if fetched else fut.result(), fields)
                recorded = True
            elif fut.status == "cancelled" and job.gave_up:
                error = JobFailedError(f"job {job.id} failed: {job.gave_up}; nothing was registered",
                                       hint="see the worker logs (%aiaas status: dashboard)")
                fields.update(status="error", error=str(error))
            elif fut.status == "cancelled" and job.cancel_requested:
                error = cancelled_error(job.id)
                fields.update(status="cancelled")
            elif fut.status == "cancelled":  # by Dask, not by the user: its inputs died with a worker
                error = JobError(f"job {job.id} was lost: the cluster dropped its task (a worker holding its "
                                 "data died); nothing was registered", hint="train it again")
                fields.update(status="lost", error=str(error))
            else:
                error = describe_remote_failure(job.id, fut.exception(), fut.traceback(), job.code_index)
                remote_tb = getattr(error, "remote_traceback", "")
                fields.update(status="error", error=str(error))
        except Exception as exc:  # noqa: BLE001 - a callback that raised would leave the job hanging
            error = exc if isinstance(exc, AiaasError) else describe_remote_failure(job.id, exc, exc.__traceback__)
            fields.update(status="error", error=str(error))
        status = fields.pop("status")
        try:
            if not recorded:
                self.registry.update_job(job.id, status=status, **fields)
            self.release(job)
        finally:
            job.drop_future()  # the outcome is in the registry (or the job is lost): nothing stays on the cluster
            self._runs.forget(job.id)
            self._resend.pop(job.id, None)
            if (job.record.info or {}).get("checkpoints"):  # ended, registered or not: its checkpoints are done with
                job_recovery.drop_checkpoints(job.record.info["checkpoints"], job.id, self.session.dask)
            try:
                if status == "finished":
                    state.finished(version, fields)
                elif status == "cancelled":
                    state.cancelled(error, fields)
                elif status == "lost":
                    state.lost(error.message.removeprefix(f"job {job.id} was lost: "), fields)
                else:
                    state.error(error, remote_tb, fields)
            except JobError:  # it ended meanwhile (lost with its cluster): that end stands
                _log.debug("aiaas: job %s already %s", job.id, state.status)

    def _send_again(self, job: Job, state: JobState) -> bool:
        """Dask dropped the task because the only copy of its scattered frame died with a worker:
        scatter the frame (still in the kernel) again and resubmit, within the retries. Whether
        the job is running again; if not, :meth:`complete` reports it lost."""
        from .remote import train_task

        resend, dask_client = self._resend.get(job.id), self.session.dask
        attempt = int((job.record.info or {}).get("attempt", 1)) + 1
        if resend is None or dask_client is None or dask_client.status != "running" \
                or attempt > job_recovery.retries() + 1:
            return False
        spec, frame, topic, checkpoints, gpus = resend
        state.retry(f"worker {job.record.worker or '(not known)'} died with its data")
        self._runs.forget(job.id)  # the next start is this new submission's, not a retry of it
        self.registry.update_live_job(job.id, status="pending", worker=None, progress=0.0,
                                      info=dict(state.record.info))
        job.future = dask_client.submit(train_task, spec, dask_client.scatter(frame), job.id, topic,
                                        float(_settings.config("jobs.event-delay")), checkpoints,
                                        key=f"{job.record.key}-{attempt}", pure=False,
                                        resources={"GPU": gpus} if gpus else None)
        if not self.session.embedded:
            dask_client.publish_dataset(job.future, name=job.record.key, override=True)
        self._when_done(job, state, job.future)
        return True

    def register(self, job: Job, res, fields: dict) -> tuple:
        """Register a finished job's model and record the job finished, atomically (blobs
        first, then ONE transaction: the version row and the job row's final *fields*).
        Returns the version and the fields as recorded (with ``status`` and ``version``)."""
        extra = dict(res.extra)
        extra.update(n_train=res.n_train, n_test=res.n_test, device=res.device, history=res.history,
                     target=job.record.info.get("target"))
        if (job.record.info or {}).get("attempt", 1) > 1:  # its worker died: the lineage says how it recovered
            extra.update({k: job.record.info[k] for k in ("attempt", "retry_reason", "resumed_epoch")
                          if k in job.record.info})
        fields = {**fields, "status": "finished", "progress": 1.0, "worker": res.extra.get("worker"),
                  "gpu_seconds": float(res.extra.get("gpu_seconds") or 0.0)}
        version = self.registry.register(
            job.record.model, framework=res.framework, artifacts=res.artifacts, params=res.params,
            metrics=res.metrics, library_versions=res.library_versions,
            data_fingerprint=res.data_fingerprint, source=job.record.info.get("source", ""),
            job_id=job.id, extra=extra, job_fields=fields)
        return version, {**fields, "version": version.version}

    def release(self, job: Job) -> None:
        """Stop following an attached job's own topic; drop the published future of an external
        job. (A job of this kernel reports on the kernel's topic: nothing to unsubscribe.)"""
        from .remote import event_topic

        dask = self.session.dask
        if dask is None or dask.status != "running":
            return
        if job.id in self._job_topics:
            self._job_topics.discard(job.id)
            dask.unsubscribe_topic(event_topic(job.id))
        if not self.session.embedded and job.record.key in (dask.list_datasets() or ()):
            dask.unpublish_dataset(job.record.key)

    def _cluster_closing(self, embedded: bool) -> None:
        """The session is about to close: an embedded cluster takes its running jobs with it."""
        self._events_client = None  # a new client subscribes anew
        self._resend.clear()  # no frame is sent again to a cluster we leave
        self._job_topics.clear()
        if embedded:
            self.lose_running("the embedded cluster was closed")
        self._jobs = {j: job for j, job in self._jobs.items() if job.done()}
        self._states = {j: state for j, state in self._states.items() if j in self._jobs}

    def lose_running(self, reason: str) -> None:
        """Every live job of this kernel can never finish: recorded and ended as lost."""
        for state in list(self._states.values()):
            if not state.done():
                self.progress_recorder.end(state.id)
                self.registry.update_job(state.id, status="lost", error=reason)
                try:
                    state.lost(reason)
                except JobError:  # it ended meanwhile
                    pass

    # -- finding jobs ------------------------------------------------------------------------------
    def live_records(self) -> dict[str, JobRecord]:
        """This kernel's jobs as it knows them now (fresher than the registry's rows)."""
        return {j: job.record for j, job in self._jobs.items()}

    def job(self, job_id: str) -> Job:
        if job_id in self._jobs:
            return self._jobs[job_id]
        return self.from_record(self.registry.get_job(job_id))

    def from_record(self, record: JobRecord) -> Job:
        """A job of an earlier kernel, as the registry has it (with its registered version)."""
        if record.status == "finished" and record.version is not None:
            return Job(JobState.ended(record, version=self.registry.get(f"{record.model}:{record.version}")))
        if record.status in TERMINAL:
            error = JobError(f"job {record.id} ended as {record.status}: {record.error or 'no details'}")
            return Job(JobState.ended(record, error=error))
        return Job(JobState(record))

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        if job.status in TERMINAL:
            raise JobError(f"job {job_id} is already {job.status}")
        if job.future is None:
            raise JobError(f"job {job_id} is not attached to this kernel", hint=f"%aiaas attach {job_id} first")
        job.cancel()
        job.wait(30)
        return job

    def attach(self, job_id: str) -> Job:
        """Re-attach a job started by another kernel that is still on an external cluster."""
        from .remote import event_topic

        if job_id in self._jobs:
            return self._jobs[job_id]
        record = self.registry.get_job(job_id)
        if record.status in TERMINAL:
            return self.from_record(record)
        dask_client = self.session.require_dask()
        if record.scheduler != dask_client.scheduler.address:
            raise JobError(f"job {job_id} runs on {record.scheduler}, this kernel is connected to "
                           f"{dask_client.scheduler.address}", hint=f"%aiaas connect {record.scheduler}")
        future = dask_client.get_dataset(record.key, default=None)
        if future is None:
            self.registry.update_job(job_id, status="lost", error="no longer on the cluster")
            raise JobNotFoundError(f"job {job_id} is no longer on the cluster at {record.scheduler}",
                                   hint="only jobs on an external cluster outlive their kernel")
        state = JobState(record, started_at=time.time() - age_seconds(record.submitted))
        job = self._follow(state, future=future)
        for event in dask_client.get_events(event_topic(job_id)):
            self._on_event(state, event)
        dask_client.subscribe_topic(event_topic(job_id), lambda event: self._on_event(state, event))
        self._job_topics.add(job_id)
        self._when_done(job, state, future)
        return job

    def forget_orphans(self) -> None:
        """Jobs of an embedded cluster whose kernel is gone can never finish: mark them lost."""
        from .serving.state import pid_alive

        for rec in self.registry.list_jobs(1000):
            info = rec.info or {}
            if (rec.status not in TERMINAL and info.get("embedded") and info.get("pid") != os.getpid()
                    and not (isinstance(info.get("pid"), int) and pid_alive(info["pid"]))):
                self.registry.update_job(rec.id, status="lost", error="its kernel and embedded cluster ended")


def _streamable(frame) -> bool:
    from .training.partitions import streamable  # lazily: training pulls in pandas

    return streamable(frame)


def _shallow_nbytes(frame) -> int:
    """About ``frame.memory_usage(deep=False).sum()`` (8 bytes a row for the index and for
    each value without a fixed width), without building two Series: that call cost 1-3 ms
    of every submit, for a decision that needs only the order of magnitude."""
    return len(frame) * (8 + sum(getattr(dtype, "itemsize", 8) for dtype in frame.dtypes))



__all__ = ["JobDispatcher", "describe_remote_failure", "cancelled_error", "SMALL_FRAME_BYTES"]
