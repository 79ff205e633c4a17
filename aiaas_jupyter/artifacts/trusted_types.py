"""Which types a scikit-learn artifact may contain: exact names, never a module prefix.

A skops file names every object it holds as ``module.attribute`` and skops builds it by
importing that module and calling or instantiating that attribute. The file's author picks
the names, so trusting a *namespace* trusts everything reachable under it: numpy, scipy and
scikit-learn re-export ``subprocess.Popen``, ``tempfile.TemporaryDirectory`` and file
constructors such as ``numpy.memmap`` from modules whose names look harmless. Only an exact
list is safe, and only one derived from what a fitted estimator really contains:

* skops' own defaults (estimators from ``sklearn.utils.all_estimators()``, loss and link
  objects, numpy/scipy ufuncs and dtypes, numpy bit generators, builtin containers);
* the estimator classes again, so this list does not depend on skops keeping them;
* :data:`FITTED_PARTS`: the few internal classes (and pure scoring functions) that fitted
  estimators hold and skops reports as untrusted — checked against a broad sample of real
  fitted models in ``tests/test_artifact_safety.py``;
* the user's opt-in ``aiaas.artifacts.trusted-types``: more exact names, one per type.

Each built-in entry is resolved by importing *our* module path (never one read from a file)
and kept only if the object found there is that class or function under that very name, so
the string skops compares is the object we meant. Resolution happens once, on the first
scikit-learn load, because importing scikit-learn's internals is too slow for
``%load_ext``.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Iterable

from ..errors import ConfigError

#: Classes and functions fitted estimators contain beyond skops' defaults, as
#: ``module:attribute``; the trusted name is the object's own ``module.qualname``.
#: Trees, tree predictors and KD/ball trees hold indices scikit-learn does not bounds-check
#: (skops' UNTRUSTED_TYPE_REASONS); they stay trusted because the product trains forests and
#: gradient boosting, and every loaded one is checked by :mod:`.tree_check` instead.
FITTED_PARTS: tuple[str, ...] = (
    "sklearn.tree._tree:Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor:TreePredictor",
    "sklearn.neighbors._kd_tree:KDTree",
    "sklearn.neighbors._ball_tree:BallTree",
    "sklearn.neural_network._stochastic_optimizers:SGDOptimizer",
    "sklearn.neural_network._stochastic_optimizers:AdamOptimizer",
    "sklearn.gaussian_process._gpc:_BinaryGaussianProcessClassifierLaplace",
    "numpy:dtype",
    # SelectKBest/SelectPercentile keep their score function; these compute statistics only.
    "sklearn.feature_selection:f_classif",
    "sklearn.feature_selection:f_regression",
    "sklearn.feature_selection:r_regression",
    "sklearn.feature_selection:chi2",
    "sklearn.feature_selection:mutual_info_classif",
    "sklearn.feature_selection:mutual_info_regression",
)

#: The module whose distance metrics (neighbours, KD/ball trees) fitted models hold: every
#: ``DistanceMetric`` subclass defined there, by exact name — except ``PyFuncDistance*``, which
#: wraps an arbitrary Python function. Gaussian-process kernels likewise.
_METRIC_MODULE = "sklearn.metrics._dist_metrics"
_KERNEL_MODULE = "sklearn.gaussian_process.kernels"

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def type_name(obj) -> str:
    """The name skops records for a class or function: defining module + qualified name."""
    return f"{obj.__module__}.{obj.__qualname__}"


def _resolve(spec: str) -> str | None:
    """``module:attr`` → its trusted name, or None when this scikit-learn/numpy lacks it or
    the object does not live under its own name (then skops would resolve something else)."""
    module_name, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None
    name = type_name(obj)
    mod, _, qual = name.rpartition(".")
    try:
        same = getattr(importlib.import_module(mod), qual) is obj
    except (ImportError, AttributeError):
        same = False
    return name if same and callable(obj) else None


def _subclasses_in(module_name: str, base_attrs: Iterable[str]) -> set[str]:
    """Exact names of the classes a module defines that subclass one of ``base_attrs``."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return set()
    bases = tuple(b for b in (getattr(module, a, None) for a in base_attrs) if isinstance(b, type))
    return {type_name(v) for v in vars(module).values()
            if isinstance(v, type) and bases and issubclass(v, bases) and v.__module__ == module_name}


@functools.lru_cache(maxsize=1)
def builtin_trusted_types() -> frozenset[str]:
    """Every exact name trusted without configuration (computed once per process)."""
    from sklearn.utils import all_estimators

    names = {type_name(cls) for _, cls in all_estimators() if cls.__module__.startswith("sklearn.")}
    names |= {n for n in map(_resolve, FITTED_PARTS) if n}
    names |= {n for n in _subclasses_in(_METRIC_MODULE, ("DistanceMetric", "DistanceMetric64", "DistanceMetric32"))
              if not n.rpartition(".")[2].startswith("PyFunc")}
    names |= _subclasses_in(_KERNEL_MODULE, ("Kernel",))
    names |= {type_name(cls) for cls in _sparse_containers()}
    return frozenset(names)


def _sparse_containers() -> list[type]:
    """scipy.sparse matrices/arrays (one-hot and text features are sparse), by exact class."""
    import scipy.sparse as sp

    return [getattr(sp, n) for n in ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array",
                                     "csc_array", "coo_array") if hasattr(sp, n)]


def configured_trusted_types() -> frozenset[str]:
    """``aiaas.artifacts.trusted-types``: exact dotted names only (a prefix or a pattern
    would bring back the very hole this module closes)."""
    from ..settings import config

    value = config("artifacts.trusted-types") or []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"aiaas.artifacts.trusted-types must be a list of exact type names, got {value!r}",
                          hint='e.g. ["mypackage.models.MyEstimator"]')
    for entry in value:
        if not isinstance(entry, str) or not _DOTTED.fullmatch(entry):
            raise ConfigError(
                f"aiaas.artifacts.trusted-types entry {entry!r} is not an exact dotted type name",
                hint="list each type in full (module.Class); prefixes and wildcards are not accepted")
    return frozenset(value)


def refused(untrusted: Iterable[str]) -> list[str]:
    """The names among ``untrusted`` (as skops reports them) that are on no trusted list."""
    allowed = builtin_trusted_types() | configured_trusted_types()
    return sorted(t for t in untrusted if t not in allowed)
