"""The ``endpoints`` table: remote model endpoints a notebook calls by name.

An endpoint is a URL plus the protocol it speaks (``v2`` Open Inference Protocol, ``openai``
or plain ``rest``) and, optionally, the *name* of the environment variable that holds its
API key. The key itself is never written here: the registry database is a plain file that
gets copied, shared and backed up, so it only records where the key will be found at call
time. These functions take an open connection; :class:`~.store.Registry` owns transactions.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sqlite3
import urllib.parse

from ..clock import now_iso
from ..errors import EndpointError, EndpointNotFoundError
from ..protocols import PROTOCOLS
from .names import validate_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, protocol TEXT NOT NULL, api_key_env TEXT,
    model TEXT, created TEXT NOT NULL
);
"""

#: The API-key variable rule. An endpoint row decides where its key is sent (its URL), so the
#: variable it names must be one that holds an API key for such a service, and never one of
#: the secrets of the processes that read it:
#:
#: * upper case letters, digits and ``_``, starting with a letter, at most 64 characters;
#: * ending in ``_KEY`` or ``_TOKEN`` (``OPENAI_API_KEY``, ``HF_TOKEN``, ``MY_SERVICE_KEY``);
#: * not starting with ``JUPYTER`` or ``JPY_`` (the Jupyter server's and JupyterHub's tokens:
#:   ``JUPYTER_TOKEN``, ``JUPYTERHUB_API_TOKEN``, ``JPY_API_TOKEN``), ``AIAAS_`` (this product's
#:   own settings and secrets) or ``DASK_`` (Dask's configuration, which may carry TLS keys);
#: * not a cloud account credential that is never a bearer key (``AWS_SECRET_ACCESS_KEY``,
#:   ``AWS_SESSION_TOKEN``).
#:
#: Checked when an endpoint is added AND whenever a key is looked up (:func:`allowed_key_env`),
#: because a row can be written into the SQLite file without going through :func:`check`.
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
KEY_SUFFIXES = ("_KEY", "_TOKEN")
DENIED_PREFIXES = ("JUPYTER", "JPY_", "AIAAS_", "DASK_")
DENIED_NAMES = frozenset({"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
KEY_ENV_RULE = ("an upper-case NAME ending in _KEY or _TOKEN (like OPENAI_API_KEY or HF_TOKEN), "
                "not starting with JUPYTER, JPY_, AIAAS_ or DASK_")
_SECRET_QUERY = re.compile(r"(key|token|secret|password|signature|sig)", re.IGNORECASE)
_ENDPOINTS_HINT = "see %aiaas endpoints"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    protocol: str
    api_key_env: str | None = None      # NAME of the environment variable, never its value
    model: str | None = None            # the model name on the remote side (default: name)
    created: str = ""

    @property
    def remote_model(self) -> str:
        return self.model or self.name

    def key_is_set(self) -> bool:
        """Whether the key variable holds something; a variable outside the rule is never read."""
        return bool(self.api_key_env and allowed_key_env(self.api_key_env) and os.environ.get(self.api_key_env))


COLUMNS = tuple(f.name for f in dataclasses.fields(Endpoint))


# ---- validation (before any transaction) -----------------------------------------------

def check(name: str, url: str, protocol: str, api_key_env: str | None, model: str | None) -> Endpoint:
    """Validate every field; the message says what was wrong and what is expected."""
    validate_name(name, "endpoint")
    if protocol not in PROTOCOLS:
        raise EndpointError(f"invalid protocol {protocol!r} for endpoint {name!r}",
                            f"use one of {', '.join(PROTOCOLS)}")
    url = check_url(url)
    if api_key_env is not None:
        api_key_env = check_env_name(api_key_env)
    if model is not None and (not isinstance(model, str) or not model.strip() or len(model) > 256
                              or any(c.isspace() or c in "/?#" for c in model)):
        raise EndpointError(f"invalid remote model name {model!r}",
                            "give the model's name on the remote side, without spaces or / ? #")
    return Endpoint(name, url, protocol, api_key_env, model, now_iso())


def check_url(url: object) -> str:
    """An absolute http(s) URL without credentials in it (those would land in the database)."""
    if not isinstance(url, str):
        raise EndpointError(f"endpoint URL must be a string, not {type(url).__name__}")
    if len(url) > 2048:
        raise EndpointError(f"endpoint URL is {len(url)} characters long", "use a URL of at most 2048 characters")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"invalid endpoint URL {url!r}", "use an absolute http:// or https:// URL")
    try:
        port = parts.port  # ValueError: not a number, or outside 0..65535
    except ValueError:
        port = 0
    if port == 0:
        raise EndpointError(f"invalid port in endpoint URL {url!r}", "use a port in 1..65535")
    if parts.username or parts.password:
        raise EndpointError("endpoint URL must not contain credentials (user:password@)",
                            "keep the key in an environment variable and pass --api-key-env VAR")
    if any(_SECRET_QUERY.search(k) for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)):
        raise EndpointError("endpoint URL must not carry a key or token in its query string",
                            "keep the key in an environment variable and pass --api-key-env VAR")
    if parts.fragment:
        raise EndpointError(f"endpoint URL must not have a #fragment: {url!r}")
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def allowed_key_env(var: object) -> bool:
    """Whether ``var`` fits the API-key variable rule (see ``_ENV_NAME`` above)."""
    return (isinstance(var, str) and _ENV_NAME.fullmatch(var) is not None and var.endswith(KEY_SUFFIXES)
            and not var.startswith(DENIED_PREFIXES) and var not in DENIED_NAMES)


