"""Every call the README documents works as documented (issue 9).

The README's Python API table and its magic tables are read here; tests/support/readme_walk.py runs each
documented call as a user would, in a fresh process (its own IPython shell, registry home,
embedded cluster and model server), with asserts on the values. A row added to the README
without a step in the walk fails here, and so does a step that fails.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def table_rows(text: str) -> list[str]:
    """First cells of the Markdown table rows of *text*."""
    return [re.split(r"(?<!\\)\|", line)[1] for line in text.splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")]


def section(title: str) -> str:
    start = README.index(title)
    nxt = re.search(r"^#{2,3} ", README[start + len(title):], re.M)
    return README[start: start + len(title) + nxt.start()] if nxt else README[start:]


def documented_api() -> set[str]:
    return {f"api:{name}" for cell in table_rows(section("### Python API"))
            for name in re.findall(r"`aiaas_jupyter\.(\w+)\(", cell) + re.findall(r", `aiaas_jupyter\.(\w+)\(", cell)}


def subcommands() -> set[str]:
    from aiaas_jupyter.magics.parser import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(sub.choices) - {"help"}  # `%aiaas help` is `%aiaas --help`


def documented_magics() -> set[str]:
    """``magic:SUB`` (and ``magic:SUB ACTION`` for models/endpoints) of every magic table row."""
    subs, keys = subcommands(), set()
    for cell in table_rows(README):
        for frag in re.findall(r"`([^`]*)`", cell):
            words = re.sub(r"^%%?aiaas\s+", "", frag.strip()).split()
            if not frag.lstrip().startswith("%") and not (words and words[0] in ("models", "endpoints")):
                continue
            if words and words[0] in subs:
                action = words[1] if len(words) > 1 and re.fullmatch(r"[a-z]+", words[1]) else ""
                keys.add(f"magic:{words[0]} {action}".strip())
    return keys


def test_the_readme_documents_the_whole_api_and_every_subcommand():
    import aiaas_jupyter

    assert documented_api() == {f"api:{n}" for n in aiaas_jupyter._API}
    assert {k.split()[0].removeprefix("magic:") for k in documented_magics()} == subcommands()


def test_no_module_shadows_an_api_function():
    """Importing every submodule leaves each API name a callable (``aiaas_jupyter.jobs()`` once was a module).
    The MLServer runtime is the one submodule left out: it runs inside MLServer, whose package it imports."""
    code = ("import importlib, pkgutil, aiaas_jupyter as a\n"
            "for m in pkgutil.walk_packages(a.__path__, 'aiaas_jupyter.'):\n"
            "    if 'labextension' not in m.name and not m.name.endswith(('__main__', 'mlserver_runtime')):\n"
            "        importlib.import_module(m.name)\n"
            "bad = [n for n in a._API if n in vars(a) and not callable(vars(a)[n])]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "AIAAS_HOME": "/nonexistent/aiaas-readme"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    home = tmp_path_factory.mktemp("aiaas-home-readme")
    env = {**os.environ, "AIAAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "readme_walk.py")], capture_output=True,
                          text=True, timeout=900, env=env, cwd=ROOT)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("README-WALK ")), None)
    assert proc.returncode == 0 and line, (proc.stdout[-3000:], proc.stderr[-3000:])
    return json.loads(line.removeprefix("README-WALK "))["ran"]


def test_every_documented_call_runs_as_documented(walk):
    failed = {k: v for k, v in walk.items() if v != "ok"}
    assert failed == {}
    missing = (documented_api() | documented_magics()) - set(walk)
    assert missing == set(), f"documented in README.md but not walked in tests/support/readme_walk.py: {sorted(missing)}"
