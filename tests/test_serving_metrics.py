"""The model server's Prometheus metrics (issue 15 point 4): a real server process on loopback,
real requests, ``GET /metrics`` read with prometheus_client's own parser; and ``%aiaas endpoints``
showing req/s and p99 per deployment from it."""

from __future__ import annotations

import math
import re
import time
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state
from aiaas_jupyter.serving.metrics import ServerMetrics
from aiaas_jupyter.serving_client.traffic import TrafficWatch, quantile
from aiaas_jupyter.serving_service import ServingService
from support import serving_models as sm

ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


def _samples(text: str) -> dict[tuple, float]:
    """(sample name, sorted label items) → value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("metrics-home")
    reg = Registry(home)
    sm.register(reg, "iris", sm.train_iris(seed=0))
    sm.register(reg, "iris", sm.train_iris(seed=1))
    info = state.ensure_server(home, deploy=("iris:1",))
    try:
        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as client:
            yield home, info, client
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


def test_metrics_count_requests_errors_latency_and_batches(served):
    home, info, http = served
    assert httpx.get(info.url + "/metrics").status_code == 401  # behind the token like the rest
    before = _samples(http.get("/metrics").text)
    for i in range(30):
        assert http.post("/predict/iris", json=[ROW] * 3).status_code == 200
    tensor = {"name": "input", "shape": [2, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2] * 2}
    for _ in range(5):
        assert http.post("/v2/models/iris/infer", json={"inputs": [tensor]}).status_code == 200
    assert http.post("/predict/iris", json=[{"sepal length (cm)": 1.0}]).status_code == 422   # lacks features
    assert http.post("/predict/iris", json=[{**ROW, "petal width (cm)": "wide"}]).status_code == 400  # signature
    assert http.post("/predict/nope", json=[ROW]).status_code == 404

    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = _samples(r.text)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    iris = {"model": "iris", "version": "1"}
    assert delta("aiaas_requests_total", route="predict", code="200", **iris) == 30
    assert delta("aiaas_requests_total", route="infer", code="200", **iris) == 5
    assert delta("aiaas_request_errors_total", route="predict", code="422", **iris) == 1
    assert delta("aiaas_request_errors_total", route="predict", code="400", **iris) == 1
    # an unknown name is counted without a model label: no series per name a client makes up
    assert delta("aiaas_request_errors_total", model="", version="", route="predict", code="404") == 1
    assert delta("aiaas_request_duration_seconds_count", route="predict", **iris) == 32
    assert delta("aiaas_request_duration_seconds_bucket", route="predict", le="+Inf", **iris) == 32
    assert 0 < delta("aiaas_request_duration_seconds_sum", route="predict", **iris) < 32 * 5
    # the 35 requests that reached the model, in batches: every request and every row counted once
    assert delta("aiaas_batch_requests_sum", **iris) == 35
    assert delta("aiaas_batch_rows_sum", **iris) == 30 * 3 + 5 * 2
    assert 1 <= delta("aiaas_batch_requests_count", **iris) <= 35
    assert _value(after, "aiaas_queue_depth", **iris) == 0 and _value(after, "aiaas_requests_in_flight", **iris) == 0
    assert _value(after, "aiaas_batch_running", **iris) == 0
    assert _value(after, "aiaas_deployment_info", ref="iris:1", **iris) == 1


def test_a_redeploy_moves_the_series_to_the_new_version(served):
    home, info, http = served
    assert http.post("/admin/deployments", json={"name": "iris", "ref": "iris:2"}).status_code == 200
    assert http.post("/predict/iris", json=[ROW]).status_code == 200
    after = _samples(http.get("/metrics").text)
    assert _value(after, "aiaas_deployment_info", model="iris", version="2", ref="iris:2") == 1
    assert ("aiaas_deployment_info", (("model", "iris"), ("ref", "iris:1"), ("version", "1"))) not in after
    assert _value(after, "aiaas_requests_total", model="iris", version="2", route="predict", code="200") == 1
    http.post("/admin/deployments", json={"name": "iris", "ref": "iris:1"})


def test_endpoints_show_req_per_s_and_p99_from_the_metrics(served):
    home, info, http = served
    service = ServingService(Registry(home))
    first = {r[0]: r for r in service.endpoints().rows}
    for _ in range(40):
        http.post("/predict/iris", json=[ROW])
    table = service.endpoints()
    assert table.columns[-2:] == ["req/s", "p99"]
    row = {r[0]: r for r in table.rows}["iris"]
    assert float(row[-2]) > 0 and re.fullmatch(r"\d+\.\d ms", row[-1]), row
    assert "since the last %aiaas endpoints" in table.note
    assert first["iris"][-2] != ""  # the first look counts since the version was loaded


def test_the_windowed_figures():
    """Requests per second and p99 between two looks, as Prometheus' rate and histogram_quantile."""
    assert quantile(0.5, {0.001: 0.0, 0.01: 100.0, math.inf: 100.0}) == pytest.approx(0.0055)
    assert quantile(0.99, {0.001: 50.0, 0.01: 99.0, 0.1: 100.0, math.inf: 100.0}) == pytest.approx(0.01)
    assert math.isnan(quantile(0.99, {0.1: 0.0, math.inf: 0.0}))
    assert quantile(0.99, {0.1: 0.0, math.inf: 5.0}) == 0.1  # in the open top bucket: its lower edge

    loaded = time.time()
    deployed = SimpleNamespace(name="m", version=1, ref="m:1", loaded_ts=loaded,
                               batcher=SimpleNamespace(queue_depth=0, busy=False))
    metrics = ServerMetrics(lambda: [deployed])  # the server's own exposition, driven directly
    for _ in range(100):
        metrics.answered("m", "1", "infer", 200, time.perf_counter() - 0.005, counted=False)
    for _ in range(7):  # readiness calls of the model are not traffic
        metrics.answered("m", "1", "model_ready", 200, time.perf_counter(), counted=False)
    watch = TrafficWatch()
    first = watch.look(metrics.exposition().decode(), now=loaded + 100)[("m", "1")]
    assert first.since == "loaded" and first.per_s == pytest.approx(1.0, rel=0.01)
    assert 0.002 < first.p99_s <= 0.01
    for _ in range(200):
        metrics.answered("m", "1", "infer", 200, time.perf_counter() - 0.3, counted=False)
    second = watch.look(metrics.exposition().decode(), now=loaded + 110)[("m", "1")]
    assert second.since == "last look" and second.per_s == pytest.approx(20.0)
    assert second.p99_s == pytest.approx(0.2 + 0.3 * 0.99)  # all 200 in the (0.2, 0.5] bucket
    assert second.requests == 300 and second.errors == 0
