"""The TrainForm, its model catalog and hyper-parameter controls, and the magics that open forms.

Driven headless through the ipywidgets Python API (``.value`` set, ``button.click()``), against the
session's real LocalCluster and registry (``aiaas``) and a real IPython shell (``shell``). The
central promise checked here: what the form trains and the cell text it shows are the same job.
"""

from __future__ import annotations

import html
import subprocess
import sys

import ipywidgets as W
import pandas as pd
import pytest
from IPython.core.error import UsageError

from aiaas_jupyter.widgets import TrainForm, catalog
from aiaas_jupyter.widgets.catalog import Context
from aiaas_jupyter.widgets.namespace import DataInfo
from aiaas_jupyter.widgets.params import ParamControls

SKLEARN = ("random_forest", "gradient_boosting", "logistic_regression", "tfidf_logistic_regression")
IRIS_INFO = DataInfo("classification", n_features=4, n_classes=3)


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


def _error(form) -> str:
    return html.unescape(form.error.value)


def _counts(client):
    """Jobs recorded and models registered (a refused form must add to neither)."""
    return len(client.registry.list_jobs(100_000)), [m["name"] for m in client.registry.list_models()]


def _other_value(spec):
    """A valid value different from the default, so the generated code has to carry it."""
    if spec.kind == "bool":
        return not spec.default
    if spec.kind == "choice":
        return next(c for c in reversed(spec.choices) if c != spec.default)
    if spec.kind == "optional_int":
        return 5
    if spec.kind == "int":
        return spec.default + 2
    return spec.default / 2 if spec.default else 0.5


def _labels(dropdown) -> list[str]:
    return [label for label, _ in dropdown.options]


def _plain(params: dict) -> dict:
    """get_params without the estimator objects themselves (those compare by identity)."""
    return {k: v for k, v in params.items() if k != "steps" and not hasattr(v, "get_params")}


# -- catalog ------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("key", SKLEARN)
def test_sklearn_entry_code_builds_an_equal_model(key, task):
    from sklearn.base import is_classifier

    entry, ctx = catalog.get(key), Context(task=task, info=IRIS_INFO, seed=7)
    specs = entry.specs(ctx)
    assert 3 <= len(specs) <= 8
    values = {s.key: _other_value(s) for s in specs}
    assert all(s.check(values[s.key]) is None for s in specs)
    built, ns = entry.build(ctx, values), {}
    exec(entry.code(ctx, values), ns)
    assert type(ns["model"]) is type(built)
    assert _plain(ns["model"].get_params()) == _plain(built.get_params())
    params = built.get_params()
    assert {k: params[k] for k in values} == values  # every control reached the estimator
    assert [v for k, v in params.items() if k.endswith("random_state")] == [7]  # the seed, once
    assert is_classifier(built) == (task == "classification")


