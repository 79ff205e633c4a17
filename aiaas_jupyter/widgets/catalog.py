"""The TrainForm's model catalog: each entry builds the model *and* writes the code that builds it.

Why both: a form must stay reproducible, so what it trains is exactly what its ``%%aiaas train``
cell would train. Each entry therefore produces the object (for the Train button) and the cell
body (for the cell text and "Insert as cell"); running that body gives an equal model — equal
``get_params()`` for scikit-learn, the same layers and (seeded) the same initial weights for
PyTorch. tests/test_widgets_train.py checks the two against each other for every entry.

Whether the task is classification or regression comes from the target column
(:func:`.namespace.data_info`); an entry picks its classifier or regressor from it. The PyTorch
networks take the float tensor [N, F] the trainer feeds (aiaas_jupyter/training/torch.py) and end
in one unit per class (cross-entropy) or one value (MSE): the trainer picks the loss from that.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

from .namespace import DataInfo, is_model
from .networks import ACTIVATIONS, cnn, cnn_code, mlp, mlp_code, odd_kernel
from .params import ParamSpec, simple_params, spec_for


@dataclass
class Context:
    """What an entry needs besides its hyper-parameters."""

    task: str = "classification"
    info: DataInfo | None = None
    seed: int = 0
    var: str | None = None        # the "model variable" entry: its name and object
    obj: Any = None


def _call(func: str, kwargs: dict, indent: str = "") -> str:
    """``func(a=1, b=2)``, wrapped inside the parentheses when long."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    one = f"{func}({args})"
    if len(indent) + len(one) <= 96:
        return one
    lines = textwrap.wrap(args + ",", width=92 - len(indent), break_long_words=False, break_on_hyphens=False)
    return f"{func}(\n" + "".join(f"{indent}    {ln}\n" for ln in lines) + f"{indent})"


def _noun(entry) -> str:
    """The entry's label without its parenthesis, for messages."""
    return entry.label.split(" (")[0]


# -- scikit-learn ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One estimator of an entry: where it is imported from and which parameters to show."""

    module: str                                 # the public import path
    cls: str
    show: tuple
    start: dict = field(default_factory=dict)   # better first values than the library default
    choices: dict = field(default_factory=dict)  # for parameters the constraints cannot list
    intervals: dict = field(default_factory=dict)  # tighter ranges than the library's

    def owner(self):
        return getattr(importlib.import_module(self.module), self.cls)

    @property
    def step(self) -> str:  # the name make_pipeline gives it
        return self.cls.lower()


@dataclass(frozen=True)
class SklearnEntry:
    key: str
    label: str
    short: str
    parts: dict                  # task → tuple of Parts (more than one: a make_pipeline)
    text: bool = False           # one raw text column in (a vectorizer first)

    def framework_of(self, ctx: Context) -> str:
        return "sklearn"

    def _parts(self, ctx: Context) -> tuple:
        return self.parts[ctx.task]

    def _key(self, ctx: Context, part: Part, name: str) -> str:
        return f"{part.step}__{name}" if len(self._parts(ctx)) > 1 else name

    def specs(self, ctx: Context) -> list[ParamSpec]:
        return [spec_for(p.owner(), n, key=self._key(ctx, p, n), default=p.start.get(n, _EMPTY),
                         choices=p.choices.get(n), intervals=p.intervals.get(n))
                for p in self._parts(ctx) for n in p.show]

    def _kwargs(self, ctx: Context, part: Part, values: dict) -> dict:
        kwargs = {n: values[self._key(ctx, part, n)] for n in part.show}
        if "random_state" in inspect.signature(part.owner()).parameters:
            kwargs["random_state"] = ctx.seed
        return kwargs

    def build(self, ctx: Context, values: dict):
        objs = [p.owner()(**self._kwargs(ctx, p, values)) for p in self._parts(ctx)]
        if len(objs) == 1:
            return objs[0]
        from sklearn.pipeline import make_pipeline

        return make_pipeline(*objs)

    def code(self, ctx: Context, values: dict) -> str:
        parts = self._parts(ctx)
        imports = [f"from {p.module} import {p.cls}" for p in parts]
        if len(parts) == 1:
            return "\n".join(imports + ["model = " + _call(parts[0].cls, self._kwargs(ctx, parts[0], values))])
        steps = "".join(f"    {_call(p.cls, self._kwargs(ctx, p, values), '    ')},\n" for p in parts)
        return "\n".join(imports + ["from sklearn.pipeline import make_pipeline",
                                    f"model = make_pipeline(\n{steps})"])

    def check(self, ctx: Context, values: dict) -> str | None:
        info = ctx.info
        if info is None:
            return None
        if self.text:
            if info.n_features != 1 or not info.text_columns:
                return (f"{_noun(self)} needs exactly one text column besides the target; the data has "
                        f"{info.n_features} feature column(s)")
            return None
        bad = info.text_columns + info.other_columns
        if bad:
            return f"{_noun(self)} needs numeric features; non-numeric columns: {', '.join(bad)}"
        return None


