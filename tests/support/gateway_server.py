"""A real ``dask-gateway-server`` on loopback for the tests: the PyPI package, its local-process
backend (each cluster's scheduler and workers are ``dask`` processes it starts, in directories of
their own) and its simple password authenticator, with one cluster option (``worker_cores``)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PASSWORD = "gateway-test-password"

CONFIG = '''
from dask_gateway_server.options import Integer, Options

c.DaskGateway.address = "127.0.0.1:0"
c.Proxy.address = "127.0.0.1:0"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{dask!r}, "worker"]
c.ClusterConfig.worker_memory = "1 G"
c.ClusterConfig.idle_timeout = 600
# the backend starts schedulers and workers with an environment of its own: without this run's
# TMPDIR their Dask scratch root went to /tmp, outside what the leak check looks at
c.ClusterConfig.environment = {{"TMPDIR": {tmp!r}}}
c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=2, label="Cores per worker"),
    handler=lambda options: {{"worker_cores": options.worker_cores}},
)
'''


@contextlib.contextmanager
def start_gateway(d: Path):
    """Yield the gateway's URL (its proxy: HTTP API, dashboards and ``gateway://`` schedulers)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "clusters").mkdir(exist_ok=True)
    config = d / "gateway_config.py"
    config.write_text(CONFIG.format(password=PASSWORD, clusters=str(d / "clusters"), dask=str(BIN / "dask"),
                                    tmp=tempfile.gettempdir()))
    log = d / "gateway.log"
    proc = subprocess.Popen([str(BIN / "dask-gateway-server"), "-f", str(config)], cwd=d,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            text = log.read_text()
            match = re.search(r"HTTP routes listening at (http://127\.0\.0\.1:\d+)", text)
            if match and "Dask-Gateway server started" in text and _answers(match.group(1) + "/api/health"):
                break  # the proxy has its routes: until then it answers 404
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask-gateway-server did not start:\n{text[-3000:]}")
            time.sleep(0.1)
        yield match.group(1)
    finally:
        proc.terminate()  # stops the clusters it started, then itself
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
