"""W3o — a sweep's per-trial overhead: N trials of a 1 s task on W workers against ceil(N / W) s.

The trial is ``_tasks.SleepyClassifier`` (its ``fit`` sleeps 1 s; ``seed`` is the grid axis, so the
N configurations are distinct and equally costly), on 200 rows, ``register="none"``: what is left
of the wall time beyond the ideal is what the sweep spends per trial (submitting it, the trial's
events, the registry writes, asking for the next configuration). A raw ``client.map`` of the same
fits, every task queued at once, is reported alongside as the Dask floor. See benchmarks/README.md.
"""

from __future__ import annotations

import math

import _common as c
from w0_dispatch import connected
from w3_sweep import N_WORKERS, SEED, load_average

W3O_TRIALS, W3O_DELAY = 64, 1.0


def sleepy_frame():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    df = pd.DataFrame(rng.standard_normal((200, 4)), columns=[f"x{i}" for i in range(4)])
    df["y"] = (df["x0"] > 0).astype("int64")
    return df


def _sleepy_sweep(client, df, trials: int, delay: float, name: str):
    import _tasks

    s = client.sweep(_tasks.SleepyClassifier(delay=delay), df, "y", space={"seed": list(range(trials))},
                     name=name, search="grid", register="none", max_concurrent=N_WORKERS, seed=SEED, block=True)
    if s.status != "finished":
        raise RuntimeError(f"W3o sweep {s.id} ended {s.status}: {s.record.error}")
    return s


def run(size: str, repeat: int | None = None) -> dict:
    """W3o: see the module docstring. ``repeat`` sets the trial count (default 64; smoke tests use few)."""
    import _tasks

    trials, delay = repeat or W3O_TRIALS, W3O_DELAY
    df = sleepy_frame()
    X, y = df.drop(columns=["y"]), df["y"]
    load0 = load_average()
    with connected(n_workers=N_WORKERS, threads_per_worker=1) as client:
        workers = len(client.dask.scheduler_info(n_workers=-1)["workers"])
        c.log("W3o: warm-up (a 2-trial sweep of 0.1 s tasks)")
        _sleepy_sweep(client, df, 2, 0.1, "w3o-warm")
        c.log(f"W3o: {trials} trials of a {delay:g} s fit on {workers} workers")
        ours_s, s = c.timed(lambda: _sleepy_sweep(client, df, trials, delay, "w3o"))

        def raw():
            futures = client.dask.map(_tasks.fit_sleepy, [X] * trials, [y] * trials, [delay] * trials,
                                      range(trials), pure=False)
            return client.dask.gather(futures)

        raw_s, _ = c.timed(raw)
    ideal = math.ceil(trials / workers) * delay
    finished = int((s.trials["status"] == "finished").sum())
    if finished != trials:
        raise RuntimeError(f"W3o: {finished} of {trials} trials finished")
    return c.result(
        "W3o", size, ours_s, ideal,
        baseline="ideal ceil(N/W) x delay", trials=trials, delay_s=delay, n_workers=workers,
        threads_per_worker=1, ideal_s=ideal, overhead_ms_per_trial=1e3 * (ours_s - ideal) * workers / trials,
        raw_dask_map_s=raw_s, raw_overhead_ms_per_trial=1e3 * (raw_s - ideal) * workers / trials,
        sweep_duration_s=s.record.duration_s, trials_finished=finished, load_avg=[load0, load_average()])


if __name__ == "__main__":
    import sys

    c.prepare_environment()
    c.emit(run("quick", int(sys.argv[1]) if len(sys.argv) > 1 else None))