@pytest.mark.parametrize("task, outputs", [("classification", 3), ("regression", 1)])
@pytest.mark.parametrize("key, values", [
    ("mlp", {"hidden_units": 8, "hidden_layers": 3, "dropout": 0.1, "activation": "tanh"}),
    ("cnn", {"channels": 4, "kernel_size": 5, "hidden_units": 8, "dropout": 0.2}),
])
def test_torch_entry_code_builds_the_same_network(key, values, task, outputs, one_torch_thread):
    import torch

    entry = catalog.get(key)
    ctx = Context(task=task, info=DataInfo(task, n_features=4, n_classes=3 if outputs > 1 else 0), seed=11)
    assert [s.key for s in entry.specs(ctx)] == list(values)
    built, ns = entry.build(ctx, values), {}
    exec(entry.code(ctx, values), ns)
    assert repr(ns["model"]) == repr(built)
    for (k1, a), (k2, b) in zip(built.state_dict().items(), ns["model"].state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(a, b)  # same seed → the same initial weights
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    built.eval(), ns["model"].eval()
    out = built(x)
    assert out.shape == (5, outputs) and torch.equal(out, ns["model"](x))


def test_variable_entry_uses_the_notebook_object_and_clones_on_change():
    from sklearn.ensemble import RandomForestClassifier

    ns = {"rf": RandomForestClassifier(n_estimators=5, max_depth=3)}
    entry = catalog.get("variable")
    ctx = Context(info=IRIS_INFO, var="rf", obj=ns["rf"])
    specs = {s.key: s for s in entry.specs(ctx)}
    assert list(specs)[:2] == ["n_estimators", "max_depth"] and specs["n_estimators"].default == 5
    same = {k: s.default for k, s in specs.items()}
    assert entry.code(ctx, same) == "model = rf" and entry.build(ctx, same) is ns["rf"]
    changed = {**same, "n_estimators": 9}
    code = entry.code(ctx, changed)
    assert code == "from sklearn.base import clone\nmodel = clone(rf).set_params(n_estimators=9)"
    exec(code, ns)
    assert ns["model"].get_params() == entry.build(ctx, changed).get_params()
    assert ns["model"].n_estimators == 9 and ns["rf"].n_estimators == 5  # the notebook's object is untouched


def test_the_task_follows_the_target_column_as_the_trainers_judge_it():
    import dask.dataframe as dd
    import numpy as np

    from aiaas_jupyter.widgets.namespace import data_info

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40), "ints": rng.integers(0, 3, 40), "flag": rng.random(40) > 0.5,
                          "word": rng.choice(["a", "b"], 40), "kind": pd.Categorical(rng.choice(["u", "v"], 40)),
                          "many": np.arange(40), "price": rng.normal(size=40)})
    tasks = {col: data_info(frame, col).describe() for col in ("ints", "flag", "word", "kind", "many", "price")}
    assert tasks == {"ints": "classification · 3 classes", "flag": "classification · 2 classes",
                     "word": "classification · 2 classes", "kind": "classification · 2 classes",
                     "many": "regression", "price": "regression"}
    lazy = data_info(dd.from_pandas(frame, npartitions=3), "ints")  # a dask frame: judged on its first rows
    assert (lazy.task, lazy.n_classes, lazy.n_features) == ("classification", 3, 6)

    texts = pd.DataFrame({"review": ["good film", "bad plot", "great cast", "dull"], "label": [1, 0, 1, 0]})
    info = data_info(texts, "label")
    assert info.text_columns == ["review"] and info.n_outputs == 2
    ctx = Context(task=info.task, info=info)
    assert catalog.get("tfidf_logistic_regression").check(ctx, {}) is None
    assert catalog.get("random_forest").check(ctx, {}) == "Random forest needs numeric features; non-numeric columns: review"
    assert catalog.get("mlp").check(ctx, {}) == "MLP needs numeric features; non-numeric columns: review"


# -- hyper-parameter controls -------------------------------------------------------------------
def test_param_controls_follow_the_estimator_signature():
    rf = ParamControls(catalog.get("random_forest").specs(Context("classification")))
    assert type(rf["n_estimators"].widget) is W.IntText and rf["n_estimators"].value == 100
    assert type(rf["bootstrap"].widget) is W.Checkbox and rf["bootstrap"].value is True
    criterion = rf["criterion"].widget
    assert type(criterion) is W.Dropdown and _labels(criterion) == ["entropy", "gini", "log_loss"]
    assert rf["criterion"].value == "gini"
    criterion.label = "entropy"                                   # as a user picks it
    assert rf["criterion"].value == "entropy"
    assert _labels(rf["max_features"].widget) == ["log2", "sqrt", "None"] and rf["max_features"].value == "sqrt"
    rf["max_features"].value = None
    assert rf["max_features"].value is None
    depth = rf["max_depth"]                                       # a None-able int: "limit" + number
    _, limit, number, _ = depth.widget.children
    assert depth.value is None and number.disabled
    limit.value = True
    number.value = 4
    assert depth.value == 4 and not number.disabled
    limit.value = False
    assert depth.value is None
    regressor = ParamControls(catalog.get("random_forest").specs(Context("regression")))
    assert regressor["criterion"].value == "squared_error" and "gini" not in _labels(regressor["criterion"].widget)
    assert regressor["max_features"].value == 1.0                 # the regressor's default, not an option
    gb = ParamControls(catalog.get("gradient_boosting").specs(Context("classification")))
    assert type(gb["learning_rate"].widget) is W.FloatText and gb["learning_rate"].value == 0.1


