"""The README's "Outgrowing one machine" recipes, exercised: the plain `dask scheduler` + `dask
worker` one runs as the tests' CLI cluster (tests/support/cli_cluster.py starts it as written there),
the dask-gateway one in tests/test_gateway.py. Here: what the plain recipe's scheduler setting is for."""

from __future__ import annotations

import time

import numpy as np


def test_the_plain_recipes_scheduler_keeps_every_workers_copy_of_a_broadcast(cli_cluster, tmp_path):
    from aiaas_jupyter.client import AiaasClient

    kernel = AiaasClient(home=tmp_path / "home")
    kernel.connect(cli_cluster["address"])
    try:
        dask = kernel.dask
        future = dask.scatter(np.arange(10_000), broadcast=True, hash=False)
        assert len(dask.who_has([future])[future.key]) == 2
        dask.amm.run_once()  # with Dask's default policies this drops a copy: nothing waits on it
        time.sleep(0.5)
        assert len(dask.who_has([future])[future.key]) == 2
        del future
    finally:
        kernel.disconnect()
