"""Interactive forms for the notebook: train, follow a job, predict, watch the cluster.

Exports are lazy (module ``__getattr__``): ``%load_ext aiaas_jupyter`` must not import ipywidgets,
pandas or scikit-learn, and ``from aiaas_jupyter.widgets import TrainForm`` should only cost the
form it asks for.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"TrainForm": ".train_form", "JobProgress": ".progress", "PredictForm": ".predict",
            "ClusterWidget": ".cluster", "SweepBoard": ".leaderboard"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
