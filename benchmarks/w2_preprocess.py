"""W2 — preprocessing: ``%%aiaas preprocess`` vs single-process pandas vs hand-written dask.dataframe.

The data (WORKLOADS.md): CSV files of ``rows`` x 10 columns — 8 float columns, one integer column
with 5% of their values missing each, and a categorical string column — written once, seeded, to
a temporary directory (8 files, so that each side can read them in parallel). The work, the same
on every side: drop the rows with a missing value, standardise every numeric column (mean 0,
standard deviation 1, over the whole data), one-hot the categorical column, write Parquet.

- **Ours**: ``%%aiaas preprocess --input DIR/part-*.csv --output clean --save OUT`` on a warm
  embedded cluster (one worker per core, one thread each), the cell being :data:`CELL`. It does
  more than the others: it also persists the result in the cluster (bound to ``clean``) and
  counts rows in and out and the nulls of each column, which it shows.
- **pandas**: the same code on ``pd.concat`` of the files, in this process.
- **dask by hand**: what a Dask user writes — ``dd.read_csv(..., assume_missing=True)`` of the
  files (without it, the integer column with gaps fails: Dask types columns from the first 10
  rows), the same code, ``to_parquet`` — on the same cluster.

Each side writes its own Parquet output; the three are read back and compared (rows, columns,
and each column's sum and sum of squares) so that no side is fast by doing less. Repeats run interleaved, in
a rotating order; medians are reported. Quick: 2M rows; full: 50M rows.

Run alone with ``python benchmarks/w2_preprocess.py [--full] [--repeat N]``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import _common as c
from w0_dispatch import connected, make_shell

ROWS = {"quick": 2_000_000, "full": 50_000_000}
REPEATS = {"quick": 3, "full": 1}
FILES = 8
MISSING = 0.05
SEED = 0
CATEGORIES = ["red", "green", "blue", "amber", "violet"]

#: the transformation, written once for a DataFrame ``df`` (pandas or dask) and the module
#: ``xd`` that makes dummies (``pandas`` or ``dask.dataframe``)
BODY = """\
df = df.dropna()
num = [c for c in df.columns if c != "cat"]
mean, std = df[num].mean(), df[num].std()
df = df.assign(**{c: (df[c] - mean[c]) / std[c] for c in num})
df = xd.get_dummies(df.categorize(columns=["cat"]) if hasattr(df, "categorize") else df, columns=["cat"])
"""
#: the %%aiaas preprocess cell: the body, with dask.dataframe as ``xd``
CELL = "import dask.dataframe as xd\n" + BODY


def write_data(root: Path, rows: int) -> str:
    """The CSV files (seeded) under *root*; their glob."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    per = -(-rows // FILES)
    for i in range(FILES):
        n = min(per, rows - i * per)
        frame = pd.DataFrame(rng.standard_normal((n, 8)) * 3 + 1, columns=[f"x{j}" for j in range(8)])
        frame["n"] = rng.integers(0, 1000, n).astype("float64")  # a float column in CSV once values are missing
        for col in frame.columns:
            frame.loc[rng.random(n) < MISSING, col] = np.nan
        frame["cat"] = np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n)]
        frame.to_csv(root / f"part-{i:02d}.csv", index=False, float_format="%.6g")
    return str(root / "part-*.csv")


def _pandas_side(pattern: str, out: Path) -> None:
    import glob

    import pandas as pd

    ns = {"df": pd.concat([pd.read_csv(f) for f in sorted(glob.glob(pattern))], ignore_index=True), "xd": pd}
    exec(BODY, ns)  # the benchmark's own code, the same text every side runs
    ns["df"].to_parquet(out, index=False)


