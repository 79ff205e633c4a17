"""A job's progress events are held back on its worker for its first moments (remote.HeldEvents):
a job that ends by then sends none (W0: they were a third of its dispatch time), a longer one
sends them all, in order, and a cancel still reaches a job whose worker the kernel does not know.
"""

from __future__ import annotations

import threading
import time

import dask
import pytest

from aiaas_jupyter.remote import HeldEvents


def test_held_events_are_dropped_when_the_task_ends_in_time():
    sent: list = []
    events = HeldEvents(sent.append, delay=0.5)
    events({"stage": "start"})
    events({"stage": "fit"})
    events.close()
    time.sleep(0.7)  # the timer fires after the close: nothing goes
    assert sent == []
    events({"stage": "late"})
    assert sent == []


def test_held_events_go_in_order_once_the_delay_is_over_then_at_once():
    sent: list = []
    opened = threading.Event()
    events = HeldEvents(lambda e: (sent.append(e), opened.set()), delay=0.1)
    for i in range(3):
        events({"n": i})
    assert sent == []
    assert opened.wait(5)
    assert sent == [{"n": 0}, {"n": 1}, {"n": 2}]
    events({"n": 3})  # after the delay: straight through
    assert sent[-1] == {"n": 3} and len(sent) == 4
    events.close()
    events({"n": 4})
    assert len(sent) == 4


def test_no_delay_sends_at_once():
    sent: list = []
    events = HeldEvents(sent.append, delay=0)
    events({"n": 0})
    assert sent == [{"n": 0}]


def _train(aiaas, frame, seconds: float, name: str):
    from sklearn.dummy import DummyClassifier

    class Sleepy(DummyClassifier):
        def fit(self, X, y):
            time.sleep(seconds)
            return super().fit(X, y)

    return aiaas.train(Sleepy(), frame, "target", name=name, block=True)


def test_a_job_that_ends_within_the_delay_sends_no_event(aiaas, iris_frame):
    with dask.config.set({"aiaas.jobs.event-delay": 120.0}):  # longer than any cold start
        job = _train(aiaas, iris_frame, 0.0, "quick-events")
    assert job.status == "finished" and job.events == []
    # what the events would have said is in the registry all the same
    rec = aiaas.registry.get_job(job.id)
    assert rec.worker.startswith("tcp://") and rec.progress == 1.0 and rec.version == job.version.version


def test_a_longer_job_sends_every_event_in_order(aiaas, iris_frame):
    with dask.config.set({"aiaas.jobs.event-delay": 0.1}):
        job = _train(aiaas, iris_frame, 1.0, "slow-events")
    stages = [e["stage"] for e in job.events]
    assert stages == ["start", "fit", "evaluate", "done"]
    assert {e["worker"] for e in job.events} == {job.record.worker}
    assert job.events[0]["elapsed"] < 0.1 <= job.events[2]["elapsed"]  # stamped when emitted, not when sent


@pytest.mark.parametrize("worker_known", [False], ids=["worker-not-yet-known"])  # known: test_train_jobs
def test_cancel_frees_the_worker_whether_or_not_the_kernel_knows_it(aiaas, one_torch_thread, worker_known):
    """Dask's cancel does not interrupt a running task: the worker running it is asked to stop.
    Before the job's first event the kernel does not know which worker that is: every worker
    is asked, and only the one running it keeps a stop flag."""
    import numpy as np
    import pandas as pd
    import torch

    from aiaas_jupyter import remote

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 16)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(y=(X[:, 0] > 0).astype(int))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    with dask.config.set({"aiaas.jobs.event-delay": 0.1 if worker_known else 600.0}):
        job = aiaas.train(model, df, "y", name="cancel-events", epochs=2000, batch_size=32)
    deadline = time.time() + 120
    if worker_known:
        while job.latest.get("epoch") is None and time.time() < deadline:  # one epoch done
            time.sleep(0.05)
        worker = job.record.worker
        assert worker and job.status == "running"
    else:
        def running_on() -> str | None:
            return next((w for w, keys in aiaas.dask.processing().items() if job.record.key in keys), None)

        while running_on() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # well into its epochs: the worker has begun executing it
        worker = running_on()
        assert worker and job.record.worker is None and job.events == []
    aiaas.cancel(job.id)
    t0 = time.time()
    # the worker has one thread: this runs only once the cancelled training let go of it
    assert aiaas.dask.submit(lambda: 42, workers=[worker], allow_other_workers=False, pure=False).result(30) == 42
    assert time.time() - t0 < 10
    assert job.status == "cancelled"
    job_id = job.id
    assert not any(aiaas.dask.run(lambda: job_id in remote._STOPS).values())  # no flag left anywhere
