"""W7 — batch inference on the cluster: ``%aiaas predict NAME --input DDF --on-cluster`` vs pandas vs hand Dask.

Two registered models (trained once, seeded, by the project's own trainer): a RandomForest
(100 trees, depth 12) on 20 float features, and a TF-IDF + LogisticRegression pipeline on a text
column. Their input is a dask DataFrame generated on the workers and persisted there before any
timing (quick: 2M rows in 16 partitions, 200k texts in 8; full: 50M rows, 5M texts).

- **Ours**: ``%aiaas predict NAME --input DDF --on-cluster -o scored`` through the magic, until every
  partition is scored (the result stays in the workers' memory). It reads the artifacts from the
  registry (sha256 checked), scatters them to every worker, and each worker loads the model with
  the safe loader (skops, exact trusted types) and checks the sha256 again. Every timed run starts
  with the workers' model caches emptied, so each run pays the load, as the hand side does.
- **Hand Dask**: what a Dask user writes: the fitted model (the same estimator object, loaded here)
  scattered to every worker (``broadcast=True``; pickled), ``map_partitions`` of ``model.predict``,
  persisted and waited for.
- **pandas**: ``model.predict`` on the whole frame in this process (computed here first, not timed).

All three predictions are compared; they must be equal. Ratios: ``ratio`` = ours / hand (lower is
better; goal: ours at least 0.95x the hand throughput, i.e. ratio <= 1/0.95), ``speedup_vs_pandas``
= pandas / ours (goal >= 1.6 on 2 cores). Repeats interleaved, medians.

Run alone with ``python benchmarks/w7_batch.py [--full] [--repeat N]``.
"""

from __future__ import annotations

import time

import _common as c
from w0_dispatch import connected, make_shell

SIZES = {"quick": {"rows": 2_000_000, "parts": 16, "texts": 200_000, "text_parts": 8},
         "full": {"rows": 50_000_000, "parts": 200, "texts": 5_000_000, "text_parts": 100}}
REPEATS = {"quick": 3, "full": 1}
FEATURES, TRAIN_ROWS, TRAIN_TEXTS, SEED = 20, 50_000, 20_000, 0


