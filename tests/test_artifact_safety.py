"""Artifacts are data, never code (issue 10 point 1), shown with crafted files.

Each hostile artifact is built here from a real fitted model whose skops ``schema.json`` is
edited to name a callable that starts a process or opens a file, under a module path that
the old prefix rule trusted (``numpy.``, ``scipy.``, ``sklearn.``). Each is registered
through the real :class:`Registry` (so its sha256 row is genuine), then refused by
``load_model`` in the kernel and by ``POST /admin/deployments`` on a real model server,
while the command's marker file never appears and a victim file keeps its bytes and mtime.
A control proves each payload is live: skops told to trust it really does run it.
ONNX graphs with external data and unparseable graphs are refused the same two ways.
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import zipfile

import numpy as np
import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from aiaas_jupyter.client import AiaasClient
from aiaas_jupyter.errors import ConfigError, RegistryError, UnsafeArtifactError
from aiaas_jupyter.artifacts import trusted_types
from aiaas_jupyter.artifacts.codec import SKOPS_FILE, dump_sklearn, load_sklearn
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Where numpy/scipy/scikit-learn re-export ``subprocess.Popen`` as a module attribute, found by
#: importing all their modules and comparing attributes (numpy 2.4, scipy 1.17, sklearn 1.9 on
#: Python 3.11: this one only; numpy.distutils is gone on Python >= 3.12, then add the new one).
POPEN_REEXPORTS = ("numpy.distutils.fcompiler.gnu",)


def popen_module() -> str:
    for mod in POPEN_REEXPORTS:
        try:
            if getattr(importlib.import_module(mod), "Popen", None) is subprocess.Popen:
                return mod
        except ImportError:
            continue
    raise AssertionError(f"no Popen re-export among {POPEN_REEXPORTS}; find the current one")


# ------------------------------------------------------------------ crafting
def _fitted_carrier(args: tuple):
    """A fitted LogisticRegression carrying ``args`` as an attribute, dumped by skops."""
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    model.payload_ = args
    return skops.io.dumps(model)


def _edit_schema(data: bytes, edit) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(src.read("schema.json"))
    edit(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, json.dumps(schema) if name == "schema.json" else src.read(name))
    return out.getvalue()


def constructor_call(module: str, cls: str, args: tuple) -> bytes:
    """An artifact whose loading calls ``module.cls(*args)`` (skops' ConstructorFromReduceNode)."""
    def edit(schema):
        attrs = schema["content"]["content"]
        attrs["payload_"] = {"__class__": cls, "__module__": module, "__loader__": "ConstructorFromReduceNode",
                             "content": attrs["payload_"], "__id__": 1}
    return _edit_schema(_fitted_carrier(args), edit)


def function_reference(model, module: str, name: str) -> bytes:
    """``model`` dumped, with every function reference renamed to ``module.name``."""
    def rename(node):
        if isinstance(node, dict):
            if node.get("__loader__") == "FunctionNode":
                node["__module__"], node["__class__"] = module, name
            for v in node.values():
                rename(v)
        elif isinstance(node, list):
            for v in node:
                rename(v)
    return _edit_schema(skops.io.dumps(model), rename)


def register_sklearn(reg: Registry, name: str, data: bytes):
    return reg.register(name, framework="sklearn", artifacts={SKOPS_FILE: data}, params={}, metrics={},
                        library_versions={}, data_fingerprint="0" * 64, source="", job_id=None,
                        extra={"task": "classification"})


def snapshot(path):
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_size


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("artifact-safety-home")


@pytest.fixture(scope="module")
def server(home):
    """A real model server on loopback over ``home``'s registry, stopped at the end."""
    info = state.ensure_server(home)
    try:
        import httpx

        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=120) as http:
            yield http
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(b"precious data\n" * 64)
    return path


