"""W6 — data-parallel training: the W1 MLP through ``%%aiaas train --workers N`` vs ``--workers 1``.

One warm embedded cluster of N workers (quick: 2 worker processes x 1 thread, CPU, gloo; full:
one worker per GPU, NCCL). Both sides run through the magic, end to end, with the same data,
seed and epochs; the N-worker job's ``--batch-size`` is the one-worker batch / N, so the
effective batch is the same. Reported: the training loop's samples/s from each job's epoch
events (rank 0's: all ranks' samples), scaling efficiency = (N-worker samples/s) / (N x
one-worker samples/s), end-to-end wall times, and both held-out accuracies (the same held-out
rows: the kernel splits as one worker would).

``--streamed`` (reported as W6s): the same data as a dask DataFrame of 4 partitions, which both
jobs read one partition at a time (one worker: ``training/torch_stream.py``; N workers: each
rank its own partitions, ``training/torch_ddp_stream.py``), as for data larger than the workers'
memory. The held-out rows are then each partition's (the same on both sides). Partitions hold
several batches (batches do not span partitions: with partitions smaller than the batch, the
one-worker job would take smaller batches than the N-worker one, and a different problem).

Run alone with ``python benchmarks/w6_ddp.py [--full] [--streamed]``.
"""

from __future__ import annotations

import time

import _common as c
from w0_dispatch import connected, make_shell
from w1_torch import CLASSES, FEATURES, MODEL_CELL, make_data

CONFIGS = {"quick": {"rows": 100_000, "epochs": 3, "batch_size": 8192, "hidden": 512, "workers": 2, "gpus": 0},
           "full": {"rows": 2_000_000, "epochs": 5, "batch_size": 8192, "hidden": 512, "workers": None, "gpus": 1}}


def _loop_samples_per_s(job) -> float:
    """Samples/s over the epochs after the first (which pays warm-up), from the job's events."""
    epochs = [e for e in job.version.extra["history"]]
    later = epochs[1:] or epochs
    return sum(e["samples_per_s"] * e["seconds"] for e in later) / sum(e["seconds"] for e in later)


def _gpu_count() -> int:
    import torch

    return max(1, torch.cuda.device_count())


#: partitions of the dask DataFrame with --streamed
STREAMED_PARTITIONS = 4


def run(size: str, repeat: int | None = None, streamed: bool = False) -> dict:
    from IPython.utils.capture import capture_output

    cfg = dict(CONFIGS[size])
    gpus = cfg["gpus"]
    n = cfg["workers"] or _gpu_count()
    df = make_data(cfg["rows"])
    if streamed:
        import dask.dataframe as dd

        df = dd.from_pandas(df, npartitions=STREAMED_PARTITIONS)
    cell = MODEL_CELL.format(features=FEATURES, hidden=cfg["hidden"], classes=CLASSES)
    with connected(n_workers=n, threads_per_worker=1, gpus=n if gpus else 0) as client:
        shell = make_shell(client)
        shell.user_ns["df"] = df
        gpu_opt = f" --gpus {gpus}" if gpus else ""

        def train(name: str, workers: int, batch: int):
            line = (f"train --data df --target y --name {name} --epochs {cfg['epochs']} --batch-size {batch} "
                    f"--lr 0.001 --workers {workers} -o job{gpu_opt}")
            t0 = time.perf_counter()
            with capture_output():
                shell.run_cell_magic("aiaas", line, cell)
            job = shell.user_ns["job"]
            job.result(timeout=3600)
            return job, time.perf_counter() - t0

        c.log(f"W6{'s' if streamed else ''}: {n} workers vs 1, {cfg['rows']} rows, {cfg['epochs']} epochs, effective batch {cfg['batch_size']}")
        one, one_s = train("w6-one", 1, cfg["batch_size"])
        many, many_s = train("w6-many", n, cfg["batch_size"] // n)
    one_sps, many_sps = _loop_samples_per_s(one), _loop_samples_per_s(many)
    if streamed:
        assert many.version.extra["streamed"]["rank_partitions"] == STREAMED_PARTITIONS // n
    return c.result(
        "W6s" if streamed else "W6", size, many_sps, one_sps, better="higher", unit="samples/s",
        workers=n, efficiency=many_sps / (n * one_sps), one_worker_wall_s=one_s, n_worker_wall_s=many_s,
        one_worker_accuracy=one.version.metrics["accuracy"], n_worker_accuracy=many.version.metrics["accuracy"],
        backend=many.version.extra["data_parallel"]["backend"], rows=cfg["rows"], epochs=cfg["epochs"],
        effective_batch_size=cfg["batch_size"], per_worker_batch_size=cfg["batch_size"] // n,
        threads_per_worker=1, streamed_partitions=STREAMED_PARTITIONS if streamed else None,
        note="ratio = N-worker loop samples/s over one worker's; efficiency = ratio / N")


def run_streamed(size: str, repeat: int | None = None) -> dict:
    """W6s: :func:`run` on the same data as a dask DataFrame, read partition by partition."""
    return run(size, repeat, streamed=True)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--streamed", action="store_true", help="a dask DataFrame, read partition by partition (W6s)")
    a = ap.parse_args()
    c.prepare_environment()
    c.emit(run("full" if a.full else "quick", streamed=a.streamed))
