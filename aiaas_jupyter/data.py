"""Data in and out of the cluster: resolve inputs, run a preprocessing cell, summarise it.

Inputs are a path glob (CSV or Parquet files, read in parallel by the workers) or a DataFrame
already in the kernel (pandas: scattered to the cluster; dask: used as is). The result of a
preprocessing cell is persisted on the cluster, so training reads it from worker memory.
"""

from __future__ import annotations

import contextlib
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


def read_input(source: Any, namespace: dict | None = None, npartitions: int = 2, client=None):
    """Return a dask DataFrame for *source*: a variable name, a DataFrame, a path glob, or a URL
    (``s3://``, ``http://``, ...: read through fsspec by every worker). With *client*, the files a
    glob finds here must be readable by every worker too (:mod:`.worker_reach`), else one line."""
    import dask.dataframe as dd
    import pandas as pd

    from .worker_reach import check_workers_read, is_url

    if isinstance(source, str) and namespace is not None and source.isidentifier() and source in namespace:
        source = namespace[source]
    if isinstance(source, dd.DataFrame):
        return source
    if isinstance(source, pd.DataFrame):
        return dd.from_pandas(source, npartitions=max(1, min(npartitions, len(source) or 1)))
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"cannot use a {type(source).__name__} as input",
                        hint="give a path glob (*.csv, *.parquet), or a pandas/dask DataFrame variable")
    if is_url(source):
        return _read_url(str(source))
    text = str(source)
    pattern = os.path.abspath(os.path.expanduser(text[len("file://"):] if text.startswith("file://") else text))
    files = sorted(glob.glob(pattern))
    if not files:
        known = "" if namespace is None else " and no variable of that name"
        raise DataError(f"no file matches {source!r}{known}",
                        hint="paths are relative to the notebook's directory; files only the workers see: "
                             "give them as a URL every node reaches (s3://..., http://...)")
    check_workers_read(client, files, source)
    lower = pattern.lower()
    if lower.endswith(CSV_SUFFIXES):
        return dd.read_csv(files, sep="\t" if lower.endswith(".tsv") else ",", sample=CSV_SAMPLE_BYTES,
                           sample_rows=CSV_SAMPLE_ROWS)
    if lower.endswith(PARQUET_SUFFIXES) or all(os.path.isdir(f) for f in files):
        return dd.read_parquet(files if len(files) > 1 else files[0])
    raise DataError(f"do not know how to read {source!r}", hint="use .csv, .tsv or .parquet files")


def _read_url(url: str):
    """A CSV or Parquet URL (a glob where its filesystem lists: s3://, gs://, ...), through fsspec."""
    import dask.dataframe as dd

    lower = url.lower().split("?", 1)[0]
    if lower.endswith(CSV_SUFFIXES):
        return dd.read_csv(url, sep="\t" if lower.endswith(".tsv") else ",", sample=CSV_SAMPLE_BYTES,
                           sample_rows=CSV_SAMPLE_ROWS, blocksize=None)
    if lower.endswith(PARQUET_SUFFIXES) or lower.endswith("/"):
        return dd.read_parquet(url)
    raise DataError(f"do not know how to read {url!r}", hint="use .csv, .tsv or .parquet files (or a parquet folder/)")


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
class _SaveTarget:
    """Where ``--save`` writes (None: nothing to save), and what this call created to get there."""

    path: str | None = None
    existed: bool = True
    made: list = field(default_factory=list)

    def undo(self, written: bool = False) -> None:
        if self.path and written and not self.existed and "://" not in self.path:
            shutil.rmtree(self.path, ignore_errors=True)
        for p in self.made:  # the folders this call created, deepest first
            with contextlib.suppress(OSError):
                p.rmdir()


def _save_target(client, save: str | None) -> _SaveTarget:
    """A URL is written by the workers through fsspec; a local path must be one the kernel and every
    worker see alike (:func:`.worker_reach.check_workers_write`), else one line."""
    from .worker_reach import check_workers_write, is_url

    if not save:
        return _SaveTarget()
    if is_url(save):
        return _SaveTarget(str(save))
    path = os.path.abspath(os.path.expanduser(save[len("file://"):] if save.startswith("file://") else save))
    parent = Path(path).parent
    target = _SaveTarget(path, os.path.exists(path), [p for p in [parent, *parent.parents] if not p.exists()])
    try:
        parent.mkdir(parents=True, exist_ok=True)
        check_workers_write(client, str(parent))
    except OSError as e:
        from .preprocess_cell import save_error

        target.undo()
        raise save_error(e, path) from None
    except DataError:
        target.undo()
        raise
    return target


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
    target = _save_target(client, save)  # refused before anything runs
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    try:
        ddf_in = read_input(source, namespace, npartitions=n_workers, client=client)
    except DataError:
        target.undo()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: one line, not pyarrow's traceback
        target.undo()
        raise read_error(exc, source) from None
    try:
        prepared = apply_body(client, ddf_in, body, namespace, per_partition)
        out = prepared.frame
        if not isinstance(out, dd.DataFrame):
            raise DataError(f"the cell must leave `df` a DataFrame, got {type(out).__name__}")
        # one persist for both: the input is read once, its row count comes along
        out, lens_in = client.persist([out, ddf_in.map_partitions(len)])
        raise_failed_partition(client, [out, lens_in], prepared, output)
        rows_in, rows_out, nulls = client.compute(
            [lens_in.sum(), out.map_partitions(len).sum(), out.isna().sum()], sync=True)
    except BaseException:
        target.undo()
        raise
    if target.path:
        try:
            out.to_parquet(target.path, write_index=False)
        except Exception as exc:  # noqa: BLE001 - one line, and no half-written dataset left behind
            target.undo(written=True)
            raise save_error(exc, target.path) from None
    return PreprocessResult(output=output, frame=out, rows_in=int(rows_in), rows_out=int(rows_out),
                            dtypes={str(c): str(t) for c, t in out.dtypes.items()},
                            nulls={str(k): int(v) for k, v in nulls.items()},
                            seconds=time.perf_counter() - t0, saved=target.path,
                            partitions=out.npartitions)
