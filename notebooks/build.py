"""Write each showcase notebook from its readable source: ``notebooks/src/NAME.py`` -> ``notebooks/NAME.ipynb``.

    .venv/bin/python notebooks/build.py [NAME...]            write the notebooks (all, or those named) from their
                                                             sources, keeping the stored outputs of unchanged cells
    .venv/bin/python notebooks/build.py --execute [NAME...]  write, then run each with a fresh AIAAS_HOME and store
                                                             the outputs nbval compares against
    .venv/bin/python notebooks/build.py --check              say where a notebook and its source differ (exit 1)

Why two files: the source (a jupytext percent file: ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown
cell, ``# %% tags=["nbval-ignore-output"]`` a tagged one; magics are written as in the notebook) is what a person
reads, edits and reviews. The ``.ipynb`` is what a user opens and what nbval runs in the test command: its stored
outputs are the reference values. A cell whose source and tags did not change keeps its stored outputs, so an edit
to one cell does not make every other reference output go away; ``--execute`` refreshes them all.

Cells whose output changes from run to run (addresses, job ids, dates, timings) start with
``# NBVAL_IGNORE_OUTPUT``, or, for a cell magic (``%%`` must be its first line), carry the tag
``nbval-ignore-output``; every other cell prints seeded, rounded values that nbval checks.
``tests/test_notebook_sources.py`` fails when a notebook is not what this script writes from its source.
"""

from __future__ import annotations

import copy
import difflib
import os
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbformat.v4 import new_notebook

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

#: how a source is written and read: the percent format with magics as they are typed (the sources are
#: notebooks, not modules: nothing imports them), no notebook metadata header, only the cells' tags
FORMAT = {"extension": ".py", "format_name": "percent", "comment_magics": False,
          "notebook_metadata_filter": "-all", "cell_metadata_filter": "tags"}

#: the metadata of a notebook written for the first time or executed (the kernel fills in language_info)
METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"},
}


def names(directory: Path = HERE) -> list[str]:
    """The notebooks' names (``01-quickstart``): every source and every notebook, sorted."""
    found = {p.stem for p in (directory / "src").glob("*.py")} | {p.stem for p in directory.glob("*.ipynb")}
    return sorted(found)


def read_source(path: Path) -> nbformat.NotebookNode:
    """The cells of a source, as jupytext reads them (the notebook's own metadata is not in the source)."""
    nb = jupytext.read(path, fmt=FORMAT)
    nb.metadata = {}
    return nb


def _key(cell) -> tuple:
    """What makes two cells the same cell: its kind, its text and its tags (what nbval acts on)."""
    return cell.cell_type, cell.source, tuple(cell.metadata.get("tags", ()))


def build(name: str, directory: Path = HERE) -> nbformat.NotebookNode:
    """The notebook ``name`` as its source says, with the stored outputs (and the notebook metadata) of
    the current ``.ipynb`` carried over to every cell whose kind, source and tags are unchanged."""
    cells = read_source(directory / "src" / f"{name}.py").cells
    path = directory / f"{name}.ipynb"
    old = nbformat.read(path, as_version=4) if path.exists() else None
    nb = new_notebook(cells=cells, metadata=copy.deepcopy(old.metadata if old else METADATA))
    if old is not None:
        match = difflib.SequenceMatcher(None, [_key(c) for c in old.cells], [_key(c) for c in cells], autojunk=False)
        for block in match.get_matching_blocks():
            for i in range(block.size):
                before, after = old.cells[block.a + i], cells[block.b + i]
                if after.cell_type == "code":
                    after.outputs = before.outputs
                    after.execution_count = before.execution_count
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    return nb


def differences(name: str, directory: Path = HERE) -> list[str]:
    """Where ``NAME.ipynb`` and ``src/NAME.py`` disagree (a missing side, a cell's kind, source or tags,
    the number of cells); empty when the notebook's cells are its source's."""
    source, path = directory / "src" / f"{name}.py", directory / f"{name}.ipynb"
    if not source.exists():
        return [f"{path.name}: no source (notebooks/src/{name}.py)"]
    if not path.exists():
        return [f"src/{source.name}: no notebook ({name}.ipynb): run notebooks/build.py {name}"]
    want, have = read_source(source).cells, nbformat.read(path, as_version=4).cells
    found = []
    for i, (w, h) in enumerate(zip(want, have)):
        for what, a, b in zip(("kind", "source", "tags"), _key(w), _key(h)):
            if a != b:
                found.append(f"{path.name}: cell {i} ({h.get('id')}): {what} differs from src/{source.name}")
    if len(want) != len(have):
        found.append(f"{path.name}: {len(have)} cells, src/{source.name}: {len(want)}")
    return found


def execute(nb: nbformat.NotebookNode) -> float:
    """Run every cell in a kernel, in notebooks/, with a fresh registry home (removed afterwards:
    a model server the notebook left there exits with it); the seconds it took."""
    from nbclient import NotebookClient

    before = os.environ.get("AIAAS_HOME")
    with tempfile.TemporaryDirectory(prefix="aiaas-home-", ignore_cleanup_errors=True) as home:
        os.environ["AIAAS_HOME"] = home
        try:
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": str(HERE)}}).execute()
            return time.perf_counter() - t0
        finally:
            if before is None:
                del os.environ["AIAAS_HOME"]
            else:
                os.environ["AIAAS_HOME"] = before


def main(argv: list[str]) -> int:
    chosen = [a.removesuffix(".ipynb").removesuffix(".py") for a in argv if not a.startswith("--")] or names()
    if "--check" in argv:
        found = [line for name in chosen for line in differences(name)]
        print("\n".join(found) or f"{len(chosen)} notebooks match their sources")
        return 1 if found else 0
    for name in chosen:
        nb = build(name)
        if "--execute" in argv:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nb.metadata = copy.deepcopy(METADATA)
            print(f"{name}.ipynb: executed in {execute(nb):.1f} s")
            nb.metadata.pop("widgets", None)  # saved widget state: 30+ KB of run-dependent ids nbval ignores
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
