"""The Jupyter server extension, for real: a jupyter_server started by pytest-jupyter with the
extension enabled, a registry home holding models trained by the project's trainers, and the
real model server for deploy / undeploy. Requests go through ``jp_fetch`` (token header).

The auth set runs three ways: the server's defaults, ``ServerApp.allow_unauthenticated_access
= False`` in config, and ``JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS=false`` in the environment.
"""

from __future__ import annotations

import json
import time

import pytest
from tornado.httpclient import HTTPClientError

from support import serving_models as sm
from aiaas_jupyter.registry import JobRecord, Registry, SweepRecord, TrialRecord
from aiaas_jupyter.server.manager import SidebarManager
from aiaas_jupyter.serving import state

pytest_plugins = ["pytest_jupyter.jupyter_server"]

API = ("aiaas", "api")
SECRET = "sk-test-do-not-leak-4242"
DEAD = "tcp://127.0.0.1:9"  # discard port: nothing listens


@pytest.fixture(scope="module")
def iris_result():
    return sm.train_iris()


@pytest.fixture(scope="module")
def module_home(tmp_path_factory, iris_result):
    """Two models (iris: 2 versions + @prod), one finished job, one remote endpoint."""
    home = tmp_path_factory.mktemp("ext-home")
    reg = Registry(home)
    sm.register(reg, "iris", iris_result)
    sm.register(reg, "iris", iris_result)
    reg.set_alias("iris", 1, "prod")
    sm.register(reg, "other", iris_result)
    reg.record_job(JobRecord(id="job1", model="iris", status="finished", progress=1.0, worker="w-0",
                             gpus=0, scheduler=DEAD, key="aiaas-train-job1", version=2, duration_s=1.5))
    reg.add_endpoint("remote", "http://127.0.0.1:9/v1", "openai", api_key_env="EXT_TEST_API_KEY")
    _record_sweeps(reg)
    return home


def _record_sweeps(reg: Registry) -> None:
    """An older finished sweep (registered iris:2) and a newer running one with a diverged trial."""
    reg.record_sweep(SweepRecord(id="sw-old", model="iris", status="finished", metric="accuracy", n_trials=2,
                                 submitted="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:01:00+00:00",
                                 best_trial=1, best_value=0.97, version=2, counts={"finished": 2}))
    reg.record_sweep(SweepRecord(id="sw-new", model="iris", status="running", metric="val_loss", direction="min",
                                 search="tpe", early_stop="asha", n_trials=4, submitted="2026-01-02T00:00:00+00:00"))
    reg.record_trial(TrialRecord("sw-new", 0, "pruned", value=float("nan")),
                     sweep_fields={"counts": {"pruned": 1, "running": 1}, "best_value": float("inf")})
    reg.record_trial(TrialRecord("sw-new", 1, "running"))


@pytest.fixture
def home(request, monkeypatch):
    """The registry home the server sees (via AIAAS_HOME): ``deploy_home``, ``big_home`` or
    ``empty_home`` when the test asks for one, else ``module_home``."""
    which = next((f for f in ("deploy_home", "big_home", "empty_home") if f in request.fixturenames),
                 "module_home")
    path = request.getfixturevalue(which)
    monkeypatch.setenv("AIAAS_HOME", str(path))
    monkeypatch.setenv("EXT_TEST_API_KEY", SECRET)
    return path


@pytest.fixture
def jp_server_config(request, home, monkeypatch):
    """The extension enabled; ``strict``: unauthenticated access off in config, ``env``: via env."""
    mode = getattr(request, "param", "default")
    server = {"jpserver_extensions": {"aiaas_jupyter": True}}
    if mode == "strict":
        server["allow_unauthenticated_access"] = False
    elif mode == "env":
        monkeypatch.setenv("JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS", "false")
    return {"ServerApp": server}


async def get(jp_fetch, *path, **kwargs):
    response = await jp_fetch(*API, *path, **kwargs)
    assert response.code == 200
    return json.loads(response.body)


