"""SweepDriver: one sweep's way through Dask — fan-out, early stopping, the best registered.

One **driver thread** per sweep owns the sweep's Optuna study and its Dask futures. Everything
that happens to the sweep reaches it as an item on one queue — a trial's epoch (from the sweep's
event topic, on Dask's event loop), a trial's end (a future's done-callback), ``cancel()`` (the
notebook), the cluster closing — so the study and the futures are touched by one thread only,
and no blocking Dask call is ever made on Dask's event loop.

Why it is shaped this way:

* **Never more than ``max_concurrent`` trials in flight**, and the next trial is asked *after*
  the last one was told, so TPE learns from every finished trial. When a trial ends the next one
  is submitted before the registry is written, so a worker waits one round trip, not a write.
* **The data travel once per worker**: the frame is scattered to every worker (``broadcast``)
  and every trial task depends on that one key; the trial plan (model, ``make_model``) too.
* **Early stopping is Optuna's pruner** fed with each epoch's metric; a trial it stops is told
  on its own worker (:func:`.sweep_trial.stop_trial` via ``client.run``) and ends after its
  current epoch, freeing the worker.
* **A failing trial is one line in the leaderboard**, the sweep goes on; but when the first
  trials all fail and none succeeded, the sweep stops: the same mistake would repeat N times.
* **The best trial's model is registered once, at the end** (kept on its worker, packaged there);
  registry first, then clean-up, then the state transition that wakes ``result()``.
* **On an external cluster a sweep outlives its kernel**: its plan, data and running trials are
  published, and ``attach`` rebuilds the study from the registry and drives the rest.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from .clock import now_iso
from .errors import AiaasError, SweepError
from .registry import TrialRecord
from .registry.sweeps_table import SWEEP_TERMINAL, TRIAL_LIVE
from .sweep_state import SweepState
from .sweep_study import Study
from .sweep_trial import drop_sweep, export_trial, go_on, ladder_task, stop_trial, sweep_topic, trial_key, trial_task
from .tracebacks import one_line

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Registry

_log = logging.getLogger(__name__)
#: stop a sweep whose first this-many trials all failed (none finished)
FAIL_FAST = 3


def dataset_name(sweep_id: str, what: str) -> str:
    """The name a sweep's plan or data is published under on an external cluster."""
    return f"aiaas-sweep-{sweep_id}-{what}"