_EMPTY = inspect.Parameter.empty
_ENS, _LIN = "sklearn.ensemble", "sklearn.linear_model"
_RF = ("n_estimators", "max_depth", "min_samples_split", "min_samples_leaf", "max_features", "criterion",
       "bootstrap")
_GB = ("n_estimators", "learning_rate", "max_depth", "subsample", "min_samples_leaf", "max_features", "loss")
_GB_RANGES = {"learning_rate": ((0.0, 1.0, "right"),)}
_LOGREG = Part(_LIN, "LogisticRegression", ("C", "solver", "max_iter", "class_weight", "fit_intercept"),
               start={"max_iter": 1000})
_RIDGE = Part(_LIN, "Ridge", ("alpha", "solver", "fit_intercept"))
_TFIDF = Part("sklearn.feature_extraction.text", "TfidfVectorizer",
              ("ngram_range", "min_df", "max_features", "sublinear_tf"),
              choices={"ngram_range": ((1, 1), (1, 2), (1, 3))})
_TEXT_LOGREG = Part(_LIN, "LogisticRegression", ("C", "max_iter", "class_weight"), start={"max_iter": 1000})


# -- PyTorch (the networks: .networks) ------------------------------------------------------------
@dataclass(frozen=True)
class TorchEntry:
    key: str
    label: str
    short: str
    builder: Callable
    writer: Callable
    show: tuple
    choices: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)
    extra_check: Callable | None = None
    text: bool = False

    def framework_of(self, ctx: Context) -> str:
        return "torch"

    def specs(self, ctx: Context) -> list[ParamSpec]:
        return [spec_for(self.builder, n, choices=self.choices.get(n), intervals=self.intervals.get(n))
                for n in self.show]

    def build(self, ctx: Context, values: dict):
        import torch

        torch.manual_seed(ctx.seed)  # the weights the cell's torch.manual_seed(seed) gives
        return self.builder(ctx.info.n_features, ctx.info.n_outputs, **values)

    def code(self, ctx: Context, values: dict) -> str:
        info = ctx.info or DataInfo("classification", 0)
        return ("import torch\nfrom torch import nn\n\n"
                f"torch.manual_seed({ctx.seed})  # the initial weights, reproducibly\n"
                f"model = nn.Sequential(\n{self.writer(info.n_features, info.n_outputs, **values)})")

    def check(self, ctx: Context, values: dict) -> str | None:
        info = ctx.info
        if info is not None and (info.text_columns or info.other_columns):
            return (f"{_noun(self)} needs numeric features; non-numeric columns: "
                    f"{', '.join(info.text_columns + info.other_columns)}")
        return self.extra_check(values) if self.extra_check else None


_AT_LEAST_1 = ((1, None, "left"),)
_DROPOUT = ((0.0, 1.0, "left"),)


