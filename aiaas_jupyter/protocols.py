"""The protocols a remote endpoint may speak: one list that the registry (which stores an
endpoint's protocol), the magics (``--protocol``) and the kernel-side clients agree on.

A leaf module of the standard library only, below both ``registry`` and ``serving``, so
neither has to import the other for it, and ``%load_ext`` stays light.
"""

#: Open Inference Protocol v2, OpenAI-compatible, plain REST ``/predict``
PROTOCOLS = ("v2", "openai", "rest")
EXPORT_TARGETS = ("mlserver",)  # aiaas export --to: servers a registered version can be written for
