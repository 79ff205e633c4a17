"""aiaas_jupyter.map and %aiaas map on a real LocalCluster: notebook functions (defined in cells
of a real IPython shell, so cloudpickle ships them by value) over items, results in order."""

from __future__ import annotations

import builtins
import os
import re
import time

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from aiaas_jupyter.errors import AiaasError, DataError, JobCancelledError, MapError, ResourceError
from aiaas_jupyter.fanout import auto_chunksize
from aiaas_jupyter.map_job import MapJob


def _cell(shell, code: str) -> None:
    result = shell.run_cell(code)
    assert result.success, result.error_in_exec or result.error_before_exec


@pytest.fixture(scope="module")
def cells(shell):
    """Functions of notebook cells: a plain one, a closure, a lambda, a helper chain, a flaky one."""
    _cell(shell, "import os\n"
                 "def square_where(x):\n"
                 "    return x * x, os.getpid()\n"
                 "def make_adder(k):\n"
                 "    return lambda x: x + k\n"
                 "add7 = make_adder(7)\n"
                 "halve = lambda x: x / 2\n"
                 "def inverse(x):\n"
                 "    return 10 / x\n"
                 "def helper(x):\n"
                 "    return {'a': 1}[x]\n"
                 "def outer(x):\n"
                 "    return helper(x) + 1\n"
                 "calls = {}\n"
                 "def flaky(x):\n"
                 "    calls[x] = calls.get(x, 0) + 1\n"
                 "    if calls[x] < 3:\n"
                 "        raise RuntimeError(f'attempt {calls[x]} of item {x}')\n"
                 "    return x, calls[x]\n"
                 "def nap(x):\n"
                 "    import time\n"
                 "    time.sleep(0.3)\n"
                 "    return x\n")
    return shell.user_ns


def test_notebook_functions_run_on_the_workers_in_order(aiaas, cells):
    out = aiaas.map(cells["square_where"], [3, 1, 2, 5], progress=False)
    assert [v for v, _ in out] == [9, 1, 4, 25]
    assert os.getpid() not in {pid for _, pid in out}  # computed on worker processes
    assert aiaas.map(cells["add7"], range(5), progress=False) == [7, 8, 9, 10, 11]  # a closure
    assert aiaas.map(cells["halve"], [4, 9], progress=False) == [2.0, 4.5]          # a lambda
    assert aiaas.map(lambda s: s.upper(), ("a", "bc"), progress=False) == ["A", "BC"]


def test_several_iterables_zip_like_builtin_map(aiaas):
    assert aiaas.map(pow, [2, 3, 4], [5, 2], progress=False) == list(builtins.map(pow, [2, 3, 4], [5, 2]))
    assert aiaas.map(abs, [], progress=False) == []


def test_text_progress_outside_a_kernel(aiaas, cells, capsys):
    aiaas.map(cells["inverse"], [1, 2, 5])
    err = capsys.readouterr().err
    assert "<MapJob inverse: finished, 3/3 items, 3 tasks" in err and err.count("\n") == 1


def test_small_items_are_chunked_and_beat_one_task_per_item(aiaas, cells):
    """2000 tiny items: auto-chunked into 200 tasks; raw ``client.map`` makes 2000 on the same cluster."""
    n = 2000
    assert auto_chunksize(n, 2) == 10 and auto_chunksize(150, 2) == 1 and auto_chunksize(10_000, 64) == 10
    t0 = time.perf_counter()
    job = aiaas.map(cells["add7"], range(n), block=False, progress=False)
    assert job.result(timeout=120) == [i + 7 for i in range(n)]
    ours = time.perf_counter() - t0
    assert (job.chunksize, job.n_tasks, job.status, job.progress) == (10, 200, "finished", 1.0)
    t0 = time.perf_counter()
    futures = aiaas.dask.map(cells["add7"], range(n), pure=False)
    assert aiaas.dask.gather(futures) == [i + 7 for i in range(n)]
    raw = time.perf_counter() - t0
    del futures
    print(f"\n2000 tiny items: aiaas.map {ours:.2f} s (200 tasks), client.map {raw:.2f} s (2000 tasks)")
    assert ours < raw
    explicit = aiaas.map(cells["add7"], range(50), chunksize=7, block=False, progress=False)
    assert explicit.result(timeout=60) == [i + 7 for i in range(50)] and explicit.n_tasks == 8


