"""The worker's one torch thread (aiaas_jupyter.torch_thread): every call runs on it, in turn,
and its outcome comes back to the caller; a torch job on a CPU worker really trains there."""

from __future__ import annotations

import threading
import time

import pytest

from aiaas_jupyter import torch_thread


def test_every_call_runs_on_one_named_thread_and_returns_its_result():
    seen = {torch_thread.run(lambda: threading.get_ident()) for _ in range(5)}
    assert len(seen) == 1 and threading.get_ident() not in seen
    assert torch_thread.run(lambda a, b=0: (threading.current_thread().name, a + b), 2, b=3) == ("aiaas-torch", 5)
    assert torch_thread.run(lambda: threading.current_thread().daemon) is True  # never holds a process open


def test_a_failing_call_raises_its_own_error_with_its_frames_and_the_thread_goes_on():
    def fails():
        raise ValueError("bad shape (3, 4)")

    with pytest.raises(ValueError, match=r"^bad shape \(3, 4\)$") as info:
        torch_thread.run(fails)
    assert "fails" in [tb.name for tb in info.traceback]  # where it was raised, for remote tracebacks
    assert torch_thread.run(lambda: 7) == 7


def test_calls_from_several_threads_take_turns_and_all_finish():
    spans, out = [], {}

    def work(n):
        t0 = time.monotonic()
        time.sleep(0.05)
        spans.append((t0, time.monotonic()))
        return n * n

    callers = [threading.Thread(target=lambda n=n: out.__setitem__(n, torch_thread.run(work, n))) for n in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(10)
    assert out == {0: 0, 1: 1, 2: 4, 3: 9}
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))  # one at a time


def test_a_call_made_on_the_torch_thread_runs_at_once_instead_of_waiting_for_itself():
    assert torch_thread.run(lambda: torch_thread.run(lambda: threading.current_thread().name)) == "aiaas-torch"


def test_only_a_torch_module_on_a_machine_without_cuda_trains_there():
    import torch
    from sklearn.dummy import DummyClassifier

    assert torch_thread.trains_on_cpu(torch.nn.Linear(2, 2)) is (not torch.cuda.is_available())
    assert torch_thread.trains_on_cpu(DummyClassifier()) is False
    assert torch_thread.trains_on_cpu(None) is False


def _omp_threads_of_torch_thread(dask_worker) -> int:
    import torch

    return torch_thread.run(torch.get_num_threads)


def _recording_module():
    """A small torch module that notes, in buffers saved with its weights, how many training
    forwards it ran, how many of them on the worker's torch thread, and when (monotonic clock,
    one per machine) the first and the last ran. Defined in a function: it travels by value, as
    a notebook's class does."""
    import torch

    class Recording(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            for name in ("forwards", "on_torch_thread", "first", "last"):
                self.register_buffer(name, torch.zeros((), dtype=torch.float64))

        def forward(self, x):
            if self.training:
                now = time.monotonic()
                if self.forwards == 0:
                    self.first.fill_(now)
                self.last.fill_(now)
                self.forwards += 1
                self.on_torch_thread += float(threading.current_thread().name == "aiaas-torch")
            return self.net(x)

    torch.manual_seed(0)
    return Recording()


def _frame(rows: int = 400):
    import numpy as np
    import pandas as pd

    X = np.random.default_rng(0).standard_normal((rows, 4)).astype("float32")
    return pd.DataFrame(X, columns=list("abcd")).assign(y=(X[:, 0] > 0).astype("int64"))


def _recorded(client, version) -> dict:
    from safetensors.torch import load

    weights = load(client.registry.read_artifacts(version)["model.safetensors"])
    return {k: float(weights[k]) for k in ("forwards", "on_torch_thread", "first", "last")}


def test_a_torch_job_trains_on_its_workers_torch_thread_with_all_of_the_workers_threads(aiaas):
    """Through the real embedded cluster: the registered weights say every training forward ran
    on the worker's torch thread (on a machine with CUDA: none did, the job keeps its own
    thread), and torch on that thread uses all of the worker's threads."""
    import torch

    version = aiaas.train(_recording_module(), _frame(), target="y", name="torch-thread-job", epochs=2,
                          batch_size=64).result(timeout=180)
    seen = _recorded(aiaas, version)
    assert seen["forwards"] == 2 * 5  # 2 epochs of 320 training rows in batches of 64
    on_cpu = not torch.cuda.is_available()
    assert seen["on_torch_thread"] == (seen["forwards"] if on_cpu else 0)
    if on_cpu:
        worker = version.extra["worker"]
        nthreads = aiaas.dask.scheduler_info(n_workers=-1)["workers"][worker]["nthreads"]
        assert aiaas.dask.run(_omp_threads_of_torch_thread, workers=[worker])[worker] == nthreads


def test_two_torch_jobs_on_one_two_thread_worker_take_turns_on_its_torch_thread_and_both_register(tmp_path):
    """A worker with two threads runs two torch jobs at once as Dask tasks; they train one after
    the other on its torch thread (their first-to-last training forwards do not overlap), and
    both finish with a version each. On a machine with CUDA, each keeps its task's own thread."""
    import torch

    from aiaas_jupyter.client import AiaasClient

    on_cpu = not torch.cuda.is_available()
    client = AiaasClient(home=str(tmp_path / "home"))
    client.connect(n_workers=1, threads_per_worker=2)
    try:
        jobs = [client.train(_recording_module(), _frame(4000), target="y", name=f"turns-{i}", epochs=4,
                             batch_size=32) for i in range(2)]
        versions = [job.result(timeout=180) for job in jobs]
        assert [v.name for v in versions] == ["turns-0", "turns-1"]
        seen = sorted(((_recorded(client, v), v.extra["task_seconds"]) for v in versions), key=lambda r: r[0]["first"])
        assert all(s["forwards"] == 4 * 100 and s["on_torch_thread"] == (400 if on_cpu else 0) for s, _ in seen)
        if not on_cpu:  # pragma: no cover - on the device the two jobs may overlap
            return
        (first, _), (second, second_task_s) = seen
        assert first["last"] < second["first"], seen  # one after the other
        # and not merely one task after the other: the second's task ran while the first trained
        assert second_task_s > (second["last"] - second["first"]) + 0.5 * (first["last"] - first["first"]), seen
    finally:
        client.disconnect()
