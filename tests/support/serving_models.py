"""Small, seeded models registered into a throwaway home for the serving tests (and benchmarks).

Each is trained by the project's own trainers (``run_training``) or, for the classic text
pipeline that takes a plain list of strings, fitted directly and stored with the same safe
serializer the trainer uses, then registered with ``Registry.register`` exactly as a job would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PETS = "cat dog kitten puppy fur paw leash vet bark purr whiskers tail collar".split()
MONEY = "stock bond market trade price fund index yield bank rate dividend share profit".split()


def text_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """n short sentences about pets (label "pets") or finance (label "finance"), seeded."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic, words = ("pets", PETS) if i % 2 else ("finance", MONEY)
        filler = rng.choice(["the", "a", "my", "our", "this"], 2)
        rows.append((" ".join([filler[0], *rng.choice(words, 4), filler[1], *rng.choice(words, 2)]), topic))
    return pd.DataFrame(rows, columns=["text", "label"])


def register(reg, name, res):
    return reg.register(name, framework=res.framework, artifacts=res.artifacts, params=res.params,
                        metrics=res.metrics, library_versions=res.library_versions,
                        data_fingerprint=res.data_fingerprint, source="", job_id=None, extra=res.extra)


def train_iris(seed: int = 0, n_estimators: int = 20):
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from aiaas_jupyter.training import TrainSpec, run_training

    df = load_iris(as_frame=True).frame
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed)
    return run_training(TrainSpec(model=model, target="target", seed=seed), df, lambda e: None)


def train_text_ct(seed: int = 0):
    """TF-IDF + LogisticRegression through the trainer: a ColumnTransformer reads column "text"."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from aiaas_jupyter.training import TrainSpec, run_training

    model = Pipeline([("tfidf", ColumnTransformer([("tfidf", TfidfVectorizer(), "text")])),
                      ("lr", LogisticRegression())])
    return run_training(TrainSpec(model=model, target="label", seed=seed), text_frame(seed=seed), lambda e: None)


def text_pipeline(seed: int = 0, n: int = 200):
    """The classic ``make_pipeline(TfidfVectorizer(), LogisticRegression())`` on a list of strings."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    df = text_frame(n, seed)
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(df["text"].tolist(), df["label"])


def register_text_pipeline(reg, name, model):
    from aiaas_jupyter.artifacts.codec import SKOPS_FILE, dump_sklearn
    from aiaas_jupyter.training.common import library_versions

    return reg.register(name, framework="sklearn", artifacts={SKOPS_FILE: dump_sklearn(model)},
                        params={}, metrics={}, library_versions=library_versions(), data_fingerprint="0" * 64,
                        source="", job_id=None,
                        extra={"task": "classification", "classes": list(model.classes_), "input_kind": "text"})


def mlp_frame(n: int = 400, d: int = 8, k: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.argmax(X @ rng.normal(size=(d, k)), axis=1)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(d)])
    df["y"] = y
    return df


def train_mlp(seed: int = 0):
    import torch
    from torch import nn

    from aiaas_jupyter.training import TrainSpec, run_training

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    return run_training(TrainSpec(model=model, target="y", seed=seed, epochs=8, batch_size=32, lr=1e-2),
                        mlp_frame(seed=seed), lambda e: None)
