"""Bits every workload shares: logging, statistics, timing, and the one JSON line per workload.

stdout carries the results only (one JSON object per line, the format of WORKLOADS.md), so a
caller can parse it without filtering; everything meant for a human goes to stderr.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SIZES = ("quick", "full")

#: Modules whose presence after ``%load_ext`` would mean the extension loads too much.
HEAVY_MODULES = ("dask", "distributed", "torch", "sklearn", "pandas")


def log(*parts: Any) -> None:
    """Human progress messages: stderr, flushed, so they interleave sensibly with workers' logs."""
    print("[bench]", *parts, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    if not n:
        return math.nan
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]), as numpy's default, without numpy."""
    s = sorted(values)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, return value) of one call, on the monotonic high-resolution clock."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(ours: Callable[[], Any], baseline: Callable[[], Any], repeat: int,
              warmup: int = 0) -> tuple[list[float], list[float]]:
    """Time ``ours`` and ``baseline`` ``repeat`` times each, interleaved in ABBA order.

    Interleaving spreads machine noise (another process, a GC pause, thermal drift) over
    both sides equally; flipping the order every round cancels any "the second one runs
    warmer" effect. Warm-up calls run first and are not recorded.
    """
    for _ in range(warmup):
        ours()
        baseline()
    t_ours: list[float] = []
    t_base: list[float] = []
    for i in range(repeat):
        pair = ((ours, t_ours), (baseline, t_base))
        for fn, sink in (pair if i % 2 == 0 else pair[::-1]):
            sink.append(timed(fn)[0])
    return t_ours, t_base


def result(workload: str, size: str, ours_s: float, baseline_s: float, *, better: str = "lower",
           unit: str = "s", **extra: Any) -> dict[str, Any]:
    """The WORKLOADS.md record: ``ratio`` is always ours / baseline; ``better`` says which way."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    ratio = ours_s / baseline_s if baseline_s else math.nan
    return {"workload": workload, "size": size, "ours_s": ours_s, "baseline_s": baseline_s,
            "ratio": ratio, "better": better, "unit": unit, **extra}


def emit(record: dict[str, Any]) -> None:
    """Print one result line on stdout (the machine-readable channel); NaN/inf become null,
    so the line is strict JSON that any parser accepts."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    sys.stdout.write(json.dumps(clean, default=_jsonable, allow_nan=False) + "\n")
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def ensure_aiaas_home() -> str:
    """Point ``AIAAS_HOME`` at a throwaway directory unless the caller chose one.

    Benchmarks register hundreds of versions; they must never land in a real registry.
    """
    if not os.environ.get("AIAAS_HOME"):
        os.environ["AIAAS_HOME"] = _throwaway_dir("aiaas-bench-home-")
    return os.environ["AIAAS_HOME"]


def _throwaway_dir(prefix: str) -> str:
    """A temporary directory removed when the benchmark process exits."""
    import atexit
    import shutil

    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def add_bench_dir_to_worker_path() -> None:
    """Make ``benchmarks/_tasks.py`` importable by Dask worker processes started after this.

    Worker processes inherit the environment, so a PYTHONPATH set before the cluster starts
    is enough; the baseline's task functions are then pickled by reference, as a user's
    module-level functions in an installed package would be.
    """
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(BENCH_DIR) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), *parts])
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))


def prepare_environment() -> None:
    """Set up the process before anything imports dask or IPython.

    A throwaway registry home and IPython profile, removed at exit (the benchmark writes
    hundreds of versions and shell histories; none belong in the user's), the benchmarks
    directory on the workers' PYTHONPATH, and Dask's INFO logging off in the worker processes
    (inherited through the environment, read by dask.config at import).
    """
    ensure_aiaas_home()
    if not os.environ.get("IPYTHONDIR"):
        os.environ["IPYTHONDIR"] = _throwaway_dir("aiaas-bench-ipython-")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    add_bench_dir_to_worker_path()


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, which containers often narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def silence_cluster_logs() -> None:
    """Dask's INFO chatter would bury the benchmark's own stderr log; keep warnings."""
    import logging

    for name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.nanny",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