# -- a model variable of the notebook ------------------------------------------------------------
#: shown first when a variable's estimator has them
PREFERRED = ("n_estimators", "learning_rate", "max_depth", "C", "alpha", "max_iter", "min_samples_leaf",
             "criterion", "solver", "kernel", "n_neighbors", "hidden_layer_sizes")


@dataclass(frozen=True)
class VariableEntry:
    """Any estimator or ``nn.Module`` the notebook holds; its simple parameters can be changed.

    The cell refers to the variable by name (``model = rf``); changed parameters go through
    ``clone(rf).set_params(...)``, so the notebook's own object is never modified.
    """

    key: str = "variable"
    label: str = "Model variable from the notebook"
    short: str = ""
    text: bool = False

    def framework_of(self, ctx: Context) -> str:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(ctx.obj, torch.nn.Module):
            return "torch"
        return "sklearn" if is_model(ctx.obj) else ""

    def _current(self, ctx: Context) -> dict:
        get = getattr(ctx.obj, "get_params", None)
        return get(deep=False) if self.framework_of(ctx) == "sklearn" and callable(get) else {}

    def specs(self, ctx: Context) -> list[ParamSpec]:
        current = self._current(ctx)
        return [spec_for(ctx.obj, n, default=current[n]) for n in simple_params(ctx.obj, prefer=PREFERRED)
                ] if current else []

    def _changed(self, ctx: Context, values: dict) -> dict:
        current = self._current(ctx)
        return {k: v for k, v in values.items() if k in current and current[k] != v}

    def build(self, ctx: Context, values: dict):
        changed = self._changed(ctx, values)
        if not changed:
            return ctx.obj
        from sklearn.base import clone

        return clone(ctx.obj).set_params(**changed)

    def code(self, ctx: Context, values: dict) -> str:
        changed = self._changed(ctx, values)
        if not changed:
            return f"model = {ctx.var}"
        return "from sklearn.base import clone\nmodel = " + _call(f"clone({ctx.var}).set_params", changed)

    def check(self, ctx: Context, values: dict) -> str | None:
        if ctx.var is None or ctx.obj is None:
            return "choose a model variable (an estimator or torch module in the notebook)"
        return None


ENTRIES = {e.key: e for e in (
    SklearnEntry("random_forest", "Random forest", "rf", {
        "classification": (Part(_ENS, "RandomForestClassifier", _RF),),
        "regression": (Part(_ENS, "RandomForestRegressor", _RF),)}),
    SklearnEntry("gradient_boosting", "Gradient boosting", "gb", {
        "classification": (Part(_ENS, "GradientBoostingClassifier", _GB, intervals=_GB_RANGES),),
        "regression": (Part(_ENS, "GradientBoostingRegressor", _GB, intervals=_GB_RANGES),)}),
    SklearnEntry("logistic_regression", "Logistic regression (Ridge for regression)", "linear", {
        "classification": (_LOGREG,), "regression": (_RIDGE,)}),
    SklearnEntry("tfidf_logistic_regression", "TF-IDF + logistic regression (one text column)", "tfidf", {
        "classification": (_TFIDF, _TEXT_LOGREG), "regression": (_TFIDF, _RIDGE)}, text=True),
    TorchEntry("mlp", "MLP (PyTorch)", "mlp", mlp, mlp_code,
               ("hidden_units", "hidden_layers", "dropout", "activation"),
               choices={"activation": tuple(ACTIVATIONS)},
               intervals={"hidden_units": _AT_LEAST_1, "hidden_layers": ((0, None, "left"),),
                          "dropout": _DROPOUT}),
    TorchEntry("cnn", "1-D CNN (PyTorch)", "cnn", cnn, cnn_code,
               ("channels", "kernel_size", "hidden_units", "dropout"),
               intervals={"channels": _AT_LEAST_1, "kernel_size": _AT_LEAST_1, "hidden_units": _AT_LEAST_1,
                          "dropout": _DROPOUT}, extra_check=odd_kernel),
    VariableEntry(),
)}


def get(key: str):
    return ENTRIES[key]

