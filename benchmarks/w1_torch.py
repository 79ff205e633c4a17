"""W1 — tabular MLP training: the built-in PyTorch trainer via ``%%aiaas train`` vs a plain loop.

Both sides train the same network (64-H-H-10, same seed so the same initial weights) with
AdamW(lr=1e-3) and cross-entropy, the same batch size, epochs, train/held-out split and
shuffling seed, on the same kind of device. The baseline is the loop a PyTorch user would
write by hand, run directly in this process with as many threads as the worker has.

"Ours" is timed end to end, from the magic call until the version is registered, so it
includes running the cell, the pre-flight checks, scattering the frame to the worker, the
task, ONNX export + onnxruntime check, and the registry write. The job's own figures (task
seconds, per-epoch samples/s) are reported beside it, so the training loop can be compared
like for like (``ours_loop_s`` vs ``baseline_loop_s``).

Sizes: quick = 100k rows, 5 epochs, CPU; full = 2M rows, 5 epochs, one GPU (``--gpus 1`` for
ours, ``cuda`` for the baseline). Both use batch 8192 and hidden width 512.
"""

from __future__ import annotations

import time

import _common as c
from w0_dispatch import connected, make_shell

CONFIGS = {
    "quick": {"rows": 100_000, "epochs": 5, "batch_size": 8192, "hidden": 512, "gpus": 0},
    "full": {"rows": 2_000_000, "epochs": 5, "batch_size": 8192, "hidden": 512, "gpus": 1},
}
REPEATS = {"quick": 5, "full": 3}  # interleaved; medians (single runs on a shared 2-core VM swing by +-10%)
FEATURES, CLASSES, LR, TEST_SIZE, SEED = 64, 10, 1e-3, 0.2, 0

MODEL_CELL = """\
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear({features}, {hidden}), nn.ReLU(), nn.Linear({hidden}, {hidden}),
                      nn.ReLU(), nn.Linear({hidden}, {classes}))
"""


def make_data(rows: int, seed: int = SEED):
    """WORKLOADS.md's synthetic task: X ~ N(0,1), W ~ N(0,1) 64x10, y = argmax(XW + 0.5 noise)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    W = rng.standard_normal((FEATURES, CLASSES), dtype=np.float32)
    y = np.argmax(X @ W + 0.5 * rng.standard_normal((rows, CLASSES), dtype=np.float32), axis=1)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(FEATURES)])
    df["y"] = y.astype("int64")
    return df


def make_model(hidden: int):
    """The same network the magic's cell defines, with the same seed (same initial weights)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, CLASSES))


