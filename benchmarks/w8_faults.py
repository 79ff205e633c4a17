"""W8 — fault tolerance: torch jobs whose worker is SIGKILLed mid-training, on a CLI cluster.

A real cluster as a user starts one (``dask scheduler`` + 2 ``dask worker`` processes under their
nannies, one thread each). Each round trains one torch MLP job and SIGKILLs the worker running it
once it has reached a seeded epoch; the nanny starts a new worker, Dask runs the task again, the
job resumes from its last checkpoint. Every other job's frame is large enough to be scattered
(its only copy dies with the worker: the kernel sends it again). The baseline is the same job
uninterrupted on the same cluster.

Reported: jobs finished / versions registered / hangs (a job not done within ``HANG_S``) /
orphan files (``.tmp-*`` in the registry's artifacts or anything left under the checkpoints
URL), whether every job's final metrics equal the uninterrupted run's, the median epoch it
resumed at, and the total wall time of the killed jobs vs the same jobs uninterrupted (``ratio``),
beside what a restart from scratch would have cost (``restart_from_scratch_s``).

Run alone with ``python benchmarks/w8_faults.py [--kills N]`` (quick: 5 kills, full: 20).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import _common as c

KILLS = {"quick": 5, "full": 20}
EPOCHS = 10
HANG_S = 180.0


def _frame(rows: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 16)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(y=y)


def _model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2))


def _epoch(job) -> int:
    return max((e.get("epoch") or 0 for e in job.events if e.get("stage") == "epoch"), default=0)


def _warm() -> None:
    """On a worker: import what a torch job uses, so a freshly restarted worker is no slower
    than the one it replaces (what W8 measures is recovery, not a cold Python start)."""
    import importlib

    # torch._dynamo: what the first optimizer a process creates imports (~5 s here); sklearn's
    # model_selection: the held-out split (~2 s)
    for module in ("torch", "torch._dynamo", "sklearn.model_selection", "aiaas_jupyter.training.torch",
                   "aiaas_jupyter.training.torch_export", "aiaas_jupyter.training.checkpoints",
                   "aiaas_jupyter.artifacts.codec", "onnx", "onnxruntime"):
        importlib.import_module(module)


def _train(client, frame, name: str):
    return client.train(_model(), frame, "y", name=name, epochs=EPOCHS, batch_size=32, seed=1)


def run(size: str, kills: int | None = None) -> dict:
    import dask

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from support.cli_cluster import start_cli_cluster

    from aiaas_jupyter.client import AiaasClient

    n = kills or KILLS[size]
    rng = random.Random(0)
    small, large = _frame(6000), _frame(40_000, seed=1)  # 0.4 MB rides in the task; 2.7 MB is scattered
    work = Path(tempfile.mkdtemp(prefix="aiaas-w8-"))
    ckpt = work / "checkpoints"
    rows: list[dict] = []
    with start_cli_cluster(work, n_workers=2, resources=None) as info, \
            dask.config.set({"aiaas.checkpoints.url": f"file://{ckpt}", "aiaas.jobs.event-delay": 0}):
        client = AiaasClient(work / "home")
        client.connect(info["address"])
        try:
            client.dask.wait_for_workers(2, timeout=60)
            client.dask.run(_warm)
            _train(client, small, "w8-warmup").result(timeout=HANG_S)  # the first job's one-off costs
            base = {}
            for label, frame in (("small", small), ("large", large)):
                walls = []
                for k in range(2):
                    t0 = time.time()
                    job = _train(client, frame, f"w8-base-{label}")
                    job.result(timeout=HANG_S)
                    walls.append(time.time() - t0)
                base[label] = (c.median(walls), job.version.metrics)
            c.log(f"W8: uninterrupted {base['small'][0]:.1f} s (small frame), {base['large'][0]:.1f} s (scattered)")
            for i in range(n):
                label, frame = ("large", large) if i % 2 else ("small", small)
                at = rng.randint(2, EPOCHS - 3)
                client.dask.wait_for_workers(2, timeout=60)
                client.dask.run(_warm)  # the nanny's new worker imports what a job needs, as the old one had
                t0 = time.time()
                job = _train(client, frame, f"w8-{i}")
                deadline = time.time() + 120
                while _epoch(job) < at and not job.done() and time.time() < deadline:
                    time.sleep(0.02)
                worker = job.record.worker
                os.kill(client.dask.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
                finished = job.wait(HANG_S)
                wall = time.time() - t0
                resumed = [e["epoch"] for e in job.events if e.get("stage") == "resumed"]
                rows.append({"frame": label, "killed_at_epoch": at, "finished": job.status == "finished",
                             "hung": not finished, "wall_s": wall, "resumed_at": resumed[-1] if resumed else None,
                             "same_metrics": bool(job.version and job.version.metrics == base[label][1])})
                c.log(f"W8 kill {i + 1}/{n}: {label} frame, killed at epoch {at}, {job.status}, "
                      f"resumed at {rows[-1]['resumed_at']}, {wall:.1f} s")
            versions = sum(len(client.registry.versions(f"w8-{i}")) for i in range(n)
                           if any(m["name"] == f"w8-{i}" for m in client.registry.list_models()))
            orphans = sorted(str(p) for p in (work / "home" / "artifacts").rglob(".tmp-*"))
            orphans += sorted(str(p) for p in ckpt.rglob("*")) if ckpt.exists() else []
        finally:
            client.disconnect()
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    # totals over the rounds: what the kills cost against the same jobs uninterrupted, and what
    # they would have cost had each job begun again (the time until the kill, plus a whole run)
    killed_s = sum(r["wall_s"] for r in rows)
    base_s = sum(base[r["frame"]][0] for r in rows)
    resumed = [r["resumed_at"] for r in rows if r["resumed_at"] is not None]
    return c.result(
        "W8", size, killed_s, base_s, kills=n, unit_note="ours_s / baseline_s: totals over the rounds", finished=sum(r["finished"] for r in rows), versions=versions,
        hangs=sum(r["hung"] for r in rows), orphan_files=len(orphans), orphans=orphans[:5],
        same_metrics=sum(r["same_metrics"] for r in rows), resumed=len(resumed),
        median_resumed_epoch=c.median(resumed) if resumed else None, epochs=EPOCHS,
        restart_from_scratch_s=sum(base[r["frame"]][0] * (1 + r["killed_at_epoch"] / EPOCHS) for r in rows),
        rounds=rows)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()
    c.prepare_environment()
    c.emit(run("full" if a.full else "quick", a.kills))
