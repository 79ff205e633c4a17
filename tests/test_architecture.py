"""The layers hold (``.importlinter``, run by import-linter) and no new import cycle appears.

Each arrow points down: front-ends (magics, widgets, server extension, CLI) > the façade >
jobs / serving / data > training > registry > leaves > errors, and no Jupyter, IPython or widget
library below the front-ends. ``.importlinter`` lists no wrong-way import any more
and the package has no import cycle; anything new fails here. A tampered copy of the package shows that the
check really catches an upward import.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

#: none left: issue 11 moved the job's view above the façade (widgets/live_views follows the job)
KNOWN_CYCLES: list[set[str]] = []


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(where / ".importlinter"), "--no-cache"], cwd=where,
                          env={"PATH": str(LINT.parent), "PYTHONPATH": str(where)},
                          capture_output=True, text=True, timeout=120)


def cycles(graph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan), function-level imports included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_the_layer_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout, result.stdout[-2000:]


def test_an_upward_import_breaks_the_contract(tmp_path):
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "aiaas_jupyter", copy / "aiaas_jupyter",
                    ignore=shutil.ignore_patterns("labextension", "__pycache__"))
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    store = copy / "aiaas_jupyter" / "registry" / "store.py"
    store.write_text(store.read_text() + "\n\ndef _upward():\n    from ..client import get_client  # noqa\n")
    codec = copy / "aiaas_jupyter" / "registry" / "names.py"
    codec.write_text(codec.read_text() + "\n\ndef _jupyter():\n    import IPython  # noqa\n")
    result = lint(copy)
    assert result.returncode != 0 and "Contracts: 0 kept, 3 broken." in result.stdout, result.stdout[-3000:]
    assert "aiaas_jupyter.registry.store -> aiaas_jupyter.client" in result.stdout
    assert "aiaas_jupyter.registry.names -> IPython" in result.stdout


def test_no_new_import_cycle():
    graph = grimp.build_graph("aiaas_jupyter", cache_dir=None)  # a stale cache hides a new import
    found = cycles(graph)
    assert [c for c in found if c not in KNOWN_CYCLES] == [], found
    # the two cycles broken in issue 10's follow-up stay broken
    assert not graph.direct_import_exists(importer="aiaas_jupyter.registry.endpoints_table",
                                          imported="aiaas_jupyter.serving")
    assert not graph.direct_import_exists(importer="aiaas_jupyter.cli", imported="aiaas_jupyter.serving.__main__")


def private_writes(root: Path) -> list[str]:
    """Every ``<name>._private = ...`` (also augmented, annotated, in a tuple target, or via
    ``setattr(<name>, "_private", ...)``) where ``<name>`` is not ``self``/``cls``: one module
    writing another's private state, which issue 11 removed (the job's state moves only through
    its named transitions)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                  and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                  and isinstance(node.args[1].value, str)):
                targets = [ast.Attribute(value=node.args[0], attr=node.args[1].value)]
            else:
                continue
            while targets:
                target = targets.pop()
                if isinstance(target, (ast.Tuple, ast.List)):
                    targets.extend(target.elts)
                elif isinstance(target, ast.Starred):
                    targets.append(target.value)
                elif isinstance(target, ast.Attribute) and _reaches_private(target):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(target)}")
    return found


def _reaches_private(target: ast.Attribute) -> bool:
    """``a._x = ...`` or ``a._x.y = ...`` (through another's private part); ``self._x`` and
    ``self._x.y`` are an object's own state."""
    chain, node = [], target
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    chain.reverse()  # root.a1.a2...
    own = isinstance(node, ast.Name) and node.id in ("self", "cls")
    return any(a.startswith("_") and not a.startswith("__") for a in chain[1 if own else 0:])


def test_no_module_writes_another_modules_private_attributes():
    assert private_writes(ROOT / "aiaas_jupyter") == []


def test_a_planted_private_write_is_found(tmp_path):
    copy = tmp_path / "aiaas_jupyter"
    shutil.copytree(ROOT / "aiaas_jupyter", copy, ignore=shutil.ignore_patterns("labextension", "__pycache__"))
    client = copy / "client.py"
    client.write_text(client.read_text() + "\n\ndef _tamper(job, other):\n    job._t0 = 0\n"
                      "    a, other._state.x = 1, 2\n    setattr(job, '_exception', None)\n"
                      "    self = job\n    self._fine = 1  # a method's own state\n")
    found = private_writes(copy)
    assert [f.split(": ", 1)[1] for f in found] == ["job._t0", "other._state.x", "job._exception"], found
    assert all(f.startswith("aiaas_jupyter/client.py:") for f in found)


def test_the_sidebar_manager_uses_only_public_calls():
    """server/manager.py reads through the façade and the registry's public methods: no raw SQL,
    no private attribute of another object, no second health check."""
    source = (ROOT / "aiaas_jupyter" / "server" / "manager.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    private = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")
               and not n.attr.startswith("__") and not (isinstance(n.value, ast.Name) and n.value.id == "self")]
    assert private == []
    assert "SELECT" not in source and ".execute(" not in source and "ThreadPoolExecutor" not in source
