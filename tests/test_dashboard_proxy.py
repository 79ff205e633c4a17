"""Dashboard links the browser can open (issue 16 point 3): through the kernel's Jupyter server and
its jupyter-server-proxy, when the scheduler's own address is not one the browser reaches.

The end-to-end test runs a real ``jupyter lab`` (with jupyter-server-proxy, a dependency, enabled by
its install) and a kernel-side client that belongs to it the way a kernel does (``JPY_PARENT_PID``):
its status link is a path on that server, which answers with the scheduler's own dashboard data
behind the server's login. The sidebar's end-to-end test follows the same link from a real kernel."""

from __future__ import annotations

import json
import os
import urllib.request

import dask
import httpx
import pytest
from distributed import LocalCluster

from aiaas_jupyter import dashboard_link
from aiaas_jupyter.cluster_snapshot import _link
from support.lab_harness import running_lab

DIRECT = "http://127.0.0.1:8787/status"


@pytest.fixture
def me(tmp_path):
    """This test process as a 'Jupyter server' with jupyter-server-proxy (its record in a runtime dir)."""
    runtime = tmp_path / "runtime"

    def record(base_url="/", proxy=True, hosts=("localhost", "127.0.0.1")):
        dashboard_link.record_server(runtime, pid=os.getpid(), base_url=base_url, proxy=proxy,
                                     proxy_hosts=None if hosts is None else list(hosts))
        return runtime, {"JPY_PARENT_PID": str(os.getpid())}
    return record


def test_a_loopback_dashboard_goes_through_the_kernels_server(me):
    runtime, env = me()
    assert dashboard_link.browser_link(DIRECT, environ=env, runtime_dir=runtime) == ("/proxy/127.0.0.1:8787/status", None)
    assert dashboard_link.browser_link("http://localhost:41234/status", environ=env, runtime_dir=runtime)[0] == \
        "/proxy/127.0.0.1:41234/status"
    runtime, env = me(base_url="/user/alice/")  # JupyterHub: the server's own prefix
    assert dashboard_link.browser_link(DIRECT, environ=env, runtime_dir=runtime)[0] == "/user/alice/proxy/127.0.0.1:8787/status"


def test_another_host_is_proxied_only_where_the_server_allows_it(me):
    runtime, env = me(hosts=["10.77.0.2"])
    assert dashboard_link.browser_link("http://10.77.0.2:8787/status", environ=env, runtime_dir=runtime) == \
        ("/proxy/10.77.0.2:8787/status", None)
    link, note = dashboard_link.browser_link("http://10.77.0.9:8787/status", environ=env, runtime_dir=runtime)
    assert link == "http://10.77.0.9:8787/status"
    assert note == ("the dashboard at 10.77.0.9 is not proxied: add '10.77.0.9' to "
                    "c.ServerProxy.host_allowlist in the Jupyter server's config")
    runtime, env = me(hosts=None)  # a function decides: trust it to
    assert dashboard_link.browser_link("http://10.77.0.9:8787/status", environ=env, runtime_dir=runtime)[0] == \
        "/proxy/10.77.0.9:8787/status"


@pytest.mark.parametrize("case", ["never", "no server", "not a kernel", "dead server", "no proxy",
                                  "user template", "https"])
def test_the_direct_link_stays_where_there_is_nothing_to_proxy_through(me, tmp_path, case):
    runtime, env = me(proxy=case != "no proxy")
    link, mode = DIRECT, "auto"
    if case == "never":
        mode = "never"
    elif case == "no server":
        runtime = tmp_path / "other-runtime"
    elif case == "not a kernel":
        env = {}
    elif case == "dead server":
        env = {"JPY_PARENT_PID": "4194304"}  # above any pid_max
    elif case == "https":
        link = "https://127.0.0.1:8787/status"
    with dask.config.set({"distributed.dashboard.link": "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"}
                         if case == "user template" else {}):
        assert dashboard_link.browser_link(link, mode, environ=env, runtime_dir=runtime) == (link, None)


@pytest.mark.parametrize("base_url", ["//evil.example/", "https://evil.example/", "/a b/", "", "/\\evil/"])
def test_a_server_record_that_would_leave_the_server_is_ignored(me, base_url):
    runtime, env = me(base_url=base_url)
    assert dashboard_link.browser_link(DIRECT, environ=env, runtime_dir=runtime) == (DIRECT, None)


def test_the_sidebar_takes_paths_on_its_server_but_no_other_origin():
    assert _link("/proxy/127.0.0.1:8787/status") == "/proxy/127.0.0.1:8787/status"
    assert _link("/user/alice/proxy/10.0.0.2:8787/status") == "/user/alice/proxy/10.0.0.2:8787/status"
    for bad in ["//evil.example/status", "/\\evil.example", "javascript:alert(1)", "/proxy/1 2", "/a\tb",
                "data:text/html,x"]:
        assert _link(bad) is None, bad


def test_a_bad_mode_is_one_line(aiaas):
    from aiaas_jupyter.errors import ClusterError

    with dask.config.set({"aiaas.cluster.dashboard-proxy": "sometimes"}):
        with pytest.raises(ClusterError, match="aiaas.cluster.dashboard-proxy must be auto or never, got 'sometimes'"):
            aiaas.cluster_summary()


def test_status_in_a_kernel_of_a_real_jupyter_server_links_through_its_proxy(tmp_path, monkeypatch):
    from aiaas_jupyter.client import AiaasClient

    home = tmp_path / "home"
    with running_lab(tmp_path / "lab", home=home) as lab, \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                         host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        runtime = tmp_path / "lab" / "runtime"  # the harness's JUPYTER_RUNTIME_DIR, as its kernels see it
        record = json.loads((runtime / f"aiaas-server-{lab.proc.pid}.json").read_text())
        assert record == {"pid": lab.proc.pid, "base_url": "/", "proxy": True,
                          "proxy_hosts": ["localhost", "127.0.0.1"]}
        monkeypatch.setenv("JPY_PARENT_PID", str(lab.proc.pid))  # as jupyter_client sets it for a kernel
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
        kernel = AiaasClient(home=home)
        kernel.connect(cluster.scheduler_address)
        try:
            summary = kernel.cluster_summary()
            port = cluster.scheduler.http_server.port
            assert summary["dashboard"] == f"/proxy/127.0.0.1:{port}/status"
            assert summary["dashboard_direct"] == f"http://127.0.0.1:{port}/status"
            assert f"dashboard: /proxy/127.0.0.1:{port}/status (through this Jupyter server's proxy" in \
                kernel.status().note
            # the browser's way: the Jupyter server answers the path with the scheduler's own data
            identity_path = summary["dashboard"].replace("/status", "/json/identity.json")
            identity = lab.api(identity_path.lstrip("/"))
            assert identity["type"] == "Scheduler" and identity["id"] == cluster.scheduler.id
            page = urllib.request.urlopen(urllib.request.Request(
                lab.url + summary["dashboard"].lstrip("/"), headers={"Authorization": f"token {lab.token}"}),
                timeout=30)
            assert page.status == 200 and b"bokeh" in page.read().lower()
            # ... and only behind its login
            anonymous = httpx.get(lab.url + identity_path.lstrip("/"), timeout=10)  # no redirects followed
            assert anonymous.status_code in (302, 401, 403) and "identity" not in anonymous.text
            if anonymous.status_code == 302:
                assert anonymous.headers["location"].startswith("/login?")
            # the sidebar reads what the kernel recorded: the same link
            assert lab.api("aiaas/api/cluster")["dashboard"] == summary["dashboard"]
        finally:
            kernel.disconnect()
