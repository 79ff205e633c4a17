"""SweepDispatcher: the sweeps of this kernel — start, find, cancel, attach, and the cluster closing.

The dispatcher ships a sweep's plan and data to the cluster once and starts its
:class:`~.sweep_driver.SweepDriver`; the driver does the rest. The façade checks the user's
input first (:mod:`.sweep_plan`) and returns the :class:`~.sweep_handle.Sweep` it gets from here.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .clock import age_seconds
from .data import is_pandas
from .errors import SweepError, SweepNotFoundError
from .registry.sweeps_table import SWEEP_TERMINAL, TRIAL_LIVE
from .sweep_driver import SweepDriver, dataset_name
from .sweep_handle import Sweep
from .sweep_space import SearchSpace
from .sweep_state import SweepState
from .sweep_study import Study
from .sweep_trial import sweep_topic

if TYPE_CHECKING:  # pragma: no cover
    from .cluster_session import ClusterSession
    from .registry import Registry

_log = logging.getLogger(__name__)



class SweepDispatcher:
    """The live sweeps of this kernel and their drivers."""

    def __init__(self, registry: "Registry", session: "ClusterSession"):
        self.registry = registry
        self.session = session
        self._sweeps: dict[str, Sweep] = {}
        self._drivers: dict[str, SweepDriver] = {}
        session.on_close(self._cluster_closing)

    def submit(self, plan, frame) -> Sweep:
        """Record the sweep, ship its plan and data to every worker once, start its driver.
        *plan* is a :class:`~.sweep_plan.SweepPlan`."""
        client = self.session.require_dask()
        record = plan.record
        # the frame and the plan go to every worker once; every trial depends on these two keys
        if is_pandas(frame):
            data_future = client.scatter(frame, broadcast=True, hash=False)
        else:
            data_future = client.compute(frame)
            data_future.result()
            client.replicate([data_future])
        plan_future = client.scatter(plan.trial_plan, broadcast=True, hash=False)
        record.info["keys"] = {"data": str(data_future.key), "plan": str(plan_future.key)}  # every trial's inputs
        if not self.session.embedded:  # another kernel may attach and drive the rest
            client.publish_dataset(plan_future, name=dataset_name(record.id, "plan"))
            client.publish_dataset(data_future, name=dataset_name(record.id, "data"))
        from .training.forest_prefix import ladder_key  # here: training imports pandas, the façade must not

        trial_plan = plan.trial_plan
        ladder = None if trial_plan.make_model is not None else ladder_key(trial_plan.spec.model, plan.space.axes)
        study = Study(plan.space, search=record.search, early_stop=record.early_stop, direction=record.direction,
                      seed=record.seed, n_trials=record.n_trials, max_resource=plan.max_resource,
                      min_resource=plan.grace_period, ladder=ladder)
        if study.ladder:  # shown by `%aiaas sweep show`: fewer fits than trials, and why
            record.info["shared_fits"] = study.ladder
        self.registry.record_sweep(record)
        state = SweepState(record)
        driver = SweepDriver(self.registry, self.session, state, study, plan_future=plan_future,
                             data_future=data_future, gpus=plan.gpus_per_trial, register=plan.register)
        return self._start(driver)

    def _start(self, driver: SweepDriver) -> Sweep:
        sweep_id = driver.state.id

        def cancel() -> None:
            if not driver.is_alive():
                raise SweepError(f"sweep {sweep_id} is no longer driven by this kernel",
                                 hint=f"%aiaas sweep attach {sweep_id}")
            driver.queue.put(("cancel", None))

        sweep = Sweep(driver.state, canceller=cancel)
        self._sweeps[sweep_id], self._drivers[sweep_id] = sweep, driver
        driver.client.subscribe_topic(sweep_topic(sweep_id), driver.on_event)
        driver.start()
        return sweep

    def slots(self, gpus_per_trial: int = 0) -> int:
        """How many trials the cluster can run at once: worker threads, or GPUs / GPUs per trial."""
        client = self.session.require_dask()
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        if gpus_per_trial:
            return sum(min(w.get("nthreads", 1), int(w.get("resources", {}).get("GPU", 0)) // gpus_per_trial)
                       for w in workers)
        return sum(w.get("nthreads", 1) for w in workers)

    # -- finding ---------------------------------------------------------------------------------
    def sweep(self, sweep_id: str) -> Sweep:
        """This kernel's sweep, else the registry's (read-only: attach to drive it)."""
        if sweep_id in self._sweeps:
            return self._sweeps[sweep_id]
        record = self.registry.get_sweep(sweep_id)
        return Sweep(self._ended_state(record) if record.status in SWEEP_TERMINAL
                     else SweepState(record, self.registry.list_trials(sweep_id)))

    def live_records(self) -> dict:
        return {s: sweep.record for s, sweep in self._sweeps.items()}

    def _ended_state(self, record) -> SweepState:
        state = SweepState(record, self.registry.list_trials(record.id))
        if record.version is not None:
            state.version = self.registry.get(f"{record.model}:{record.version}")
        if record.status != "finished":
            state.exception = SweepError(record.error or f"sweep {record.id} ended as {record.status}")
        return state

    def cancel(self, sweep_id: str) -> Sweep:
        sweep = self.sweep(sweep_id)
        if sweep.done():
            raise SweepError(f"sweep {sweep_id} is already {sweep.status}")
        sweep.cancel()
        sweep.wait(60)
        return sweep

    # -- attach ----------------------------------------------------------------------------------
    def attach(self, sweep_id: str) -> Sweep:
        """Drive a sweep started by another kernel that is still on this external cluster: its
        ended trials become the study's history, its running trials are followed again, and the
        trials it has not started yet are run here."""
        if sweep_id in self._sweeps:
            return self._sweeps[sweep_id]
        record = self.registry.get_sweep(sweep_id)
        if record.status in SWEEP_TERMINAL:
            return Sweep(self._ended_state(record))
        client = self.session.require_dask()
        if record.scheduler != client.scheduler.address:
            raise SweepError(f"sweep {sweep_id} runs on {record.scheduler}, this kernel is connected to "
                             f"{client.scheduler.address}", hint=f"%aiaas connect {record.scheduler}")
        plan_future = client.get_dataset(dataset_name(sweep_id, "plan"), default=None)
        data_future = client.get_dataset(dataset_name(sweep_id, "data"), default=None)
        if plan_future is None or data_future is None:
            self.registry.update_sweep(sweep_id, status="lost", error="no longer on the cluster")
            raise SweepNotFoundError(f"sweep {sweep_id} is no longer on the cluster at {record.scheduler}",
                                     hint="only sweeps on an external cluster outlive their kernel")
        trials = self.registry.list_trials(sweep_id)
        info = record.info or {}
        space = SearchSpace.from_description(info.get("space") or {})
        study = Study(space, search=record.search, early_stop=record.early_stop, direction=record.direction,
                      seed=record.seed, n_trials=record.n_trials,
                      max_resource=int(info.get("max_resource") or 1),
                      min_resource=int(info.get("grace_period") or 1),
                      done_points=[t.params for t in trials])
        study.add_ended(trials)
        state = SweepState(record, trials)
        running = {t.number: client.get_dataset(t.key, default=None) for t in trials if t.status in TRIAL_LIVE}
        driver = SweepDriver(self.registry, self.session, state, study, plan_future=plan_future,
                             data_future=data_future, gpus=int(info.get("gpus_per_trial") or 0),
                             register=info.get("register", "best"),
                             next_number=max((t.number for t in trials), default=-1) + 1,
                             reattached=[n for n, f in running.items() if f is not None])
        driver.started_at = time.time() - age_seconds(record.submitted)
        for number, future in running.items():
            if future is None:  # its task is gone with its worker or its kernel's client
                self.registry.record_trial(state.trial(number), sweep_fields=state.trial_ended(number, "lost"))
            else:
                driver.follow(number, future)
        for event in client.get_events(sweep_topic(sweep_id)):  # the epochs it ran while nobody watched
            msg = event[1] if isinstance(event, tuple) else event
            if isinstance(msg, dict) and msg.get("number") in driver.futures and msg.get("stage") != "start":
                driver.on_event(event)
        return self._start(driver)

    # -- the cluster closing -------------------------------------------------------------------
    def _cluster_closing(self, embedded: bool) -> None:
        for driver in list(self._drivers.values()):
            if driver.is_alive():
                driver.queue.put(("close", embedded))
        for driver in list(self._drivers.values()):
            driver.join(timeout=10)
        self._drivers = {s: d for s, d in self._drivers.items() if d.is_alive()}
        self._sweeps = {s: sw for s, sw in self._sweeps.items() if s in self._drivers or sw.done()}


__all__ = ["SweepDispatcher"]
