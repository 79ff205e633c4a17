"""Workers on other hosts, no shared filesystem (issue 16 point 2), for real: ``dask scheduler`` and
two ``dask worker`` processes, each in a network namespace of its own (its own address on a bridge
the test creates) and a mount namespace in which this run's temporary root — the kernel's registry
home, every ``tmp_path``, the data files the tests write — is an empty tmpfs
(:mod:`support.netns_cluster`). The kernel is this test process, on the bridge.

On it everything a user does works, because data, models and checkpoints travel through Dask or
through the configured fsspec location (``storage``: a directory every node sees, as an NFS mount or
a bucket would be), never through the kernel's disk; what would need the kernel's disk is refused
with one line before anything runs."""

from __future__ import annotations

import os
import signal
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from dask import config as dask_config

from aiaas_jupyter.errors import AiaasStorageWarning, DataError
from support import netns_cluster

WHY_NOT = netns_cluster.available()
needs_namespaces = pytest.mark.skipif(bool(WHY_NOT), reason=f"{WHY_NOT} (CI runs these)")


def test_ci_runs_these():
    """Outside CI a developer without root skips the rest; in CI their absence is a failure."""
    assert not (WHY_NOT and os.environ.get("CI")), f"CI must run the no-shared-filesystem tests: {WHY_NOT}"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    with netns_cluster.start_netns_cluster(tmp_path_factory.mktemp("netns-logs")) as info:
        yield info


@pytest.fixture
def kernel(hosts, tmp_path):
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=tmp_path / "home")
    client.connect(hosts["address"])
    client.dask.wait_for_workers(len(hosts["workers"]), timeout=60)  # one a test killed is back
    with dask_config.set({"aiaas.jobs.event-delay": 0}):
        yield client
    client.disconnect()