@pytest.mark.parametrize("key, param, value, message", [
    ("random_forest", "n_estimators", 0, "n_estimators must be ≥ 1, got 0"),
    ("random_forest", "max_depth", 0, "max_depth must be ≥ 1, got 0"),
    ("random_forest", "min_samples_split", 1, "min_samples_split must be ≥ 2, got 1"),
    ("logistic_regression", "C", 0.0, "C must be > 0, got 0.0"),
    ("gradient_boosting", "learning_rate", 1.5, "learning_rate must be in (0.0, 1.0], got 1.5"),
    ("gradient_boosting", "learning_rate", 0.0, "learning_rate must be in (0.0, 1.0], got 0.0"),
    ("mlp", "dropout", 1.0, "dropout must be in [0.0, 1.0), got 1.0"),
])
def test_param_values_are_checked_with_a_message(key, param, value, message):
    controls = ParamControls(catalog.get(key).specs(Context("classification")))
    assert controls.errors() == []
    controls[param].value = value
    assert controls.errors() == [message]


# -- the form -----------------------------------------------------------------------------------
def test_form_lists_frames_and_follows_data_target_and_model(aiaas, iris):
    from sklearn.ensemble import RandomForestClassifier

    prices = pd.DataFrame({"area": [50.0, 72.5, 31.0, 90.0], "price": [1.5, 2.25, 0.75, 3.1]})
    ns = {"iris": iris, "prices": prices, "n": 3, "_private": iris, "rf": RandomForestClassifier(n_estimators=5),
          "model": RandomForestClassifier()}
    form = TrainForm(client=aiaas, namespace=ns)
    assert form.data.options == ("iris", "prices") and form.data.value is None
    assert form.magic == "" and form.code.value.startswith("# choose the data")
    assert form.gpus.disabled and form.gpus.max == 0 and "no GPUs" in form.gpu_note.value  # the CPU cluster

    form.data.value = "iris"
    assert form.target.options == tuple(iris.columns) and form.target.value == "target"
    assert "classification · 3 classes" in form.task.value
    assert form.magic.startswith("%%aiaas train --data iris --target target --name iris-rf\n")
    assert "RandomForestClassifier(" in form.magic and form.code.value == form.magic

    form.data.value = "prices"                        # target options follow; a float target → regression
    assert form.target.options == ("area", "price") and form.target.value == "price"
    assert form.task.value == "<i>regression</i>" and "RandomForestRegressor(" in form.magic
    assert form.params["criterion"].value == "squared_error"

    form.params["n_estimators"].value = 7
    form.model.value = "gradient_boosting"            # new controls; shared ones keep their value
    assert "learning_rate" in form.params and "bootstrap" not in form.params
    assert form.params["n_estimators"].value == 7 and "GradientBoostingRegressor(" in form.magic
    assert form.torch_box.layout.display == "none"
    form.model.value = "mlp"
    assert list(form.params) == ["hidden_units", "hidden_layers", "dropout", "activation"]
    assert form.torch_box.layout.display is None and "--lr 0.001" in form.magic
    assert "nn.Linear(64, 1)," in form.magic          # one output for regression

    form.model.value = "variable"                     # `model` is the cell's own name: not offered
    assert form.variable.options == ("rf",) and form.variable.layout.display is None
    form.variable.value = "rf"
    assert form.params["n_estimators"].value == 5 and form.magic.endswith("\nmodel = rf\n")

    ns["later"] = iris                                # ↻ looks again
    form.refresh_button.click()
    assert form.data.options == ("iris", "later", "prices") and form.data.value == "prices"


