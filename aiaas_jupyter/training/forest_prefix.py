"""A smaller forest for free: the first n trees of a seeded random forest ARE the n-tree forest.

A random forest (or extra-trees) built with an integer ``random_state`` draws one seed per tree
from that state, in order, and each tree's bootstrap sample and feature draws come from its own
seed only. So the first n trees of a 40-tree forest are, tree for tree, the forest that
``n_estimators=n`` builds with the same seed and data. A grid over ``n_estimators`` — the most
common forest grid there is — therefore needs one fit per value of the *other* parameters, not
one per point: the larger forest is fitted once and each smaller one is read off it.

tests/test_forest_prefix.py checks the identity (predictions, probabilities, importances, the
skops round trip) against independent fits for the four estimators this applies to, which are
named exactly: a subclass could build its trees another way. ``oob_score`` is excluded (the
out-of-bag score is computed over the whole forest, so a prefix would carry the wrong one), and
so is a ``random_state`` that is not an integer (a ``RandomState`` object: no two fits agree).
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
from typing import Any

from .base import Fitted, TrainSpec

#: the grid axis a prefix ladder climbs
KEY = "n_estimators"
#: exact classes whose first n trees are the n-tree forest (checked by the tests)
FORESTS = frozenset({
    "sklearn.ensemble._forest.RandomForestClassifier", "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier", "sklearn.ensemble._forest.ExtraTreesRegressor",
})


def _class_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def ladder_key(model: Any, axes: dict[str, list]) -> str | None:
    """``"n_estimators"`` when a grid over *axes* on *model* can share fits along it, else None."""
    if _class_name(model) not in FORESTS:
        return None
    params = model.get_params(deep=False)
    values = axes.get(KEY) or []
    if params.get("oob_score") or not (params.get("random_state") is None
                                        or isinstance(params.get("random_state"), numbers.Integral)):
        return None
    if any(k in axes for k in ("oob_score", "random_state")):
        return None
    ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values)
    return KEY if ok and len(set(values)) > 1 else None


def prefix(top: Fitted, n: int, spec: TrainSpec, data) -> Fitted:
    """The n-tree forest of *top* (a fitted forest of at least n trees), scored on the same
    held-out split as *top*; everything else (task, classes, feature names) is *top*'s."""
    from . import common
    from .sklearn import score

    forest = top.model
    if _class_name(forest) not in FORESTS or len(forest.estimators_) < n:
        raise ValueError(f"no {n}-tree prefix in a {type(forest).__name__} of {len(forest.estimators_)} trees")
    sub = copy.copy(forest)
    sub.estimators_ = list(forest.estimators_[:n])
    sub.set_params(n_estimators=n)
    classification = top.extra.get("task") == "classification"
    X, y = common.features_and_target(spec, data)
    _, X_test, _, y_test = common.split(spec, X, y, classification)
    params = {k: common.jsonable(v) for k, v in sub.get_params(deep=False).items()}
    extra = {**top.extra, "prefix_of": len(forest.estimators_)}
    return dataclasses.replace(top, model=sub, params=params, metrics=score(sub, classification, X_test, y_test),
                               history=[], extra=extra)


__all__ = ["ladder_key", "prefix", "KEY", "FORESTS"]
