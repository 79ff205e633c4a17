"""JobState: every named transition, the illegal ones refused with nothing changed, listeners
(replay, order, a raising one logged), ``retry``, and ``result()`` per end state.

No cluster: the state is plain Python, driven here as the dispatcher drives it.
"""

from __future__ import annotations

import copy
import logging
import threading

import pytest

from aiaas_jupyter.errors import JobCancelledError, JobError, JobFailedError
from aiaas_jupyter.job_handle import Job
from aiaas_jupyter.job_state import TRANSITIONS, JobState
from aiaas_jupyter.registry import JobRecord
from aiaas_jupyter.registry.jobs_table import STATUSES, TERMINAL


class Version:  # what the registry returns, reduced to what a job reads
    version, ref, metrics, data_fingerprint = 3, "m:3", {"accuracy": 0.9}, "f" * 64


def _state(status="pending", **fields) -> JobState:
    return JobState(JobRecord(id="j1", model="m", status=status, **fields))


def _snapshot(state: JobState):
    return (copy.deepcopy(state.record), list(state.events), state.version, state.exception,
            state.remote_traceback, state.done())


def _ended(how: str) -> JobState:
    state = _state()
    {"finished": lambda: state.finished(Version(), {"duration_s": 1.5}),
     "error": lambda: state.error(JobFailedError("job j1 failed: boom"), "tb"),
     "cancelled": lambda: state.cancelled(JobCancelledError("job j1 was cancelled")),
     "lost": lambda: state.lost("the embedded cluster was closed")}[how]()
    return state


def test_the_table_uses_the_registry_statuses():
    assert {to for _, to in TRANSITIONS.values() if to} <= set(STATUSES)
    assert set(TRANSITIONS) == {"running", "progress", "finished", "error", "cancelled", "lost", "retry"}


def test_running_sets_worker_and_started():
    state = _state()
    state.running("tcp://w1")
    assert (state.status, state.record.worker) == ("running", "tcp://w1")
    assert state.record.started and "+00:00" in state.record.started and not state.done()


def test_progress_appends_and_first_event_implies_running():
    state = _state()
    state.progress({"stage": "start", "worker": "tcp://w2"})
    assert state.status == "running" and state.record.started and state.record.worker == "tcp://w2"
    started = state.record.started
    state.progress({"stage": "epoch", "epoch": 1, "epochs": 2, "progress": 0.5})
    assert state.record.progress == 0.5 and state.record.started == started
    assert [e["stage"] for e in state.events] == ["start", "epoch"]
    assert state.live_fields() == {"status": "running", "started": started, "worker": "tcp://w2", "progress": 0.5}


def test_finished_records_version_and_fields_then_done():
    state = _state("running")
    state.finished(Version(), {"duration_s": 1.5, "version": 3, "gpu_seconds": 0.0})
    r = state.record
    assert (r.status, r.progress, r.duration_s, r.version, r.gpu_seconds) == ("finished", 1.0, 1.5, 3, 0.0)
    assert r.finished and state.done() and state.version.ref == "m:3" and state.exception is None
    assert state.live_fields() is None and Job(state).result(0).ref == "m:3"


@pytest.mark.parametrize("how, error_type, status", [
    ("error", JobFailedError, "error"), ("cancelled", JobCancelledError, "cancelled"), ("lost", JobError, "lost")])
def test_failed_ends_raise_their_error(how, error_type, status):
    state = _ended(how)
    job = Job(state)
    assert state.status == status and state.done() and state.version is None
    assert state.record.error == str(state.exception) and state.record.finished
    with pytest.raises(error_type) as raised:
        job.result(0)
    assert raised.value is state.exception and job.exception() is state.exception and job.error is state.exception
    if how == "error":
        assert state.remote_traceback == "tb" and job.remote_traceback == "tb"
    if how == "lost":
        assert str(state.exception).startswith("job j1 was lost: the embedded cluster was closed")


def test_finished_without_a_version_is_a_failed_result():
    state = _state()
    state.finished(None)
    with pytest.raises(JobFailedError, match="registered no model"):
        Job(state).result(0)


def test_result_times_out_while_live():
    with pytest.raises(TimeoutError, match="still pending"):
        Job(_state()).result(0.01)


