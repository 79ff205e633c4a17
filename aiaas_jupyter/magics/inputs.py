"""``--input VAR|JSON|@FILE`` for ``%aiaas predict`` / ``%aiaas embed``.

Three forms, tried in this order, so the meaning of a line never depends on luck:

* ``@path`` — a file: ``.json`` (parsed with :func:`json.load`) or ``.csv`` (a DataFrame);
* a Python identifier bound in the notebook — that variable's value, as is;
* anything else — a JSON literal, parsed with :func:`json.loads`. Never ``eval``: a magic
  line must not run code the user did not write as code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError

_FILE_TYPES = (".json", ".csv")


def resolve_input(spec: str, namespace: dict) -> Any:
    spec = spec.strip()
    if spec.startswith("@"):
        return _read_file(spec[1:])
    if spec.isidentifier() and spec in namespace:
        return namespace[spec]
    try:
        return json.loads(spec)
    except json.JSONDecodeError as exc:
        if spec.isidentifier():
            raise DataError(f"--input {spec}: no variable named {spec!r} in the notebook, and not JSON",
                            "define the variable first, or pass JSON such as '[[5.1, 3.5, 1.4, 0.2]]'") from None
        raise DataError(f"--input is not valid JSON: {exc.msg} at column {exc.colno}",
                        "quote the whole literal, e.g. --input '{\"text\": \"hi\"}'") from None


def _read_file(name: str) -> Any:
    if not name:
        raise DataError("--input @: missing file name after @", "write --input @rows.json or @rows.csv")
    path = Path(name).expanduser()
    if path.suffix.lower() not in _FILE_TYPES:
        raise DataError(f"--input @{name}: unsupported file type {path.suffix or '(none)'!r}",
                        "use a .json or .csv file")
    if not path.is_file():
        raise DataError(f"--input @{name}: no such file", f"looked for {path.resolve()}")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        import pandas as pd

        return pd.read_csv(path)
    except json.JSONDecodeError as exc:
        raise DataError(f"--input @{name}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"--input @{name}: cannot read it: {first}") from None