def _frame(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    df["label"] = (X[:, 0] + X[:, 1] > 0).astype(int)
    return df


@needs_namespaces
def test_the_workers_are_other_hosts_that_cannot_see_the_kernels_files(hosts, kernel, tmp_path):
    mine = tmp_path / "kernel-only.csv"
    _frame().to_csv(mine, index=False)
    seen = kernel.dask.run(lambda paths: [os.path.exists(p) for p in paths],
                           [str(mine), str(kernel.registry.home), str(hosts["storage"])])
    assert {a.split("//")[1].rsplit(":", 1)[0] for a in seen} == set(hosts["workers"].values())
    assert all(v == [False, False, True] for v in seen.values())  # not the kernel's files; the storage yes
    summary = kernel.cluster_summary()
    assert {w["name"] for w in summary["workers"]} == set(hosts["workers"])


@needs_namespaces
def test_preprocess_an_in_kernel_frame_and_files_the_workers_reach(hosts, kernel, tmp_path):
    ns = {"raw": _frame()}
    out = kernel.preprocess("raw", "clean", "df = df[df.f0 > 0]\ndf['f9'] = df.f1 * 2", namespace=ns)
    assert out.rows_in == 400 and out.rows_out == int((ns["raw"].f0 > 0).sum())
    assert np.allclose(ns["clean"].compute().f9.to_numpy(), (ns["raw"][ns["raw"].f0 > 0].f1 * 2).to_numpy())

    shared = hosts["storage"] / "data"
    shared.mkdir()
    for i in range(2):
        _frame(seed=i).to_csv(shared / f"part{i}.csv", index=False)
    out = kernel.preprocess(str(shared / "*.csv"), "both", "df = df.assign(s=df.f0 + df.f1)", namespace=ns)
    assert out.rows_in == 800 and out.rows_out == 800
    saved = hosts["storage"] / "out" / "both.parquet"
    out = kernel.preprocess("raw", "again", "df = df", namespace=ns, save=str(saved))
    assert len(pd.read_parquet(saved)) == 400  # written by the workers, read here: the same storage


@needs_namespaces
def test_what_only_the_kernel_can_see_is_refused_in_one_line_before_anything_runs(hosts, kernel, tmp_path):
    mine = tmp_path / "kernel-only.csv"
    _frame().to_csv(mine, index=False)
    with pytest.raises(DataError) as err:
        kernel.preprocess(str(mine), "x", "df = df", namespace={})
    assert str(err.value) == (
        f"worker(s) host-0, host-1 cannot read {mine} (of {str(mine)!r}): it is on the kernel's disk only "
        "(hint: the workers do not share this machine's disk: use a location every worker reaches (a shared "
        "mount, or a URL such as s3://BUCKET/... with fsspec); or read it here and pass the frame (--input VAR))")
    target = tmp_path / "new" / "kernel-side.parquet"
    with pytest.raises(DataError, match=rf"^cannot save to {tmp_path / 'new'}: worker\(s\) host-0, host-1 do not "
                                        r"see this machine's .*, so each would write its part on its own disk; "
                                        r"nothing was saved \(hint: the workers do not share"):
        kernel.preprocess("raw", "x", "df = df", namespace={"raw": _frame()}, save=str(target))
    assert not (tmp_path / "new").exists()  # nothing left behind, not even the folder


@needs_namespaces
def test_a_url_every_node_reaches(hosts, kernel, tmp_path):
    """Files served over HTTP from the kernel's side of the bridge: the workers fetch them through
    fsspec (they cannot see the folder they are served from)."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    _frame(seed=3).to_csv(served / "data.csv", index=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    with http.server.ThreadingHTTPServer((hosts["gateway"], 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://{hosts['gateway']}:{server.server_address[1]}/data.csv"
            ns = {}
            out = kernel.preprocess(url, "web", "df = df[df.label == 1]", namespace=ns)
            expected = _frame(seed=3)
            assert out.rows_in == 400 and out.rows_out == int(expected.label.sum())
            assert np.allclose(ns["web"].compute().f0.to_numpy(), expected[expected.label == 1].f0.to_numpy(), atol=1e-6)
        finally:
            server.shutdown()


@needs_namespaces
def test_train_scikit_learn_and_torch_and_score_on_the_workers(hosts, kernel, tmp_path):
    import torch
    from sklearn.ensemble import RandomForestClassifier

    df = _frame()
    X = df.drop(columns="label")
    job = kernel.train(RandomForestClassifier(n_estimators=20, random_state=0), df, "label", name="far-rf", block=True)
    assert job.status == "finished" and job.record.worker.split("//")[1].rsplit(":", 1)[0] in hosts["workers"].values()
    model = kernel.load_model("far-rf")  # the artifact came back through Dask into this registry
    assert kernel.registry.versions("far-rf")[0].metrics["accuracy"] >= 0.85
    scored = kernel.predict("far-rf", X, on_cluster=True, progress=False).compute()
    assert (scored["prediction"].to_numpy() == model.predict(X)).all()

    saved = hosts["storage"] / "scores"
    again = kernel.predict("far-rf", X, on_cluster=True, save=str(saved), progress=False)
    assert sorted(again.compute()["prediction"].to_numpy()) == sorted(model.predict(X))
    mine = tmp_path / "kernel-only.csv"
    df.to_csv(mine, index=False)
    with pytest.raises(DataError, match=r"^worker\(s\) host-0, host-1 cannot read"):
        kernel.predict("far-rf", str(mine), on_cluster=True, progress=False)
    with pytest.raises(DataError, match=r"^cannot save to .*: worker\(s\) host-0, host-1 do not see"):
        kernel.predict("far-rf", X, on_cluster=True, save=str(tmp_path / "scores"), progress=False)
    assert not (tmp_path / "scores").exists()

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    job = kernel.train(net, df, "label", name="far-mlp", epochs=5, batch_size=32, seed=0, block=True)
    assert job.status == "finished" and kernel.registry.versions("far-mlp")[0].metrics["accuracy"] >= 0.7
    scored = kernel.predict("far-mlp", X, on_cluster=True, progress=False).compute()
    assert len(scored) == 400


@needs_namespaces
def test_a_sweep_runs_on_the_hosts_and_registers_its_best(hosts, kernel):
    from sklearn.linear_model import LogisticRegression

    sweep = kernel.sweep(LogisticRegression(max_iter=200), _frame(), "label", space={"C": [0.01, 0.1, 1.0]},
                         name="far-sweep", metric="accuracy", block=True)
    assert sweep.status == "finished" and len(sweep.trials) == 3
    assert kernel.registry.versions("far-sweep")[0].version == 1


@needs_namespaces
def test_a_torch_job_resumes_from_checkpoints_in_the_configured_location_after_its_host_dies(hosts, kernel):
    """Checkpoints go to ``aiaas.checkpoints.url`` (here the storage every node sees), so the job
    resumes on the other host; the kernel's disk is never involved."""
    import torch

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 16)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(y=(X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int))
    kernel.dask.run(lambda: __import__("torch") and None)  # warm: the retry does not wait on an import
    ckpt = hosts["storage"] / "checkpoints"
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    with dask_config.set({"aiaas.checkpoints.url": f"file://{ckpt}"}), warnings.catch_warnings():
        warnings.simplefilter("error", AiaasStorageWarning)  # every node sees it: no warning
        job = kernel.train(net, df, "y", name="far-survivor", epochs=10, batch_size=32, seed=1)
        deadline = time.time() + 120
        while _epoch(job) < 3 and time.time() < deadline:
            time.sleep(0.02)
        assert _epoch(job) >= 3, job.latest
        worker = job.record.worker
        assert any(ckpt.rglob("*")), "no checkpoint in the configured location"
        os.kill(kernel.dask.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
        mv = job.result(timeout=180)
    resumed = [e["epoch"] for e in job.events if e.get("stage") == "resumed"]
    # resumed, not restarted (which epoch exactly is tests/test_job_resume.py's business)
    assert job.status == "finished" and len(resumed) == 1 and resumed[0] >= 1, (job.status, resumed, job.events)
    assert mv.extra["attempt"] == 2 and mv.extra["worker"] != worker
    assert not any(p.is_file() for p in ckpt.rglob("*"))  # dropped once the job ended


def _epoch(job) -> int:
    return max((e.get("epoch") or 0 for e in job.events if e.get("stage") == "epoch"), default=0)


@needs_namespaces
def test_a_data_parallel_job_spans_both_hosts(hosts, kernel):
    """``workers=2``: one rank on each host, their gradients averaged over the bridge (gloo)."""
    import torch

    df = _frame(2000, seed=5)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    job = kernel.train(net, df, "label", name="far-ddp", epochs=4, batch_size=64, seed=0, workers=2, block=True)
    assert job.status == "finished", job.record.error
    mv = kernel.registry.versions("far-ddp")[0]
    ranks = {r["rank"]: r["worker"].split("//")[1].rsplit(":", 1)[0] for r in mv.extra["ranks"]}
    assert sorted(ranks.values()) == sorted(hosts["workers"].values())  # one rank on each host
    assert mv.extra["data_parallel"] == {"workers": 2, "backend": "gloo"} and mv.metrics["accuracy"] >= 0.7


@needs_namespaces
def test_checkpoints_on_each_workers_own_disk_are_warned_about(hosts, kernel, tmp_path):
    """A local checkpoint path that each host has for itself (here: under the run's temp root, a
    private tmpfs on every node) would let a job resume only where it started: one warning."""
    import torch

    where = tmp_path / "per-host-checkpoints"
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with dask_config.set({"aiaas.checkpoints.url": str(where)}):
        with pytest.warns(AiaasStorageWarning, match=rf"^checkpoints at {where} are on each worker's own disk "
                                                     r"\(worker\(s\) host-1 do not see what another writes there\)"):
            job = kernel.train(net, _frame(), "label", name="far-local-ckpt", epochs=2, batch_size=64, block=True)
    assert job.status == "finished"  # the job itself runs all the same


@needs_namespaces
def test_a_rank_that_cannot_reach_its_peers_fails_the_job_within_the_timeout(tmp_path_factory, tmp_path):
    """Each host told to use its loopback (the user's GLOO_SOCKET_IFNAME, which pin_interface keeps):
    every rank advertises 127.0.0.1 and cannot reach the other. gloo itself would try for 10 minutes;
    the job fails with one line within aiaas.jobs.data-parallel-timeout and both hosts are free within a minute."""
    import torch

    from aiaas_jupyter.client import AiaasClient
    from aiaas_jupyter.errors import JobError

    with netns_cluster.start_netns_cluster(tmp_path_factory.mktemp("netns-lo-logs"),
                                           env_extra={"GLOO_SOCKET_IFNAME": "lo", "AIAAS_PINNED_SOCKET_IFNAME": ""}) as lo_hosts:
        kernel = AiaasClient(home=tmp_path / "home")
        kernel.connect(lo_hosts["address"])
        try:
            net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            t0 = time.monotonic()
            with dask_config.set({"aiaas.jobs.data-parallel-timeout": 15}):
                job = kernel.train(net, _frame(), "label", name="far-unreachable", epochs=2, batch_size=64,
                                   workers=2)
                with pytest.raises(JobError, match=r"^rank \d of 2 lost its group: "):
                    job.result(timeout=120)
            assert "\n" not in str(job.record.error)
            # both hosts are free again soon: the rank still connecting was killed, not left for 10 min
            for worker in kernel.dask.scheduler_info(n_workers=-1)["workers"]:  # JOIN_FLOOR_S 60 s at most
                assert kernel.dask.submit(sum, [1, 2], workers=[worker], pure=False).result(timeout=120) == 3
            assert time.monotonic() - t0 < 150
            assert kernel.registry.list_models() == []  # a failed job registers nothing
        finally:
            kernel.disconnect()
