"""Run a notebook headless (nbclient) and print what it did, cell by cell.

Used by the README's first command: a user sees the same steps the notebook shows.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def text_of(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return output.get("data", {}).get("text/plain", "")


def main(path: str) -> int:
    nb_path = Path(path)
    nb = nbformat.read(nb_path, as_version=4)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(nb_path.parent)}})
    try:
        client.execute()
        failed = False
    except Exception as exc:  # noqa: BLE001 - report whatever stopped the notebook, then fail
        print(f"!! the notebook stopped: {type(exc).__name__}", file=sys.stderr)
        failed = True
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("# NBVAL")]
        first = lines[0] if lines else ""
        print(f"--- [{i}] {first}")
        for out in cell.get("outputs", []):
            text = ANSI.sub("", text_of(out)).rstrip()
            if text:
                print("    " + text.replace("\n", "\n    "))
    print(f"=== {nb_path.name}: {'FAILED' if failed else 'ran'} in {time.perf_counter() - t0:.1f} s "
          f"(notebook unchanged on disk)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
