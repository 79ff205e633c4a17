"""Data in and out of the cluster: resolve inputs, run a preprocessing cell, summarise it.

Inputs are a path glob (CSV or Parquet files, read in parallel by the workers) or a DataFrame
already in the kernel (pandas: scattered to the cluster; dask: used as is). The result of a
preprocessing cell is persisted on the cluster, so training reads it from worker memory.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .display import Table
from .errors import DataError

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
#: rows (within the first bytes) of a CSV input that its column types are inferred from. Dask's
#: default is the first 10 rows: an integer column whose first missing value comes later was
#: typed int64, and every partition holding a gap failed ("Mismatched dtypes found"); found by
#: benchmarks/W2 (5% missing values). pandas itself reads every row before choosing.
CSV_SAMPLE_ROWS = 20_000
CSV_SAMPLE_BYTES = 4 << 20
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_input(source: Any, namespace: dict | None = None, npartitions: int = 2):
    """Return a dask DataFrame for *source*: a variable name, a DataFrame, or a path glob."""
    import dask.dataframe as dd
    import pandas as pd

    if isinstance(source, str) and namespace is not None and source.isidentifier() and source in namespace:
        source = namespace[source]
    if isinstance(source, dd.DataFrame):
        return source
    if isinstance(source, pd.DataFrame):
        return dd.from_pandas(source, npartitions=max(1, min(npartitions, len(source) or 1)))
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"cannot use a {type(source).__name__} as input",
                        hint="give a path glob (*.csv, *.parquet), or a pandas/dask DataFrame variable")
    pattern = os.path.abspath(os.path.expanduser(str(source)))
    files = sorted(glob.glob(pattern))
    if not files:
        known = "" if namespace is None else " and no variable of that name"
        raise DataError(f"no file matches {source!r}{known}",
                        hint="paths are relative to the notebook's directory")
    lower = pattern.lower()
    if lower.endswith(CSV_SUFFIXES):
        return dd.read_csv(files, sep="\t" if lower.endswith(".tsv") else ",", sample=CSV_SAMPLE_BYTES,
                           sample_rows=CSV_SAMPLE_ROWS)
    if lower.endswith(PARQUET_SUFFIXES) or all(os.path.isdir(f) for f in files):
        return dd.read_parquet(files if len(files) > 1 else files[0])
    raise DataError(f"do not know how to read {source!r}", hint="use .csv, .tsv or .parquet files")


def is_pandas(frame) -> bool:
    """An in-kernel pandas frame (sent to the workers as it is), not a dask one (computed there)."""
    import pandas as pd

    return isinstance(frame, pd.DataFrame)


def resolve_frame(name_or_frame: Any, namespace: dict | None):
    """The DataFrame (pandas or dask) that ``--data`` names."""
    import dask.dataframe as dd
    import pandas as pd

    obj = name_or_frame
    if isinstance(name_or_frame, str):
        if namespace is None or name_or_frame not in namespace:
            frames = sorted(k for k, v in (namespace or {}).items()
                            if not k.startswith("_") and isinstance(v, (pd.DataFrame, dd.DataFrame)))
            raise DataError(f"no data named {name_or_frame!r}",
                            hint=f"DataFrames in the notebook: {', '.join(frames) or 'none'}; "
                                 "create one with %%aiaas preprocess --output NAME")
        obj = namespace[name_or_frame]
    if not isinstance(obj, (pd.DataFrame, dd.DataFrame)):
        raise DataError(f"--data must name a pandas or dask DataFrame, got {type(obj).__name__}")
    return obj


@dataclass
class PreprocessResult:
    """What a preprocessing cell did; the persisted frame is in ``frame``."""

    output: str
    frame: Any
    rows_in: int
    rows_out: int
    dtypes: dict[str, str]
    nulls: dict[str, int]
    seconds: float
    saved: str | None = None
    partitions: int = 0
    extra: dict = field(default_factory=dict)

    def table(self) -> Table:
        title = (f"preprocess → {self.output}: {self.rows_in} rows in, {self.rows_out} rows out, "
                 f"{len(self.dtypes)} columns, {self.partitions} partitions, {self.seconds:.2f} s")
        rows = [(c, d, self.nulls.get(c, 0)) for c, d in self.dtypes.items()]
        return Table(["column", "dtype", "nulls"], rows, title=title,
                     note=f"saved to {self.saved}" if self.saved else "")

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def run_preprocess(client, source: Any, output: str, body=None, namespace: dict | None = None,
                   per_partition: bool = False, save: str | None = None) -> PreprocessResult:
    """Bind ``df`` to the input, run *body* (code text or a function), persist the result.

    Any failure of the body — in the kernel or on a worker — is one
    :class:`~.errors.PreprocessError` (see :mod:`.preprocess_cell`)."""
    import dask.dataframe as dd

    from .preprocess_cell import apply_body, raise_failed_partition, read_error, save_error

    t0 = time.perf_counter()
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    try:
        ddf_in = read_input(source, namespace, npartitions=n_workers)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: one line, not pyarrow's traceback
        raise read_error(exc, source) from None
    prepared = apply_body(client, ddf_in, body, namespace, per_partition)
    out = prepared.frame
    if not isinstance(out, dd.DataFrame):
        raise DataError(f"the cell must leave `df` a DataFrame, got {type(out).__name__}")
    # one persist for both: the input is read once, its row count comes along
    out, lens_in = client.persist([out, ddf_in.map_partitions(len)])
    raise_failed_partition(client, [out, lens_in], prepared, output)
    rows_in, rows_out, nulls = client.compute(
        [lens_in.sum(), out.map_partitions(len).sum(), out.isna().sum()], sync=True)
    saved = None
    if save:
        saved = os.path.abspath(os.path.expanduser(save))
        existed = os.path.exists(saved)
        try:
            Path(saved).parent.mkdir(parents=True, exist_ok=True)
            out.to_parquet(saved, write_index=False)
        except Exception as exc:  # noqa: BLE001 - one line, and no half-written dataset left behind
            if not existed:
                shutil.rmtree(saved, ignore_errors=True)
            raise save_error(exc, saved) from None
    return PreprocessResult(output=output, frame=out, rows_in=int(rows_in), rows_out=int(rows_out),
                            dtypes={str(c): str(t) for c, t in out.dtypes.items()},
                            nulls={str(k): int(v) for k, v in nulls.items()},
                            seconds=time.perf_counter() - t0, saved=saved,
                            partitions=out.npartitions)