class SweepDriver(threading.Thread):
    """Drives one sweep; see the module docstring."""

    def __init__(self, registry: "Registry", session, state: SweepState, study: Study, *,
                 plan_future, data_future, gpus: int, register: str, next_number: int = 0, reattached=()):
        super().__init__(name=f"aiaas-sweep-{state.id}", daemon=True)
        self.registry, self.session = registry, session
        self.client = session.require_dask()
        self.state, self.study = state, study
        self.plan_future, self.data_future = plan_future, data_future
        self.resources = {"GPU": gpus} if gpus else None
        self.register = register
        self.queue: queue.Queue = queue.Queue()
        self.futures: dict[int, Any] = {}
        self.workers: dict[int, str] = {}
        self.stopping: set[int] = set()
        self.reattached = set(reattached)
        self.next_number = next_number
        self.cancelled = False
        self.closing: bool | None = None
        self.external = not session.embedded
        self.started_at = time.time()

    # -- inputs from other threads ---------------------------------------------------------
    def on_event(self, event) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if isinstance(msg, dict):
            self.queue.put(("event", msg))

    def follow(self, number: int, future) -> None:
        self.futures[number] = future
        future.add_done_callback(lambda fut: self.queue.put(("done", (number, fut))))

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._fill()
            while self.futures:
                kind, payload = self.queue.get()
                if kind == "event":
                    self._on_event(payload)
                elif kind == "done":
                    self._on_done(*payload)
                elif kind == "cancel":
                    self._cancel_all()
                elif kind == "close":
                    self._on_close(payload)
                    return
            self._end()
        except Exception as exc:  # noqa: BLE001 - the sweep must end, never hang its waiters
            _log.exception("aiaas: sweep %s driver failed", self.state.id)
            self._fail(exc if isinstance(exc, AiaasError) else SweepError(f"sweep {self.state.id} failed: "
                                                                          f"{one_line(exc)}"))

    def _fill(self) -> None:
        """Submit trials until max_concurrent tasks are in flight or the plan is exhausted (a
        forest ladder is one task for several trials: :func:`.sweep_trial.ladder_task`)."""
        record = self.state.record
        while not self.cancelled and self._tasks_in_flight() < record.max_concurrent \
                and self.next_number < record.n_trials and not self._failing():
            batch = self.study.ask_ladder(self.next_number)
            numbers = list(range(self.next_number, self.next_number + len(batch)))
            self.next_number += len(batch)
            key = trial_key(record.id, numbers[0])
            trials = [TrialRecord(sweep_id=record.id, number=n, params=p, key=key) for n, p in zip(numbers, batch)]
            if len(batch) == 1:
                future = self.client.submit(trial_task, self.plan_future, self.data_future, numbers[0], batch[0],
                                            key=key, pure=False, resources=self.resources)
            else:
                future = self.client.submit(ladder_task, self.plan_future, self.data_future, numbers, batch,
                                            key=key, pure=False, resources=self.resources)
            if self.external:
                self.client.publish_dataset(future, name=key)
            for trial in trials:
                self.follow(trial.number, future)
                self.registry.record_trial(trial, sweep_fields=self.state.trial_added(trial))

    def _tasks_in_flight(self) -> int:
        return len({future.key for future in self.futures.values()})

    def _failing(self) -> bool:
        counts = self.state.counts()
        return counts.get("error", 0) >= min(FAIL_FAST, self.state.record.n_trials) \
            and not counts.get("finished") and not counts.get("pruned")

    def _on_event(self, msg: dict) -> None:
        number = msg.get("number")
        if number not in self.futures:
            return  # late: the trial ended already
        worker = msg.get("worker")
        if worker:
            self.workers[number] = worker
        try:
            if msg.get("stage") == "start":
                self.state.trial_running(number, worker)
                if self.cancelled:  # it started while we were cancelling
                    self._stop_trial(number)
                return
            value = (msg.get("metrics") or {}).get(self.state.record.metric)
            epoch = msg.get("epoch")
            stop = epoch is not None and number not in self.stopping and self.study.report(number, value, int(epoch))
            entry = {"epoch": epoch, "metrics": msg.get("metrics") or {}, "value": value,
                     "seconds": msg.get("seconds"), **({"stop": True} if stop else {})}
            self.state.trial_epoch(number, entry, value, worker)
        except SweepError:  # raced its end
            return
        if stop:
            self._stop_trial(number)
        elif epoch is not None and int(epoch) in self.study.rungs and worker:  # it waits at the rung for this
            self.client.run(go_on, self.state.id, number, workers=[worker], on_error="ignore")

    def _stop_trial(self, number: int) -> None:
        worker = self.workers.get(number)
        if number in self.stopping or worker is None:
            return
        self.stopping.add(number)
        self.client.run(stop_trial, self.state.id, number, workers=[worker], on_error="ignore")

    def _on_done(self, number: int, future) -> None:
        if self.futures.pop(number, None) is None:
            return
        status, fields = self._outcome(number, future)
        if number in self.reattached:
            self.study.add_ended([self._as_ended(number, status, fields)])
        else:
            # a ladder's smaller forest was read off the largest, not fitted: its seconds say
            # nothing of what fitting it costs, so the longest-first cost model does not learn them
            shared = self.state.trial(number).key != trial_key(self.state.id, number)
            self.study.tell(number, status, fields.get("value"), None if shared else fields.get("seconds"))
        sweep_fields = self.state.trial_ended(number, status, **fields)
        self._fill()  # the next trial goes out before the registry write
        key = self.state.trial(number).key
        if self.external and key not in {f.key for f in self.futures.values()} \
                and key in (self.client.list_datasets() or ()):
            self.client.unpublish_dataset(key)
        self.registry.record_trial(self.state.trial(number), sweep_fields=sweep_fields)

    def _outcome(self, number: int, future) -> tuple[str, dict]:
        metric = self.state.record.metric
        if future.status == "cancelled":
            return "cancelled", {}
        if future.status != "finished":  # the task itself broke (its worker died, it could not unpickle)
            exc = future.exception()
            return "error", {"error": exc.args[0] if isinstance(exc, AiaasError) and exc.args else one_line(exc)}
        res = future.result()
        if "trials" in res:  # one of a forest ladder's trials
            res = res["trials"][number]
        fields = {"metrics": res["metrics"], "seconds": res["seconds"], "worker": res["worker"]}
        if res.get("error"):
            return "error", {**fields, "error": res["error"]}
        if res["stopped"]:
            last = self.state.trial(number).value
            value = res["value"] if res["value"] is not None else last
            return ("cancelled" if self.cancelled else "pruned"), {**fields, "value": value}
        if res["value"] is None:
            return "error", {**fields, "error": f"the trial reported no {metric} "
                                                f"(it reported {', '.join(res['metrics'])})"}
        return "finished", {**fields, "value": float(res["value"])}

    def _as_ended(self, number: int, status: str, fields: dict) -> TrialRecord:
        trial = self.state.trial(number)
        trial.status, trial.value = status, fields.get("value")
        return trial

    def _cancel_all(self) -> None:
        self.cancelled = True
        for number, future in list(self.futures.items()):
            if number in self.workers:
                self._stop_trial(number)      # running: ends after its epoch, as "cancelled"
            else:
                future.cancel()         # not started: dropped

    # -- the end -------------------------------------------------------------------------------
    def _end(self) -> None:
        record, fields = self.state.record, {}
        fields["duration_s"] = time.time() - self.started_at
        best = self.state.best()
        version = None
        if self.cancelled:
            self._clean_up()
            exc = SweepError(f"sweep {record.id} was cancelled; nothing was registered",
                             hint=f"%aiaas sweep show {record.id} lists its trials")
            self._write_end("cancelled", fields, exc)
            self.state.cancelled(exc, fields)
            return
        if best is None:  # every trial failed (or was pruned): one line, nothing registered
            self._clean_up()
            errors = [t.error for t in self.state.trial_records() if t.error]
            first = f"; first error: {errors[0]}" if errors else ""
            exc = SweepError(f"sweep {record.id}: no trial finished{first}", hint=f"%aiaas sweep show {record.id}")
            self._write_end("error", fields, exc)
            self.state.error(exc, fields)
            return
        if self.register == "best":
            version = self._register(best)
            fields["version"] = version.version
        self._clean_up()
        self._write_end("finished", fields, None)
        self.state.finished(version, fields)

    def _register(self, best: TrialRecord):
        """Package the best trial's model on the worker that kept it (or fit it again) and
        register it as the next version, with lineage to the sweep."""
        record = self.state.record
        workers = [best.worker] if best.worker else None
        future = self.client.submit(export_trial, self.plan_future, self.data_future, best.number, best.params,
                                    workers=workers, allow_other_workers=True, pure=False,
                                    resources=self.resources)
        result, how = future.result()
        info = record.info or {}
        extra = dict(result.extra)
        extra.update(n_train=result.n_train, n_test=result.n_test, device=result.device, history=result.history,
                     target=info.get("target"), sweep=record.id, trial=best.number, sweep_metric=record.metric,
                     sweep_params=best.params, obtained=how)
        return self.registry.register(
            record.model, framework=result.framework, artifacts=result.artifacts, params=result.params,
            metrics=result.metrics, library_versions=result.library_versions,
            data_fingerprint=result.data_fingerprint, source=info.get("source", ""), job_id=None, extra=extra)

    def _clean_up(self) -> None:
        """Forget the sweep on the cluster: kept models, stop flags, published plan and data."""
        client, sweep_id = self.client, self.state.id
        if client.status != "running":
            return
        client.unsubscribe_topic(sweep_topic(sweep_id))
        try:
            client.run(drop_sweep, sweep_id, on_error="ignore")
        except Exception:  # noqa: BLE001 - a worker going away must not fail a finished sweep
            _log.debug("aiaas: sweep %s: drop on workers failed", sweep_id, exc_info=True)
        if self.external:
            published = set(client.list_datasets() or ())
            for what in ("plan", "data"):
                if dataset_name(sweep_id, what) in published:
                    client.unpublish_dataset(dataset_name(sweep_id, what))
        self.plan_future = self.data_future = None

    def _write_end(self, status: str, fields: dict, exc: AiaasError | None) -> None:
        row = {**fields, **self.state.sweep_fields(), "status": status, "finished": now_iso()}
        if exc is not None:
            row["error"] = str(exc)
        self.registry.update_sweep(self.state.id, **row)

    def _fail(self, exc: AiaasError) -> None:
        for future in self.futures.values():
            future.cancel()
        for trial in self.state.trial_records():
            if trial.status in TRIAL_LIVE:
                try:
                    self.registry.record_trial(self.state.trial(trial.number),
                                               sweep_fields=self.state.trial_ended(trial.number, "cancelled"))
                except SweepError:
                    pass
        try:
            self._clean_up()
        except Exception:  # noqa: BLE001
            _log.debug("aiaas: clean-up after failure failed", exc_info=True)
        fields = {"duration_s": time.time() - self.started_at}
        try:
            self._write_end("error", fields, exc)
        finally:
            if self.state.status not in SWEEP_TERMINAL:
                self.state.error(exc, fields)

    def _on_close(self, embedded: bool) -> None:
        """Our client closes. An embedded cluster takes the trials with it (lost); on an external
        one they go on, and ``attach`` from any kernel drives the rest."""
        if not embedded:
            return
        reason = "the embedded cluster was closed"
        for trial in self.state.trial_records():
            if trial.status in TRIAL_LIVE:
                self.registry.record_trial(self.state.trial(trial.number),
                                           sweep_fields=self.state.trial_ended(trial.number, "lost"))
        fields = {"duration_s": time.time() - self.started_at}
        exc = self.state.lost(reason, fields)
        self.registry.update_sweep(self.state.id, status="lost", error=str(exc), finished=now_iso(), **fields)


__all__ = ["SweepDriver", "dataset_name", "FAIL_FAST"]
