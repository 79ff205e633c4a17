"""The model server: deployed registry models over HTTP (docs/serving.md).

Importing this package is cheap (nothing but the standard library): a kernel that only asks
"is a server running?" never loads Starlette, uvicorn or any ML library. The server-side
modules — :mod:`.app` (routes), :mod:`.oip` (Open Inference Protocol v2 codec),
:mod:`.runtime` (loaded models), :mod:`.batching`, :mod:`.deployments`, :mod:`.openapi` — are
imported by the server process itself; :mod:`.state` finds, starts and stops it. What a kernel
uses to reach a running server (HTTP clients, :class:`~aiaas_jupyter.serving_client.access.Access`)
is :mod:`aiaas_jupyter.serving_client`; neither package imports the other, except that the clients
build their tensors with :mod:`.oip`, the wire format both sides share.
"""

from __future__ import annotations

from ..protocols import PROTOCOLS  # noqa: F401  (re-exported; the list lives below registry and serving)

_STATE = ("ServerInfo", "find_server", "ensure_server", "stop_server", "read_token")
__all__ = list(_STATE)


def __getattr__(name: str):
    if name in _STATE:
        from . import state

        return getattr(state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
