"""W5 — extension load: what ``%load_ext aiaas_jupyter`` adds to a fresh IPython process.

Every notebook that uses the magics pays this at start-up, so it must stay small (goal: at most
300 ms over a bare shell) and must not drag in dask, distributed, torch, scikit-learn or
pandas: those are imported only when a command needs them.

Each run is a fresh ``python -c`` process (timed from outside, start-up included), so the
import caches of this process do not help. The "ours" child also reports which heavy
modules ended up in ``sys.modules`` and its own in-process ``%load_ext`` time, a less noisy
figure than the difference of two process wall times.
"""

from __future__ import annotations

import json
import subprocess
import sys

import _common as c

REPEATS = {"quick": 10, "full": 10}
WARMUP = 1

_CHILD = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t0 = time.perf_counter()
{load}
load_s = time.perf_counter() - t0
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"load_s": load_s, "heavy": heavy,
                  "magic": "aiaas" in shell.magics_manager.magics["cell"],
                  "modules": len(sys.modules)}}))
"""

OURS_CODE = _CHILD.format(load='shell.run_line_magic("load_ext", "aiaas_jupyter")', heavy=c.HEAVY_MODULES)
BARE_CODE = _CHILD.format(load="pass", heavy=c.HEAVY_MODULES)


def _spawn(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"W5 child process failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(size: str, repeat: int | None = None) -> dict:
    n = repeat or REPEATS[size]
    reports: dict[str, list[dict]] = {"ours": [], "bare": []}

    def ours():
        reports["ours"].append(_spawn(OURS_CODE))

    def bare():
        reports["bare"].append(_spawn(BARE_CODE))

    c.log(f"W5: {WARMUP} warm-up + {n} fresh processes per side (interleaved)")
    t_ours, t_base = c.alternate(ours, bare, n, warmup=WARMUP)
    mine = reports["ours"][WARMUP:]
    if not all(r["magic"] for r in mine):
        raise RuntimeError("%load_ext aiaas_jupyter did not register the %%aiaas cell magic")
    heavy = sorted({m for r in mine for m in r["heavy"]})
    bare_heavy = sorted({m for r in reports["bare"] for m in r["heavy"]})
    ours_s, base_s = c.median(t_ours), c.median(t_base)
    return c.result(
        "W5", size, ours_s, base_s,
        runs=n, overhead_ms=1e3 * (ours_s - base_s),
        load_ext_ms=1e3 * c.median([r["load_s"] for r in mine]),
        ours_p90_s=c.percentile(t_ours, 90), baseline_p90_s=c.percentile(t_base, 90),
        heavy_modules_loaded=heavy, baseline_heavy_modules=bare_heavy,
        extra_modules=c.median([r["modules"] for r in mine]) - c.median([r["modules"] for r in reports["bare"]]))


if __name__ == "__main__":
    c.prepare_environment()
    c.emit(run("quick", int(sys.argv[1]) if len(sys.argv) > 1 else None))
