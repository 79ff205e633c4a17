"""JobProgress, PredictForm and ClusterWidget, driven headless through the ipywidgets API
(set values, ``button.click()``) against real parts: jobs on the session's LocalCluster,
the real model server of a throwaway home, a second embedded cluster for scaling.

No kernel is needed: widget state lives in the Python objects; what a front-end would render
is read from their values (the Output records, HTML, the Image's PNG bytes).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.errors import ModelNotFoundError

PNG = b"\x89PNG\r\n\x1a\n"
CELL = ("import torch\ntorch.manual_seed(3)\n"
        "model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))\n")


def _frame(n=8000, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype("float32")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    df["y"] = (X @ rng.normal(size=8) > 0).astype(int)
    return df


def _until(predicate, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _versions(aiaas, name):
    try:
        return [v.version for v in aiaas.registry.versions(name)]
    except ModelNotFoundError:
        return []


def _table(html_text: str) -> list[list[str]]:
    """The rows of the first HTML table (header row first), as cell texts."""
    from html.parser import HTMLParser

    rows: list[list[str]] = []

    class Cells(HTMLParser):
        cell = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                rows[-1].append(self.cell.strip())
                self.cell = None

    Cells().feed(html_text)
    return rows


def _error_line(output) -> str:
    (rec,) = output.outputs
    html = rec["data"]["text/html"]
    assert "aiaas-form-error" in html
    assert "\n" not in rec["data"]["text/plain"]
    return rec["data"]["text/plain"]


@pytest.fixture(scope="module")
def own_server(session_home):
    """Stop the session home's model server afterwards if these tests started it."""
    from aiaas_jupyter.serving import state

    running = state.find_server(session_home) is not None
    yield
    if not running:
        state.stop_server(session_home)


@pytest.fixture(scope="module")
def torch_job(aiaas):
    """A seeded 8-epoch torch job, watched by a JobProgress from its submission on."""
    from aiaas_jupyter.widgets.progress import JobProgress

    namespace = {"wpdata": _frame()}
    t0 = time.perf_counter()
    job = aiaas.train(_model(), "wpdata", "y", name="wp-mlp", epochs=8, batch_size=32, lr=0.005, seed=3,
                      source=CELL, namespace=namespace)
    view = JobProgress(job, client=aiaas)
    drawn = []  # (epochs in the picture, PNG) for every redraw of the curves
    view.plot.observe(lambda change: drawn.append((view.plotted_epochs, bytes(change["new"]))), names="value")
    seen = []
    remove = job.add_listener(lambda j, event: seen.append(event))
    version = job.result(timeout=180)
    return dict(job=job, view=view, drawn=drawn, version=version, seen=seen, remove=remove,
                seconds=time.perf_counter() - t0)


def _model():
    import torch

    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))


# ---------------------------------------------------------------------------- JobProgress
def test_progress_follows_a_torch_job_to_the_end(aiaas, torch_job):
    view, version, drawn = torch_job["view"], torch_job["version"], torch_job["drawn"]
    assert view.bar.value == 1.0 and view.bar.bar_style == "success"
    assert view.status.value.startswith("finished in ")
    assert view.epoch.value == "epoch 8/8"
    # live curves: a picture while training, redrawn at the end with every epoch
    assert len(drawn) >= 2, [n for n, _ in drawn]
    (first_epochs, first), (last_epochs, last) = drawn[0], drawn[-1]
    assert first_epochs < 8 and last_epochs == 8
    assert first.startswith(PNG) and last.startswith(PNG) and first != last
    assert bytes(view.plot.value) == last and view.plot.layout.display is None
    # the metrics table shows the registry's numbers
    registered = aiaas.registry.get("wp-mlp:1").metrics
    assert version.ref == "wp-mlp:1" and registered == version.metrics
    assert 0.8 < registered["accuracy"] <= 1.0
    assert f"{registered['accuracy']:.4f}" in view.metrics.value
    assert f"{registered['val_loss']:.4f}" in view.metrics.value and "wp-mlp:1" in view.metrics.value
    assert view.cancel_button.disabled and not view.deploy_button.disabled
    # a stable summary for front-ends without widgets: no ids, addresses or timings
    assert repr(view) == ("JobProgress(model=wp-mlp, framework=torch, status=finished, progress=epoch 8/8, "
                          "registered=wp-mlp:1)")
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"] == repr(view)
    assert "application/vnd.jupyter.widget-view+json" in bundle and torch_job["job"].id not in bundle["text/html"]


