"""Search spaces of a sweep: what a cell's ``space`` may say, checked up front, handed to Optuna.

A ``space`` is a dict ``{parameter: values}``:

* a list or tuple — the values to try (a grid axis; a categorical choice for random/TPE);
* :func:`loguniform`, :func:`uniform`, :func:`randint`, :func:`choice` — ranges for random/TPE
  (Ray Tune's and Optuna's spellings); an ``optuna.distributions`` object is taken as it is.

Why a small layer of our own over Optuna's distributions: the cell must read the way a data
scientist writes it (``loguniform(1e-4, 1e-1)``), bad input must fail before anything is
submitted with one line naming the parameter, and a grid must be enumerable (Optuna's
``GridSampler`` cannot be driven through ask/tell to its end: it stops the study from inside
``tell``). The search maths — sampling, TPE, pruning — stay Optuna's (:mod:`.sweep_study`).

Stdlib only at import (Optuna is imported when a space is turned into distributions).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from typing import Any

from .errors import SweepError
from .sweep_options import SEARCHES

#: a grid larger than this is a mistake (the product of the axes), not a plan
MAX_GRID = 100_000


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric range of a space: ``kind`` is "loguniform", "uniform" or "randint" (bounds inclusive)."""

    kind: str
    low: float
    high: float

    def describe(self) -> str:
        return f"{self.kind}({self.low:g}, {self.high:g})"

    def to_optuna(self):
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.kind == "randint":
            return IntDistribution(int(self.low), int(self.high))
        return FloatDistribution(self.low, self.high, log=self.kind == "loguniform")


def loguniform(low: float, high: float) -> Range:
    """Floats between *low* and *high*, uniform in log space (learning rates, regularisation)."""
    _check_bounds("loguniform", low, high)
    if low <= 0:
        raise SweepError(f"loguniform({low}, {high}): the bounds must be > 0")
    return Range("loguniform", float(low), float(high))


def uniform(low: float, high: float) -> Range:
    """Floats between *low* and *high*."""
    _check_bounds("uniform", low, high)
    return Range("uniform", float(low), float(high))


def randint(low: int, high: int) -> Range:
    """Integers from *low* to *high*, both included (as Optuna's ``suggest_int``)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise SweepError(f"randint({low!r}, {high!r}): the bounds must be integers")
    _check_bounds("randint", low, high)
    return Range("randint", low, high)


def choice(values) -> list:
    """One of *values* (the same as writing the list)."""
    return list(values)


def _check_bounds(kind: str, low, high) -> None:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not ok or low > high:
        raise SweepError(f"{kind}({low!r}, {high!r}): need finite numbers with low <= high")


@dataclasses.dataclass
class SearchSpace:
    """A checked space: ``axes`` maps each parameter to a list (grid/categorical) or a range."""

    axes: dict[str, Any]

    @classmethod
    def parse(cls, space: Any, search: str) -> "SearchSpace":
        if search not in SEARCHES:
            raise SweepError(f"--search must be one of {', '.join(SEARCHES)}, got {search!r}")
        if not isinstance(space, dict) or not space:
            raise SweepError("the cell must define `space`, a non-empty dict {parameter: values}",
                             hint="e.g. space = {'max_depth': [4, 8, 16], 'n_estimators': [50, 100]}")
        axes: dict[str, Any] = {}
        for name, values in space.items():
            if not isinstance(name, str) or not name:
                raise SweepError(f"space keys must be parameter names (str), got {name!r}")
            axes[name] = _axis(name, values, search)
        out = cls(axes)
        if search == "grid" and out.grid_size() > MAX_GRID:
            raise SweepError(f"the grid has {out.grid_size():,} points (more than {MAX_GRID:,})",
                             hint="use --search random or tpe with --trials N")
        return out

    @property
    def names(self) -> list[str]:
        return list(self.axes)

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.axes.values() if isinstance(v, list))

    def grid(self, seed: int, limit: int | None = None) -> list[dict]:
        """Every point of the grid (or *limit* of them), in a seeded shuffled order: a grid cut
        short by ``--trials`` still covers the space evenly."""
        points = [dict(zip(self.axes, combo)) for combo in itertools.product(*self.axes.values())]
        random.Random(seed).shuffle(points)
        return points[:limit] if limit is not None else points

    def distributions(self) -> dict:
        """The space as ``optuna.distributions`` (lists become categorical)."""
        from optuna.distributions import BaseDistribution, CategoricalDistribution

        out = {}
        for name, axis in self.axes.items():
            if isinstance(axis, Range):
                out[name] = axis.to_optuna()
            elif isinstance(axis, BaseDistribution):
                out[name] = axis
            else:
                out[name] = CategoricalDistribution(axis)
        return out

    def describe(self) -> dict[str, Any]:
        """JSON for the registry, from which :meth:`from_description` rebuilds the same space
        (a re-attached sweep goes on without unpickling anything)."""
        out: dict[str, Any] = {}
        for name, axis in self.axes.items():
            if isinstance(axis, list):
                out[name] = {"values": axis}
            elif isinstance(axis, Range):
                out[name] = {"kind": axis.kind, "low": axis.low, "high": axis.high}
            else:
                from optuna.distributions import distribution_to_json

                out[name] = {"optuna": distribution_to_json(axis)}
        return out

    @classmethod
    def from_description(cls, described: dict[str, Any]) -> "SearchSpace":
        axes: dict[str, Any] = {}
        for name, d in described.items():
            if "values" in d:
                axes[name] = list(d["values"])
            elif "kind" in d:
                axes[name] = Range(d["kind"], d["low"], d["high"])
            else:
                from optuna.distributions import json_to_distribution

                axes[name] = json_to_distribution(d["optuna"])
        return cls(axes)

    def text(self) -> dict[str, str]:
        """How each axis reads, for tables: ``[4, 8, 16]``, ``loguniform(0.0001, 0.1)``."""
        return {name: (repr(axis) if isinstance(axis, list) else
                       axis.describe() if isinstance(axis, Range) else repr(axis))
                for name, axis in self.axes.items()}


def _axis(name: str, values: Any, search: str):
    if isinstance(values, Range) or _is_optuna_distribution(values):
        if search == "grid":
            raise SweepError(f"space[{name!r}] is a range; a grid needs a list of values",
                             hint="use --search random or tpe, or give a list")
        return values
    if isinstance(values, (list, tuple, range)):
        values = list(values)
        if not values:
            raise SweepError(f"space[{name!r}] is empty")
        for v in values:
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise SweepError(f"space[{name!r}] holds {type(v).__name__}; values must be numbers, "
                                 "strings, booleans or None", hint="name the choice with a string and map it "
                                                                  "in make_model(params)")
        return values
    raise SweepError(f"space[{name!r}] must be a list of values or a range such as loguniform(1e-4, 1e-1), "
                     f"got {type(values).__name__}")


def _is_optuna_distribution(value: Any) -> bool:
    import sys

    dists = sys.modules.get("optuna.distributions")  # only if the cell already imported optuna
    return dists is not None and isinstance(value, dists.BaseDistribution)


#: the names a sweep cell may use without importing them
CELL_HELPERS = {"loguniform": loguniform, "uniform": uniform, "randint": randint, "choice": choice}

__all__ = ["SearchSpace", "Range", "loguniform", "uniform", "randint", "choice", "CELL_HELPERS", "SEARCHES"]
