"""The order a whole grid runs in (aiaas_jupyter.sweep_order): longest predicted first, the
prediction learnt from the trials that ran; and when the grid keeps its seeded shuffle instead."""

from __future__ import annotations

import itertools

import pytest

from aiaas_jupyter.sweep_order import LongestFirst
from aiaas_jupyter.sweep_space import SearchSpace
from aiaas_jupyter.sweep_study import Study

GRID = {"n_estimators": [5, 10, 20, 40], "max_depth": [4, 8, 12, 16]}


def points(grid):
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def test_before_anything_ran_the_biggest_knobs_go_first():
    order, pending = LongestFirst(GRID), points(GRID)
    taken = [order.take(pending) for _ in range(16)]
    assert taken[0] == {"n_estimators": 40, "max_depth": 16}
    assert taken[-1] == {"n_estimators": 5, "max_depth": 4}
    products = [p["n_estimators"] * p["max_depth"] for p in taken]
    assert products == sorted(products, reverse=True) and not pending


def test_observed_seconds_teach_it_a_knob_that_makes_trials_cheaper():
    grid = {"n_estimators": [10, 20, 40], "min_samples_leaf": [1, 4, 16]}
    order, pending = LongestFirst(grid), points(grid)
    assert order.take(list(pending)) == {"n_estimators": 40, "min_samples_leaf": 16}  # the prior is wrong here
    for p in points(grid)[:5]:  # trials whose cost is n_estimators / min_samples_leaf
        order.observe(p, 0.01 * p["n_estimators"] / p["min_samples_leaf"])
    w = order.weights()
    assert w[0] > 0.7 and w[1] < -0.5, w
    assert order.take(pending) == {"n_estimators": 40, "min_samples_leaf": 1}


def test_a_knob_that_costs_nothing_loses_its_weight():
    grid = {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "width": [8, 64]}
    order = LongestFirst(grid)
    for p in points(grid):
        order.observe(p, 0.05 * p["width"])  # the lr does not change a trial's length
    w = dict(zip(order.knobs, order.weights()))
    assert abs(w["lr"]) < 0.05 and w["width"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("axes, applies", [
    ({"max_depth": [2, 4]}, True),
    ({"criterion": ["gini", "entropy"]}, False),          # nothing numeric to read a cost from
    ({"max_depth": [None, 4]}, False),                      # None is not a size
    ({"max_depth": [-1, 4]}, False),
    ({"max_depth": [4], "criterion": ["gini", "entropy"]}, False),  # one value: no information
    ({"bootstrap": [True, False]}, False),
])
def test_which_axes_it_reads(axes, applies):
    assert LongestFirst.applies(axes) is applies


@pytest.mark.parametrize("kwargs, ordered", [
    ({"early_stop": "none", "n_trials": 16}, True),
    ({"early_stop": "asha", "n_trials": 16}, False),   # ASHA's promotions must not depend on cost
    ({"early_stop": "none", "n_trials": 8}, False),    # a cut grid keeps its even, shuffled cover
])
def test_only_a_whole_grid_without_early_stopping_is_reordered(kwargs, ordered):
    space = SearchSpace.parse(GRID, "grid")
    study = Study(space, search="grid", direction="max", seed=0, max_resource=20, **kwargs)
    first = study.ask(0)
    assert (study.order is not None) is ordered
    if ordered:
        assert first == {"n_estimators": 40, "max_depth": 16}
        study.tell(0, "finished", 0.9, seconds=4.0)
        assert study.order.n_observed == 1
    else:
        assert first == space.grid(0, limit=kwargs["n_trials"])[0]