def test_a_job_of_an_earlier_kernel_shows_its_stored_curves(aiaas, torch_job):
    """No events (they are not persisted): the curves come from the version's stored history."""
    from aiaas_jupyter.widgets.progress import JobProgress

    job = aiaas.dispatcher.from_record(aiaas.registry.get_job(torch_job["job"].id))
    assert job.events == [] and job.status == "finished" and job.future is None
    view = JobProgress(job)
    assert view.plotted_epochs == 8 and bytes(view.plot.value).startswith(PNG)
    assert bytes(view.plot.value) == bytes(torch_job["view"].plot.value)  # the same curves, redrawn
    assert view.cancel_button.disabled and not view.deploy_button.disabled
    assert f"{torch_job['version'].metrics['accuracy']:.4f}" in view.metrics.value


def test_listeners_get_every_event_then_the_end(torch_job, caplog):
    job, seen = torch_job["job"], torch_job["seen"]
    assert seen[-1] is None and seen[:-1] == job.events
    assert [e["epoch"] for e in seen[:-1] if e.get("stage") == "epoch"] == list(range(1, 9))
    # a listener added after the end is told everything (replayed) and the end
    late = []
    job.add_listener(lambda j, event: late.append(event))
    assert late == job.events + [None]
    # a listener that raises is logged, never raised into Dask's thread or the caller
    with caplog.at_level(logging.ERROR, logger="aiaas_jupyter.job_state"):
        job.add_listener(lambda j, event: 1 / 0)
    assert f"a listener of job {job.id} failed" in caplog.text and "ZeroDivisionError" in caplog.text
    torch_job["remove"]()
    job._state._notify(job._state._listeners.snapshot(), {"stage": "probe"})
    assert seen[-1] is None  # removed: not told


def test_copy_as_magic_writes_the_cell_that_reproduces_the_job(shell, torch_job):
    from aiaas_jupyter.magics.parser import parse

    view = torch_job["view"]
    view.copy_button.click()
    text = view.magic.value
    assert view.magic.layout.display is None
    first, body = text.split("\n", 1)
    assert first.startswith("%%aiaas train ") and body == CELL
    args = parse(first[len("%%aiaas "):])
    assert (args.command, args.data, args.target, args.name) == ("train", "wpdata", "y", "wp-mlp")
    assert (args.epochs, args.batch_size, args.lr, args.seed, args.test_size, args.gpus) == (8, 32, 0.005, 3, 0.2, 0)
    assert shell.rl_next_input == text  # offered as the next cell


def test_deploy_button_serves_the_model(aiaas, torch_job, own_server):
    view = torch_job["view"]
    view.deploy_button.click()
    assert view.deployment is not None and view.deployment.ref == "wp-mlp:1"
    assert view.deployment.url in view.message.value and "aiaas-form-error" not in view.message.value
    (dep,) = [d for d in aiaas.deployments() if d["name"] == "wp-mlp"]
    assert dep["version"] == 1
    X = _frame(5, seed=9).drop(columns="y")
    local = aiaas.load_model("wp-mlp:1")
    import torch

    with torch.no_grad():
        expected = local(torch.tensor(X.to_numpy())).argmax(1).tolist()
    assert aiaas.predict("wp-mlp", X).tolist() == expected
    aiaas.undeploy("wp-mlp")
    assert "wp-mlp" not in [d["name"] for d in aiaas.deployments()]


def test_deploy_error_shows_as_one_line(aiaas, iris_frame, own_server):
    """The job's model was deleted from the registry after it finished: Deploy says so, in one line."""
    from sklearn.dummy import DummyClassifier

    from aiaas_jupyter.widgets.progress import JobProgress

    job = aiaas.train(DummyClassifier(), iris_frame, "target", name="wp-gone", block=True)
    view = JobProgress(job)
    assert view.status.value.startswith("finished") and view.epoch.value == ""  # sklearn: no epochs
    assert view.plot.layout.display == "none" and "accuracy" in view.metrics.value
    aiaas.delete(job.version.ref)
    view.deploy_button.click()
    assert view.deployment is None
    assert "aiaas-form-error" in view.message.value
    assert "ModelNotFoundError" in view.message.value and "wp-gone" in view.message.value