@pytest.mark.parametrize("end", ["finished", "error", "cancelled", "lost"])
@pytest.mark.parametrize("transition", ["running", "progress", "finished", "error", "cancelled", "lost", "retry"])
def test_no_transition_leaves_an_end(end, transition):
    state = _ended(end)
    before = _snapshot(state)
    call = {"running": lambda: state.running("w"), "progress": lambda: state.progress({"stage": "epoch"}),
            "finished": lambda: state.finished(Version()), "error": lambda: state.error(JobFailedError("x")),
            "cancelled": lambda: state.cancelled(JobCancelledError("x")), "lost": lambda: state.lost("x"),
            "retry": lambda: state.retry("x")}[transition]
    with pytest.raises(JobError, match=f"{transition} is not allowed from {end}"):
        call()
    after = _snapshot(state)
    assert after[0] == before[0] and after[1:] == before[1:]


def test_running_twice_is_refused():
    state = _state()
    state.running("w")
    before = _snapshot(state)
    with pytest.raises(JobError):
        state.running("other")
    assert _snapshot(state)[0] == before[0]


def test_retry_goes_back_to_pending_with_attempt_and_reason():
    state = _state()
    seen = []
    state.add_listener(seen.append)
    state.progress({"stage": "epoch", "worker": "tcp://w1", "progress": 0.4})
    assert state.retry("worker tcp://w1 died") == 2
    r = state.record
    assert (r.status, r.worker, r.started, r.progress) == ("pending", None, None, 0.0)
    assert r.info == {"attempt": 2, "retry_reason": "worker tcp://w1 died"}
    assert seen[-1] == {"stage": "retry", "attempt": 2, "reason": "worker tcp://w1 died"}
    assert state.retry("again") == 3 and r.info["attempt"] == 3 and not state.done()
    state.progress({"stage": "start"})  # the new attempt runs and ends as any job
    state.finished(Version())
    assert state.status == "finished" and seen[-1] is None


def test_listeners_replay_then_follow_in_order():
    state = _state()
    first, second = [], []
    state.add_listener(first.append)
    state.progress({"stage": "start"})
    state.progress({"stage": "epoch", "epoch": 1})
    state.add_listener(second.append)  # replayed what was seen
    assert second == state.events
    state.progress({"stage": "epoch", "epoch": 2})
    state.finished(Version())
    assert first == second == state.events + [None]
    late = []
    state.add_listener(late.append)  # after the end: the events and the end
    assert late == state.events + [None]


def test_removed_listener_is_not_told():
    state = _state()
    seen = []
    remove = state.add_listener(seen.append)
    remove()
    remove()  # twice is harmless
    state.progress({"stage": "start"})
    assert seen == []


def test_a_raising_listener_is_logged_and_the_job_completes(caplog):
    state = _state()
    after = []
    state.add_listener(lambda event: 1 / 0)
    state.add_listener(after.append)
    with caplog.at_level(logging.ERROR, logger="aiaas_jupyter.job_state"):
        state.progress({"stage": "start"})
        state.finished(Version())
    assert "a listener of job j1 failed" in caplog.text and "ZeroDivisionError" in caplog.text
    assert after == [{"stage": "start"}, None] and state.done() and state.status == "finished"


def test_done_is_set_after_the_listeners():
    state = _state()
    done_when_told = []
    state.add_listener(lambda event: done_when_told.append(state.done()) if event is None else None)
    waiter = threading.Thread(target=state.wait)
    waiter.start()
    state.finished(Version())
    waiter.join(5)
    assert done_when_told == [False] and not waiter.is_alive()


def test_a_job_of_an_earlier_kernel_starts_ended():
    rec = JobRecord(id="old", model="m", status="finished", version=3)
    state = JobState.ended(rec, version=Version())
    assert state.done() and Job(state).result(0).ref == "m:3"
    with pytest.raises(JobError):
        JobState.ended(JobRecord(id="live", status="running"))
    assert all(JobState(JobRecord(id="x", status=s)).done() for s in TERMINAL)


def test_the_handle_reads_the_state():
    state = _state(gpus=1)
    job = Job(state)
    state.progress({"stage": "epoch", "epoch": 2, "epochs": 4, "loss": 0.25, "progress": 0.5})
    assert (job.id, job.status, job.progress, job.latest["epoch"]) == ("j1", "running", 0.5, 2)
    assert job.events is state.events and not job.done() and job.version is None
    assert repr(job).startswith("<Job job=j1, model=m, status=running, progress=50%")
    assert "epoch" in job._repr_html_() and "2/4" in job._repr_html_()
    seen = []
    job.add_listener(lambda j, event: seen.append((j, event)))
    assert seen == [(job, state.events[0])]
    state.finished(Version())
    assert job.lineage() == {"aiaas": {"model": "m", "version": 3, "job": "j1", "data_fingerprint": "f" * 64}}
