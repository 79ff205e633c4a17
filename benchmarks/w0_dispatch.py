"""W0 — dispatch overhead: what ``%%aiaas train ... --block`` costs per job over a raw Dask submit.

The model is a ``DummyClassifier`` on 200 rows, so the fit itself is negligible and what is
left is the price of the feature: parsing the line, running the cell, the pre-flight checks,
scattering the frame, the job record, progress events, the held-out split and metrics, skops
serialisation, the registry write and the display. The baseline is the shortest honest way to
do the "same" by hand on the same warm cluster: ``client.submit(fit, frame).result()``.

The **floor** is reported too: the baseline plus the work a job must do that the baseline does
not (held-out split and metrics, data fingerprint, skops artifact, durable registry write),
timed in this process with no Dask (``required_work_ms``). ``floor_ratio`` is the best W0 ratio
any dispatch could reach on this machine with that work; ``ratio_vs_floor`` is what our dispatch
itself adds.

Run alone with ``python benchmarks/w0_dispatch.py [--profile | --timeline]``; ``--profile``
prints a cProfile of the magic path (to stderr) instead of timing, to see where the overhead
goes — the main thread only. ``--timeline`` shows the WHOLE path of a job instead: when each
step starts and ends, in ms from the start of the cell (medians), on every thread of the kernel
(the event loop's result fetch, the completion thread's registration) and on the worker.
"""

from __future__ import annotations

import contextlib

import _common as c

REPEATS = {"quick": 30, "full": 200}
WARMUP = 3
ROWS, FEATURES = 200, 4
MAGIC_LINE = "train --data df --target y --name w0 --block"
MAGIC_CELL = "from sklearn.dummy import DummyClassifier\nmodel = DummyClassifier()"


