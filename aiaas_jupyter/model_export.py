"""A registered version as a model folder that runs elsewhere: ``aiaas export NAME --to mlserver DIR``.

Why MLServer: when serving outgrows one box, platform teams run KServe or Seldon Core, whose
Python inference server is MLServer. The folder holds the version's own safe artifacts (skops /
ONNX — the same bytes the registry holds, never re-pickled), ``aiaas-model.json`` (framework, the
artifacts' sha256, classes, signature) and MLServer's ``model-settings.json`` naming the runtime
this package provides, :class:`aiaas_jupyter.serving.mlserver_runtime.AiaasRuntime`. That runtime
checks every file's sha256 and loads it with the same safe loaders and the same request handling
as our own server, so a stock MLServer gives the same predictions — never joblib, never pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DataError
from .protocols import EXPORT_TARGETS as TARGETS
from .registry import validate_name
MANIFEST = "aiaas-model.json"
RUNTIME = "aiaas_jupyter.serving.mlserver_runtime.AiaasRuntime"


def export_model(registry, ref: str, directory: str | os.PathLike, *, to: str = "mlserver",
                 name: str | None = None, overwrite: bool = False) -> Path:
    """Write version *ref* as an MLServer model folder at *directory*; its path."""
    from ._version import __version__

    if to not in TARGETS:
        raise DataError(f"cannot export to {to!r}", hint=f"targets: {', '.join(TARGETS)}")
    mv = registry.get(ref)
    name = validate_name(name or mv.name, "model")
    files = registry.read_artifacts(mv)  # sha256-checked here; the runtime checks them again
    folder = Path(directory).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if not overwrite:
            raise DataError(f"{folder} exists and is not empty; nothing was written",
                            hint="choose another folder, or add --overwrite")
        for old in folder.iterdir() if folder.is_dir() else ():
            if old.is_file() and (old.name in files or old.name in (MANIFEST, "model-settings.json")):
                old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for filename, data in files.items():
        (folder / filename).write_bytes(data)
    manifest = {"format": 1, "name": name, "ref": mv.ref, "version": mv.version, "framework": mv.framework,
                "artifacts": dict(mv.artifacts), "extra": mv.extra, "exported_by": f"aiaas-jupyter {__version__}"}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    settings = {"name": name, "implementation": RUNTIME,
                "parameters": {"uri": ".", "version": str(mv.version)}}
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=1))
    return folder
