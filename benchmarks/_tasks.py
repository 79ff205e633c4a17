"""Task functions the baselines submit to Dask.

They live in an importable module (not in ``w0_dispatch``'s ``__main__`` or a closure) so that
Dask pickles them by reference, exactly as a user's function from an installed package would
travel; the benchmark puts this directory on the workers' PYTHONPATH before the cluster
starts (see ``_common.add_bench_dir_to_worker_path``).
"""

from __future__ import annotations


def fit_dummy(frame, target: str):
    """W0 baseline: what a user would submit by hand — fit a DummyClassifier, return it."""
    from sklearn.dummy import DummyClassifier

    X = frame.drop(columns=[target])
    return DummyClassifier().fit(X, frame[target])


def time_training_work(frame, target: str, n: int, warmup: int = 3) -> tuple[float, float]:
    """W0's floor, on a worker (``client.run``): median seconds of the trainer's whole work for a
    DummyClassifier (``run_training``: split, fit, metrics, fingerprint, skops) and of the
    baseline's bare :func:`fit_dummy`, timed alternately where both really run."""
    import statistics
    import time

    from sklearn.dummy import DummyClassifier

    from aiaas_jupyter.training import run_training
    from aiaas_jupyter.training.base import TrainSpec

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    work = lambda: run_training(TrainSpec(model=DummyClassifier(), target=target), frame, lambda e: None)  # noqa: E731
    bare = lambda: fit_dummy(frame, target)  # noqa: E731
    for _ in range(warmup):
        work(), bare()
    works, bares = [], []
    for _ in range(n):
        works.append(timed(work))
        bares.append(timed(bare))
    return statistics.median(works), statistics.median(bares)


def torch_threads() -> dict:
    """W1 diagnostic: the worker's torch threads and the allocator setting, as the nanny left them.

    Dask's nanny exports ``distributed.nanny.pre-spawn-environ`` to every worker it spawns:
    OMP_NUM_THREADS=1, which torch honours whatever ``threads_per_worker`` says, and
    MALLOC_TRIM_THRESHOLD_=65536, which (any explicit value does) freezes glibc's mmap
    threshold so large activations are mmap'ed and unmapped on every batch.
    """
    import os

    import torch

    from aiaas_jupyter import torch_thread

    # on the thread the worker's torch jobs train on (OpenMP's thread count is per thread)
    return {"torch": torch_thread.run(torch.get_num_threads), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX")}


# --- W3 / W3o (sweeps) -------------------------------------------------------------------------
# The sweep's trial tasks unpickle the cell's estimator on the workers, so its class must be
# importable there: this module is (the benchmarks directory is on the workers' PYTHONPATH).

try:  # scikit-learn is a dependency of the project, but keep this module importable without it
    from sklearn.base import BaseEstimator, ClassifierMixin
except ImportError:  # pragma: no cover
    BaseEstimator = ClassifierMixin = object


try:
    from sklearn.ensemble import RandomForestClassifier as _Forest
except ImportError:  # pragma: no cover
    _Forest = object


class UnsharedForest(_Forest):
    """W3's "unshared" side: a RandomForestClassifier the sweep does not recognise by its exact
    class name, so every grid point is its own fit (no n_estimators ladder, see
    ``aiaas_jupyter.training.forest_prefix``): the dispatch cost without the saving."""


class SleepyClassifier(ClassifierMixin, BaseEstimator):
    """W3o's "1 s task": a classifier whose fit sleeps ``delay`` seconds and predicts the majority class.

    ``seed`` changes nothing but the configuration, so a grid over it gives N distinct trials of
    equal cost: what is left of the wall time beyond N x delay / W is the sweep's own overhead.
    """

    def __init__(self, delay: float = 1.0, seed: int = 0):
        self.delay = delay
        self.seed = seed

    def fit(self, X, y):
        import time

        import numpy as np

        time.sleep(self.delay)
        self.classes_, counts = np.unique(np.asarray(y), return_counts=True)
        self.majority_ = self.classes_[int(np.argmax(counts))]
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        import numpy as np

        return np.full(len(X), self.majority_)


def fit_score_forest(X_train, y_train, X_test, y_test, params: dict, seed: int = 0) -> float:
    """W3 serial baseline's unit: fit one RandomForest config on the train split, held-out accuracy."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_jobs=1, random_state=seed, **params).fit(X_train, y_train)
    return float(model.score(X_test, y_test))


_HELD: tuple = ()


def hold_forest_data(X_train, y_train, X_test, y_test) -> None:
    """W3 ceiling's process-pool initializer: the split is sent to each process once, as the
    sweep sends it to each worker once."""
    global _HELD
    _HELD = (X_train, y_train, X_test, y_test)


def fit_score_held(params: dict) -> float:
    """:func:`fit_score_forest` on the split :func:`hold_forest_data` left in this process."""
    return fit_score_forest(*_HELD, params)


def fit_sleepy(X, y, delay: float, seed: int):
    """W3o's raw-Dask floor: the same 1 s fit, submitted with ``client.map`` (no sweep)."""
    return SleepyClassifier(delay=delay, seed=seed).fit(X, y).majority_


def import_skops() -> bool:
    """W3 warm-up, run on every worker: the first ``import skops.io`` in a process walks every
    scikit-learn estimator (which imports torch through sklearn's array-API shim), several seconds
    that a warm-up sweep pays on one worker only, the one that packages its best model."""
    import skops.io  # noqa: F401

    return True


def w7_tabular_part(number: int, rows: int, features: int, seed: int = 0):
    """W7: one partition of the tabular data, generated where it lives (seeded by its number)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, number])
    frame = pd.DataFrame(rng.standard_normal((rows, features), dtype=np.float32),
                         columns=[f"x{i}" for i in range(features)])
    frame.index = pd.RangeIndex(number * rows, (number + 1) * rows)
    return frame


def w7_text_part(number: int, rows: int, seed: int = 0):
    """W7: one partition of short texts (12 words of a 2,000-word vocabulary), seeded by its number."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, number])
    words = np.array([f"w{i}" for i in range(2000)])
    picks = words[rng.integers(0, len(words), (rows, 12))]
    texts = [" ".join(row) for row in picks]
    return pd.DataFrame({"text": texts}, index=pd.RangeIndex(number * rows, (number + 1) * rows))


def w7_hand_predict(part, model, column=None):
    """W7's hand-written side: what a Dask user maps over the partitions with the scattered model."""
    import pandas as pd

    X = part[column] if column is not None else part
    return pd.DataFrame({"prediction": model.predict(X)}, index=part.index)