def test_failing_item_is_one_line_with_the_users_line(aiaas, cells):
    with pytest.raises(MapError) as info:
        aiaas.map(cells["inverse"], [1, 2, 0, 5], progress=False)
    err = info.value
    assert err.index == 2 and isinstance(err.exception, ZeroDivisionError)
    assert str(err).startswith("map inverse: item 2 (0) failed on the worker: ZeroDivisionError: division by zero")
    # the cell's line, although cloudpickle names the shipped code <dynamic-code>
    assert "in inverse\n    return 10 / x\n" in err.remote_traceback
    assert "<dynamic-code>" not in err.remote_traceback
    # a notebook helper the function calls shows its line too
    with pytest.raises(MapError) as info:
        aiaas.map(cells["outer"], ["a", "b"], progress=False)
    tb = info.value.remote_traceback
    assert "item 1 ('b')" in str(info.value) and "KeyError: 'b'" in str(info.value)
    assert "return helper(x) + 1" in tb and "return {'a': 1}[x]" in tb


def test_magic_failure_renders_as_one_line_then_the_remote_traceback(shell, cells, capsys):
    shell.run_cell("%aiaas map inverse [4, 0]")
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).strip().splitlines()
    assert out[0].startswith("MapError: map inverse: item 1 (0) failed on the worker: ZeroDivisionError")
    assert out[1] == "--- remote traceback (on the worker) ---" and "    return 10 / x" in out
    assert not any("Traceback" in line for line in out[:2])


def test_errors_return_keeps_the_other_results(aiaas, cells):
    out = aiaas.map(cells["inverse"], [1, 2, 0, 5], errors="return", progress=False)
    assert out[:2] == [10.0, 5.0] and out[3] == 2.0
    assert isinstance(out[2], MapError) and isinstance(out[2].exception, ZeroDivisionError)
    assert "return 10 / x" in out[2].remote_traceback


def test_partial_results_survive_a_failure(aiaas, cells):
    """errors="raise" stops a chunk at its failed item: the items before it are kept."""
    job = aiaas.map(cells["inverse"], [1, 2, 0, 5], chunksize=4, block=False, progress=False)
    with pytest.raises(MapError, match="item 2"):
        job.result(timeout=60)
    assert job.status == "error" and job.partial() == {0: 10.0, 1: 5.0} and list(job.failures) == [2]


def test_retries_rerun_a_failing_item(aiaas, cells):
    assert aiaas.map(cells["flaky"], [1, 2], retries=2, progress=False) == [(1, 3), (2, 3)]
    with pytest.raises(MapError, match="RuntimeError: attempt 2 of item 1"):
        aiaas.map(cells["flaky"], [1], retries=1, progress=False)
    assert cells["calls"] == {}  # the counting happened on the workers


def test_non_blocking_handle_and_cancel(aiaas, cells):
    job = aiaas.map(cells["nap"], range(40), chunksize=1, block=False, progress=False)
    assert isinstance(job, MapJob) and job.status in ("pending", "running") and not job.done()
    deadline = time.time() + 60
    while job.n_done < 2 and time.time() < deadline:  # some came back, most are still to come
        time.sleep(0.05)
    job.cancel()
    assert job.status == "cancelled" and job.done()
    with pytest.raises(JobCancelledError, match="cancelled after"):
        job.result(timeout=5)
    kept = job.partial()
    assert 0 < len(kept) < 40 and all(kept[i] == i for i in kept)

    def tasks_of_the_map(dask_scheduler, prefix=f"aiaas-map-nap-{job.id}"):
        return [k for k in dask_scheduler.tasks if str(k).startswith(prefix)]

    deadline = time.time() + 30
    while aiaas.dask.run_on_scheduler(tasks_of_the_map) and time.time() < deadline:
        time.sleep(0.2)
    assert aiaas.dask.run_on_scheduler(tasks_of_the_map) == []  # nothing left on the cluster


def test_resources_no_worker_has_are_refused_up_front(aiaas, cells):
    with pytest.raises(ResourceError, match="no worker can hold 1 GPU"):
        aiaas.map(cells["add7"], [1], gpus=1)
    with pytest.raises(ResourceError, match="no worker can hold FPGA=1: the workers advertise no resources"):
        aiaas.map(cells["add7"], [1], resources={"FPGA": 1})


def test_gpus_go_to_workers_that_advertise_them(cli_cluster, tmp_path, cells):
    """`dask worker --resources GPU=1` workers: each task holds one GPU slot."""
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=tmp_path)
    client.connect(cli_cluster["address"])
    try:
        _cell_ns = cells

        def gpu_slot(x):
            from distributed import get_worker

            return x, get_worker().state.total_resources.get("GPU")

        assert client.map(gpu_slot, range(4), gpus=1, progress=False) == [(i, 1) for i in range(4)]
        with pytest.raises(ResourceError):
            client.map(_cell_ns["add7"], [1], gpus=2)
    finally:
        client.disconnect()