def hostile_artifacts(marker, victim):
    """name -> (artifact bytes, the type the refusal must name)."""
    sh = (["/bin/sh", "-c", f"echo pwned > {marker}"],)
    memmap_args = (str(victim), "uint8", "w+", 0, (1,))  # mode w+ creates/truncates the file
    X, y = load_iris(return_X_y=True)
    return {
        "popen": (constructor_call(popen_module(), "Popen", sh), f"{popen_module()}.Popen"),
        "memmap-truncates": (constructor_call("numpy", "memmap", memmap_args), "numpy.memmap"),
        "memmap-private-path": (constructor_call("numpy._core.memmap", "memmap", (str(marker), "uint8", "w+", 0, (1,))),
                                "numpy._core.memmap.memmap"),
        "tempdir-under-sklearn": (constructor_call("sklearn.datasets._covtype", "TemporaryDirectory",
                                                   ("", marker.name, str(marker.parent))),
                                  "sklearn.datasets._covtype.TemporaryDirectory"),
        "check-output-under-sklearn": (constructor_call("sklearn.utils._testing", "check_output", sh),
                                       "sklearn.utils._testing.check_output"),
        # a real pipeline whose FunctionTransformer points at a process function re-exported
        # by scikit-learn: loading must refuse it even though nothing calls it until predict
        "function-transformer": (function_reference(
            make_pipeline(FunctionTransformer(np.negative), StandardScaler(), LogisticRegression()).fit(X, y),
            "sklearn.utils._testing", "check_output"), "sklearn.utils._testing.check_output"),
        "numpy-function": (dump_sklearn(make_pipeline(FunctionTransformer(np.save), LogisticRegression())),
                           "numpy.save"),
    }


# ------------------------------------------------------------------ the payloads are live
def test_crafted_payloads_really_run_when_trusted(tmp_path, victim):
    """Control: what the old prefix rule let through does run a command / truncate a file."""
    marker = tmp_path / "marker"
    data = constructor_call(popen_module(), "Popen", (["/bin/sh", "-c", f"echo pwned > {marker}"],))
    assert skops.io.get_untrusted_types(data=data) == [f"{popen_module()}.Popen"]
    model = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    assert model.payload_.wait(timeout=30) == 0 and marker.read_text() == "pwned\n"

    data = constructor_call("numpy", "memmap", (str(victim), "uint8", "w+", 0, (1,)))
    mm = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data)).payload_
    del mm
    assert victim.read_bytes() == b"\x00"


# ------------------------------------------------------------------ refused, nothing happens
def test_hostile_artifacts_refused_by_load_model_and_deploy(home, server, tmp_path, victim):
    reg, client = Registry(home), AiaasClient(home=home)
    marker = tmp_path / "marker"
    before = snapshot(victim)
    for name, (data, bad_type) in hostile_artifacts(marker, victim).items():
        mv = register_sklearn(reg, name, data)
        assert reg.read_artifacts(mv)[SKOPS_FILE] == data  # registered for real, sha256 and all
        with pytest.raises(UnsafeArtifactError) as err:
            client.load_model(name)
        msg = str(err.value)
        assert bad_type in msg and "refusing to load" in msg and "\n" not in err.value.message, (name, msg)
        assert "aiaas.artifacts.trusted-types" in msg

        r = server.post("/admin/deployments", json={"name": name, "ref": f"{name}:{mv.version}"})
        assert r.status_code == 422, (name, r.text)
        assert bad_type in r.json()["error"] and "\n" not in r.json()["error"], r.text
        assert server.get(f"/v2/models/{name}/ready").status_code == 404

    assert not marker.exists() and list(tmp_path.iterdir()) == [victim]
    assert snapshot(victim) == before


def test_refusal_names_every_type_once_on_one_line(victim, tmp_path):
    data = constructor_call("numpy", "memmap", (str(victim), "uint8", "w+", 0, (1,)))
    data = _edit_schema(data, lambda s: s["content"]["content"].__setitem__(
        "other_", {"__class__": "DataSource", "__module__": "numpy.lib._datasource", "__loader__": "ObjectNode",
                   "__id__": 2}))
    with pytest.raises(UnsafeArtifactError) as err:
        load_sklearn(data)
    assert err.value.message == ("refusing to load a scikit-learn artifact with untrusted types "
                                 "numpy.lib._datasource.DataSource, numpy.memmap")
    assert victim.read_bytes() == b"precious data\n" * 64


