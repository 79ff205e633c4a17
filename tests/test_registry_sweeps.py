"""The registry's sweeps and trials tables against a real SQLite database on tmp_path."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time

import pytest

from aiaas_jupyter.errors import RegistryError, SweepError, SweepNotFoundError
from aiaas_jupyter.registry import (
    SWEEP_STATUSES,
    SWEEP_TERMINAL,
    TRIAL_LIVE,
    TRIAL_STATUSES,
    TRIAL_TERMINAL,
    JobRecord,
    Registry,
    SweepRecord,
    TrialRecord,
)
from aiaas_jupyter.registry import db as registry_db


def _sweep(reg: Registry, sweep_id: str = "sw-1", **overrides) -> SweepRecord:
    fields = dict(id=sweep_id, model="iris", metric="accuracy", direction="max", search="tpe",
                  early_stop="asha", n_trials=4, max_concurrent=2, seed=7,
                  info={"framework": "sklearn", "space": {"C": "loguniform(0.01, 10)"}})
    fields.update(overrides)
    rec = SweepRecord(**fields)
    reg.record_sweep(rec)
    return rec


def test_statuses_are_the_shared_lists():
    assert SWEEP_STATUSES == ("pending", "running", "finished", "error", "cancelled", "lost")
    assert TRIAL_STATUSES == ("pending", "running", "finished", "pruned", "error", "cancelled", "lost")
    assert TRIAL_LIVE == ("pending", "running")
    assert "pruned" in TRIAL_TERMINAL and "running" not in TRIAL_TERMINAL
    assert SWEEP_TERMINAL == ("finished", "error", "cancelled", "lost")


def test_sweep_and_trials_round_trip(tmp_path):
    reg = Registry(tmp_path)
    rec = _sweep(reg)
    assert reg.get_sweep("sw-1") == rec
    trial = TrialRecord("sw-1", 0, "finished", params={"C": 0.5, "kernel": "rbf", "depth": None}, value=0.93,
                        metrics={"accuracy": 0.93, "f1_macro": 0.91},
                        history=[{"epoch": 1, "metrics": {"accuracy": 0.8}, "seconds": 0.1},
                                 {"epoch": 2, "metrics": {"accuracy": 0.93}, "seconds": 0.2}],
                        worker="tcp://127.0.0.1:1", started="2026-01-01T00:00:00+00:00",
                        finished="2026-01-01T00:00:01+00:00", seconds=1.0, key="trial-sw-1-0")
    reg.record_trial(trial)
    assert reg.list_trials("sw-1") == [trial]
    # a fresh Registry object (another kernel) reads the same rows
    assert Registry(tmp_path).list_trials("sw-1")[0].history[1]["metrics"] == {"accuracy": 0.93}


def test_record_trial_upserts_by_sweep_and_number(tmp_path):
    reg = Registry(tmp_path)
    _sweep(reg)
    _sweep(reg, "sw-2")
    reg.record_trial(TrialRecord("sw-1", 1, "running", params={"C": 2}))
    reg.record_trial(TrialRecord("sw-1", 0, "running", params={"C": 1}))
    reg.record_trial(TrialRecord("sw-2", 0, "running", params={"C": 9}))
    reg.record_trial(TrialRecord("sw-1", 1, "pruned", params={"C": 2}, value=0.5))   # replaces trial 1
    trials = reg.list_trials("sw-1")
    assert [(t.number, t.status, t.value) for t in trials] == [(0, "running", None), (1, "pruned", 0.5)]
    assert [t.params for t in reg.list_trials("sw-2")] == [{"C": 9}]


def test_sweep_fields_are_written_in_the_same_transaction_as_the_trial(tmp_path):
    """A reader's snapshot never sees a trial without the counts that go with it."""
    reg = Registry(tmp_path)
    _sweep(reg, n_trials=40)
    stop, seen, bad = threading.Event(), [], []

    def read_snapshots():
        conn = sqlite3.connect(tmp_path / "registry.sqlite3", isolation_level=None)
        try:
            while not stop.is_set():
                conn.execute("BEGIN")
                n = conn.execute("SELECT COUNT(*) FROM trials WHERE sweep_id = 'sw-1'").fetchone()[0]
                counts = json.loads(conn.execute("SELECT counts FROM sweeps WHERE id = 'sw-1'").fetchone()[0])
                conn.execute("COMMIT")
                seen.append(n)
                if counts.get("finished", 0) != n:
                    bad.append((n, counts))
        finally:
            conn.close()

    def reader_took_more_than(n: int) -> None:
        """Wait (5 s at most) until the reader has taken another snapshot: on a loaded machine it
        may otherwise not be scheduled at all until every trial is written (a CI run saw only 40)."""
        deadline = time.monotonic() + 5
        while len(seen) <= n and reader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)

    reader = threading.Thread(target=read_snapshots)
    reader.start()
    try:
        reader_took_more_than(0)
        for k in range(40):
            taken = len(seen)
            reg.record_trial(TrialRecord("sw-1", k, "finished", value=k / 40),
                             sweep_fields={"counts": {"finished": k + 1}, "best_trial": k, "best_value": k / 40})
            reader_took_more_than(taken)  # it reads while the next trial is written, too
    finally:
        stop.set()
        reader.join()
    assert bad == []
    assert len(set(seen)) > 1          # the reader really ran while trials were being written
    sweep = reg.get_sweep("sw-1")
    assert (sweep.counts, sweep.best_trial, sweep.best_value) == ({"finished": 40}, 39, 39 / 40)