async def status_of(jp_fetch, *path, **kwargs) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*API, *path, **kwargs)
    body = info.value.response.body if info.value.response is not None else b""
    try:
        return info.value.code, json.loads(body) if body else {}
    except ValueError:
        return info.value.code, {}


# ---- GET with the token ------------------------------------------------------------------

async def test_models(jp_fetch, jp_serverapp, home):
    assert jp_serverapp.extension_manager.extensions["aiaas_jupyter"].enabled
    models = (await get(jp_fetch, "models"))["models"]
    assert [m["name"] for m in models] == ["iris", "other"]
    iris = models[0]
    assert iris["versions"] == [1, 2] and iris["latest"] == 2
    assert iris["aliases"] == {"prod": 1}
    assert iris["framework"] == "sklearn"
    assert iris["metric"]["name"] == "accuracy" and 0.8 <= iris["metric"]["value"] <= 1.0
    assert iris["created"] and iris["deployed"] is False and iris["endpoint"] is None


async def test_models_registry_status(jp_fetch, home):
    body = await get(jp_fetch, "models")
    assert body["registry"] == {"home": str(home), "exists": True}


@pytest.fixture
def empty_home(tmp_path):
    """A home no kernel has written to yet: not even its directory exists."""
    return tmp_path / "never-written"


async def test_models_without_registry(empty_home, jp_fetch):
    """The sidebar's empty state: no registry yet, which the answer says, and asking creates none."""
    body = await get(jp_fetch, "models")
    assert body == {"models": [], "registry": {"home": str(empty_home), "exists": False}}
    assert (await get(jp_fetch, "jobs")) == {"jobs": []}
    assert (await get(jp_fetch, "sweeps")) == {"sweeps": []}
    assert not empty_home.exists()


async def test_model_detail(jp_fetch, home):
    detail = await get(jp_fetch, "models", "iris")
    assert detail["name"] == "iris" and detail["deployed"] is False
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    v1 = detail["versions"][1]
    assert v1["aliases"] == ["prod"] and v1["params"]["n_estimators"] == 20
    assert "accuracy" in v1["metrics"] and v1["created"] and "job_id" in v1


async def test_jobs(jp_fetch, home):
    jobs = (await get(jp_fetch, "jobs"))["jobs"]
    assert len(jobs) == 1
    job = jobs[0]
    assert {k: job[k] for k in ("id", "model", "status", "progress", "worker", "gpus", "version", "duration_s")} \
        == {"id": "job1", "model": "iris", "status": "finished", "progress": 1.0, "worker": "w-0", "gpus": 0,
            "version": 2, "duration_s": 1.5}
    assert job["submitted"] and "started" in job and "finished" in job


