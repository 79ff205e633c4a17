"""The packages a job depends on, and their versions in this process: one list, one reader.

Two questions share it. Before the first dispatch the façade asks "does every worker run the
same stack as the kernel?" (:func:`package_versions` in both, compared; a package missing on
one side shows as None). After a fit, the worker records with the model version the stack it
was trained with (``training.common.library_versions``: the installed ones only), so a model
can be reproduced or audited later. Asking both from one list means a package that matters
for the one is never forgotten by the other.

Stdlib only (a leaf): the kernel, the workers (``Client.run`` pickles the function by
reference, so every process of the cluster imports this module) and the trainers all use it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform

#: distributions, by their installed name, that a job needs on both sides and a model records
PACKAGES = ("aiaas-jupyter", "dask", "distributed", "cloudpickle", "numpy", "pandas", "scikit-learn",
            "skops", "torch", "safetensors", "onnx", "onnxruntime")


def package_versions() -> dict[str, str | None]:
    """``python`` and each of :data:`PACKAGES` in this process (None where not installed)."""
    return dict(_read())


@functools.lru_cache(maxsize=1)
def _read() -> tuple[tuple[str, str | None], ...]:
    """Read once per process: installed versions do not change under a running worker."""
    out: list[tuple[str, str | None]] = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, None))
    return tuple(out)