def test_a_rejected_sweep_field_writes_no_trial_either(tmp_path):
    reg = Registry(tmp_path)
    _sweep(reg)
    with pytest.raises(ValueError, match="invalid sweep status 'done'"):
        reg.record_trial(TrialRecord("sw-1", 0, "finished"), sweep_fields={"status": "done"})
    with pytest.raises(ValueError, match="cannot be None"):
        reg.record_trial(TrialRecord("sw-1", 0, "finished"), sweep_fields={"model": None})
    assert reg.list_trials("sw-1") == []
    with pytest.raises(SweepNotFoundError):
        reg.record_trial(TrialRecord("nope", 0, "finished"))
    assert reg.list_sweeps() == [reg.get_sweep("sw-1")]


def test_update_trial_and_its_sweep_fields(tmp_path):
    reg = Registry(tmp_path)
    _sweep(reg)
    reg.record_trial(TrialRecord("sw-1", 0, "running", params={"C": 1}))
    out = reg.update_trial("sw-1", 0, sweep_fields={"counts": {"finished": 1}, "status": "running"},
                           status="finished", value=0.8, metrics={"accuracy": 0.8}, seconds=2.5)
    assert (out.status, out.value, out.metrics, out.seconds, out.params) == ("finished", 0.8, {"accuracy": 0.8},
                                                                              2.5, {"C": 1})
    assert reg.list_trials("sw-1") == [out]
    assert (reg.get_sweep("sw-1").counts, reg.get_sweep("sw-1").status) == ({"finished": 1}, "running")
    with pytest.raises(SweepNotFoundError, match="has no trial 3") as e:
        reg.update_trial("sw-1", 3, status="finished", sweep_fields={"status": "finished"})
    assert reg.get_sweep("sw-1").status == "running"      # rolled back with the failed trial update
    assert e.value.hint == "%aiaas sweeps"
    with pytest.raises(ValueError, match="unknown or read-only trial field"):
        reg.update_trial("sw-1", 0, colour="red")
    with pytest.raises(ValueError, match="invalid trial status"):
        reg.update_trial("sw-1", 0, status="done")
    with pytest.raises(ValueError, match="trial number"):
        reg.update_trial("sw-1", -1, status="finished")


def test_update_sweep_validates_fields_and_statuses(tmp_path):
    reg = Registry(tmp_path)
    _sweep(reg)
    out = reg.update_sweep("sw-1", status="finished", version=3, best_trial=2, best_value=0.97, duration_s=12.5,
                           finished="2026-01-01T00:00:00+00:00")
    assert (out.status, out.version, out.best_trial, out.best_value, out.duration_s) == ("finished", 3, 2, 0.97, 12.5)
    assert reg.get_sweep("sw-1") == out
    with pytest.raises(ValueError, match="invalid sweep status 'pruned'"):
        reg.update_sweep("sw-1", status="pruned")   # a trial status, not a sweep one
    with pytest.raises(ValueError, match="unknown or read-only sweep field"):
        reg.update_sweep("sw-1", id="other")
    with pytest.raises(ValueError, match="direction"):
        reg.update_sweep("sw-1", direction="up")
    with pytest.raises(RegistryError, match="info must be a dict"):
        reg.update_sweep("sw-1", info=[1])
    with pytest.raises(RegistryError, match="not JSON-serialisable"):
        reg.update_sweep("sw-1", info={"f": object()})
    with pytest.raises(ValueError, match="sweep id"):
        reg.update_sweep("", status="finished")
    with pytest.raises(SweepNotFoundError):
        reg.update_sweep("nope", status="finished")
    with pytest.raises(RegistryError, match="already recorded"):
        _sweep(reg)
    assert reg.get_sweep("sw-1").status == "finished"


