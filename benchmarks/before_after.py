"""Before/after: the same workloads of two commits, in one run, interleaved.

    python benchmarks/before_after.py BASE [--head REV] [--only W0,W5] [--rounds 2] [--repeat N]

A refactor claims "no slower". A figure measured yesterday against one measured today on a
shared machine proves little, so this runs both sides now: each commit is exported with
``git archive`` into a temporary directory, and its own ``benchmarks/run.py`` runs there with
that tree first on ``PYTHONPATH`` (the kernel, and the embedded cluster's workers, which inherit
the environment, import that commit's ``aiaas_jupyter``). Rounds alternate A B B A, so machine
noise falls on both sides. ``--head`` defaults to the working tree (uncommitted changes included).

stdout: one JSON line per workload with each side's median of the workload's own figures
(``ours_s``, ``ratio``, ``overhead_ms`` for W0, ``load_ext_ms`` for W5) and ``after_over_before``
(the ratio of the headline figure: W0 ``ours_s``, W5 ``load_ext_ms``). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the figure of each workload that the verdict is computed from (lower is better for all)
HEADLINE = {"W0": "ours_s", "W5": "load_ext_ms", "W1": "ours_s", "W4": "ours_s"}
FIGURES = ("ours_s", "baseline_s", "ratio", "overhead_ms", "load_ext_ms")


def log(*parts) -> None:
    print("[before/after]", *parts, file=sys.stderr, flush=True)


def export(rev: str | None, into: Path) -> Path:
    """The tree of *rev* (or the working tree when None) as plain files under *into*."""
    if rev is None:
        return REPO
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    tar_path = into / f"{sha[:10]}.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(tar_path), sha], check=True)
    tree = into / sha[:10]
    with tarfile.open(tar_path) as tar:
        tar.extractall(tree, filter="data")
    tar_path.unlink()
    return tree


def run_side(tree: Path, only: str, repeat: int | None) -> dict[str, dict]:
    """One ``benchmarks/run.py`` of *tree*; its JSON lines by workload."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    cmd = [sys.executable, str(tree / "benchmarks" / "run.py"), "--only", only]
    if repeat:
        cmd += ["--repeat", str(repeat)]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["workload"]] = rec
    if proc.returncode != 0 or any("error" in r for r in out.values()):
        raise RuntimeError(f"benchmarks of {tree} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return out


def summarize(workload: str, before: list[dict], after: list[dict]) -> dict:
    def med(rows, key):
        vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else None

    rec = {"workload": workload, "rounds": len(before)}
    for key in FIGURES:
        b, a = med(before, key), med(after, key)
        if b is not None and a is not None:
            rec[f"before_{key}"], rec[f"after_{key}"] = round(b, 6), round(a, 6)
    key = HEADLINE.get(workload, "ours_s")
    b, a = med(before, key), med(after, key)
    rec["headline"] = key
    rec["after_over_before"] = round(a / b, 4) if a is not None and b else None
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="the 'before' commit (e.g. a tag, a sha, main~3)")
    ap.add_argument("--head", default=None, help="the 'after' commit (default: the working tree)")
    ap.add_argument("--only", default="W0,W5", help="workloads, as benchmarks/run.py --only (default W0,W5)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per side, interleaved A B B A (default 2)")
    ap.add_argument("--repeat", type=int, default=None, help="passed to run.py --repeat")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="aiaas-before-after-"))
    try:
        trees = {"before": export(args.base, tmp), "after": export(args.head, tmp)}
        runs: dict[str, list[dict[str, dict]]] = {"before": [], "after": []}
        for i in range(args.rounds):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            for side in order:
                log(f"round {i + 1}/{args.rounds}: {side} ({trees[side]})")
                runs[side].append(run_side(trees[side], args.only, args.repeat))
        for workload in [w.strip().upper() for w in args.only.split(",") if w.strip()]:
            rec = summarize(workload, [r[workload] for r in runs["before"]], [r[workload] for r in runs["after"]])
            rec.update(base=args.base, head=args.head or "working tree")
            print(json.dumps(rec), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