async def test_sweeps(jp_fetch, home):
    """Newest first, progress = ended trials / planned, and strict JSON (a NaN/inf best is null)."""
    response = await jp_fetch(*API, "sweeps")
    body = json.loads(response.body, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert [s["id"] for s in body["sweeps"]] == ["sw-new", "sw-old"]
    new, old = body["sweeps"]
    assert new == {"id": "sw-new", "model": "iris", "status": "running", "progress": 0.25,
                   "counts": {"pruned": 1, "running": 1}, "n_trials": 4, "metric": "val_loss", "direction": "min",
                   "best_value": None, "best_trial": None, "version": None,
                   "submitted": "2026-01-02T00:00:00+00:00", "finished": None}
    assert (old["status"], old["progress"], old["best_value"], old["best_trial"], old["version"]) \
        == ("finished", 1.0, 0.97, 1, 2)


def test_sweeps_progress_is_ended_trials_over_planned(tmp_path):
    reg = Registry(tmp_path)
    reg.record_sweep(SweepRecord(id="none-planned", model="m", n_trials=0))
    reg.record_sweep(SweepRecord(id="mixed", model="m", n_trials=5, submitted="2099-01-01T00:00:00+00:00",
                                 counts={"finished": 1, "pruned": 1, "error": 1, "cancelled": 1, "running": 1}))
    sweeps = SidebarManager(tmp_path).sweeps()["sweeps"]
    assert [(s["id"], s["progress"]) for s in sweeps] == [("mixed", 0.8), ("none-planned", 0.0)]
    assert [s["id"] for s in SidebarManager(tmp_path).sweeps(limit=1)["sweeps"]] == ["mixed"]


async def test_endpoints_never_show_keys(jp_fetch, home):
    response = await jp_fetch(*API, "endpoints")
    assert SECRET not in response.body.decode()
    body = json.loads(response.body)
    assert body["server"] == {"running": False, "url": None} and body["deployments"] == []
    (ep,) = body["endpoints"]
    assert ep["name"] == "remote" and ep["protocol"] == "openai" and ep["api_key_env"] == "EXT_TEST_API_KEY"
    assert ep["api_key_set"] is True and ep["health"].startswith("down")


async def test_cluster_is_not_taken_from_the_jobs_table(jp_fetch, home):
    """The job's scheduler address is never used (no Dask connection from the server): without
    a kernel's snapshot there is no cluster to show."""
    assert await get(jp_fetch, "cluster") == {"scheduler": None}


def test_cluster_none(tmp_path, monkeypatch):
    monkeypatch.setenv("AIAAS_HOME", str(tmp_path / "empty"))
    assert SidebarManager().cluster() == {"scheduler": None}
    assert not (tmp_path / "empty").exists()  # looking creates nothing


def test_cluster_from_the_kernels_snapshot(tmp_path):
    from distributed import Client, LocalCluster

    from aiaas_jupyter import cluster_snapshot
    from aiaas_jupyter.cluster import summarize

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        cluster_snapshot.record(tmp_path, summarize(client))  # what the kernel does on connect / status
    summary = SidebarManager(tmp_path).cluster()
    assert summary["scheduler"] == cluster.scheduler_address and summary["reachable"] is True
    assert summary["n_workers"] == 1 and summary["threads"] == 1 and summary["gpus"] == 0
    assert summary["stale"] is False and summary["recorded_at"]


# ---- errors ------------------------------------------------------------------------------

async def test_unknown_model_404(jp_fetch, home):
    code, body = await status_of(jp_fetch, "models", "nope")
    assert code == 404 and "nope" in body["message"]
    code, body = await status_of(jp_fetch, "models", "irsi")
    assert code == 404 and "iris" in body["hint"]  # did you mean
    code, body = await status_of(jp_fetch, "models", "nope", "deploy", method="POST", body="")
    assert code == 404 and "nope" in body["message"]
    code, body = await status_of(jp_fetch, "models", "nope", "undeploy", method="POST", body="")
    assert code == 404 and "nope" in body["message"]


async def test_bad_requests_400(jp_fetch, home):
    code, body = await status_of(jp_fetch, "models", "iris", "deploy", method="POST", body="{not json")
    assert code == 400 and "JSON" in body["message"]
    code, _ = await status_of(jp_fetch, "models", "iris", "deploy", method="POST", body="[1]")
    assert code == 400
    code, _ = await status_of(jp_fetch, "models", "iris", "deploy", method="POST", body='{"ref": "other@prod"}')
    assert code == 400
    code, _ = await status_of(jp_fetch, "models", "bad..name")
    assert code == 400
    code, body = await status_of(jp_fetch, "models", "iris", "deploy", method="POST", body='{"ref": "iris@nope"}')
    assert code == 404 and "nope" in body["message"]
    assert state.find_server(home) is None  # nothing was started for requests that failed


# ---- auth, three ways ----------------------------------------------------------------------

AUTH_MODES = pytest.mark.parametrize("jp_server_config", ["default", "strict", "env"], indirect=True)
GETS = [("models",), ("models", "iris"), ("endpoints",), ("jobs",), ("sweeps",), ("cluster",)]
POSTS = [("models", "iris", "deploy"), ("models", "iris", "undeploy")]


@AUTH_MODES
async def test_auth(jp_fetch, jp_serverapp, home, request):
    if request.node.callspec.params["jp_server_config"] != "default":
        assert jp_serverapp.allow_unauthenticated_access is False
    for path in GETS:
        assert (await jp_fetch(*API, *path)).code == 200
        code, _ = await status_of(jp_fetch, *path, headers={"Authorization": ""})
        assert code == 403, path
        code, _ = await status_of(jp_fetch, *path, headers={"Authorization": "token wrong"})
        assert code == 403, path
    for path in POSTS:  # neither token nor XSRF cookie/header
        code, _ = await status_of(jp_fetch, *path, method="POST", body="", headers={"Authorization": ""})
        assert code == 403, path
    assert state.find_server(home) is None


# ---- deploy / undeploy against the real model server ----------------------------------------

@pytest.fixture
def deploy_home(tmp_path, iris_result):
    home = tmp_path / "deploy-home"
    reg = Registry(home)
    sm.register(reg, "iris", iris_result)
    sm.register(reg, "iris", iris_result)
    reg.set_alias("iris", 1, "prod")
    yield home
    state.stop_server(home)
    assert state.find_server(home) is None


async def test_deploy_undeploy(deploy_home, jp_fetch):
    response = await jp_fetch(*API, "models", "iris", "deploy", method="POST",
                              body=json.dumps({"ref": "iris@prod"}), request_timeout=120)
    dep = json.loads(response.body)
    assert response.code == 200 and dep["name"] == "iris" and dep["version"] == 1 and dep["ref"] == "iris@prod"
    assert dep["url"].endswith("/v2/models/iris") and "token" not in dep
    assert dep["predict_url"] == dep["url"].replace("/v2/models/", "/predict/")
    info = state.find_server(deploy_home)
    assert info is not None and info.token not in response.body.decode()

    iris = (await get(jp_fetch, "models"))["models"][0]
    assert iris["deployed"] is True and iris["endpoint"] == dep["url"] and iris["deployed_version"] == 1
    endpoints = await jp_fetch(*API, "endpoints")
    assert info.token not in endpoints.body.decode()
    (d,) = json.loads(endpoints.body)["deployments"]
    assert d["name"] == "iris" and d["health"] == "ready" and d["version"] == 1
    assert d["predict_url"] == dep["predict_url"]

    # re-deploy the latest (no body) swaps the version
    dep = json.loads((await jp_fetch(*API, "models", "iris", "deploy", method="POST", body="",
                                     request_timeout=120)).body)
    assert dep["version"] == 2

    response = await jp_fetch(*API, "models", "iris", "undeploy", method="POST", body="")
    assert json.loads(response.body) == {"name": "iris", "undeployed": True}
    assert (await get(jp_fetch, "models"))["models"][0]["deployed"] is False
    code, _ = await status_of(jp_fetch, "models", "iris", "undeploy", method="POST", body="")
    assert code == 404


# ---- 1,000 models ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_home(tmp_path_factory, iris_result):
    home = tmp_path_factory.mktemp("big-home")
    reg = Registry(home)
    for i in range(1000):
        sm.register(reg, f"m{i:04d}", iris_result)
    return home


def test_list_1000_models_fast(big_home):
    manager = SidebarManager(big_home)
    models = manager.list_models()
    assert len(models) == 1000 and models[0]["versions"] == [1]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        manager.list_models()
        best = min(best, time.perf_counter() - t0)
    assert best < 0.050, f"{best * 1000:.1f} ms"


async def test_list_1000_models_http(big_home, jp_fetch):
    """The issue's bound: GET models over HTTP (auth, handler, thread hop, JSON) < 50 ms."""
    await jp_fetch(*API, "models")  # warm up
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        response = await jp_fetch(*API, "models")
        times.append(time.perf_counter() - t0)
    assert len(json.loads(response.body)["models"]) == 1000
    median = sorted(times)[len(times) // 2]
    print(f"GET models, 1,000 models: median {median * 1000:.1f} ms, best {min(times) * 1000:.1f} ms")
    assert median < 0.050, f"median {median * 1000:.1f} ms"
