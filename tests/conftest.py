"""Real parts for the tests: a LocalCluster of processes, a CLI-started scheduler + workers,
an IPython shell with the extension loaded, and a throwaway registry home."""

from __future__ import annotations

import pytest

from support.cli_cluster import start_cli_cluster
# the session-end leak check: no process of this run alive, no temporary file left (issue 9)
from support.leakcheck import pytest_configure, pytest_sessionfinish  # noqa: F401


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    # Not exported as AIAAS_HOME: the notebooks, run in the same session, have their own.
    return tmp_path_factory.mktemp("aiaas-home")


@pytest.fixture(scope="session")
def aiaas(session_home):
    """The façade connected to a real embedded LocalCluster (2 worker processes)."""
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=session_home)
    client.connect(n_workers=2, threads_per_worker=1, gpus=0)
    yield client
    client.disconnect()


@pytest.fixture(scope="session")
def shell(aiaas):
    """A real IPython InteractiveShell with %load_ext aiaas_jupyter, bound to the test façade."""
    from IPython.core.interactiveshell import InteractiveShell

    from aiaas_jupyter.magics import AiaasMagics

    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "aiaas_jupyter")
    sh.register_magics(AiaasMagics(sh, client=aiaas))
    return sh


@pytest.fixture(scope="session")
def cli_cluster(tmp_path_factory):
    """`dask scheduler` + two `dask worker --resources GPU=1` processes on loopback."""
    with start_cli_cluster(tmp_path_factory.mktemp("cli-cluster")) as info:
        yield info


@pytest.fixture
def iris_frame():
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from a second intra-op thread; on a busy 2-core runner it
    only adds OpenMP contention (seen: a 0.6 s test taking 20 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
