"""Traffic split between versions (issue 15 point 5), on a real model server over loopback:
``deploy(NAME@candidate, canary=10)`` / ``%aiaas deploy ... --canary 10``, ``--promote``, ``--rollback``;
the share holds over 2,000 requests, each version has its own metrics, requests in flight never fail
while the split changes, and a restarted server keeps the split."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from IPython.core.error import UsageError
from prometheus_client.parser import text_string_to_metric_families

from aiaas_jupyter.errors import EndpointError, EndpointNotFoundError
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state
from aiaas_jupyter.serving_service import ServingService
from support import serving_models as sm

TENSOR = {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("canary-home")
    reg = Registry(home)
    for seed in (0, 1, 2):
        sm.register(reg, "iris", sm.train_iris(seed=seed))
    reg.set_alias("iris", 2, "candidate")
    sm.register(reg, "other", sm.train_iris(seed=3))  # registered, never deployed
    try:
        yield home
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


@pytest.fixture(scope="module")
def service(home):
    service = ServingService(Registry(home))
    service.deploy("iris:1")
    return service


def _http(home) -> httpx.Client:
    info = state.find_server(home)
    return httpx.Client(base_url=info.url, headers=info.headers(), timeout=30)


def _versions(http, n: int) -> Counter:
    seen = Counter()
    for _ in range(n):
        r = http.post("/v2/models/iris/infer", json={"inputs": [TENSOR]})
        assert r.status_code == 200, r.text
        seen[r.json()["model_version"]] += 1
    return seen


def test_a_canary_takes_its_share_and_has_its_own_metrics(home, service):
    dep = service.deploy("iris@candidate", canary=10)
    assert dep.version == 1 and dep.canary["version"] == 2 and dep.canary["percent"] == 10
    assert "+ canary v2 10%" in repr(dep)
    with _http(home) as http:
        seen = _versions(http, 2000)
        assert abs(seen["2"] / 2000 - 0.10) <= 0.03 and seen["1"] + seen["2"] == 2000, seen
        assert seen["2"] == 200  # the split counts requests: exactly one in ten
        # a version can be asked for by number, whatever the split
        assert {http.post("/v2/models/iris/versions/2/infer", json={"inputs": [TENSOR]}).json()["model_version"]
                for _ in range(5)} == {"2"}
        meta = http.get("/v2/models/iris").json()
        assert meta["versions"] == ["1", "2"]
        # metadata and readiness describe the deployed version and take no turn of the split
        assert {http.get("/v2/models/iris").json()["parameters"]["ref"] for _ in range(20)} == {"iris:1"}
        assert all(http.get("/v2/models/iris/ready").status_code == 200 for _ in range(9))
        assert _versions(http, 10) == Counter({"1": 9, "2": 1})  # still exactly one in ten, in step
        wrong = http.post("/v2/models/iris/versions/3/infer", json={"inputs": [TENSOR]})
        assert wrong.status_code == 404 and "version 1 (canary: version 2), not 3" in wrong.json()["error"]
        samples = {(s.name, s.labels.get("version"), s.labels.get("route"), s.labels.get("code")): s.value
                   for f in text_string_to_metric_families(http.get("/metrics").text) for s in f.samples
                   if s.labels.get("model") == "iris"}
    assert samples[("aiaas_requests_total", "2", "infer", "200")] == 206
    assert samples[("aiaas_requests_total", "1", "infer", "200")] == 1809
    rows = {(r[0], r[1]): r for r in service.endpoints().rows}
    assert rows[("iris", "deployment 90%")][4] == "iris:1 (v1)"
    assert rows[("iris", "canary 10%")][4] == "iris@candidate (v2)"
    assert float(rows[("iris", "canary 10%")][-2]) > 0


def test_requests_in_flight_never_fail_while_the_split_changes(home, service):
    """Clients keep calling while the canary is rolled back, started again and promoted."""
    stop, codes, lock = threading.Event(), Counter(), threading.Lock()

    def client():
        with _http(home) as http:
            while not stop.is_set():
                r = http.post("/predict/iris", json=[{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
                                                      "petal length (cm)": 1.4, "petal width (cm)": 0.2}])
                with lock:
                    codes[r.status_code] += 1

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        assert service.deploy("iris", rollback=True).canary is None
        service.deploy("iris:3", canary=50)
        service.deploy("iris:2", canary=25)  # a new canary replaces the one there
        promoted = service.deploy("iris", promote=True)
        assert promoted.version == 2 and promoted.canary is None
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert set(codes) == {200} and sum(codes.values()) > 50, codes
    with _http(home) as http:
        assert set(_versions(http, 50)) == {"2"}


def test_a_restarted_server_keeps_the_split(home, service):
    service.deploy("iris:3", canary=20)
    state.stop_server(home)
    info = state.ensure_server(home)
    with httpx.Client(base_url=info.url, headers=info.headers(), timeout=30) as http:
        listed = {d["name"]: d for d in http.get("/admin/deployments").json()["deployments"]}
        assert listed["iris"]["version"] == 2 and listed["iris"]["canary"]["version"] == 3
        assert listed["iris"]["canary"]["percent"] == 20
        assert _versions(http, 100)["3"] == 20
    service.deploy("iris", rollback=True)


def _deployed_series(home) -> set:
    with _http(home) as http:
        return {(s.labels["version"], s.labels["ref"]) for f in text_string_to_metric_families(http.get("/metrics").text)
                for s in f.samples if s.name == "aiaas_deployment_info" and s.labels["model"] == "iris"}


def test_the_deployment_series_follow_a_split_that_reuses_a_version(home, service):
    """A canary replaced by the same version, then that version deployed as the primary: the
    series of the version that stays are never removed by the one that leaves."""
    service.deploy("iris:3", canary=20)
    service.deploy("iris:3", canary=30)
    assert _deployed_series(home) == {("2", "iris:2"), ("3", "iris:3")}
    service.deploy("iris:3")
    assert _deployed_series(home) == {("3", "iris:3")}
    service.deploy("iris:2")


def test_what_cannot_be_split_is_one_line(home, service, shell):
    with pytest.raises(EndpointNotFoundError, match="no deployment named 'other' to split traffic with"):
        service.deploy("other:1", canary=10)
    with pytest.raises(EndpointError, match="'iris' has no canary to promote"):
        service.deploy("iris", promote=True)
    with pytest.raises(EndpointError, match="version 2 is already the primary"):
        service.deploy("iris:2", canary=10)
    with pytest.raises(Exception, match="choose one of"):
        service.deploy("iris:3", canary=10, promote=True)
    for line, message in (("deploy iris:3 --promote", "name the deployment only"),
                          ("deploy iris:3 --canary 0", "expected a percent between 0 and 100"),
                          ("deploy iris --promote --rollback", "not allowed with argument")):
        with pytest.raises(UsageError, match=message):
            shell.run_line_magic("aiaas", line)