# ------------------------------------------------------------------ the opt-in
def test_opt_in_is_per_exact_type(tmp_path):
    import dask.config

    data = dump_sklearn(make_pipeline(FunctionTransformer(np.save), LogisticRegression()))
    with dask.config.set({"aiaas.artifacts.trusted-types": ["numpy.save"]}):
        loaded = load_sklearn(data)
    assert loaded.steps[0][1].func is np.save
    with dask.config.set({"aiaas.artifacts.trusted-types": ["numpy.lib.npyio.save"]}):  # a different name
        with pytest.raises(UnsafeArtifactError, match="numpy.save"):
            load_sklearn(data)
    for bad in (["numpy.*"], ["numpy."], ["numpy"], "numpy.save", [3]):
        with dask.config.set({"aiaas.artifacts.trusted-types": bad}):
            with pytest.raises(ConfigError, match="trusted-types"):
                load_sklearn(data)


def test_builtin_list_is_exact_classes_and_score_functions():
    import sklearn.feature_selection as fs

    score_functions = {fs.f_classif, fs.f_regression, fs.r_regression, fs.chi2, fs.mutual_info_classif,
                       fs.mutual_info_regression}
    names = trusted_types.builtin_trusted_types()
    assert len(names) > 200  # every estimator, plus what fitted ones hold
    functions = set()
    for name in names:
        mod, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(mod), attr)
        if not isinstance(obj, type):
            functions.add(obj)
    assert functions == score_functions  # the only functions: pure statistics SelectKBest keeps
    assert not {"numpy.memmap", "numpy._core.memmap.memmap", "subprocess.Popen"} & names
    assert not any("PyFunc" in n or "datasource" in n.lower() for n in names)


# ------------------------------------------------------------------ real models still load
def broad_sample():
    """Fitted (model, X) pairs across the families users train, seeded."""
    import pandas as pd
    from sklearn import (cluster, compose, decomposition, ensemble, feature_extraction, feature_selection,
                         gaussian_process, impute, naive_bayes, neighbors, neural_network, preprocessing, svm,
                         tree)

    X, y = load_iris(return_X_y=True, as_frame=True)
    yr = X.pop("petal width (cm)")
    clf = [ensemble.RandomForestClassifier(n_estimators=5, random_state=0),
           ensemble.GradientBoostingClassifier(n_estimators=5, random_state=0),
           ensemble.HistGradientBoostingClassifier(max_iter=5, random_state=0),
           ensemble.ExtraTreesClassifier(n_estimators=5, random_state=0),
           ensemble.AdaBoostClassifier(n_estimators=5, random_state=0),
           LogisticRegression(max_iter=500), svm.SVC(random_state=0),
           neighbors.KNeighborsClassifier(), neighbors.KNeighborsClassifier(algorithm="ball_tree", metric="manhattan"),
           neural_network.MLPClassifier(max_iter=50, random_state=0),
           neural_network.MLPClassifier(solver="sgd", max_iter=20, random_state=0),
           naive_bayes.GaussianNB(), tree.DecisionTreeClassifier(random_state=0),
           gaussian_process.GaussianProcessClassifier(random_state=0),
           make_pipeline(impute.SimpleImputer(), StandardScaler(), feature_selection.SelectKBest(k=2),
                         LogisticRegression(max_iter=500)),
           make_pipeline(decomposition.PCA(2), svm.LinearSVC(random_state=0))]
    reg = [ensemble.HistGradientBoostingRegressor(max_iter=5, random_state=0),
           ensemble.GradientBoostingRegressor(n_estimators=5, random_state=0),
           neighbors.KNeighborsRegressor(), svm.SVR(), tree.DecisionTreeRegressor(random_state=0)]
    out = [(m.fit(X, y), X) for m in clf] + [(m.fit(X, yr), X) for m in reg]
    out.append((cluster.KMeans(3, n_init=1, random_state=0).fit(X), X))
    frame = pd.DataFrame({"c": list("abc") * 50, "n": np.arange(150.0),
                          "t": ["red fox", "lazy dog", "quick brown"] * 50})
    ct = compose.ColumnTransformer([("oh", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["c"]),
                                    ("sc", StandardScaler(), ["n"]),
                                    ("tf", feature_extraction.text.TfidfVectorizer(), "t")])
    out.append((make_pipeline(ct, LogisticRegression(max_iter=500)).fit(frame, y), frame))
    return out


