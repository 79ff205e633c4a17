"""A running job's progress reaches the registry while it runs (what the sidebar reads).

First the recorder itself against a real registry (throttling, trailing edge, never after the
end, a failing write), then a real torch job on the session's LocalCluster, watched from
outside the kernel's façade through a separate ``Registry`` on the same home.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

from aiaas_jupyter.job_progress import ProgressRecorder, phase_of
from aiaas_jupyter.registry import JobRecord, Registry

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def running(progress: float) -> dict:
    return {"status": "running", "started": "2026-01-01T00:00:00+00:00", "worker": "tcp://w:1",
            "progress": progress}


@pytest.fixture
def reg(tmp_path):
    reg = Registry(tmp_path)
    reg.record_job(JobRecord(id="j1", model="m"))
    return reg


def recorder_for(reg: Registry, interval: float) -> ProgressRecorder:
    return ProgressRecorder(lambda job_id, fields: reg.update_live_job(job_id, **fields), interval)


def test_update_live_job_only_touches_live_jobs(reg):
    assert reg.update_live_job("j1", status="running", progress=0.5) is True
    assert (reg.get_job("j1").status, reg.get_job("j1").progress) == ("running", 0.5)
    reg.update_job("j1", status="cancelled")
    assert reg.update_live_job("j1", status="running", progress=0.7) is False
    assert (reg.get_job("j1").status, reg.get_job("j1").progress) == ("cancelled", 0.5)
    assert reg.update_live_job("no-such-job", progress=0.1) is False
    with pytest.raises(ValueError, match="unknown or read-only"):
        reg.update_live_job("j1", id="other")


def test_phases():
    assert [phase_of(s) for s in ("start", "fit", "train", "epoch", "evaluate", "done", "custom", None)] \
        == ["start", "fit", "fit", "fit", "evaluate", "done", "custom", None]


def test_first_write_after_the_first_delay_then_throttled_with_trailing_edge(reg):
    rec = recorder_for(reg, interval=0.5)
    assert rec.first_delay == 0.25
    t0 = time.monotonic()
    rec.observe("j1", running(0.1), "fit")
    assert rec.idle(5)
    assert time.monotonic() - t0 >= 0.25  # the first write waited for the first delay
    first = reg.get_job("j1")
    assert (first.status, first.progress, first.worker) == ("running", 0.1, "tcp://w:1")
    assert first.started == "2026-01-01T00:00:00+00:00"
    # same phase, within the interval: held back, then only the newest values are written
    rec.observe("j1", running(0.2), "epoch")
    rec.observe("j1", running(0.3), "epoch")
    time.sleep(0.1)
    if time.monotonic() - t0 < 0.45:  # the window certainly still open: nothing new written
        assert reg.get_job("j1").progress == 0.1
    assert rec.idle(5)
    assert time.monotonic() - t0 >= 0.5  # the trailing write waited for the window
    assert reg.get_job("j1").progress == 0.3 and rec.writes == 2 and rec.failures == 0


def test_a_job_that_ends_within_the_first_delay_writes_nothing(reg):
    """A short job (W0: tens of ms) would only write rows its completion overwrites at once."""
    rec = recorder_for(reg, interval=1.0)
    for stage, progress in (("start", 0.0), ("fit", 0.0), ("evaluate", 0.9), ("done", 1.0)):
        rec.observe("j1", running(progress), stage)
    rec.end("j1")
    assert rec.idle(5)
    time.sleep(0.35)  # past the first delay: nothing was written late either
    assert rec.writes == 0 and reg.get_job("j1").status == "pending"


def test_the_writer_thread_is_kept_between_jobs(reg):
    """Starting a thread per job cost the event loop, where observe runs, a thread start."""
    rec = ProgressRecorder(lambda job_id, fields: reg.update_live_job(job_id, **fields), 0.2, linger=0.5)
    rec.observe("j1", running(0.1), "fit")
    assert rec.idle(5) and rec.writes == 1
    writer = rec._thread
    reg.record_job(JobRecord(id="j2", model="m"))
    rec.observe("j2", running(0.2), "fit")
    assert rec.idle(5) and rec.writes == 2 and rec._thread is writer
    writer.join(5)  # idle for longer than linger: it ends, and the next job starts another
    assert not writer.is_alive()
    reg.record_job(JobRecord(id="j3", model="m"))
    rec.observe("j3", running(0.3), "fit")
    assert rec.idle(5) and rec.writes == 3 and reg.get_job("j3").progress == 0.3


def test_phase_change_is_written_at_once(reg):
    rec = recorder_for(reg, interval=30.0)  # a throttled write would take 30 s
    rec.observe("j1", running(0.5), "epoch")
    assert rec.idle(5)
    rec.observe("j1", running(0.9), "evaluate")
    assert rec.idle(10)  # well under the 30 s window
    assert reg.get_job("j1").progress == 0.9 and rec.writes == 2
    # "done" waits for the window: the completion write follows it and drops it (end)
    rec.observe("j1", running(1.0), "done")
    assert not rec.idle(0.5)
    rec.end("j1")
    assert rec.idle(5) and rec.writes == 2 and reg.get_job("j1").progress == 0.9


def test_never_after_the_job_ended(reg):
    rec = recorder_for(reg, interval=0.2)
    reg.update_job("j1", status="finished", progress=1.0, version=3)
    rec.observe("j1", running(0.4), "fit")  # a late event, arriving after the final write
    assert rec.idle(5)
    after = reg.get_job("j1")
    assert (after.status, after.progress, after.version) == ("finished", 1.0, 3)
    # once told the job ended, the recorder writes nothing more for it at all
    reg.record_job(JobRecord(id="j2", model="m"))
    rec.end("j2")
    rec.observe("j2", running(0.4), "fit")
    assert rec.idle(5) and rec.writes == 1
    assert reg.get_job("j2").status == "pending"


def test_a_failed_write_is_logged_and_the_job_goes_on(tmp_path, caplog):
    (tmp_path / "a-file").write_text("not a directory")
    broken = Registry(tmp_path / "a-file" / "home")  # cannot be created, even by root
    rec = recorder_for(broken, interval=0.1)
    with caplog.at_level(logging.WARNING, logger="aiaas_jupyter.job_progress"):
        rec.observe("j9", running(0.5), "fit")  # must not raise
        assert rec.idle(5)
    assert rec.failures == 1 and rec.writes == 0
    assert any("j9" in r.getMessage() and "ConfigError" in r.getMessage() for r in caplog.records)


def slow_frame(n: int = 4000, d: int = 16) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype("float32")
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    df["target"] = (X[:, :4].sum(axis=1) > 0).astype(int)
    return df


def test_live_progress_of_a_real_job_seen_from_outside(aiaas, session_home):
    """About 0.35-0.45 s per epoch (3,200 rows, batch 8, 256 hidden units, one torch thread;
    measured): 10 epochs are 3.5-4.5 s of training, long enough for a few throttled writes (one
    a second) while it runs."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
    outside = Registry(session_home)  # another handle on the same database, as the server has
    writes_before = aiaas.progress_recorder.writes
    t0 = time.monotonic()
    job = aiaas.train(model, slow_frame(), "target", name="progress-mlp", epochs=10, batch_size=8, seed=0)
    seen = []
    while not job.done() and time.monotonic() - t0 < 120:
        rec = outside.get_job(job.id)
        seen.append((rec.status, rec.progress))
        time.sleep(0.02)
    mv = job.result(timeout=5)
    elapsed = time.monotonic() - t0
    live = [p for status, p in seen if status == "running" and 0.0 < p < 1.0]
    assert live, f"no running 0 < progress < 1 seen in {len(seen)} reads: {sorted(set(seen))}"
    progress = [p for _, p in seen]
    assert progress == sorted(progress)  # never goes back
    assert {s for s, _ in seen} <= {"pending", "running", "finished"}
    final = outside.get_job(job.id)
    assert (final.status, final.progress, final.version) == ("finished", 1.0, mv.version)
    assert final.started and final.worker.startswith("tcp://") and final.duration_s > 0
    # throttled: one write per phase (start, fit) plus at most one a second in between; a start
    # that the fit follows within aiaas.jobs.event-delay is never sent (seen: a 1.1 s run, 1 write)
    writes = aiaas.progress_recorder.writes - writes_before
    assert 1 <= writes <= 2 + math.ceil(elapsed / aiaas.progress_recorder.interval) + 1, (writes, elapsed)
    # Recording runs beside the job, never in its way: what the kernel waited beyond the
    # worker's own time (dispatch, data, registration) stays small. Relative to this run's own
    # training time, not a wall-clock bound that a slower machine breaks.
    print(f"elapsed {elapsed:.1f} s, on the worker {final.duration_s:.1f} s, {writes} writes")
    assert elapsed - final.duration_s < 8, (elapsed, final.duration_s)
