"""W3, W3b — hyper-parameter sweeps: what ``AiaasClient.sweep`` costs and saves (W3o: w3o_overhead.py).

* **W3** (``run``): a 4 x 4 RandomForest grid (n_estimators x max_depth) through the sweep on a
  warm embedded cluster of W workers x 1 thread, against (a) the same 16 fits run serially in
  this process on the same held-out split (ratio ours / (serial / W): the parallel speed-up the
  sweep delivers) and (b) scikit-learn's ``GridSearchCV`` with the same 16 configurations and
  the same single holdout split under ``joblib.parallel_backend("dask")`` on the same Dask
  client (what a user would write by hand instead). *Ours* is what a user gets,
  ``register="best"``, where the grid over ``n_estimators`` is fitted as one ladder per depth
  (the first n trees of a seeded forest are the n-tree forest: ``training.forest_prefix``); the
  ``register="none"`` figure is reported too, so the price of packaging and registering the best
  model is visible, and so is the *unshared* sweep (every point its own fit, ``register="none"``),
  the dispatch cost without the saving, against serial / W, the raw ``client.map`` and the ceiling.
* **W3b** (``run_asha``): a 4 x 4 torch MLP grid (lr x width), 20 epochs each, with
  ``early_stop="asha"`` against the full grid on the same cluster: the best held-out accuracy
  each reaches, the gap, and the share of epochs ASHA trained.
* **W3o** (``w3o_overhead.run``): N trials of a 1 s task (``_tasks.SleepyClassifier``, N = 64) on W
  workers against the ideal ceil(N / W) s; the per-trial overhead is the rest, spread over the
  trials. A raw ``client.map`` of the same sleeps is reported alongside as the Dask floor.

Every side runs in the same process on the same cluster, interleaved (ABBA) where repeated, so
machine noise hits all of them alike. Run alone with ``python benchmarks/w3_sweep.py [W3|W3b]``; W3o lives in ``w3o_overhead.py``.
"""

from __future__ import annotations

import contextlib
import math

import _common as c
from w0_dispatch import connected

N_WORKERS = 2
# -- W3 -------------------------------------------------------------------------------------------
W3_ROWS = {"quick": 20_000, "full": 500_000}
W3_REPEATS = {"quick": 2, "full": 3}
W3_FEATURES, W3_CLASSES = 54, 7
W3_GRID = {"n_estimators": [5, 10, 20, 40], "max_depth": [4, 8, 12, 16]}
TEST_SIZE, SEED = 0.2, 0
# -- W3b ------------------------------------------------------------------------------------------
W3B_ROWS = {"quick": 20_000, "full": 2_000_000}
W3B_GRID = {"lr": [3e-4, 1e-3, 3e-3, 1e-2], "width": [16, 32, 64, 128]}
W3B_EPOCHS, W3B_BATCH = 20, 256


def forest_data(rows: int, seed: int = SEED):
    """A seeded 54-feature, 7-class frame (the shape of covtype, WORKLOADS.md's W3 data)."""
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=W3_FEATURES, n_informative=24, n_redundant=8,
                               n_classes=W3_CLASSES, n_clusters_per_class=2, class_sep=1.0, random_state=seed)
    df = pd.DataFrame(X.astype("float32"), columns=[f"f{i}" for i in range(W3_FEATURES)])
    df["y"] = y.astype("int64")
    return df


def holdout(df, target: str = "y"):
    """The trainer's split, made the same way (seeded, stratified), so the baselines fit and score
    exactly the rows the sweep's trials do."""
    from sklearn.model_selection import train_test_split

    X, y = df.drop(columns=[target]), df[target]
    return train_test_split(X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)


def grid_points(grid: dict) -> list[dict]:
    import itertools

    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def load_average() -> float | None:
    """The 1-minute load average: on a shared machine, what the parallel figures must be read with
    (2 workers on 2 cores only run in parallel when nothing else wants the cores)."""
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def alternate_many(sides: dict, repeat: int) -> dict[str, list[float]]:
    """Time every side ``repeat`` times, the order reversed every round (ABBA for any number)."""
    times: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for i in range(repeat):
        for name in (names if i % 2 == 0 else names[::-1]):
            times[name].append(c.timed(sides[name])[0])
    return times