def test_cancel_button_cancels_and_nothing_is_registered(shell, aiaas, iris_frame):
    from IPython.utils.capture import capture_output

    from aiaas_jupyter.widgets.progress import JobProgress

    shell.user_ns["iris"] = iris_frame
    cell = ("import time\nfrom sklearn.dummy import DummyClassifier\n"
            "class Slow(DummyClassifier):\n"
            "    def fit(self, X, y):\n"
            "        time.sleep(5)\n"
            "        return super().fit(X, y)\n"
            "model = Slow()\n")
    with capture_output():
        shell.run_cell_magic("aiaas", "train --data iris --target target --name wp-slow -o wpjob", cell)
    job = shell.user_ns["wpjob"]
    view = JobProgress(job, client=aiaas)
    assert not view.cancel_button.disabled and view.deploy_button.disabled
    _until(lambda: view.status.value == "running", 60, "the job to start")
    view.cancel_button.click()
    assert job.wait(30)
    assert job.status == "cancelled" and view.status.value == "cancelled"
    assert view.cancel_button.disabled and view.deploy_button.disabled
    assert "JobCancelledError" in view.error.value and "nothing was registered" in view.error.value
    assert _versions(aiaas, "wp-slow") == [] and aiaas.registry.get_job(job.id).status == "cancelled"
    view.deploy_button.click()  # nothing to deploy: said in the widget
    assert "registered no model" in view.message.value


