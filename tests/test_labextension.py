"""The prebuilt JupyterLab extension: built by the package install (no ``jupyter lab build``),
listed enabled and OK, shipped in the wheel, and its TypeScript unit tests (jest) pass.

The jest suite runs here so that it is part of the one test command and its junit report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABEXT = ROOT / "labextension"
BIN = Path(sys.executable).parent


def _env() -> dict:
    # jlpm and jupyter-builder live next to the interpreter (jupyter-builder is a test dependency)
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def test_labextension_listed_enabled_and_ok():
    out = subprocess.run([str(BIN / "jupyter"), "labextension", "list"], capture_output=True, text=True,
                         env=_env(), timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # drop colour codes
    line = next((ln for ln in text.splitlines() if "aiaas-jupyter" in ln), None)
    assert line is not None, text
    assert "enabled" in line and "OK" in line, line
    assert "(python, aiaas-jupyter)" in line, line  # a prebuilt extension installed by the Python package


def test_server_extension_enabled_by_install():
    out = subprocess.run([str(BIN / "jupyter"), "server", "extension", "list"], capture_output=True, text=True,
                         env=_env(), timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"aiaas_jupyter enabled", text), text
    assert re.search(r"aiaas_jupyter\s+\S*\s*OK", text), text


def test_built_extension_has_the_sidebar():
    built = ROOT / "aiaas_jupyter" / "labextension"
    meta = json.loads((built / "package.json").read_text())
    assert meta["name"] == "aiaas-jupyter"
    assert meta["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    code = "".join(p.read_text(errors="replace") for p in (built / "static").glob("*.js"))
    for marker in ("aiaas-jupyter:plugin", "aiaas-jupyter:model", "aiaas:open", "aiaas:refresh", "AIaaS models", "aiaas-section-models"):
        assert marker in code, marker


@pytest.mark.slow
def test_wheel_ships_prebuilt_extension_and_server_config(tmp_path):
    """``pip wheel`` runs the same build hook a user's install runs; the wheel carries the
    prebuilt extension, its install.json and the file that enables the server extension."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, env=_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = tmp_path.glob("aiaas_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/")[0] for n in names if ".data/" in n)
    ext = f"{data}/data/share/jupyter/labextensions/aiaas-jupyter"
    assert f"{ext}/package.json" in names
    assert f"{ext}/install.json" in names
    assert any(n.startswith(f"{ext}/static/remoteEntry.") for n in names)
    assert f"{data}/data/etc/jupyter/jupyter_server_config.d/aiaas_jupyter.json" in names
    install = json.loads(zipfile.ZipFile(wheel).read(f"{ext}/install.json"))
    assert install["packageName"] == "aiaas-jupyter"


@pytest.mark.slow
def test_typescript_unit_tests_pass(tmp_path):
    """jest over the sidebar's views, API client, formatting, model (polling), commands and status bar (jsdom)."""
    report = tmp_path / "jest.json"
    out = subprocess.run([str(BIN / "jlpm"), "jest", "--ci", "--json", f"--outputFile={report}"], cwd=LABEXT,
                         capture_output=True, text=True, env=_env(), timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    result = json.loads(report.read_text())
    assert result["numFailedTests"] == 0
    assert result["numPendingTests"] == 0  # nothing skipped
    assert result["numPassedTests"] >= 30, result["numPassedTests"]
    suites = {Path(s["name"]).name for s in result["testResults"]}
    assert {"models.spec.ts", "sections.spec.ts", "api.spec.ts", "format.spec.ts", "model.spec.ts", "commands.spec.ts",
            "statusbar.spec.ts", "modelplugin.spec.ts"} <= suites


def test_css_is_prefixed_and_theme_aware():
    """Every class the stylesheet styles is ``aiaas-``; every colour is a JupyterLab variable,
    so light, dark and custom themes apply (the e2e test switches to dark for real)."""
    css = (LABEXT / "style" / "base.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    classes = set(re.findall(r"\.(-?[_a-zA-Z][\w-]*)", re.sub(r"\{[^}]*\}", "{}", css)))
    assert classes and all(c.startswith("aiaas-") for c in classes), sorted(c for c in classes if not c.startswith("aiaas-"))
    for decl in re.findall(r"(?:^|;|\{)\s*((?:background|color|border[\w-]*|outline|accent-color)\s*:[^;}]*)", css):
        assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgb|hsl", decl), decl
        if re.search(r"colou?r|background", decl.split(":")[0]) and "transparent" not in decl:
            assert "var(--jp-" in decl, decl