def test_unknown_sweep_is_a_registry_and_a_sweep_error_with_a_hint(tmp_path):
    reg = Registry(tmp_path)
    for call in (lambda: reg.get_sweep("nope"), lambda: reg.list_trials("nope")):
        with pytest.raises(SweepNotFoundError) as e:
            call()
        assert isinstance(e.value, RegistryError) and isinstance(e.value, SweepError)
        assert str(e.value) == "no sweep with id 'nope' (hint: %aiaas sweeps)"
    assert not (tmp_path / "registry.sqlite3").exists()   # looking created nothing


def test_list_sweeps_newest_first_with_limit(tmp_path):
    reg = Registry(tmp_path)
    for k in range(5):
        _sweep(reg, f"sw-{k}", submitted=f"2026-01-0{k + 1}T00:00:00+00:00")
    _sweep(reg, "sw-old", submitted="2025-12-31T00:00:00+00:00")       # recorded last, submitted first
    assert [s.id for s in reg.list_sweeps()] == ["sw-4", "sw-3", "sw-2", "sw-1", "sw-0", "sw-old"]
    assert [s.id for s in reg.list_sweeps(limit=2)] == ["sw-4", "sw-3"]
    for bad in (0, -1, True, 1.5, 10**7):
        with pytest.raises(RegistryError, match="limit must be a whole number"):
            reg.list_sweeps(limit=bad)


def test_nan_and_inf_metrics_are_stored_as_null(tmp_path):
    np = pytest.importorskip("numpy")
    reg = Registry(tmp_path)
    _sweep(reg, info={"space": {"lr": [float("inf"), 0.1]}})
    reg.record_trial(TrialRecord("sw-1", 0, "pruned", params={"lr": np.float32(0.5), "n": np.int64(3)},
                                 value=float("nan"), metrics={"loss": float("nan"), "accuracy": 0.4},
                                 history=[{"epoch": 1, "metrics": {"loss": float("-inf")}, "seconds": 0.1}]),
                     sweep_fields={"best_value": float("inf")})
    trial = reg.list_trials("sw-1")[0]
    assert trial.value is None and trial.metrics == {"loss": None, "accuracy": 0.4}
    assert trial.history[0]["metrics"] == {"loss": None}
    assert trial.params == {"lr": 0.5, "n": 3} and type(trial.params["n"]) is int
    assert reg.get_sweep("sw-1").best_value is None and reg.get_sweep("sw-1").info["space"] == {"lr": [None, 0.1]}
    with sqlite3.connect(tmp_path / "registry.sqlite3") as conn:   # strict JSON in the file itself
        for (text,) in conn.execute("SELECT metrics FROM trials UNION ALL SELECT history FROM trials"):
            json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert math.isfinite(reg.update_trial("sw-1", 0, value=0.25).value)


def test_a_version_2_registry_is_upgraded_in_place(tmp_path):
    """A registry created before sweeps existed gets the sweeps and trials tables, keeping its data."""
    from aiaas_jupyter.registry import endpoints_table, jobs_table, versions_table

    assert registry_db.SCHEMA_VERSION == 3
    path = tmp_path / "registry.sqlite3"
    with sqlite3.connect(path) as conn:   # the file a v2 registry left behind, with a job in it
        conn.executescript(versions_table.SCHEMA + jobs_table.SCHEMA + endpoints_table.SCHEMA
                           + "PRAGMA user_version = 2;")
        jobs_table.insert(conn, JobRecord("job-old", model="m", status="finished"))
    conn.close()
    reg = Registry(tmp_path)
    assert reg.list_sweeps() == []
    _sweep(reg)
    reg.record_trial(TrialRecord("sw-1", 0, "finished", value=1.0))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "sweeps_submitted" in indexes
    assert reg.get_job("job-old").status == "finished"
    assert [t.value for t in Registry(tmp_path).list_trials("sw-1")] == [1.0]