def test_what_cannot_travel_is_one_line(aiaas, caplog):
    import threading

    lock = threading.Lock()
    with pytest.raises(AiaasError, match="cannot send the function to the workers: TypeError: cannot pickle"):
        aiaas.map(lambda x: lock, [1])
    with pytest.raises(AiaasError, match="cannot send the items to the workers: TypeError: cannot pickle"):
        aiaas.map(abs, [lock])
    assert "Failed to serialize" not in caplog.text


@pytest.mark.parametrize("kwargs, message", [
    ({"func": 3, "items": [1]}, "the function must be callable, got int"),
    ({"errors": "ignore"}, "errors must be one of raise, return"),
    ({"chunksize": 0}, "chunksize must be a whole number ≥ 1"),
    ({"retries": -1}, "retries must be a whole number ≥ 0"),
    ({"items": 5}, "the items must be iterable"),
])
def test_bad_arguments(aiaas, kwargs, message):
    func, items = kwargs.pop("func", abs), kwargs.pop("items", [1])
    with pytest.raises(AiaasError, match=message):
        aiaas.map(func, items, **kwargs)
    with pytest.raises(AiaasError, match="at least one iterable"):
        aiaas.map(abs)


# -- the magic --------------------------------------------------------------------------------
def test_magic_with_variables_and_literals(shell, cells):
    shell.user_ns["xs"] = [1, 2, 3]
    with capture_output():
        shell.run_line_magic("aiaas", "map add7 xs -o ys")
        assert shell.user_ns["ys"] == [8, 9, 10]
        # a literal split by spaces, several ITEMS zipped, range(...), builtins and np-style dotted names
        assert shell.run_line_magic("aiaas", "map pow [2, 3] [5, 2]") == [32, 9]
        assert shell.run_line_magic("aiaas", "map abs range(-3, 3) -o values") is None
        assert shell.user_ns["values"] == [3, 2, 1, 0, 1, 2]
        assert shell.run_line_magic("aiaas", "map str.upper '[\"a\", \"b\"]'") == ["A", "B"]
        out = shell.run_line_magic("aiaas", "map inverse [5, 0] --errors return --chunksize 2")
        assert out[0] == 2.0 and isinstance(out[1], MapError)
        shell.run_line_magic("aiaas", "map nap range(3) --no-wait -o handle")
    handle = shell.user_ns["handle"]
    assert isinstance(handle, MapJob) and handle.result(timeout=60) == [0, 1, 2]


@pytest.mark.parametrize("line, error, message", [
    ("map nosuchfunc [1]", DataError, "no function named 'nosuchfunc'"),
    ("map xs [1]", DataError, "xs is a list, not a function"),
    ("map add7 nosuchvar", DataError, "no variable named 'nosuchvar'"),
    ("map add7 5", UsageError, "is not a list or other iterable"),
    ("map add7 __import__('os').getcwd()", UsageError, "cannot read ITEMS"),
    ("map add7 [1, 2", UsageError, "cannot read ITEMS '\\[1, 2'"),
    ("map add7 'os.system(1)'", UsageError, "cannot read ITEMS"),
    ("map 1+1 [1]", UsageError, "FUNC must be a name"),
    ("map add7 [1] --no-wait", UsageError, "--no-wait needs -o VAR"),
    ("map add7 [1] -o 'a b'", UsageError, "-o/--out: must be a Python identifier"),
    ("map add7 [1] --chunksize 0", UsageError, "expected a whole number from 1 to 1000000"),
    ("map add7 [1] --errors skip", UsageError, "invalid choice"),
    ("map add7", UsageError, "the following arguments are required: ITEMS"),
])
def test_magic_bad_lines(shell, cells, line, error, message):
    shell.user_ns["xs"] = [1, 2, 3]
    with pytest.raises(error, match=message):
        shell.run_line_magic("aiaas", line)


def test_map_is_part_of_the_api_but_not_of_star_imports():
    import aiaas_jupyter

    assert "map" in aiaas_jupyter._API and "map" not in aiaas_jupyter.__all__  # `import *` keeps builtin map
    assert aiaas_jupyter.map.__func__ is aiaas_jupyter.AiaasClient.map


def test_code_index_follows_notebook_helpers_not_modules(cells):
    """The index behind the remote traceback: the function, the notebook helpers it calls (its
    globals), never the modules it uses (they travel by reference; walking them is wasted)."""
    from aiaas_jupyter.tracebacks import index_of

    index = index_of(cells["outer"])
    assert index.locate("outer", 12) and index.locate("helper", 10)
    assert len(index_of(cells["square_where"])) == 1  # square_where only: `os` is not walked
