"""Smoke tests of the benchmarks: they run, print the documented JSON, and catch gross regressions.

``benchmarks/run.py`` runs as a subprocess, exactly as a person or CI would run it, with a
small ``--repeat`` so the whole file stays well under 90 s on 2 CPU cores (W4 and W3o start
their own servers / cluster and take longer). The bounds are
regression tripwires, not performance targets: W5's 300 ms is the project's stated budget
for ``%load_ext``; W0's is ~10x the per-job overhead measured on the development machine
(70-90 ms on 2 loaded cores, see benchmarks/README.md), far below what e.g. restarting the
cluster or re-checking worker versions on every job would cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
REQUIRED = {"workload", "size", "ours_s", "baseline_s", "ratio", "better", "unit"}

W5_MAX_OVERHEAD_MS = 300.0
W0_MAX_OVERHEAD_MS = 1000.0
#: W3o: a trial of a 1 s task may cost at most this much on top (~10x what a quiet machine shows)
W3O_MAX_OVERHEAD_MS_PER_TRIAL = 2000.0

pytestmark = pytest.mark.slow


def _run_bench(tmp_path, *args: str, timeout: float = 120.0) -> list[dict]:
    env = {**os.environ, "AIAAS_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, f"run.py {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every stdout line must be JSON
    for rec in records:
        assert REQUIRED <= rec.keys(), f"missing keys {REQUIRED - rec.keys()} in {rec}"
        assert rec["size"] == "quick"
        assert rec["better"] in ("lower", "higher")
        assert rec["ours_s"] > 0 and rec["baseline_s"] > 0
        assert rec["ratio"] == pytest.approx(rec["ours_s"] / rec["baseline_s"])
    return records


def test_w5_extension_load_is_light(tmp_path):
    (rec,) = _run_bench(tmp_path, "--quick", "--only", "W5", "--repeat", "5")
    assert rec["workload"] == "W5" and rec["runs"] == 5
    assert rec["heavy_modules_loaded"] == [], "%load_ext imported heavy modules"
    assert rec["overhead_ms"] < W5_MAX_OVERHEAD_MS
    assert rec["load_ext_ms"] < W5_MAX_OVERHEAD_MS


def test_w0_dispatch_overhead_is_bounded(tmp_path):
    (rec,) = _run_bench(tmp_path, "--quick", "--only", "W0", "--repeat", "5")
    assert rec["workload"] == "W0" and rec["jobs"] == 5
    assert rec["registered_versions"] == 5 + 3  # timed jobs + warm-up, each one registered
    assert rec["overhead_ms"] == pytest.approx(1e3 * (rec["ours_s"] - rec["baseline_s"]))
    assert rec["overhead_ms"] < W0_MAX_OVERHEAD_MS, (
        f"%%aiaas train costs {rec['overhead_ms']:.0f} ms per job over a raw submit")


def test_run_py_rejects_unknown_workload(tmp_path):
    proc = subprocess.run([sys.executable, str(RUN), "--only", "W9"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "W9" in proc.stderr and proc.stdout == ""


def test_w4_serving_both_servers_answer_correctly(tmp_path):
    """W4 at 300 requests per side: every server (ours with one process and with one per core,
    the echo ceiling, MLServer plain and batched) answers every request, sampled answers equal
    the in-process model's — or, for the ceiling, the text sent (the workload itself raises
    otherwise); no performance bound."""
    (rec,) = _run_bench(tmp_path, "--quick", "--only", "W4", "--repeat", "300", timeout=300.0)
    assert rec["workload"] == "W4" and rec["requests"] == 300 and rec["better"] == "higher"
    assert rec["unit"] == "req/s" and rec["concurrency"] == 64
    assert rec["serving_processes"] >= 1
    assert rec["workers_vs_ceiling"] == pytest.approx(rec["ours_workers_rps"] / rec["ceiling_rps"])
    for side in ("ours", "ours_workers", "ceiling", "baseline", "baseline_batched"):
        assert rec[f"{side}_errors"] == 0, f"{side}: {rec[f'{side}_errors']} failed requests"
        assert rec[f"checked_{side}"] > 0  # sampled answers, equal to the model's (else run.py fails)
        assert 0 < rec[f"{side}_p50_ms"] <= rec[f"{side}_p99_ms"]


def test_w3o_sweep_trial_overhead_is_bounded(tmp_path):
    """W3o with 6 trials of a 1 s fit on 2 workers: every trial finishes, the figures add up, and
    a trial costs less than 2 s on top of its 1 s of work (a sweep that re-sent the data, or waited
    a poll interval per trial, would show here). Ideal is ceil(6/2) x 1 s = 3 s."""
    (rec,) = _run_bench(tmp_path, "--quick", "--only", "w3o", "--repeat", "6", timeout=300.0)
    assert rec["workload"] == "W3o" and rec["trials"] == rec["trials_finished"] == 6
    assert rec["n_workers"] == 2 and rec["delay_s"] == 1.0
    assert rec["baseline_s"] == rec["ideal_s"] == 3.0
    assert rec["ours_s"] >= rec["ideal_s"]  # 6 fits that each sleep 1 s cannot end sooner on 2 workers
    assert rec["raw_dask_map_s"] >= rec["ideal_s"]
    assert rec["overhead_ms_per_trial"] == pytest.approx(1e3 * (rec["ours_s"] - 3.0) * 2 / 6)
    assert rec["overhead_ms_per_trial"] < W3O_MAX_OVERHEAD_MS_PER_TRIAL, (
        f"a sweep trial costs {rec['overhead_ms_per_trial']:.0f} ms over its 1 s of work")