def _dask_side(client, pattern: str, out: Path) -> None:
    import dask
    import dask.dataframe as dd

    # assume_missing: Dask types columns from the first 10 rows, so the integer column with gaps further
    # down fails as int64 otherwise; this is the remedy its error message proposes
    ns = {"df": dd.read_csv(pattern, assume_missing=True), "xd": dd}
    with dask.config.set(scheduler=client.dask):
        exec(BODY, ns)
        ns["df"].to_parquet(out, write_index=False)


def _summary(path: Path) -> tuple[int, list[str], list[float]]:
    """(rows, sorted columns, each column's sum and sum of squares) of a Parquet file or dataset."""
    import pandas as pd

    frame = pd.read_parquet(path)
    cols = sorted(frame.columns)
    values = [frame[col].astype("float64") for col in cols]
    return len(frame), cols, [float(v.sum()) for v in values] + [float((v * v).sum()) for v in values]


def _same(a, b) -> bool:
    return a[0] == b[0] and a[1] == b[1] and all(abs(x - y) <= 1e-6 * max(1.0, a[0]) for x, y in zip(a[2], b[2]))


def run(size: str, repeat: int | None = None) -> dict:
    from IPython.utils.capture import capture_output

    rows, n = ROWS[size], repeat or REPEATS[size]
    root = Path(tempfile.mkdtemp(prefix="aiaas-w2-"))
    try:
        c.log(f"W2: writing {rows:,} rows x 10 columns as {FILES} CSV files")
        t0 = time.perf_counter()
        pattern = write_data(root, rows)
        c.log(f"W2: data written in {time.perf_counter() - t0:.1f} s "
              f"({sum(f.stat().st_size for f in root.glob('part-*.csv')) / 1e6:.0f} MB)")
        workers = c.cpu_count()
        with connected(n_workers=workers, threads_per_worker=1) as client:
            shell = make_shell(client)

            def ours(out: Path, files: str = pattern):
                with capture_output():
                    shell.run_cell_magic("aiaas", f"preprocess --input {files} --output clean --save {out}", CELL)
                shell.user_ns.pop("clean", None)  # the persisted frame: released before the next side runs

            sides = {"ours": ours, "pandas": lambda out, files=pattern: _pandas_side(files, out),
                     "dask": lambda out, files=pattern: _dask_side(client, files, out)}
            c.log("W2: warm-up (each side on one file: imports, the workers' first tasks)")
            for side, fn in sides.items():
                fn(root / f"warm-{side}.parquet", str(root / "part-00.csv"))
            times: dict[str, list[float]] = {k: [] for k in sides}
            outs: dict[str, Path] = {}
            order = list(sides)
            for r in range(n):
                for side in order[r % 3:] + order[:r % 3]:
                    out = root / f"out-{side}-{r}.parquet"
                    c.log(f"W2: {side} run {r + 1}/{n}")
                    t0 = time.perf_counter()
                    sides[side](out)
                    times[side].append(time.perf_counter() - t0)
                    outs[side] = out
        summaries = {side: _summary(path) for side, path in outs.items()}
        agree = {side: _same(summaries["pandas"], s) for side, s in summaries.items()}
        if not all(agree.values()):
            raise RuntimeError(f"the sides' outputs differ: {summaries}")
        ours_s, pandas_s, dask_s = (c.median(times[k]) for k in ("ours", "pandas", "dask"))
        return c.result(
            "W2", size, ours_s, pandas_s, pandas_s=pandas_s, hand_dask_s=dask_s,
            ratio_vs_hand_dask=ours_s / dask_s, speedup_vs_pandas=pandas_s / ours_s,
            rows=rows, rows_out=summaries["ours"][0], columns_out=len(summaries["ours"][1]),
            files=FILES, workers=workers, threads_per_worker=1, repeats=n,
            ours_runs_s=times["ours"], pandas_runs_s=times["pandas"], hand_dask_runs_s=times["dask"],
            note="ratio = ours / single-process pandas; ours also persists the result and counts rows and nulls")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    a = ap.parse_args()
    c.prepare_environment()
    c.emit(run("full" if a.full else "quick", a.repeat))