# ---------------------------------------------------------------------------- PredictForm
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A home with iris and reviews deployed and "lonely" only registered; its server is stopped after."""
    from support.serving_models import register, train_iris, train_text_ct

    from aiaas_jupyter.client import AiaasClient
    from aiaas_jupyter.artifacts.codec import SKOPS_FILE, load_sklearn
    from aiaas_jupyter.serving import state

    home = tmp_path_factory.mktemp("predict-form-home")
    client = AiaasClient(home)
    models = {}
    for name, res in (("iris", train_iris(seed=0)), ("lonely", train_iris(seed=1, n_estimators=5)),
                      ("reviews", train_text_ct(seed=0))):
        register(client.registry, name, res)
        models[name] = load_sklearn(res.artifacts[SKOPS_FILE])
    try:
        client.deploy("iris")
        client.deploy("reviews")
        yield type("Served", (), dict(client=client, models=models, home=home))
    finally:
        state.stop_server(home)


def _iris_rows(n=12):
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame.drop(columns="target").sample(n, random_state=4)


def test_predict_form_from_a_variable_and_from_json(served):
    from aiaas_jupyter.widgets.predict import PredictForm

    X = _iris_rows()
    namespace = {"X": X, "label": "not offered", "_hidden": X}
    form = PredictForm(served.client, namespace=namespace)
    labels = dict((v, k) for k, v in form.model.options)
    assert set(labels) == {"deployment:iris", "deployment:reviews", "registered:lonely"}
    assert form.variable.options == ("X",)
    expected = served.models["iris"].predict(X).tolist()
    form.select("iris")
    form.mode.value, form.variable.value = "variable", "X"
    form.predict_button.click()
    assert form.result.tolist() == expected
    (rec,) = form.output.outputs
    header, *rows = _table(rec["data"]["text/html"])
    assert "aiaas-predictions" in rec["data"]["text/html"] and header[-1] == "prediction"
    assert [int(r[-1]) for r in rows] == expected
    assert [float(r[1]) for r in rows] == X["sepal length (cm)"].tolist()  # the inputs beside them
    form.mode.value = "json"
    form.json.value = json.dumps(X.to_numpy().tolist())
    assert form.json.layout.display is None and form.variable.layout.display == "none"
    form.predict_button.click()
    assert form.result.tolist() == expected
    form.json.value = json.dumps(X.to_dict(orient="records"))
    form.predict_button.click()
    assert form.result.tolist() == expected


def test_predict_form_text_model(served):
    from aiaas_jupyter.widgets.predict import PredictForm

    form = PredictForm(served.client, namespace={})
    form.select("reviews")
    form.mode.value = "text"
    form.text.value = "the market index and the bond yield rate"
    form.predict_button.click()
    expected = served.models["reviews"].predict(pd.DataFrame({"text": [form.text.value]})).tolist()
    assert form.result.tolist() == expected == ["finance"]
    assert "finance" in form.output.outputs[0]["data"]["text/html"]


def test_predict_form_errors_are_one_line_in_the_output(served):
    from aiaas_jupyter.widgets.predict import PredictForm

    namespace = {"X": _iris_rows(3)}
    form = PredictForm(served.client, namespace=namespace)
    form.select("iris")
    form.mode.value = "json"
    form.json.value = "[[1, 2,"
    form.predict_button.click()  # never raises
    assert _error_line(form.output).startswith("DataError: the input is not valid JSON")
    form.json.value = "[[1, 2]]"
    form.predict_button.click()
    line = _error_line(form.output)
    assert line.startswith("EndpointError: POST ") and "expected 4 features per row, got 2" in line
    form.mode.value, form.variable.value = "variable", "X"
    del namespace["X"]  # gone since the list was made
    form.predict_button.click()
    assert _error_line(form.output).startswith("DataError: no variable named 'X' in the notebook")
    assert form.result is None
    form.select("lonely")
    assert form.deploy_button.layout.display is None and "not served" in form.hint.value
    form.predict_button.click()
    assert _error_line(form.output).startswith("EndpointNotFoundError: model 'lonely' is registered but not deployed")


def test_predict_form_deploy_button_then_predict(served):
    from aiaas_jupyter.widgets.predict import PredictForm

    X = _iris_rows(6)
    form = PredictForm(served.client, namespace={"X": X})
    form.select("lonely")
    form.deploy_button.click()
    try:
        assert form.model.value == "deployment:lonely" and form.deploy_button.layout.display == "none"
        assert "deployed" in form.output.outputs[0]["data"]["text/plain"]
        form.predict_button.click()
        assert form.result.tolist() == served.models["lonely"].predict(X).tolist()
    finally:
        served.client.undeploy("lonely")


# ---------------------------------------------------------------------------- ClusterWidget
def test_cluster_widget_shows_the_session_cluster(aiaas):
    from aiaas_jupyter.widgets.cluster import ClusterWidget

    view = ClusterWidget(aiaas)
    expected = aiaas.cluster_summary()
    assert view.summary["n_workers"] == expected["n_workers"] == 2
    assert view.summary["gpus"] == expected["gpus"] == 0
    assert "2 workers" in view.info.value and "0 GPUs" in view.info.value and "embedded" in view.info.value
    assert view.table.value.count("<tr>") == 1 + 2  # header + one row per worker
    assert view.workers.value == 2 and not view.scale_button.disabled


def test_cluster_widget_scale_connect_disconnect(aiaas, tmp_path):
    import dask.config

    from aiaas_jupyter.client import AiaasClient
    from aiaas_jupyter.widgets.cluster import ClusterWidget

    client = AiaasClient(home=tmp_path / "home")
    client.connect(n_workers=1, threads_per_worker=1, gpus=0)
    try:
        view = ClusterWidget(client)
        assert view.summary["n_workers"] == 1 and "1 workers" in view.info.value
        view.workers.value = 2
        t0 = time.perf_counter()
        view.scale_button.click()
        print(f"scale 1 -> 2 workers: {time.perf_counter() - t0:.1f} s")
        assert view.message.value == "", view.message.value
        assert view.summary["n_workers"] == 2 and len(client.dask.scheduler_info(n_workers=-1)["workers"]) == 2
        view.disconnect_button.click()
        assert view.summary is None and "not connected" in view.info.value
        assert view.disconnect_button.disabled and view.scale_button.disabled
        # an external cluster (the session's): shown, but not scaled from here
        view.address.value = aiaas.dask.scheduler.address
        view.connect_button.click()
        assert view.summary["n_workers"] == 2 and "external cluster" in view.info.value
        assert view.scale_button.disabled and "scaled by whoever runs it" in view.scale_note.value
        view.disconnect_button.click()
        assert aiaas.dask.status == "running"  # the session cluster is untouched
        with dask.config.set({"aiaas.cluster.connect-timeout": "1s"}):
            view.address.value = "tcp://127.0.0.1:9"
            view.connect_button.click()
        assert "aiaas-form-error" in view.message.value
        assert "ClusterError: could not reach the Dask scheduler at tcp://127.0.0.1:9" in view.message.value
    finally:
        client.disconnect()
