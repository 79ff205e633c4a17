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


def test_a_torch_job_trains_on_its_workers_torch_thread_with_all_of_the_workers_threads(aiaas):
    """Through the real embedded cluster. The module notes, in a buffer that is saved with its
    weights, whether each training forward ran on the worker's torch thread: the registered
    weights say it did (on a machine with CUDA: that it did not, the job keeps its own thread).
    torch on that thread uses all of the worker's threads."""
    import numpy as np
    import pandas as pd
    import torch
    from safetensors.torch import load

    class Recording(torch.nn.Module):  # defined here: it travels by value, as a notebook's class does
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            self.register_buffer("forwards", torch.zeros(()))
            self.register_buffer("on_torch_thread", torch.zeros(()))

        def forward(self, x):
            if self.training:
                self.forwards += 1
                self.on_torch_thread += float(threading.current_thread().name == "aiaas-torch")
            return self.net(x)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 4)).astype("float32")
    df = pd.DataFrame(X, columns=list("abcd")).assign(y=(X[:, 0] > 0).astype("int64"))
    torch.manual_seed(0)
    version = aiaas.train(Recording(), df, target="y", name="torch-thread-job", epochs=2,
                          batch_size=64).result(timeout=180)
    weights = load(aiaas.registry.read_artifacts(version)["model.safetensors"])
    forwards = int(weights["forwards"])
    assert forwards == 2 * 5  # 2 epochs of 320 training rows in batches of 64
    on_cpu = not torch.cuda.is_available()
    assert int(weights["on_torch_thread"]) == (forwards if on_cpu else 0)
    if on_cpu:
        worker = version.extra["worker"]
        nthreads = aiaas.dask.scheduler_info(n_workers=-1)["workers"][worker]["nthreads"]
        assert aiaas.dask.run(_omp_threads_of_torch_thread, workers=[worker])[worker] == nthreads