def test_train_click_runs_a_job_and_registers_the_version(aiaas, iris):
    from aiaas_jupyter.widgets import JobProgress

    form = TrainForm(client=aiaas, namespace={"iris": iris})
    form.data.value = "iris"
    form.name.value = "wt-form-rf"
    form.params["n_estimators"].value = 25
    form.params["max_depth"].value = 3
    form.seed.value = 1
    form.train_button.click()
    assert _error(form) == "" and form.job is not None
    version = form.job.result(timeout=120)
    assert (version.name, version.version) == ("wt-form-rf", 1)
    assert 0.85 <= version.metrics["accuracy"] <= 1.0
    assert (version.params["n_estimators"], version.params["max_depth"], version.params["random_state"]) == (25, 3, 1)
    assert version.source == form.request(build=False).body and "n_estimators=25" in version.source
    assert isinstance(form.progress, JobProgress) and form.progress.job is form.job
    assert not form.train_button.disabled and form.train_button.description == "Train"


@pytest.mark.parametrize("model, params, torch_settings", [
    ("random_forest", {"n_estimators": 15, "max_depth": 4}, {}),
    ("cnn", {"channels": 4, "hidden_units": 16}, {"epochs": 3, "batch_size": 16, "lr": 0.01}),
])
def test_the_cell_text_trains_the_same_job(aiaas, shell, iris, model, params, torch_settings):
    """Train from the form, then run the form's cell text as a real cell: same params, same metrics."""
    shell.user_ns["wt_iris"] = iris
    name = f"wt-roundtrip-{model}"
    form = TrainForm(client=aiaas, namespace=shell.user_ns, data="wt_iris", target="target", name=name,
                     model=model, seed=3, test_size=0.3)
    for key, value in params.items():
        form.params[key].value = value
    for key, value in torch_settings.items():
        getattr(form, key).value = value
    form.train_button.click()
    first = form.job.result(timeout=180)
    text = form.magic_text(block=True)
    assert text.splitlines()[0].endswith("--block") and "--seed 3" in text and "--test-size 0.3" in text
    result = shell.run_cell(text)
    assert result.success, result.error_in_exec
    second = aiaas.registry.versions(name)[-1]
    assert (first.version, second.version) == (1, 2)
    assert second.params == first.params and second.metrics == first.metrics
    assert second.source == first.source and second.data_fingerprint == first.data_fingerprint
    if torch_settings:
        assert (first.params["epochs"], first.params["batch_size"], first.params["lr"]) == (3, 16, 0.01)
        assert first.framework == "torch" and len(first.extra["history"]) == 3
        assert 0.0 <= first.metrics["accuracy"] <= 1.0


def test_invalid_values_show_one_line_and_start_nothing(aiaas, iris):
    ns = {"iris": iris, "iris2": iris.copy()}
    before = _counts(aiaas)

    def refused(form, message):
        form.train_button.click()
        assert message in _error(form) and "\n" not in _error(form)
        assert "aiaas-form-error" in form.error._dom_classes
        assert form.job is None and _counts(aiaas) == before
        assert not form.train_button.disabled

    form = TrainForm(client=aiaas, namespace=ns, name="wt-invalid")
    refused(form, "choose the data: a DataFrame in the notebook")
    form.data.value = "iris"
    form.name.value = "../x"
    refused(form, "invalid model name '../x'")
    form.name.value = "wt-invalid"
    form.params["n_estimators"].value = 0
    refused(form, "n_estimators must be ≥ 1, got 0")
    form.params["n_estimators"].value = 10
    form.model.value = "tfidf_logistic_regression"
    refused(form, "TF-IDF + logistic regression needs exactly one text column besides the target")
    form.model.value = "cnn"
    form.params["kernel_size"].value = 4
    refused(form, "kernel_size must be odd")
    form.params["kernel_size"].value = 3
    form.epochs.value = 0
    refused(form, "epochs must be from 1 to 1000000, got 0")
    form.epochs.value = 4294967296                      # the parser's bound: never submitted (issue 10)
    refused(form, "epochs must be from 1 to 1000000, got 4294967296")
    form.epochs.value = 3
    form.lr.value = float("inf")
    refused(form, "learning rate must be in (0, 1000], got inf")
    form.lr.value = 0.01
    form.seed.value = -1
    refused(form, "seed must be from 0 to 4294967295, got -1")
    form.seed.value = 0

    form.data.value = "iris2"                          # the column disappears after it was chosen
    ns["iris2"] = iris.drop(columns="target")
    refused(form, "target column 'target' is not in iris2")
    missing = TrainForm(client=aiaas, namespace=ns, data="iris", target="species")  # pre-filled, not there
    assert "target column 'species' is not in iris" in _error(missing) and missing.target.value is None
    refused(missing, "choose the target column")