def split(df):
    """The held-out split the trainer makes (sklearn, stratified, test_size 0.2, seed 0)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    y = df["y"].to_numpy()
    idx_tr, idx_te = train_test_split(np.arange(len(df)), test_size=TEST_SIZE, random_state=SEED,
                                      stratify=y)
    X = df.drop(columns=["y"]).to_numpy(dtype=np.float32)
    return X[idx_tr], y[idx_tr], X[idx_te], y[idx_te]


def baseline_train(X_tr, y_tr, X_te, y_te, *, hidden: int, epochs: int, batch_size: int,
                   device: str) -> dict:
    """A plain, competent hand-written loop: tensors on the device once, randperm batches.

    Returns wall seconds (host arrays -> trained model -> held-out accuracy), the training
    loop's own seconds, and the accuracy. ``.item()`` at the end synchronises CUDA.
    """
    import torch
    from torch import nn

    t0 = time.perf_counter()
    dev = torch.device(device)
    model = make_model(hidden).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X_tr).to(dev), torch.from_numpy(y_tr).to(dev)
    Xv, yv = torch.from_numpy(X_te).to(dev), torch.from_numpy(y_te).to(dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(SEED)
    n = Xt.shape[0]
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_loop = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, device=dev, generator=gen)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            loss = loss_fn(model(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    loop_s = time.perf_counter() - t_loop
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, Xv.shape[0], 65536):
            correct += (model(Xv[s:s + 65536]).argmax(dim=1) == yv[s:s + 65536]).sum()
    accuracy = int(correct) / Xv.shape[0]
    return {"wall_s": time.perf_counter() - t0, "loop_s": loop_s, "accuracy": accuracy}


def baseline_on_worker(arrays, **kwargs) -> dict:
    """:func:`baseline_train` as a Dask task (this module is importable on the workers), on copies
    of the arrays: Dask hands a task its scattered arrays in the received message's buffer, where
    a float32 array may start 2 bytes off alignment (seen here), and the hand loop would gather
    its batches from it (12 rotated 1-epoch runs: 1.134 vs 1.064 x this process's loop from a copy). The trainer
    trains on its own copies (``X[idx_train]``), and this side is there to compare the loops.

    It runs where ours trains, on the worker's torch thread (:mod:`aiaas_jupyter.torch_thread`):
    run on the task's own thread, it would give the worker a second OpenMP team, and libgomp would
    then put both teams' threads to sleep between parallel regions, ours' too."""
    import numpy as np
    import torch
    from distributed import get_worker

    from aiaas_jupyter import torch_thread

    threads = get_worker().state.nthreads  # as ours (remote.use_worker_threads)

    def train() -> dict:
        torch.set_num_threads(threads)
        return baseline_train(*[np.array(a, copy=True) for a in arrays], **kwargs)

    return torch_thread.run(train)


def _loop_seconds(version, n_train: int) -> float:
    """The job's training-loop seconds: the trainer times each epoch's loop (its held-out
    evaluation excluded), as the baseline's ``loop_s`` does; history holds samples/s per epoch."""
    history = version.extra.get("history") or []
    return sum(n_train / ev["samples_per_s"] for ev in history if ev.get("samples_per_s")) or float("nan")


def run(size: str, repeat: int | None = None) -> dict:
    import torch

    cfg = CONFIGS[size]
    n_rep = repeat or REPEATS[size]
    threads = c.cpu_count()
    device = "cuda" if cfg["gpus"] else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("W1 --full trains on the GPU; this machine has no CUDA device")
    torch.set_num_threads(threads)
    rows, epochs, bs, hidden = cfg["rows"], cfg["epochs"], cfg["batch_size"], cfg["hidden"]
    c.log(f"W1: generating {rows:,} x {FEATURES} rows")
    df = make_data(rows)
    arrays = split(df)
    n_train = len(arrays[0])
    warm = df.iloc[: 4 * bs]  # a small first job: imports torch/onnx on the worker, starts CUDA
    cell = MODEL_CELL.format(features=FEATURES, hidden=hidden, classes=CLASSES)
    line = (f"train --data {{data}} --target y --name {{name}} --epochs {{epochs}} --batch-size {bs} "
            f"--lr {LR:g} --gpus {cfg['gpus']} --block")

    from IPython.utils.capture import capture_output

    with connected(n_workers=1, threads_per_worker=threads, gpus=cfg["gpus"]) as client:
        shell = make_shell(client)
        shell.user_ns.update(df=df, df_warm=warm)
        with capture_output(stdout=True, stderr=False, display=True):
            c.log("W1: warm-up (ours: one small job on the worker; baseline: one small loop)")
            shell.run_cell_magic("aiaas", line.format(data="df_warm", name="w1-warmup", epochs=1), cell)
            baseline_train(*split(warm), hidden=hidden, epochs=1, batch_size=bs, device=device)
            ours_runs, base_runs, worker_loops = [], [], []
            on_worker = client.dask.scatter(arrays)  # the hand loop again, as a task on ours' worker
            for i in range(n_rep):
                order = [("ours", "base", "worker"), ("base", "worker", "ours"), ("worker", "ours", "base")][i % 3]
                for side in order:
                    if side == "worker":
                        c.log(f"W1: hand loop run {i + 1}/{n_rep} as a task on the worker")
                        worker_loops.append(client.dask.submit(
                            baseline_on_worker, on_worker, hidden=hidden, epochs=epochs, batch_size=bs,
                            device=device, pure=False).result()["loop_s"])
                        continue
                    if side == "ours":
                        c.log(f"W1: ours run {i + 1}/{n_rep} (%%aiaas train, {epochs} epochs)")
                        t0 = time.perf_counter()
                        shell.run_cell_magic("aiaas", line.format(data="df", name="w1", epochs=epochs), cell)
                        wall = time.perf_counter() - t0
                        ours_runs.append({"wall_s": wall, "version": client.registry.get("w1")})
                    else:
                        c.log(f"W1: baseline run {i + 1}/{n_rep} (plain loop, {device})")
                        base_runs.append(baseline_train(*arrays, hidden=hidden, epochs=epochs,
                                                        batch_size=bs, device=device))
        import _tasks

        worker = next(iter(client.dask.run(_tasks.torch_threads).values()))

    ours_wall = c.median([r["wall_s"] for r in ours_runs])
    base_wall = c.median([r["wall_s"] for r in base_runs])
    last = ours_runs[-1]["version"]  # per-job figures come from each job's registered record
    ours_loop = c.median([_loop_seconds(r["version"], n_train) for r in ours_runs])
    ours_task = c.median([r["version"].extra.get("task_seconds") or float("nan") for r in ours_runs])
    # what checkpointing after each epoch cost the job, timed inside it (the goal: <= 3% of the task)
    ckpt = [r["version"].extra.get("checkpoints") or {} for r in ours_runs]
    ckpt_s = c.median([k.get("seconds", 0.0) for k in ckpt])
    base_loop = c.median([r["loop_s"] for r in base_runs])
    worker_loop = c.median(worker_loops)
    samples = n_train * epochs
    ours_walls, base_walls = [r["wall_s"] for r in ours_runs], [r["wall_s"] for r in base_runs]
    return c.result(
        "W1", size, ours_wall, base_wall,
        # the spread on a shared machine: each round's own ratio (its two sides ran back to back)
        # and the ratio of the fastest runs; the headline stays the ratio of the medians
        round_ratios=[round(o / b, 3) for o, b in zip(ours_walls, base_walls)],
        ratio_of_minimums=min(ours_walls) / min(base_walls),
        ours_samples_per_s=samples / ours_wall, baseline_samples_per_s=samples / base_wall,
        ours_task_s=ours_task, ours_loop_s=ours_loop, baseline_loop_s=base_loop,
        checkpoint_saves=ckpt[-1].get("saves"), checkpoint_s=ckpt_s, checkpoint_share=ckpt_s / ours_task,
        loop_ratio=ours_loop / base_loop, ours_loop_samples_per_s=samples / ours_loop,
        # the hand loop run as a Dask task on ours' worker: ours' loop vs it is the trainer's own
        # cost; it vs baseline_loop_s is what running in a worker process costs the same loop
        worker_hand_loop_s=worker_loop, loop_ratio_vs_worker_hand=ours_loop / worker_loop,
        baseline_loop_samples_per_s=samples / base_loop,
        ours_accuracy=last.metrics.get("accuracy"), baseline_accuracy=base_runs[-1]["accuracy"],
        ours_optimizer=last.params.get("optimizer"), ours_loss=last.params.get("loss"),
        baseline_optimizer="AdamW(lr=1e-3), torch's default implementation", baseline_loss="CrossEntropyLoss",
        onnx_exported="onnx_error" not in last.extra,
        model=f"MLP {FEATURES}-{hidden}-{hidden}-{CLASSES}", rows=rows, n_train=n_train,
        epochs=epochs, batch_size=bs, lr=LR, device=device, ours_device=last.extra.get("device"),
        repeats=n_rep, threads=threads, worker_threads=threads, worker_torch_threads=worker["torch"],
        worker_omp_num_threads=worker["OMP_NUM_THREADS"],
        worker_malloc_trim_threshold=worker["MALLOC_TRIM_THRESHOLD_"], worker_malloc_arena_max=worker["MALLOC_ARENA_MAX"])


if __name__ == "__main__":
    import sys

    c.prepare_environment()
    c.emit(run("full" if "--full" in sys.argv else "quick"))