def tiny_frame(rows: int = ROWS, features: int = FEATURES, seed: int = 0):
    """A seeded frame with a learnable-ish binary target (its content hardly matters here)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(features)])
    df["y"] = (X[:, 0] + 0.5 * rng.standard_normal(rows) > 0).astype("int64")
    return df


def make_shell(client):
    """A real InteractiveShell with ``%load_ext aiaas_jupyter``, its magics bound to *client*.

    This mirrors tests/conftest.py: the extension is loaded the way a user loads it, then the
    magics are re-registered on the benchmark's own façade (not the process default).
    """
    from IPython.core.interactiveshell import InteractiveShell

    from aiaas_jupyter.magics import AiaasMagics

    shell = InteractiveShell.instance()
    if "aiaas_jupyter" not in shell.extension_manager.loaded:  # a second load prints a notice on stdout
        shell.run_line_magic("load_ext", "aiaas_jupyter")
    shell.register_magics(AiaasMagics(shell, client=client))
    return shell


@contextlib.contextmanager
def connected(n_workers: int, threads_per_worker: int, gpus: int = 0):
    """A façade on a fresh embedded cluster, closed afterwards even if the workload fails."""
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=c.ensure_aiaas_home())
    client.connect(n_workers=n_workers, threads_per_worker=threads_per_worker, gpus=gpus)
    c.silence_cluster_logs()
    try:
        yield client
    finally:
        client.disconnect()


def _sides(shell, client, df):
    import _tasks

    def ours():
        shell.run_cell_magic("aiaas", MAGIC_LINE, MAGIC_CELL)

    def baseline():
        client.dask.submit(_tasks.fit_dummy, df, "y", pure=False).result()

    return ours, baseline


def _required_work(client, df, n: int) -> tuple[float, float]:
    """The work a job must do beyond the baseline's bare fit, each part timed where it runs
    (median seconds of *n*): ``(run_training on a worker + registry.register in this process,
    the bare fit on the same worker)``. The held-out split and metrics, the data fingerprint,
    the skops artifact and the durable registry write are what ``%%aiaas train`` delivers over
    ``client.submit(fit)``; baseline + their difference is the floor no dispatch could go under,
    and ours / floor is the dispatch overhead proper."""
    import time

    from sklearn.dummy import DummyClassifier

    import _tasks
    from aiaas_jupyter.training import run_training
    from aiaas_jupyter.training.base import TrainSpec

    worker = sorted(client.dask.scheduler_info(n_workers=-1)["workers"])[0]
    work_s, bare_s = client.dask.run(_tasks.time_training_work, df, "y", n, workers=[worker])[worker]
    r = run_training(TrainSpec(model=DummyClassifier(), target="y"), df, lambda event: None)
    registers = []
    for i in range(WARMUP + n):
        t0 = time.perf_counter()
        client.registry.register("w0-floor", framework=r.framework, artifacts=r.artifacts, params=r.params,
                                 metrics=r.metrics, library_versions=r.library_versions,
                                 data_fingerprint=r.data_fingerprint, source=MAGIC_CELL, job_id=None, extra=r.extra)
        if i >= WARMUP:
            registers.append(time.perf_counter() - t0)
    return work_s + c.median(registers), bare_s


def run(size: str, repeat: int | None = None) -> dict:
    from IPython.utils.capture import capture_output

    n = repeat or REPEATS[size]
    df = tiny_frame()
    with connected(n_workers=2, threads_per_worker=1) as client:
        shell = make_shell(client)
        shell.user_ns["df"] = df
        ours, baseline = _sides(shell, client, df)
        c.log(f"W0: {WARMUP} warm-up + {n} timed jobs per side (interleaved)")
        # The magic displays the finished Job (stdout in a plain shell); capture it, as a
        # front-end would receive it, so stdout stays the JSON channel. Both sides run
        # inside the same capture so neither pays for it alone.
        with capture_output(stdout=True, stderr=False, display=True):
            t_ours, t_base = c.alternate(ours, baseline, n, warmup=WARMUP)
        registered = client.registry.get("w0").version
        # the worker's share of ours (train_task from start to return, as remote.py records it):
        # what the trainer adds over the baseline's bare fit lies there, not in the kernel
        task_s = [v.extra.get("task_seconds") for v in client.registry.versions("w0")[-n:]]
        workers = len(client.dask.scheduler_info(n_workers=-1)["workers"])
        work_s, bare_s = _required_work(client, df, n)
    if registered != n + WARMUP:
        raise RuntimeError(f"expected {n + WARMUP} registered versions of w0, found {registered}")
    ours_s, base_s = c.median(t_ours), c.median(t_base)
    floor_s = base_s + work_s - bare_s
    return c.result(
        "W0", size, ours_s, base_s,
        jobs=n, overhead_ms=1e3 * (ours_s - base_s),
        required_work_ms=1e3 * (work_s - bare_s), floor_s=floor_s, floor_ratio=floor_s / base_s,
        ratio_vs_floor=ours_s / floor_s,
        ours_p90_s=c.percentile(t_ours, 90), baseline_p90_s=c.percentile(t_base, 90),
        ours_min_s=min(t_ours), baseline_min_s=min(t_base),
        ours_task_s=c.median([t for t in task_s if t is not None]) if any(t is not None for t in task_s) else None,
        rows=ROWS, features=FEATURES, model="DummyClassifier", n_workers=workers,
        threads_per_worker=1, registered_versions=registered)


def profile(n: int = 30, top: int = 30) -> None:
    """cProfile the magic path over *n* warm jobs; print the top entries (cumulative) to stderr.

    Only the kernel side is visible here (the worker's share shows up as waiting), which is
    what matters: the task itself is a DummyClassifier fit.
    """
    import cProfile
    import io
    import pstats

    from IPython.utils.capture import capture_output

    df = tiny_frame()
    with connected(n_workers=2, threads_per_worker=1) as client:
        shell = make_shell(client)
        shell.user_ns["df"] = df
        ours, _ = _sides(shell, client, df)
        with capture_output(stdout=True, stderr=False, display=True):
            for _ in range(WARMUP):
                ours()
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(n):
                ours()
            prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    c.log(f"cProfile of {n} warm %%aiaas train jobs:\n" + out.getvalue())


def _time_calls(owner, attr: str, label: str, spans: list) -> None:
    """Replace ``owner.attr`` by a wrapper that appends ``(label, start, end)`` (wall clock) to
    *spans* for every call; once only (a second call leaves the wrapper as it is)."""
    import time

    fn = getattr(owner, attr)
    if getattr(fn, "_w0_timed", False):
        return

    def timed(*args, **kwargs):
        t0 = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            spans.append((label, t0, time.time()))

    timed._w0_timed = True
    setattr(owner, attr, timed)


def _time_worker_steps(dask_worker) -> None:
    """On a worker (``client.run``): record each ``train_task``'s and ``fit_dummy``'s wall-clock
    span (the kernel pickles both tasks by reference, so the wrapped ones are what run)."""
    from aiaas_jupyter import remote

    import _tasks

    spans = dask_worker.__dict__.setdefault("_w0_spans", [])
    _time_calls(remote, "train_task", "worker: train_task", spans)
    _time_calls(_tasks, "fit_dummy", "worker: fit_dummy", spans)


def _worker_spans(dask_worker) -> list:
    spans = dask_worker.__dict__.get("_w0_spans", [])
    out, spans[:] = list(spans), []
    return out


def timeline(n: int = 30) -> None:
    """Median start/end (ms from the start of the cell) of each step of *n* warm jobs, on every
    thread of the kernel and on the worker (same machine, so one wall clock), to stderr; then
    the same for *n* baseline submits, run alternately with them (when the baseline's task
    starts and ends on its worker, and when ``result()`` returns)."""
    import statistics
    import time

    from IPython.utils.capture import capture_output

    from aiaas_jupyter import job_dispatch, job_state
    from aiaas_jupyter.registry import store

    spans: list = []
    df = tiny_frame()
    with connected(n_workers=2, threads_per_worker=1) as client:
        shell = make_shell(client)
        shell.user_ns["df"] = df
        ours, baseline = _sides(shell, client, df)
        steps = [(job_dispatch.JobDispatcher, "submit", "main: dispatcher.submit"),
                 (client.dask, "submit", "main: dask submit"),
                 (store.Registry, "record_job", "main: record_job"),
                 (job_state.JobState, "wait", "main: wait"),
                 (job_dispatch.JobDispatcher, "complete", "completion thread: complete"),
                 (store.Registry, "register", "completion thread: register")]
        for owner, attr, label in steps:
            _time_calls(owner, attr, label, spans)
        client.dask.run(_time_worker_steps)
        cells: dict = {"ours": [], "baseline": []}
        with capture_output(stdout=True, stderr=False, display=True):
            for _ in range(WARMUP):
                ours()
                baseline()
            client.dask.run(_worker_spans)
            spans.clear()
            for i in range(2 * n):
                side, fn = ("ours", ours) if (i % 4 in (0, 3)) else ("baseline", baseline)  # ABBA
                t0 = time.time()
                fn()
                cells[side].append((t0, time.time()))
        for worker_spans in client.dask.run(_worker_spans).values():
            spans.extend(worker_spans)
    titles = {"ours": "the cell (%%aiaas train --block)", "baseline": "baseline: submit(fit).result()"}
    out = []
    for side, runs in cells.items():
        per: dict = {}
        for t0, t1 in runs:
            for label, a, b in spans:
                if t0 <= a <= t1:
                    per.setdefault(label, []).append((1e3 * (a - t0), 1e3 * (b - t0)))
        lines = [f"{titles[side]:34s} start {0:6.2f}  end {1e3 * statistics.median(b - a for a, b in runs):6.2f} ms"]
        for label, v in sorted(per.items(), key=lambda kv: statistics.median(a for a, _ in kv[1])):
            lines.append(f"{label:34s} start {statistics.median(a for a, _ in v):6.2f}  end "
                         f"{statistics.median(b for _, b in v):6.2f} ms  (n={len(v)})")
        out.append("\n".join(lines))
    c.log(f"timeline of {n} warm %%aiaas train jobs and {n} baseline submits, alternating (medians):\n"
          + "\n\n".join(out))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="store_true", help="cProfile the magic path instead of timing")
    ap.add_argument("--timeline", action="store_true",
                    help="each step's median start/end on every kernel thread and the worker, instead of timing")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()
    c.prepare_environment()
    if a.profile:
        profile(a.repeat or 30)
    elif a.timeline:
        timeline(a.repeat or 30)
    else:
        c.emit(run("full" if a.full else "quick", a.repeat))