def test_insert_as_cell_hands_the_text_to_the_shell(aiaas, shell, iris):
    shell.user_ns["wt_iris"] = iris
    shell.rl_next_input = None
    form = TrainForm(client=aiaas, namespace=shell.user_ns)
    form.insert_button.click()                         # nothing chosen: a message, no cell
    assert shell.rl_next_input is None and "choose the data" in _error(form)
    form.data.value = "wt_iris"
    form.params["max_depth"].value = 6
    form.insert_button.click()
    assert shell.rl_next_input == form.magic and "max_depth=6" in form.magic and _error(form) == ""
    assert "next cell you run" in form.notice.value
    shell.rl_next_input = None


# -- magics ---------------------------------------------------------------------------------------
def test_train_form_magic_returns_a_prefilled_form(shell, iris):
    shell.user_ns["wt_iris"] = iris
    form = shell.run_line_magic("aiaas", "train --form --data wt_iris --target target --name wt-pre "
                                         "--seed 3 --test-size 0.3")
    assert isinstance(form, TrainForm) and form.namespace is shell.user_ns
    assert (form.data.value, form.target.value, form.name.value, form.seed.value) == ("wt_iris", "target", "wt-pre", 3)
    assert form.magic.splitlines()[0] == ("%%aiaas train --data wt_iris --target target --name wt-pre "
                                          "--test-size 0.3 --seed 3")
    assert "random_state=3" in form.magic
    bare = shell.run_line_magic("aiaas", "train --form")
    assert isinstance(bare, TrainForm) and bare.data.value is None
    torch_form = shell.run_line_magic("aiaas", "train --form --data wt_iris --target target --epochs 4 --lr 0.05")
    torch_form.model.value = "mlp"
    assert "--epochs 4 --lr 0.05" in torch_form.magic


@pytest.mark.parametrize("line, cell, message", [
    ("train --form", "model = 1", "use it on a line, without a cell body"),
    ("train --form --block", None, "--block and -o apply to a train cell"),
    ("train --data x --target y", None, "write it as %%aiaas train"),
    ("train --target y", "model = 1", "the following arguments are required: --data"),
    ("predict", None, "the following arguments are required: NAME, --input"),
])
def test_form_flags_keep_usage_errors_one_line(shell, line, cell, message):
    with pytest.raises(UsageError) as info:
        if cell is None:
            shell.run_line_magic("aiaas", line)
        else:
            shell.run_cell_magic("aiaas", line, cell)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_status_widget_and_predict_form_magics(shell):
    from aiaas_jupyter.widgets import ClusterWidget, PredictForm

    assert isinstance(shell.run_line_magic("aiaas", "status --widget"), ClusterWidget)
    assert isinstance(shell.run_line_magic("aiaas", "predict --form"), PredictForm)


def test_train_parser_defaults_are_the_roundtrip_defaults():
    from aiaas_jupyter.magics.parser import build_parser
    from aiaas_jupyter.train_defaults import TRAIN_DEFAULTS as DEFAULTS

    sub = next(a for a in build_parser()._subparsers._group_actions).choices["train"]
    assert {k: sub.get_default(k) for k in DEFAULTS} == DEFAULTS


def test_forms_stay_out_of_load_ext():
    """Loading the extension and parsing a --form line import neither ipywidgets nor matplotlib."""
    code = ("import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
            "sh = InteractiveShell.instance()\nsh.run_line_magic('load_ext', 'aiaas_jupyter')\n"
            "from aiaas_jupyter.magics.parser import parse\nparse('train --form --data d --target t')\n"
            "import aiaas_jupyter.widgets\n"
            "print(','.join(m for m in ('ipywidgets', 'matplotlib', 'sklearn', 'pandas') if m in sys.modules) or 'none')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"
