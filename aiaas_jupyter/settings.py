"""The one place settings are read: ``aiaas.*`` in dask.config, over the packaged defaults.

Defaults live in ``aiaas.yaml`` beside this module; users override them in
``~/.config/dask/aiaas.yaml``, with ``dask.config.set``, or with environment variables such as
``DASK_AIAAS__CLUSTER__CONNECT_TIMEOUT=5s``. dask.config because the cluster's own settings
already live there (one mechanism, one file for the user). dask and yaml are imported on the
first read, so ``%load_ext`` stays light.
"""

from __future__ import annotations

from pathlib import Path

_DEFAULTS: dict | None = None


def config(key: str):
    """Read ``aiaas.<key>`` from dask.config, with our packaged defaults merged in.

    The packaged value is also the fallback: a ``with dask.config.set({"aiaas.x": ...})`` entered
    before the first read removes the whole ``aiaas`` section again when it exits.
    """
    global _DEFAULTS
    import dask.config
    import yaml

    if _DEFAULTS is None:
        _DEFAULTS = yaml.safe_load((Path(__file__).with_name("aiaas.yaml")).read_text())
        dask.config.update_defaults(_DEFAULTS)
    default = _DEFAULTS["aiaas"]
    for part in key.split("."):
        default = default[part]
    return dask.config.get(f"aiaas.{key}", default=default)
