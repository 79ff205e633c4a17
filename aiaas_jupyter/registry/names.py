"""Names of models, aliases and artifact files, and model references.

Names end up as path components and in shell-ish magic lines, so they are restricted to a
small, safe alphabet: this is what stops ``../evil`` or ``a/b`` from ever reaching the
file system, and keeps ``NAME:VERSION`` / ``NAME@ALIAS`` references unambiguous.
"""

from __future__ import annotations

import re

from ..errors import InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REF = re.compile(r"(?P<name>[^:@]*)(?::(?P<version>[^:@]*)|@(?P<alias>[^:@]*))?")

_NAME_HINT = "use 1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..'"
_REF_HINT = "write NAME, NAME:VERSION (e.g. iris:3) or NAME@ALIAS (e.g. iris@prod)"


def validate_name(name: object, kind: str = "model") -> str:
    """Return ``name`` unchanged if it is a safe name, else raise :class:`InvalidNameError`.

    ``kind`` ("model", "alias", "artifact file", ...) only flavours the message.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} name must be a string, not {type(name).__name__}", _NAME_HINT)
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidNameError(f"invalid {kind} name {name!r}", _NAME_HINT)
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
        raise InvalidNameError(f"invalid model reference {ref!r}", _REF_HINT)
    name = validate_name(m["name"])
    version_text, alias = m["version"], m["alias"]
    version = None
    if version_text is not None:
        if not version_text.isascii() or not version_text.isdigit() or int(version_text) < 1:
            raise InvalidNameError(f"invalid version {version_text!r} in {ref!r}", _REF_HINT)
        version = int(version_text)
    if alias is not None:
        validate_name(alias, "alias")
    return name, version, alias
