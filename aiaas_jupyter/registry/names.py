"""Names of models, aliases and artifact files, and model references.

Names end up as path components and in shell-ish magic lines, so they are restricted to a
small, safe alphabet: this is what stops ``../evil`` or ``a/b`` from ever reaching the
file system, and keeps ``NAME:VERSION`` / ``NAME@ALIAS`` references unambiguous.
"""

from __future__ import annotations

import re

from ..errors import InvalidNameError
from ..limits import MAX_VERSION

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REF = re.compile(r"(?P<name>[^:@]*)(?::(?P<version>[^:@]*)|@(?P<alias>[^:@]*))?")

#: a version number has at most this many digits (checked before ``int()``: no long-int parsing of junk)
_MAX_VERSION_DIGITS = len(str(MAX_VERSION))

_NAME_HINT = "use 1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..'"
_REF_HINT = "write NAME, NAME:VERSION (e.g. iris:3) or NAME@ALIAS (e.g. iris@prod)"
_VERSION_HINT = f"versions are whole numbers from 1 to {MAX_VERSION}"


def validate_name(name: object, kind: str = "model") -> str:
    """Return ``name`` unchanged if it is a safe name, else raise :class:`InvalidNameError`.

    ``kind`` ("model", "alias", "artifact file", ...) only flavours the message.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} name must be a string, not {type(name).__name__}", _NAME_HINT)
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidNameError(f"invalid {kind} name {_short(name)!r}", _NAME_HINT)
    return name


def parse_ref(ref: object) -> tuple[str, int | None, str | None]:
    """Split a model reference into ``(name, version, alias)``.

    ``"iris"`` → ``("iris", None, None)`` (latest), ``"iris:3"`` → ``("iris", 3, None)``,
    ``"iris@prod"`` → ``("iris", None, "prod")``. Anything else raises InvalidNameError.
    """
    if not isinstance(ref, str):
        raise InvalidNameError(f"model reference must be a string, not {type(ref).__name__}", _REF_HINT)
    m = _REF.fullmatch(ref.strip())
    if m is None:
        raise InvalidNameError(f"invalid model reference {_short(ref)!r}", _REF_HINT)
    name = validate_name(m["name"])
    version_text, alias = m["version"], m["alias"]
    version = None
    if version_text is not None:
        if (not version_text.isascii() or not version_text.isdigit()
                or len(version_text.lstrip("0")) > _MAX_VERSION_DIGITS
                or not 1 <= int(version_text) <= MAX_VERSION):
            raise InvalidNameError(f"invalid version {_short(version_text)!r} in {_short(ref)!r}",
                                   f"{_REF_HINT}; {_VERSION_HINT}")
        version = int(version_text)
    if alias is not None:
        validate_name(alias, "alias")
    return name, version, alias


def validate_version(version: object) -> int:
    """Return ``version`` if it is an int from 1 to :data:`MAX_VERSION` (bools are not versions),
    else raise :class:`InvalidNameError`: the same bound as in references, for the registry's
    int-taking API (``set_alias``, ``delete``), so no caller reaches SQLite with a huge int."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidNameError(f"version must be an int, not {type(version).__name__}", _VERSION_HINT)
    if not 1 <= version <= MAX_VERSION:
        shown = version if abs(version) < 10**18 else "out of range"  # str() of a huge int may raise
        raise InvalidNameError(f"invalid version {shown}", _VERSION_HINT)
    return version


def _short(text: str, limit: int = 64) -> str:
    """Keeps a message one readable line when the input is a megabyte of digits."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