def _forest_sweep(client, df, grid, register: str, name: str, shared: bool = True):
    from sklearn.ensemble import RandomForestClassifier

    from _tasks import UnsharedForest

    forest = (RandomForestClassifier if shared else UnsharedForest)(n_jobs=1, random_state=SEED)
    s = client.sweep(forest, df, "y", space=grid, name=name,
                     search="grid", register=register, max_concurrent=N_WORKERS, seed=SEED,
                     test_size=TEST_SIZE, block=True)
    if s.status != "finished":
        raise RuntimeError(f"W3 sweep {s.id} ended {s.status}: {s.record.error}")
    return s


def _gridsearch(client, X, y, test_fold, grid):
    """GridSearchCV on one predefined holdout split, run by joblib's Dask backend on *client*."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    gs = GridSearchCV(RandomForestClassifier(n_jobs=1, random_state=SEED), grid, cv=PredefinedSplit(test_fold),
                      refit=False, n_jobs=-1, scoring="accuracy")
    with client.dask.as_current(), joblib.parallel_backend("dask"):
        gs.fit(X, y)
    return gs


def run(size: str, repeat: int | None = None) -> dict:
    """W3: see the module docstring."""
    import numpy as np
    import pandas as pd

    import _tasks

    n = repeat or W3_REPEATS[size]
    rows = W3_ROWS[size]
    df = forest_data(rows)
    X_train, X_test, y_train, y_test = holdout(df)
    # GridSearchCV sees the train rows then the test rows, one PredefinedSplit fold (0 = test): its
    # fits get the train rows in the split's order, so they are the very fits of the serial side
    X_all, y_all = pd.concat([X_train, X_test]), pd.concat([y_train, y_test])
    test_fold = np.r_[np.full(len(X_train), -1), np.zeros(len(X_test), dtype=int)]
    points = grid_points(W3_GRID)
    out: dict = {}
    load0 = load_average()
    with connected(n_workers=N_WORKERS, threads_per_worker=1) as client:
        warm = {"n_estimators": [5], "max_depth": [2, 3]}
        c.log("W3: warm-up (skops on every worker, one small sweep, one GridSearchCV, one serial fit)")
        client.dask.run(_tasks.import_skops)
        _forest_sweep(client, df, warm, "best", "w3-warm")
        _gridsearch(client, X_all, y_all, test_fold, warm)
        _tasks.fit_score_forest(X_train, y_train, X_test, y_test, {"n_estimators": 5, "max_depth": 2})

        def ours():
            out["best"] = _forest_sweep(client, df, W3_GRID, "best", "w3")

        def ours_none():
            out["none"] = _forest_sweep(client, df, W3_GRID, "none", "w3-none")

        def unshared():
            out["unshared"] = _forest_sweep(client, df, W3_GRID, "none", "w3-unshared", shared=False)

        def serial():
            out["serial"] = []
            for p in points:
                t, score = c.timed(lambda: _tasks.fit_score_forest(X_train, y_train, X_test, y_test, p))
                out["serial"].append(score)
                fit_s.setdefault(tuple(sorted(p.items())), []).append(t)

        def gridsearch():
            out["gs"] = _gridsearch(client, X_all, y_all, test_fold, W3_GRID)

        def raw():  # the cluster's own ceiling: the 16 fits as plain client.map tasks, data scattered once
            d = client.dask
            parts = d.scatter([X_train, y_train, X_test, y_test], broadcast=True, hash=False)
            futures = d.map(_tasks.fit_score_forest, *([part] * len(points) for part in parts), points, pure=False)
            out["raw"] = d.gather(futures)

        def ceiling():  # the machine's best: W plain processes, no Dask, longest fit first (known costs)
            order = sorted(points, key=lambda p: -c.median(fit_s[tuple(sorted(p.items()))]))
            out["pool"] = list(pool.map(_tasks.fit_score_held, order))

        fit_s: dict = {}
        serial()  # the per-fit times the ceiling's longest-first order needs (not timed as a round)
        with _process_pool(N_WORKERS, (X_train, y_train, X_test, y_test)) as pool:
            c.log(f"W3: {n} interleaved rounds of sweep(best), sweep(none), unshared sweep, serial, GridSearchCV, "
                  f"raw map, process-pool ceiling on {rows} rows")
            times = alternate_many({"ours": ours, "none": ours_none, "unshared": unshared, "serial": serial,
                                    "gs": gridsearch, "raw": raw, "ceiling": ceiling}, n)
        workers = len(client.dask.scheduler_info(n_workers=-1)["workers"])
    best = out["best"]
    trials = best.trials
    serial_best = max(out["serial"])
    cv = out["gs"].cv_results_
    gs_best = float(np.max(cv["mean_test_score"]))
    gs_match = all(math.isclose(float(score), _serial_score(points, out["serial"], params), abs_tol=1e-12)
                   for params, score in zip(cv["params"], cv["mean_test_score"]))
    ours_s, none_s, unshared_s = c.median(times["ours"]), c.median(times["none"]), c.median(times["unshared"])
    serial_s, gs_s = c.median(times["serial"]), c.median(times["gs"])
    return c.result(
        "W3", size, ours_s, serial_s / workers,
        baseline="serial fits / W", rows=rows, features=W3_FEATURES, configs=len(points), repeats=n,
        n_workers=workers, threads_per_worker=1,
        ours_none_s=none_s, register_cost_s=ours_s - none_s,
        unshared_s=unshared_s, unshared_vs_serial_per_worker=unshared_s / (serial_s / workers),
        unshared_vs_raw_map=unshared_s / c.median(times["raw"]),
        shared_fits=best.record.info.get("shared_fits"), fit_tasks=len({t.key for t in best.trial_records()}),
        serial_s=serial_s, ratio_vs_serial_per_worker=ours_s / (serial_s / workers),
        gridsearch_s=gs_s, ratio_vs_gridsearch=ours_s / gs_s, ratio_none_vs_gridsearch=none_s / gs_s,
        raw_map_s=c.median(times["raw"]), ratio_vs_raw_map=ours_s / c.median(times["raw"]),
        raw_vs_serial_per_worker=c.median(times["raw"]) / (serial_s / workers),
        ceiling_s=c.median(times["ceiling"]),
        ceiling_vs_serial_per_worker=c.median(times["ceiling"]) / (serial_s / workers),
        ratio_vs_ceiling=ours_s / c.median(times["ceiling"]),
        ours_best=best.best.value, serial_best=serial_best, gridsearch_best=gs_best,
        trials_finished=int((trials["status"] == "finished").sum()), registered_version=best.version.version,
        sweep_duration_s=best.record.duration_s, all_times=times, load_avg=[load0, load_average()],
        scores_match_serial=_same_scores(points, out["serial"], best.trial_records()),
        unshared_scores_match_serial=_same_scores(points, out["serial"], out["unshared"].trial_records()),
        gridsearch_scores_match_serial=gs_match)


@contextlib.contextmanager
def _process_pool(n: int, warm_args: tuple):
    """W warm worker processes (forked before the timing: interpreter, numpy and scikit-learn
    loaded, one small fit done in each), the plain-Python ceiling of W3's parallel side."""
    import concurrent.futures as cf
    import multiprocessing as mp

    import _tasks

    with cf.ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_tasks.hold_forest_data,
                                initargs=warm_args) as pool:
        list(pool.map(_tasks.fit_score_held, [{"n_estimators": 5, "max_depth": 4}] * 2 * n))
        yield pool