def test_broad_sample_of_fitted_estimators_round_trips(tmp_path):
    reg, client = Registry(tmp_path / "home"), AiaasClient(home=tmp_path / "home")
    for i, (model, X) in enumerate(broad_sample()):
        data = dump_sklearn(model)
        assert not trusted_types.refused(skops.io.get_untrusted_types(data=data)), type(model).__name__
        register_sklearn(reg, f"m{i}", data)
        loaded = client.load_model(f"m{i}")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X), err_msg=type(model).__name__)


# ------------------------------------------------------------------ ONNX
def onnx_graph(*, external: str | None = None) -> bytes:
    """``output = input + W`` (4 features); W inline, or stored as external data at ``external``."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")
    if external is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", external), ("offset", "0"), ("length", "16")):
            e = w.external_data.add()
            e.key, e.value = k, v
    graph = helper.make_graph([helper.make_node("Add", ["input", "W"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 4])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def register_onnx(reg: Registry, name: str, onnx_bytes: bytes):
    meta = {"task": "regression", "input_dim": 4, "module_class": "Adder"}
    return reg.register(name, framework="torch", artifacts={"model.onnx": onnx_bytes,
                                                            "model.json": json.dumps(meta).encode()},
                        params={}, metrics={}, library_versions={}, data_fingerprint="0" * 64, source="",
                        job_id=None, extra={"task": "regression", "input_dim": 4})


def test_onnx_inline_graph_loads_and_runs(tmp_path):
    reg, client = Registry(tmp_path / "home"), AiaasClient(home=tmp_path / "home")
    register_onnx(reg, "adder", onnx_graph())
    out = client.load_model("adder")(np.zeros((2, 4), np.float32))
    np.testing.assert_array_equal(out, np.tile(np.arange(4, dtype=np.float32), (2, 1)))


def test_hostile_onnx_refused_by_load_model_and_deploy(home, server, tmp_path):
    reg, client = Registry(home), AiaasClient(home=home)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    cases = {
        "onnx-etc-passwd": (onnx_graph(external="/etc/passwd"), UnsafeArtifactError, "'/etc/passwd'"),
        "onnx-tmp-file": (onnx_graph(external=str(secret)), UnsafeArtifactError, str(secret)),
        "onnx-relative": (onnx_graph(external="../../secret.bin"), UnsafeArtifactError, "external data"),
        "onnx-garbage": (np.random.default_rng(0).bytes(4096), RegistryError, "ONNX"),
    }
    for name, (data, error, words) in cases.items():
        mv = register_onnx(reg, name, data)
        with pytest.raises(error) as err:
            client.load_model(name)
        assert words in str(err.value) and "\n" not in err.value.message, (name, str(err.value))
        r = server.post("/admin/deployments", json={"name": name, "ref": f"{name}:{mv.version}"})
        assert r.status_code == 422 and words in r.json()["error"], (name, r.text)
        assert "Traceback" not in r.text


# ------------------------------------------------------------------ malformed trees
def malformed_trees():
    """name -> (fitted model whose compiled tree indexes out of bounds or loops, words)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_iris(return_X_y=True)

    def with_nodes(tree, field, index, value):
        st = tree.__getstate__()
        st["nodes"] = st["nodes"].copy()
        st["nodes"][field][index] = value
        tree.__setstate__(st)

    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with_nodes(rf.estimators_[1].tree_, "left_child", 0, 10**6)
    loop = DecisionTreeRegressor(random_state=0).fit(X, X[:, 0])
    with_nodes(loop.tree_, "right_child", 0, 0)  # a cycle: predict would never return
    wide = DecisionTreeRegressor(random_state=0).fit(X, X[:, 0])
    with_nodes(wide.tree_, "feature", 0, 4000)
    hgb = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(X, y)
    hgb._predictors[1][0].nodes["feature_idx"][0] = 99
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    st = list(knn._tree.__getstate__())
    st[1] = st[1].copy()
    st[1][3] = 10**7  # idx_array: a point index far past the data
    knn._tree.__setstate__(tuple(st))
    return {"tree-child-oob": (rf, "child 1000000"), "tree-cycle": (loop, "right child 0"),
            "tree-feature-oob": (wide, "feature 4000 of 4"), "hgb-feature-oob": (hgb, "feature 99 of 4"),
            "kdtree-index-oob": (knn, "outside its 150 points")}


