"""One answer to "does this scikit-learn model take raw text?" — ``artifacts.text_model.takes_text``,
asked by the trainer and by the model server alike, so the two cannot drift apart.

The trainer hands a pipeline that starts with a text vectorizer the documents (not a one-column
frame, whose header the vectorizer would iterate) and records ``input_kind: "text"``; the model
server gives any text model one BYTES input and, for a ColumnTransformer that vectorizes a named
column, a frame of that column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from aiaas_jupyter.artifacts.text_model import takes_text

DECLARED = {"input_kind": "text", "feature_names": ["t"]}

#: case → (model factory, the version's extra, takes_text's answer)
CASES = {
    "TfidfVectorizer alone": (TfidfVectorizer, {}, (True, None)),
    "Pipeline starting with TfidfVectorizer": (
        lambda: make_pipeline(TfidfVectorizer(), LogisticRegression()), {}, (True, None)),
    "Pipeline starting with CountVectorizer": (
        lambda: make_pipeline(CountVectorizer(), LogisticRegression()), {}, (True, None)),
    "Pipeline starting with HashingVectorizer": (
        lambda: make_pipeline(HashingVectorizer(), LogisticRegression()), {}, (True, None)),
    "ColumnTransformer over one text column": (
        lambda: Pipeline([("ct", ColumnTransformer([("t", TfidfVectorizer(), "review")])),
                          ("lr", LogisticRegression())]), {}, (True, "review")),
    "ColumnTransformer over a pipeline starting with a vectorizer": (
        lambda: Pipeline([("ct", ColumnTransformer([("t", make_pipeline(TfidfVectorizer()), "review")])),
                          ("lr", LogisticRegression())]), {}, (True, "review")),
    "ColumnTransformer given a list of columns": (
        lambda: Pipeline([("ct", ColumnTransformer([("t", TfidfVectorizer(), ["review"])])),
                          ("lr", LogisticRegression())]), {}, (False, None)),
    "numeric pipeline": (lambda: make_pipeline(StandardScaler(), LogisticRegression()), {}, (False, None)),
    "numeric estimator, no extra at all": (LogisticRegression, None, (False, None)),
    'input_kind == "text", one feature name': (LogisticRegression, DECLARED, (True, "t")),
    'input_kind == "text", two feature names': (
        LogisticRegression, {"input_kind": "text", "feature_names": ["a", "b"]}, (True, None)),
    "another input_kind": (LogisticRegression, {"input_kind": "tabular", "feature_names": ["t"]}, (False, None)),
    "a vectorizer first wins over the record": (
        lambda: make_pipeline(TfidfVectorizer(), LogisticRegression()),
        {"input_kind": "text", "feature_names": ["text"]}, (True, None)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_takes_text(case):
    make, extra, expected = CASES[case]
    assert takes_text(make(), extra) == expected


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    pets, money = "cat dog kitten puppy purr".split(), "stock bond market yield bank".split()
    texts = [" ".join(rng.choice(pets if i % 2 else money, 4)) for i in range(n)]
    return pd.DataFrame({"text": texts, "x": rng.normal(size=n),
                         "label": ["pets" if i % 2 else "finance" for i in range(n)]})


#: case → (model factory, training columns, trainer's input_kind, server's runtime kind, column, text field)
TRAINED = {
    "Pipeline starting with TfidfVectorizer": (
        lambda: make_pipeline(TfidfVectorizer(), LogisticRegression()), ["text"], "text", "text", None, "text"),
    "ColumnTransformer over one text column": (
        lambda: Pipeline([("ct", ColumnTransformer([("t", TfidfVectorizer(), "text")])),
                          ("lr", LogisticRegression())]), ["text"], None, "text", "text", "text"),
    "numeric pipeline": (
        lambda: make_pipeline(StandardScaler(), LogisticRegression()), ["x"], None, "tabular", None, None),
}


@pytest.mark.parametrize("case", list(TRAINED))
def test_the_trainer_and_the_server_agree(case):
    from aiaas_jupyter.serving.runtime import load_runtime
    from aiaas_jupyter.training import TrainSpec, run_training

    make, columns, input_kind, kind, column, field = TRAINED[case]
    res = run_training(TrainSpec(model=make(), target="label"), _frame()[columns + ["label"]], lambda e: None)
    assert res.extra.get("input_kind") == input_kind and res.extra["feature_names"] == columns
    rt = load_runtime("sklearn", res.artifacts, res.extra)
    assert rt.kind == kind
    if kind == "text":
        assert (rt.column, rt.text_field) == (column, field)
        part, n = rt.from_texts(["a cat and a puppy", "the bond market"])
        assert n == 2 and rt.run(rt.concat([part]), frozenset())["predict"].tolist() == ["pets", "finance"]


#: case → (ColumnTransformer factory, whether the server sends the texts to its one transformer directly)
HEADS = {
    "one TfidfVectorizer on the column": (lambda: ColumnTransformer([("t", TfidfVectorizer(), "text")]), True),
    "dense output chosen at fit": (
        lambda: ColumnTransformer([("t", CountVectorizer(), "text")], sparse_threshold=0.0), True),
    "a pipeline on the column": (
        lambda: ColumnTransformer([("t", make_pipeline(TfidfVectorizer()), "text")]), True),
    "weighted": (lambda: ColumnTransformer([("t", TfidfVectorizer(), "text")], transformer_weights={"t": 2.0}),
                 False),
    "the rest passed through": (
        lambda: ColumnTransformer([("t", TfidfVectorizer(), "text")], remainder="passthrough"), False),
    "two transformers": (
        lambda: ColumnTransformer([("t", TfidfVectorizer(), "text"), ("c", CountVectorizer(), "text")]), False),
}


@pytest.mark.parametrize("case", list(HEADS))
def test_the_server_skips_the_frame_only_where_the_answer_is_the_same(case):
    """W4's model spent 0.8 ms of a 1.3 ms batch building a one-column frame for its
    ColumnTransformer; the server sends the texts to the one transformer instead, exactly where
    that gives the same matrix, and the answers (labels and probabilities) are identical."""
    from aiaas_jupyter.serving.runtime import TextRuntime

    make, direct = HEADS[case]
    frame = _frame(200)
    columns = ["text", "x"] if "passed through" in case else ["text"]
    model = Pipeline([("ct", make()), ("lr", LogisticRegression())]).fit(frame[columns], frame["label"])
    rt = TextRuntime(model, {}, "text")
    assert (rt._head is not None) is direct
    if len(columns) > 1:  # the model needs column x too: texts alone are not its input
        return
    texts = frame["text"].tolist()[::-1] + ["an unseen word", ""]
    out = rt.run(texts, frozenset({"predict_proba"}))
    want = pd.DataFrame({"text": texts})
    assert out["predict"].tolist() == model.predict(want).tolist()
    assert np.array_equal(out["predict_proba"], model.predict_proba(want))
