"""What the lock files in requirements/ are made from, and a digest of it.

The dev/test environment is locked (requirements/dev.lock, requirements/mlserver.lock, made by
``bash scripts/lock.sh``) while pyproject.toml keeps ranges. The lock records the digest of its
inputs in its first line, so tests/test_lock.py can tell when pyproject.toml (or the
constraints) changed without the lock being refreshed.

    python scripts/lock_inputs.py digest           the digest of the inputs
    python scripts/lock_inputs.py build-requires   [build-system] requires, one per line
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"
DIGEST_PREFIX = "# inputs-sha256: "


def _lines(path: Path) -> list[str]:
    """Requirement lines of a requirements-style file, comments and blanks dropped."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def pyproject(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def build_requires(root: Path = ROOT) -> list[str]:
    """[build-system] requires, plus what hatchling asks for an editable build (``editables``)."""
    return list(pyproject(root)["build-system"]["requires"]) + ["editables"]


def inputs(root: Path = ROOT) -> dict:
    """Everything that decides what the locks hold, in a canonical form."""
    project = pyproject(root)["project"]
    req = root / "requirements"
    return {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {k: sorted(v) for k, v in sorted(project.get("optional-dependencies", {}).items())},
        "build-system": sorted(build_requires(root)),
        "constraints": sorted(_lines(req / "constraints.txt")),
        "mlserver": sorted(_lines(req / "mlserver.in")),
    }


def digest(root: Path = ROOT) -> str:
    blob = json.dumps(inputs(root), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def requirements(root: Path = ROOT) -> list[str]:
    """Every requirement the dev/test environment must meet: the package's dependencies, all
    its extras, the build requirements and the constraints (self-references left out)."""
    data = pyproject(root)
    name = canonical(data["project"]["name"])
    reqs = list(data["project"].get("dependencies", []))
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs.extend(extra)
    reqs.extend(build_requires(root))
    reqs.extend(_lines(root / "requirements" / "constraints.txt"))
    return [r for r in reqs if canonical(re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0]) != name]


def recorded_digest(lock: Path) -> str | None:
    """The digest a lock file was made from (its first line), or None."""
    first = lock.read_text().splitlines()[:1]
    if first and first[0].startswith(DIGEST_PREFIX):
        return first[0][len(DIGEST_PREFIX):].strip()
    return None


def pins(lock: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a lock file's ``name==version`` lines."""
    out = {}
    for line in _lines(lock):
        name, sep, version = line.partition("==")
        if sep:
            out[canonical(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return out


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "digest":
        print(digest())
    elif what == "build-requires":
        print("\n".join(build_requires()))
    else:
        sys.exit(__doc__)
