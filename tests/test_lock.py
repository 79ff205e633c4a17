"""The dev/test environment is locked, and the lock agrees with pyproject.toml.

pyproject.toml keeps ranges (the package's metadata); requirements/dev.lock pins every
transitive package of the package with its test extras and build requirements, and the set-up
(scripts/dev.sh) installs from it, so a release of any dependency cannot turn main red.
Refresh with ``bash scripts/lock.sh``.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"
_spec = importlib.util.spec_from_file_location("lock_inputs", ROOT / "scripts" / "lock_inputs.py")
lock_inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_inputs)

REFRESH = "pyproject.toml and requirements/ changed without the lock: run `bash scripts/lock.sh` and commit"


def unmet(requirements: list[str], pins: dict[str, str]) -> list[str]:
    """The requirements that the pinned versions do not satisfy (or that are not pinned)."""
    missing = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        pinned = pins.get(lock_inputs.canonical(req.name))
        if pinned is None or not req.specifier.contains(Version(pinned), prereleases=True):
            missing.append(f"{text} (lock: {pinned or 'absent'})")
    return missing


def dev_pins() -> dict[str, str]:
    pins = lock_inputs.pins(REQ / "dev.lock")
    pins.update(lock_inputs.pins(REQ / "constraints.txt"))  # torch: pinned there, see lock.sh
    return pins


def test_locks_were_made_from_the_current_inputs():
    want = lock_inputs.digest()
    for lock in ("dev.lock", "mlserver.lock"):
        assert lock_inputs.recorded_digest(REQ / lock) == want, f"{lock}: {REFRESH}"


def test_every_requirement_of_pyproject_is_pinned_and_satisfied():
    assert unmet(lock_inputs.requirements(), dev_pins()) == []
    # every line of the lock is an exact pin
    assert len(dev_pins()) > 150
    assert all(v and v[0].isdigit() for v in dev_pins().values())


def test_the_installed_environment_is_the_lock():
    """The README's set-up installed exactly the locked versions (torch: its local build tag aside)."""
    wrong = []
    for name, pinned in dev_pins().items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name}: not installed")
            continue
        if Version(have).public != Version(pinned).public:
            wrong.append(f"{name}: {have} installed, {pinned} locked")
    assert wrong == []


def test_the_peer_runs_our_scikit_learn_and_numpy():
    ours, peer = lock_inputs.pins(REQ / "dev.lock"), lock_inputs.pins(REQ / "mlserver.lock")
    for name in ("scikit-learn", "numpy"):
        assert peer[name] == ours[name]
    assert peer["mlserver"] == "1.7.1"


def test_a_changed_pyproject_is_caught(tmp_path):
    """The check above can fail: a new dependency changes the digest and is reported unmet."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REQ, tmp_path / "requirements")
    assert lock_inputs.digest(tmp_path) == lock_inputs.digest()
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace('"ipython>=8.10",', '"ipython>=8.10",\n  "ray>=99",', 1))
    assert lock_inputs.digest(tmp_path) != lock_inputs.digest()
    assert unmet(lock_inputs.requirements(tmp_path), dev_pins()) == ["ray>=99 (lock: absent)"]
    # a tightened range that the pinned version no longer meets is reported as well
    (tmp_path / "pyproject.toml").write_text(text.replace('"pandas>=2.0"', '"pandas>=99"', 1))
    assert unmet(lock_inputs.requirements(tmp_path), dev_pins()) == [
        f"pandas>=99 (lock: {dev_pins()['pandas']})"]


def test_the_set_up_installs_from_the_lock():
    """The README's commands go through scripts/dev.sh, whose set-up reads the lock (and no range)."""
    setup = (ROOT / "scripts" / "dev.sh").read_text()
    assert "-r requirements/dev.lock" in setup and "--no-deps --no-build-isolation -e ." in setup
    assert "requirements/mlserver.lock" in (ROOT / "scripts" / "mlserver_env.sh").read_text()
