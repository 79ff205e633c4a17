"""The model server: deployed registry models over HTTP (docs/serving.md).

Importing this package is cheap (nothing but the standard library): a kernel that only asks
"is a server running?" never loads Starlette, uvicorn or any ML library. The server-side
modules — :mod:`.app` (routes), :mod:`.oip` (Open Inference Protocol v2 codec),
:mod:`.runtime` (loaded models), :mod:`.batching`, :mod:`.deployments`, :mod:`.openapi` — are
imported by the server process itself; :mod:`.state` finds, starts and stops it.
"""

from __future__ import annotations

from ..protocols import PROTOCOLS  # noqa: F401  (re-exported; the list lives below registry and serving)

#: models that ship with the server (name → ref), deployable on a running server without the
#: registry: ``%aiaas deploy all-minilm-l6-v2`` (the server side: ``deployments.BUILTIN_REFS``)
BUILTIN_MODELS = {"all-minilm-l6-v2": "builtin:all-minilm-l6-v2"}

_STATE = ("ServerInfo", "find_server", "ensure_server", "stop_server", "read_token")
__all__ = list(_STATE)


def __getattr__(name: str):
    if name in _STATE:
        from . import state

        return getattr(state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
