"""The kernel's side of serving: how a notebook (and the Jupyter server extension) reaches a
model server or a remote endpoint over HTTP.

:mod:`.transport` (timeouts, retries, one-line errors), :mod:`.clients` (our own server and
remote v2 / OpenAI / REST endpoints), :mod:`.access` (:class:`~.access.Deployment` and
:class:`~.access.Access`: URLs and headers for a notebook's own HTTP calls) and
:mod:`.payloads` (what a notebook holds → what each protocol takes). The model server process
is :mod:`aiaas_jupyter.serving`; the two never import each other (``.importlinter``), except
that the clients encode tensors with the server's own codec (:mod:`aiaas_jupyter.serving.oip`),
the one wire-format module they share. Finding, starting and stopping the server is
:mod:`aiaas_jupyter.serving.state`, which the server process itself uses for its files.

Importing this package is cheap (the standard library only); the modules bring httpx and numpy.
"""

from __future__ import annotations

#: models that ship with the server (name → ref), deployable on a running server without the
#: registry: ``%aiaas deploy all-minilm-l6-v2`` (the server side: ``serving.deployments.BUILTIN_REFS``)
BUILTIN_MODELS = {"all-minilm-l6-v2": "builtin:all-minilm-l6-v2",
                  "echo": "builtin:echo"}  # answers each text with itself: what the transport allows
