"""The model server is its own process: a kernel that deploys and then dies leaves it serving,
and the next kernel finds it (and its deployments) through the registry home."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from aiaas_jupyter.client import AiaasClient
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state
from support.serving_models import register, train_iris

KERNEL = textwrap.dedent("""
    import os, sys
    from aiaas_jupyter.client import AiaasClient
    deployment = AiaasClient(home=sys.argv[1]).deploy("iris")
    print(deployment.url, deployment.version, flush=True)
    os._exit(0)  # the kernel dies without stopping anything
""")


def test_server_outlives_the_kernel_that_started_it(tmp_path):
    home = tmp_path / "home"
    register(Registry(home), "iris", train_iris())
    try:
        out = subprocess.run([sys.executable, "-c", KERNEL, str(home)], capture_output=True, text=True,
                             timeout=180, env={**os.environ, "AIAAS_HOME": str(home)})
        assert out.returncode == 0, out.stderr[-2000:]
        url, version = out.stdout.split()
        info = state.find_server(home)  # a "new kernel": nothing in memory, only the home
        assert info is not None and url == f"{info.url}/v2/models/iris" and version == "1"
        assert info.pid != os.getpid()
        fresh = AiaasClient(home=home)
        rows = {r["name"]: r for r in fresh.endpoints().records()}
        assert "iris" in rows and "ready" in str(rows["iris"]["health"]).lower()
        from sklearn.datasets import load_iris

        X = load_iris(as_frame=True).frame.drop(columns="target").head(5)
        got = fresh.predict("iris", X)
        expected = fresh.load_model("iris").predict(X)
        np.testing.assert_array_equal(np.asarray(got), expected)
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None
