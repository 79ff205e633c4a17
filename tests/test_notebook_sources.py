"""Each notebook is written from its readable source by notebooks/build.py, and the test command validates
every notebook with nbval.

notebooks/src/NAME.py (jupytext percent) is what a person edits; notebooks/NAME.ipynb, with the stored outputs
nbval compares against, is what ``notebooks/build.py`` writes from it. A notebook edited by hand (or a source
edited without building) would make the two tell different stories: these tests fail then.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NAMES = build.names()
HOW = "edit notebooks/src/NAME.py, then `.venv/bin/python notebooks/build.py NAME` (see notebooks/README.md)"


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert NAMES == sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(p.stem for p in build.SOURCES.glob("*.py"))
    assert len(NAMES) == 8


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_cells_are_its_source(name):
    assert build.differences(name) == [], HOW


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_is_what_the_build_writes(name):
    """Stored outputs, ids and notebook metadata included: building an unchanged source changes nothing."""
    nb = build.build(name)
    assert json.loads((NOTEBOOKS / f"{name}.ipynb").read_text()) == json.loads(build.nbformat.writes(nb)), HOW


@pytest.fixture
def copy(tmp_path):
    """A copy of 01-quickstart's source and notebook, to plant differences in."""
    (tmp_path / "src").mkdir()
    shutil.copy(build.SOURCES / "01-quickstart.py", tmp_path / "src")
    shutil.copy(NOTEBOOKS / "01-quickstart.ipynb", tmp_path)
    assert build.differences("01-quickstart", tmp_path) == []
    return tmp_path


def _edit_notebook(d: Path, change) -> None:
    path = d / "01-quickstart.ipynb"
    nb = json.loads(path.read_text())
    change(nb["cells"])
    path.write_text(json.dumps(nb))


def test_a_planted_difference_in_a_cell_source_is_caught(copy):
    _edit_notebook(copy, lambda cells: cells[3]["source"].append("\n%aiaas status"))
    assert build.differences("01-quickstart", copy) == [
        "01-quickstart.ipynb: cell 3 (01-03): source differs from src/01-quickstart.py"]


def test_a_planted_difference_in_the_tags_is_caught(copy):
    def untag(cells):
        tagged = next(c for c in cells if c["metadata"].get("tags"))
        tagged["metadata"] = {}
    _edit_notebook(copy, untag)
    assert [re.sub(r"cell \d+ \(01-\d+\)", "cell N", line) for line in build.differences("01-quickstart", copy)] == [
        "01-quickstart.ipynb: cell N: tags differs from src/01-quickstart.py"]


def test_a_planted_difference_in_the_source_file_is_caught(copy):
    source = copy / "src" / "01-quickstart.py"
    source.write_text(source.read_text().replace("# %%\n%load_ext", "# %% tags=[\"x\"]\n%load_ext", 1) + "\n# %%\n1\n")
    assert build.differences("01-quickstart", copy) == [
        "01-quickstart.ipynb: cell 1 (01-01): tags differs from src/01-quickstart.py",
        "01-quickstart.ipynb: 35 cells, src/01-quickstart.py: 36"]


def test_a_notebook_without_a_source_and_a_source_without_a_notebook_are_caught(copy):
    (copy / "src" / "01-quickstart.py").rename(copy / "src" / "06-new.py")
    assert build.names(copy) == ["01-quickstart", "06-new"]
    assert build.differences("01-quickstart", copy) == ["01-quickstart.ipynb: no source (notebooks/src/01-quickstart.py)"]
    assert build.differences("06-new", copy) == ["src/06-new.py: no notebook (06-new.ipynb): run notebooks/build.py 06-new"]


def test_the_build_keeps_the_outputs_of_unchanged_cells_only(copy):
    old = build.nbformat.read(copy / "01-quickstart.ipynb", as_version=4)
    source = copy / "src" / "01-quickstart.py"
    text = source.read_text()
    edited = next(i for i, c in enumerate(old.cells) if i > 3 and c.get("outputs"))  # the raw-data cell
    first = old.cells[edited].source.splitlines()[0]
    assert text.count(first) == 1
    # one cell edited, and one inserted before all others (the first code cell marker is "# %%\n%load_ext")
    source.write_text(text.replace(first, first + "  # edited", 1).replace("# %%\n", "# %%\nprint('new')\n\n# %%\n", 1))
    nb = build.build("01-quickstart", copy)
    assert [c.id for c in nb.cells] == [f"01-{i:02d}" for i in range(len(old.cells) + 1)]
    assert nb.cells[1].source == "print('new')" and nb.cells[1].outputs == []
    assert nb.cells[2].outputs == old.cells[1].outputs
    assert nb.cells[edited + 1].outputs == [] and nb.cells[edited + 1].execution_count is None
    unchanged = [(a, b) for a, b in zip(old.cells[edited + 1:], nb.cells[edited + 2:]) if a.cell_type == "code"]
    assert unchanged and all(a.outputs == b.outputs and a.execution_count == b.execution_count for a, b in unchanged)
    assert nb.metadata == old.metadata


def test_the_test_command_validates_every_notebook_with_nbval():
    """scripts/dev.sh runs pytest on `tests notebooks` with --nbval: nbval collects every notebook there."""
    dev = (ROOT / "scripts" / "dev.sh").read_text()
    assert "local_targets=(tests notebooks)" in dev and "--nbval" in dev
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--nbval", "--nbval-current-env", "notebooks"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    collected = {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}
    assert collected == {f"notebooks/{name}.ipynb" for name in NAMES}
