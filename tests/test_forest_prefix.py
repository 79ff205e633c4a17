"""A forest grid over n_estimators fits each ladder once (training/forest_prefix.py, sweep_trial.ladder_task).

The identity it rests on — the first n trees of a seeded forest are the n-tree forest — is checked
against independent fits for every class it is allowed for; the sweep's shared trials are checked
against the very trials an unshared sweep runs (the same ``training.fit`` path, same split), value
for value, and the registered best against an independent fit of its parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.training.base import TrainSpec
from aiaas_jupyter.training.forest_prefix import ladder_key, prefix


@pytest.fixture(scope="module")
def frames():
    from sklearn.datasets import make_classification, make_regression

    X, y = make_classification(500, 8, n_informative=5, n_classes=3, random_state=1)
    clf = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(label=y)
    X, y = make_regression(500, 8, noise=5.0, random_state=1)
    reg = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(label=y)
    return {"clf": clf, "reg": reg}


def _forests():
    from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier,
                                  RandomForestRegressor)

    return [(RandomForestClassifier, "clf", {}), (RandomForestClassifier, "clf", {"max_samples": 0.5}),
            (ExtraTreesClassifier, "clf", {"bootstrap": True, "max_features": 0.5}),
            (RandomForestRegressor, "reg", {"max_depth": 5}), (ExtraTreesRegressor, "reg", {})]


@pytest.mark.parametrize("cls,task,kw", _forests(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_prefix_is_the_smaller_forest(frames, cls, task, kw):
    from aiaas_jupyter.artifacts.codec import dump_sklearn, load_sklearn
    from aiaas_jupyter.training import fit

    df = frames[task]
    spec = lambda n: TrainSpec(model=cls(n_estimators=n, **kw), target="label", seed=3)  # noqa: E731
    top = fit(spec(24), df, lambda event: None)
    for n in (1, 7, 24):
        sub = prefix(top, n, spec(n), df)
        alone = fit(spec(n), df, lambda event: None)
        assert sub.metrics == alone.metrics and sub.params == alone.params
        X = df.drop(columns="label")
        how = "predict_proba" if task == "clf" else "predict"
        assert np.array_equal(getattr(sub.model, how)(X), getattr(alone.model, how)(X))
        assert np.array_equal(sub.model.feature_importances_, alone.model.feature_importances_)
        back = load_sklearn(dump_sklearn(sub.model))  # the registered artifact: n trees, same answers
        assert len(back.estimators_) == n and np.array_equal(back.predict(X), alone.model.predict(X))
    assert len(top.model.estimators_) == 24  # the top forest itself is left whole
    with pytest.raises(ValueError, match="no 25-tree prefix"):
        prefix(top, 25, spec(25), df)


def test_which_grids_share_fits():
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    class MyForest(RandomForestClassifier):
        pass

    axes = {"n_estimators": [5, 10], "max_depth": [2, 4]}
    assert ladder_key(RandomForestClassifier(), axes) == "n_estimators"
    assert ladder_key(RandomForestClassifier(random_state=4), axes) == "n_estimators"
    assert ladder_key(RandomForestClassifier(), {"max_depth": [2, 4]}) is None           # no n_estimators axis
    assert ladder_key(RandomForestClassifier(), {"n_estimators": [5, 5]}) is None         # nothing to share
    assert ladder_key(RandomForestClassifier(), {"n_estimators": [5, 2.5]}) is None       # not tree counts
    assert ladder_key(RandomForestClassifier(oob_score=True), axes) is None               # oob is whole-forest
    assert ladder_key(RandomForestClassifier(random_state=np.random.RandomState(0)), axes) is None
    assert ladder_key(RandomForestClassifier(), {**axes, "random_state": [0, 1]}) is None
    assert ladder_key(MyForest(), axes) is None                                           # exact classes only
    assert ladder_key(GradientBoostingClassifier(), axes) is None


def test_a_forest_grid_fits_each_ladder_once_with_the_same_results(aiaas, frames):
    from sklearn.ensemble import RandomForestClassifier

    from aiaas_jupyter.training import fit

    df = frames["clf"]
    space = {"n_estimators": [3, 6, 12], "max_depth": [2, 6]}
    sweep = aiaas.sweep(RandomForestClassifier(), df, "label", space=space, name="sw-ladder", seed=5,
                        block=True)
    version = sweep.result(timeout=5)
    records = sweep.trial_records()
    assert sweep.counts == {"finished": 6} and sweep.record.info["shared_fits"] == "n_estimators"
    assert "search=grid, early stop none, one fit per n_estimators ladder" in repr(sweep)
    # one task per max_depth: each ladder's trials share the task (and its key), the largest first
    ladders = {}
    for t in sorted(records, key=lambda t: t.number):
        ladders.setdefault(t.key, []).append(t.params)
    assert sorted(len(v) for v in ladders.values()) == [3, 3]
    for points in ladders.values():
        assert [p["n_estimators"] for p in points] == [12, 6, 3] and len({p["max_depth"] for p in points}) == 1
    # every trial's metrics are those of its own independent fit (what an unshared trial runs)
    for t in records:
        alone = fit(TrainSpec(model=RandomForestClassifier(**t.params), target="label", seed=5), df,
                    lambda event: None)
        assert t.metrics == alone.metrics, (t.params, t.metrics, alone.metrics)
    # the registered best is its own n-tree forest, not the ladder's largest
    best = sweep.best
    model = aiaas.load_model(version.ref)
    assert len(model.estimators_) == best.params["n_estimators"] and version.params == {
        **version.params, **best.params}
    alone = fit(TrainSpec(model=RandomForestClassifier(**best.params), target="label", seed=5), df,
                lambda event: None).model
    X = df.drop(columns="label")
    assert np.array_equal(model.predict_proba(X), alone.predict_proba(X))


def test_a_grid_cut_by_trials_does_not_share(aiaas, frames):
    """Only a whole grid is ordered (and so laddered): a cut grid keeps its even coverage."""
    from sklearn.ensemble import RandomForestClassifier

    sweep = aiaas.sweep(RandomForestClassifier(), frames["clf"], "label", space={"n_estimators": [2, 4, 8]},
                        name="sw-ladder-cut", trials=2, register="none", block=True)
    assert sweep.counts == {"finished": 2} and "shared_fits" not in sweep.record.info
    assert len({t.key for t in sweep.trial_records()}) == 2
