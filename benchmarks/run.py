"""Run the project's benchmarks: one JSON line per workload on stdout, human logs on stderr.

    python benchmarks/run.py [--quick|--full] [--only W0,W1,W2,W3,W3b,W3o,W4,W5,W6,W6s,W7,W8] [--repeat N]

Workloads (see benchmarks/README.md and WORKLOADS.md): W0 dispatch overhead of ``%%aiaas
train``, W1 built-in PyTorch trainer vs a plain loop, W3/W3b/W3o sweeps (a RandomForest grid vs
serial fits and GridSearchCV on Dask, ASHA vs the full torch grid, per-trial overhead), W4 our model
server vs MLServer (from .venv-mlserver, created by scripts/mlserver_env.sh if missing), W5
``%load_ext`` cost. Each lives in its own module; this file only prepares the process and
dispatches. ``--repeat`` overrides every workload's repeat count (smoke tests use a small one; for
W4 it is the number of requests, for W3o the number of trials). A workload that fails prints a line
with an ``error`` field and makes the exit status 1; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

import _common as c

#: workload id -> "module" (its ``run``) or "module:function"
WORKLOADS = {"W0": "w0_dispatch", "W1": "w1_torch", "W2": "w2_preprocess", "W3": "w3_sweep", "W3b": "w3_sweep:run_asha",
             "W3o": "w3o_overhead", "W4": "w4_serving", "W5": "w5_load", "W6": "w6_ddp", "W6s": "w6_ddp:run_streamed", "W7": "w7_batch",
             "W8": "w8_faults"}
_IDS = {w.upper(): w for w in WORKLOADS}  # --only is case-insensitive


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="small sizes, under a minute each on 2 CPU cores (default)")
    size.add_argument("--full", dest="size", action="store_const", const="full",
                      help="full sizes (W1 needs a CUDA GPU)")
    ap.add_argument("--only", metavar="W0,W1,W2,W3,W3b,W3o,W4,W5,W6,W6s,W7,W8", default=",".join(WORKLOADS),
                    help="comma-separated workload ids to run (default: all)")
    ap.add_argument("--repeat", type=int, metavar="N", default=None,
                    help="override each workload's repeat count (for smoke tests)")
    args = ap.parse_args(argv)
    args.size = args.size or "quick"
    asked = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in asked if w.upper() not in _IDS]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    args.only = [_IDS[w.upper()] for w in asked]
    if args.repeat is not None and args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    c.prepare_environment()  # before anything imports dask or IPython
    c.log(f"size={args.size} workloads={','.join(args.only)} cpus={c.cpu_count()} "
          f"AIAAS_HOME={c.ensure_aiaas_home()}")
    status = 0
    for wid in args.only:
        t0 = time.perf_counter()
        try:
            module, _, fn = WORKLOADS[wid].partition(":")
            record = getattr(importlib.import_module(module), fn or "run")(args.size, args.repeat)
        except Exception as exc:  # noqa: BLE001 - report it, run the other workloads
            traceback.print_exc(file=sys.stderr)
            record = {"workload": wid, "size": args.size, "error": f"{type(exc).__name__}: {exc}"}
            status = 1
        c.emit(record)
        c.log(f"{wid} done in {time.perf_counter() - t0:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