def test_malformed_trees_refused_by_load_model_and_deploy(home, server):
    reg, client = Registry(home), AiaasClient(home=home)
    for name, (model, words) in malformed_trees().items():
        mv = register_sklearn(reg, name, dump_sklearn(model))
        with pytest.raises(UnsafeArtifactError, match="malformed tree") as err:
            client.load_model(name)
        assert words in err.value.message and "\n" not in err.value.message, (name, err.value.message)
        r = server.post("/admin/deployments", json={"name": name, "ref": f"{name}:{mv.version}"})
        assert r.status_code == 422 and words in r.json()["error"], (name, r.text)


def test_trusted_type_fed_bad_values_is_one_registry_error():
    data = constructor_call("sklearn.tree._tree", "Tree", ("not", "a", "tree"))
    with pytest.raises(RegistryError, match="cannot rebuild the scikit-learn model") as err:
        load_sklearn(data)
    assert type(err.value) is RegistryError and "\n" not in err.value.message


def test_models_the_product_trains_load_through_the_registry(tmp_path):
    """The catalog's scikit-learn models, trained by the product's trainer on a mixed frame
    (categories and missing values encoded in the pipeline, as users do; text) load back unchanged."""
    import pandas as pd
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.compose import make_column_transformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import OneHotEncoder

    from aiaas_jupyter.training import TrainSpec, run_training

    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
                          "colour": rng.choice(["red", "green", "blue"], n)})
    frame["label"] = np.where(frame["x"] + (frame["colour"] == "red") > 0.5, "yes", "no")
    frame["value"] = 2 * frame["x"] + (frame["colour"] == "blue")
    text = pd.DataFrame({"text": ["cheap pills now", "meeting at noon", "win money fast", "lunch with team"] * 30,
                         "label": ["spam", "ham", "spam", "ham"] * 30})
    def encoded(model):
        return make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                                                     (SimpleImputer(), ["x", "z"])), model)

    by_label, by_value = frame.drop(columns="value"), frame.drop(columns="label")
    cases = [(encoded(RandomForestClassifier(n_estimators=10, random_state=0)), by_label, "label"),
             (encoded(RandomForestRegressor(n_estimators=10, random_state=0)), by_value, "value"),
             (encoded(GradientBoostingClassifier(n_estimators=10, random_state=0)), by_label, "label"),
             (encoded(GradientBoostingRegressor(n_estimators=10, random_state=0)), by_value, "value"),
             (encoded(LogisticRegression(max_iter=500)), by_label, "label"),
             (encoded(Ridge()), by_value, "value"),
             (RandomForestClassifier(n_estimators=10, random_state=0), frame[["x", "label"]], "label"),
             (make_pipeline(TfidfVectorizer(), LogisticRegression()), text, "label")]
    reg, client = Registry(tmp_path / "home"), AiaasClient(home=tmp_path / "home")
    for i, (model, df, target) in enumerate(cases):
        res = run_training(TrainSpec(model=model, target=target, seed=0), df, lambda e: None)
        reg.register(f"p{i}", framework=res.framework, artifacts=res.artifacts, params=res.params,
                     metrics=res.metrics, library_versions=res.library_versions,
                     data_fingerprint=res.data_fingerprint, source="", job_id=None, extra=res.extra)
        X = df.drop(columns=target)
        want = load_sklearn(res.artifacts[SKOPS_FILE]).predict(X["text"] if "text" in X else X)  # bare pipeline
        got = client.load_model(f"p{i}").predict(X)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=type(model).__name__)
        assert len(set(np.asarray(got).tolist())) > 1, type(model).__name__  # a real model, not a constant