def _serial_score(points, serial_scores, params: dict) -> float:
    """The serial side's held-out accuracy of the configuration *params*."""
    return serial_scores[[tuple(sorted(p.items())) for p in points].index(tuple(sorted(params.items())))]


def _same_scores(points, serial_scores, records) -> bool:
    """Whether every trial's held-out accuracy equals the serial fit's of the same configuration
    (same split, same seed: they must, or the two sides did not do the same work)."""
    by_params = {tuple(sorted(p.items())): s for p, s in zip(points, serial_scores)}
    return all(math.isclose(r.value, by_params[tuple(sorted(r.params.items()))], abs_tol=1e-12)
               for r in records)


# -- W3b ------------------------------------------------------------------------------------------
def mlp_data(rows: int, seed: int = SEED):
    """WORKLOADS.md's W1 data: X ~ N(0,1), 64 features; W ~ N(0,1) 64 x 10; y = argmax(XW + 0.5 noise)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 64), dtype=np.float32)
    W = rng.standard_normal((64, 10), dtype=np.float32)
    y = np.argmax(X @ W + 0.5 * rng.standard_normal((rows, 10), dtype=np.float32), axis=1)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(64)])
    df["y"] = y.astype("int64")
    return df


def make_mlp(params: dict):
    """The W3b network: 64 - width - width - 10 (module-level, so it travels by reference)."""
    from torch import nn

    w = int(params["width"])
    return nn.Sequential(nn.Linear(64, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 10))


def _mlp_sweep(client, df, early_stop: str, name: str):
    import torch  # noqa: F401 - the sweep checks that torch is imported before it takes make_model

    s = client.sweep(None, df, "y", space=W3B_GRID, name=name, search="grid", early_stop=early_stop,
                     max_concurrent=N_WORKERS, make_model=make_mlp, epochs=W3B_EPOCHS, batch_size=W3B_BATCH,
                     seed=SEED, test_size=TEST_SIZE, register="best", block=True)
    if s.status != "finished":
        raise RuntimeError(f"W3b sweep {s.id} ({early_stop}) ended {s.status}: {s.record.error}")
    return s


def run_asha(size: str, repeat: int | None = None) -> dict:
    """W3b: see the module docstring. ``repeat`` is the number of interleaved rounds (default 1)."""
    n = repeat or 1
    rows = W3B_ROWS[size]
    df = mlp_data(rows)
    out: dict = {}
    load0 = load_average()
    with connected(n_workers=N_WORKERS, threads_per_worker=1) as client:
        c.log("W3b: warm-up (a 2-trial, 1-epoch sweep: torch and ONNX imported on every worker)")
        import torch  # noqa: F401

        client.sweep(None, df.head(2000), "y", space={"lr": [1e-3], "width": [8, 16]}, name="w3b-warm",
                     search="grid", make_model=make_mlp, epochs=1, batch_size=W3B_BATCH, register="best",
                     block=True)

        def asha():
            out["asha"] = _mlp_sweep(client, df, "asha", "w3b-asha")

        def full():
            out["full"] = _mlp_sweep(client, df, "none", "w3b-full")

        def hyperband():  # the other pruner, for comparison (not a goal of W3b)
            out["hyperband"] = _mlp_sweep(client, df, "hyperband", "w3b-hb")

        c.log(f"W3b: {n} round(s) of the 16-config x {W3B_EPOCHS}-epoch grid, ASHA, Hyperband and full, {rows} rows")
        times = alternate_many({"asha": asha, "full": full, "hyperband": hyperband}, n)
        workers = len(client.dask.scheduler_info(n_workers=-1)["workers"])
    asha_s, full_s = out["asha"], out["full"]
    epochs_asha = sum(len(t.history) for t in asha_s.trial_records())
    epochs_full = sum(len(t.history) for t in full_s.trial_records())
    full_best, asha_best = full_s.best.value, asha_s.best.value
    counts = dict(asha_s.counts)
    return c.result(
        "W3b", size, c.median(times["asha"]), c.median(times["full"]),
        baseline="full grid, every trial to the last epoch", rows=rows, configs=len(grid_points(W3B_GRID)),
        epochs=W3B_EPOCHS, batch_size=W3B_BATCH, n_workers=workers, threads_per_worker=1, repeats=n,
        asha_best=asha_best, full_best=full_best, best_gap=(full_best - asha_best) / full_best,
        asha_best_params=asha_s.best.params, full_best_params=full_s.best.params,
        epochs_asha=epochs_asha, epochs_full=epochs_full, epochs_planned=len(grid_points(W3B_GRID)) * W3B_EPOCHS,
        epoch_share=epochs_asha / (len(grid_points(W3B_GRID)) * W3B_EPOCHS), asha_counts=counts,
        hyperband_best=out["hyperband"].best.value,
        hyperband_gap=(full_best - out["hyperband"].best.value) / full_best,
        hyperband_epoch_share=sum(len(t.history) for t in out["hyperband"].trial_records())
        / (len(grid_points(W3B_GRID)) * W3B_EPOCHS), hyperband_s=c.median(times["hyperband"]),
        all_times=times, load_avg=[load0, load_average()])


if __name__ == "__main__":
    import sys

    c.prepare_environment()
    which = sys.argv[1:] or ["W3", "W3b"]
    fns = {"W3": run, "W3B": run_asha}
    for w in which:
        with contextlib.suppress(KeyboardInterrupt):
            c.emit(fns[w.upper()]("quick"))