def check_env_name(var: object) -> str:
    """The *name* of an environment variable that fits the API-key rule. A value that looks
    like a key is refused, so a key pasted by mistake is never written to the database."""
    if any(isinstance(var, str) and var == value for key, value in os.environ.items()
           if key != var and len(value) >= 8):
        raise EndpointError("--api-key-env got the value of an environment variable, not its name",
                            "pass the variable's NAME; the key is read at call time and never stored")
    if not isinstance(var, str) or not _ENV_NAME.fullmatch(var):
        raise EndpointError("--api-key-env must be the NAME of an environment variable (like OPENAI_API_KEY)",
                            f"use {KEY_ENV_RULE}; put the key itself in that variable, it is read at call "
                            "time and never stored")
    if not allowed_key_env(var):
        raise EndpointError(f"--api-key-env {var} is not an API-key variable this product may send",
                            f"use {KEY_ENV_RULE}")
    return var


# ---- SQL -------------------------------------------------------------------------------

def upsert(conn: sqlite3.Connection, ep: Endpoint) -> None:
    """Insert or replace: re-adding a name updates its URL, protocol, key variable and model."""
    conn.execute(f"INSERT OR REPLACE INTO endpoints ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                 [getattr(ep, c) for c in COLUMNS])


def delete(conn: sqlite3.Connection, name: str) -> None:
    if conn.execute("DELETE FROM endpoints WHERE name = ?", (name,)).rowcount == 0:
        raise not_found(conn, name)


def get(conn: sqlite3.Connection, name: str) -> Endpoint | None:
    row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM endpoints WHERE name = ?", (name,)).fetchone()
    return Endpoint(*row) if row else None


def all_endpoints(conn: sqlite3.Connection) -> list[Endpoint]:
    return [Endpoint(*r) for r in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM endpoints ORDER BY name")]


def not_found(conn: sqlite3.Connection, name: str) -> EndpointNotFoundError:
    names = [r[0] for r in conn.execute("SELECT name FROM endpoints")]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}? {_ENDPOINTS_HINT}" if close else _ENDPOINTS_HINT
    return EndpointNotFoundError(f"no endpoint named {name!r}", hint)