def _train(client):
    """Register the forest and the text pipeline (the project's trainer, seeded); their refs."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import _tasks
    from aiaas_jupyter.training import TrainSpec, run_training

    def register(name, res):
        return client.registry.register(name, framework=res.framework, artifacts=res.artifacts, params=res.params,
                                        metrics=res.metrics, library_versions=res.library_versions,
                                        data_fingerprint=res.data_fingerprint, source="", job_id=None,
                                        extra=res.extra).ref

    tab = _tasks.w7_tabular_part(10_000, TRAIN_ROWS, FEATURES, SEED)
    w = np.random.default_rng(SEED).standard_normal((FEATURES, 4))
    tab["y"] = np.argmax(tab.to_numpy() @ w, axis=1)
    forest = RandomForestClassifier(n_estimators=100, max_depth=12, random_state=SEED, n_jobs=1)
    rf = register("w7-forest", run_training(TrainSpec(model=forest, target="y", seed=SEED), tab, lambda e: None))
    texts = _tasks.w7_text_part(10_000, TRAIN_TEXTS, SEED)
    texts["label"] = texts.text.str.contains(r"\bw1\d\b").map({True: "hit", False: "miss"})
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200))
    text = register("w7-text", run_training(TrainSpec(model=pipe, target="label", seed=SEED), texts, lambda e: None))
    return rf, text


def _persisted(client, fn, n_parts: int, *args):
    import dask.dataframe as dd
    from distributed import wait

    frame = client.dask.persist(dd.from_map(fn, list(range(n_parts)), args=args))
    wait(frame)
    return frame


def _case(client, shell, ref: str, frame, column, n: int) -> dict:
    import numpy as np
    from distributed import wait

    import _tasks
    from aiaas_jupyter import batch_remote
    from IPython.utils.capture import capture_output

    model = client.load_model(ref)
    estimator = getattr(model, "pipeline", model)  # the hand side maps the plain pipeline over the column
    local = frame.compute()
    shell.user_ns["w7_frame"] = frame

    def ours():
        client.dask.run(batch_remote.forget_models)  # every run loads the model again, as the hand side does
        with capture_output():
            shell.run_line_magic("aiaas", f"predict {ref} --input w7_frame --on-cluster -o scored")
        return shell.user_ns.pop("scored")

    def hand():
        model_f = client.dask.scatter(estimator, broadcast=True)
        meta = ours_out._meta if ours_out is not None else None
        out = client.dask.persist(frame.map_partitions(_tasks.w7_hand_predict, model_f, column, meta=meta))
        wait(out)
        return out

    def pandas():
        return estimator.predict(local[column] if column else local)

    ours_out = None
    ours_out = ours()  # warm-up of both cluster sides (imports, first tasks); its result is compared
    hand_out = hand()
    times = {"ours": [], "hand": [], "pandas": []}
    order = list(times)
    fns = {"ours": ours, "hand": hand, "pandas": pandas}
    results = {}
    for r in range(n):
        for side in order[r % 3:] + order[:r % 3]:
            c.log(f"W7 {ref}: {side} run {r + 1}/{n}")
            t0 = time.perf_counter()
            results[side] = fns[side]()
            times[side].append(time.perf_counter() - t0)
    got = results["ours"].compute().prediction.to_numpy()
    if not (np.array_equal(got, hand_out.compute().prediction.to_numpy())
            and np.array_equal(got, np.asarray(results["pandas"]))):
        raise RuntimeError(f"W7 {ref}: the sides' predictions differ")
    # the same again with the model already loaded on each worker (a second scoring of that version)
    with capture_output():
        t0 = time.perf_counter()
        shell.run_line_magic("aiaas", f"predict {ref} --input w7_frame --on-cluster -o scored")
        warm = time.perf_counter() - t0
    shell.user_ns.pop("scored"), shell.user_ns.pop("w7_frame")
    return {k: c.median(v) for k, v in times.items()} | {"runs": times, "ours_model_loaded_s": warm,
                                                        "rows": len(local)}


def run(size: str, repeat: int | None = None) -> dict:
    import _tasks

    cfg, n = SIZES[size], repeat or REPEATS[size]
    workers = c.cpu_count()
    with connected(n_workers=workers, threads_per_worker=1) as client:
        shell = make_shell(client)
        c.log("W7: training the forest and the text pipeline")
        rf, text = _train(client)
        per = cfg["rows"] // cfg["parts"]
        c.log(f"W7: {cfg['rows']:,} rows in {cfg['parts']} partitions, generated on the workers")
        tab = _persisted(client, _tasks.w7_tabular_part, cfg["parts"], per, FEATURES, SEED)
        forest = _case(client, shell, rf, tab, None, n)
        del tab
        c.log(f"W7: {cfg['texts']:,} texts in {cfg['text_parts']} partitions")
        texts = _persisted(client, _tasks.w7_text_part, cfg["text_parts"], cfg["texts"] // cfg["text_parts"], SEED)
        text_case = _case(client, shell, text, texts, "text", n)
    return c.result(
        "W7", size, forest["ours"], forest["hand"], throughput_vs_hand=forest["hand"] / forest["ours"],
        speedup_vs_pandas=forest["pandas"] / forest["ours"], pandas_s=forest["pandas"],
        rows=forest["rows"], partitions=cfg["parts"], workers=workers, repeats=n,
        ours_model_loaded_s=forest["ours_model_loaded_s"], forest_runs_s=forest["runs"],
        text_ours_s=text_case["ours"], text_hand_s=text_case["hand"], text_pandas_s=text_case["pandas"],
        text_throughput_vs_hand=text_case["hand"] / text_case["ours"],
        text_speedup_vs_pandas=text_case["pandas"] / text_case["ours"], texts=text_case["rows"],
        text_ours_model_loaded_s=text_case["ours_model_loaded_s"], text_runs_s=text_case["runs"],
        note="ratio = ours / hand-written map_partitions (forest); goals: throughput_vs_hand >= 0.95, "
             "speedup_vs_pandas >= 1.6; every timed 'ours' run reloads the model on each worker")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    a = ap.parse_args()
    c.prepare_environment()
    c.emit(run("full" if a.full else "quick", a.repeat))
