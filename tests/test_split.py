"""The trainers' held-out split: exactly scikit-learn's ``train_test_split`` rows, faster.

``common.split`` draws the row indices with the splitter ``train_test_split`` uses and takes
each array once (W0: it was 1.5 ms of a short job). Registered versions, sweeps and the torch
trainer all rely on "same frame + same seed = same rows" across releases, so every shape of
call is compared with ``train_test_split`` itself, row for row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import train_test_split

from aiaas_jupyter.errors import DataError
from aiaas_jupyter.training import common
from aiaas_jupyter.training.base import TrainSpec


def _frame(n: int, classes: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, 3)), columns=["a", "b", "c"], index=rng.permutation(n) + 100)
    y = pd.Series(rng.integers(0, classes, n), index=X.index, name="y")
    return X, y


def _same(ours, theirs) -> None:
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            pd.testing.assert_index_equal(a.index, b.index)  # the same rows, in the same order
            pd.testing.assert_frame_equal(a.to_frame() if a.ndim == 1 else a, b.to_frame() if b.ndim == 1 else b)


@pytest.mark.parametrize("test_size", [0.25, 0.2, 0.5, 7, 40])
@pytest.mark.parametrize("seed", [0, 7, 12345])
@pytest.mark.parametrize("classification", [True, False])
def test_the_rows_are_train_test_splits_own(test_size, seed, classification):
    X, y = _frame(157, classes=3, seed=seed)
    spec = TrainSpec(model=DummyClassifier(), target="y", test_size=test_size, seed=seed)
    ours = common.split(spec, X, y, classification)
    theirs = train_test_split(X, y, test_size=test_size, random_state=seed,
                              stratify=y if classification else None)
    _same(ours, theirs)
    if classification:  # stratified: each class keeps its share in the test rows
        share = y.value_counts(normalize=True)
        test_share = ours[3].value_counts(normalize=True).reindex(share.index)
        assert (abs(test_share - share) < 0.1).all()


def test_numpy_rows_and_a_text_series_split_the_same_way():
    """The torch trainer splits an index array; a text model a one-column Series."""
    X, y = _frame(90, classes=2, seed=3)
    spec = TrainSpec(model=DummyClassifier(), target="y", test_size=0.3, seed=3)
    idx = np.arange(len(y))
    _same(common.split(spec, idx, y, True), train_test_split(idx, y, test_size=0.3, random_state=3, stratify=y))
    text = pd.Series([f"doc {i}" for i in range(len(y))], index=y.index)
    _same(common.split(spec, text, y, True), train_test_split(text, y, test_size=0.3, random_state=3, stratify=y))


def test_a_class_too_rare_to_stratify_falls_back_to_a_plain_split():
    X, y = _frame(40, classes=2, seed=1)
    y.iloc[0] = 9  # one member: stratification is impossible
    spec = TrainSpec(model=DummyClassifier(), target="y", test_size=0.25, seed=1)
    _same(common.split(spec, X, y, True), train_test_split(X, y, test_size=0.25, random_state=1))


def test_no_test_size_evaluates_on_the_training_rows():
    X, y = _frame(20, classes=2, seed=2)
    X_train, X_test, y_train, y_test = common.split(TrainSpec(model=DummyClassifier(), target="y", test_size=0),
                                                    X, y, True)
    assert X_train is X and X_test is X and y_train is y and y_test is y


def test_a_split_that_cannot_be_made_is_one_data_error():
    X, y = _frame(5, classes=2, seed=4)
    spec = TrainSpec(model=DummyClassifier(), target="y", test_size=10)
    with pytest.raises(DataError, match=r"cannot split 5 rows with test_size=10: test_size=10 should be"):
        common.split(spec, X, y, False)
