"""One rank of a data-parallel torch job: ``DistributedDataParallel`` over ``torch.distributed``.

Each of the job's N Dask workers runs :func:`fit_rank` on its own shard of the data (nobody holds
the whole frame). The ranks meet at rank 0's address (arranged by the kernel through Dask), use
NCCL on GPUs and gloo on CPUs, and keep in step:

- every rank trains the same number of batches per epoch (the smallest shard's count, the last
  one possibly short, as with one worker: a rank
  with one batch more would wait in an all-reduce nobody else joins);
- ``--batch-size`` is per rank: the effective batch is N times it;
- the held-out rows of an in-kernel frame are the one-worker trainer's (the kernel splits with
  the same seed and deals both parts out), so metrics compare across ``--workers``; a dask
  DataFrame's shards are split each on their own (same fraction and seed). The metrics are the
  sums of all ranks' held-out parts, all-reduced: the same formulas as the one-worker trainer;
- class labels are the whole frame's (given by the kernel), so every shard codes them alike;
- a stop (cancel) is agreed on at each epoch's end, so no rank is left in a collective alone;
- a rank that dies makes the others' next collective fail within ``timeout_s``: the group fails
  with one line, it never hangs.

Only rank 0 reports progress and exports the model; every rank returns the sha256 of its final
weights, which the job checks are identical.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import DataError
from . import common
from .base import JOINED, Emit, Fitted, StopCheck, TrainSpec, eval_batch_size
from .torch import (BINARY_LOSSES, CLASS_LOSSES, REGRESSION_LOSSES, _choose_loss, _features, _final_metrics,
                    _optimizer, probe_output, train_step)


#: the interface :func:`pin_interface` chose, so a process that inherits its choice (a process
#: started by one that ran a rank in-process) recomputes it instead of taking it for the user's
PINNED_BY_US = "AIAAS_PINNED_SOCKET_IFNAME"
_IFNAME_VARS = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")


def pin_interface(init_method: str) -> None:
    """Make gloo and NCCL use the network interface that reaches rank 0 (*init_method*'s host),
    unless the user chose one (``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME``). Left to itself,
    gloo takes the address the host name resolves to — often 127.0.0.1 in a container, which the
    other hosts' ranks then try to connect to ("Connection refused, remote=[127.0.0.1]")."""
    import os
    import socket
    from urllib.parse import urlsplit

    import psutil

    ours = os.environ.get(PINNED_BY_US)
    free = [v for v in _IFNAME_VARS if not os.environ.get(v) or os.environ[v] == ours]
    parts = urlsplit(init_method)
    if not free or parts.scheme != "tcp" or not parts.hostname:
        return
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((parts.hostname, parts.port or 1))  # UDP: no packet is sent, only a route chosen
            local = s.getsockname()[0]
    except OSError:
        return
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == local for a in addresses):
            for var in free:
                os.environ[var] = name
            os.environ[PINNED_BY_US] = name
            return


def weights_sha256(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def _target(loss_fn, y: pd.Series, classes: list | None, out_units: int):
    """Targets coded against the whole frame's classes (a shard may miss some)."""
    if y.isna().any():
        raise DataError(f"the target column has {int(y.isna().sum())} missing values")
    labels = classes is not None and (isinstance(loss_fn, CLASS_LOSSES + BINARY_LOSSES) or (
        not isinstance(loss_fn, REGRESSION_LOSSES) and out_units >= 2))
    if labels:
        codes = pd.Categorical(y, categories=classes).codes.astype(np.int64)
        if (codes < 0).any():
            raise DataError("a shard holds a class the whole frame does not")
        if isinstance(loss_fn, BINARY_LOSSES):
            return codes.astype(np.float32).reshape(-1, 1) if out_units == 1 else codes.astype(np.float32), \
                "classification"
        return codes, "classification"
    return y.to_numpy(dtype=np.float32).reshape(-1, 1) if out_units == 1 else y.to_numpy(np.float32), "regression"


def _eval_sums(model, loss_fn, X, y, task: str, threshold: float, batch_size: int, device) -> torch.Tensor:
    """This rank's held-out [loss sum, correct | squared error, n, sum y, sum y²] (float64)."""
    model.eval()
    out = torch.zeros(5, dtype=torch.float64, device=device)
    with torch.no_grad():
        for s in range(0, X.shape[0], batch_size):
            xb, yb = X[s:s + batch_size], y[s:s + batch_size]
            pred = model(xb)
            out[0] += loss_fn(pred, yb).double() * xb.shape[0]
            if task == "classification":
                if yb.dtype == torch.int64:
                    hit = (pred.argmax(dim=1) if pred.dim() > 1 and pred.shape[1] > 1 else pred.reshape(-1)) == yb
                else:
                    hit = (pred.reshape(-1) > threshold) == (yb.reshape(-1) > 0.5)
                out[1] += hit.sum()
            else:
                out[1] += ((pred.reshape(yb.shape) - yb).double() ** 2).sum()
                out[3] += yb.double().sum()
                out[4] += (yb.double() ** 2).sum()
    out[2] = X.shape[0]
    model.train()
    return out


def _metrics_of(sums: list[float], task: str) -> tuple[float, dict]:
    loss_sum, stat, n, ysum, ysq = sums
    n = max(n, 1.0)
    if task == "classification":
        return loss_sum / n, {"val_accuracy": stat / n}
    sst = ysq - ysum * ysum / n
    return loss_sum / n, {"val_r2": 1.0 - stat / sst if sst > 0 else float("nan"), "val_mse": stat / n}


def fit_rank(spec: TrainSpec, shard, emit: Emit, *, rank: int, world: int, init_method: str,
             classes: list | None, timeout_s: float = 60.0, should_stop: StopCheck | None = None,
             keep: list | None = None):
    """Train this rank's replica; ``(Fitted or None for ranks > 0, facts)`` where facts hold the
    rank's weights' sha256, its shard's fingerprint and its train/test counts.

    *shard*: ``(train rows, test rows)`` of the kernel's split of an in-kernel frame, or a pandas
    frame (this rank's partitions, computed). A rank that reads its partitions one at a time is
    :func:`~.torch_ddp_stream.fit_rank_stream`. *keep*: see :func:`process_group`."""
    with process_group(spec, rank, world, init_method, timeout_s, keep, emit) as (device, backend):
        return _fit_rank_in_memory(spec, shard, emit, rank=rank, world=world, classes=classes,
                                   should_stop=should_stop, keep=keep, device=device, backend=backend)


@contextlib.contextmanager
def process_group(spec: TrainSpec, rank: int, world: int, init_method: str, timeout_s: float,
                  keep: list | None, emit: Emit | None = None):
    """This rank in the job's group, for as long as the block runs: ``(device, backend)``, NCCL
    on a GPU, gloo on the CPU.

    *keep*: for a process that ends right after this rank without any teardown (the rank
    processes of :mod:`aiaas_jupyter.rank_process`): the process group is not destroyed and the
    DDP wrapper is kept in *keep*, alive. Tearing them down is where torch once deadlocked on the
    GIL (a native thread of the group took it and never gave it back; seen after a rank returned,
    in a process that had trained ranks before)."""
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and spec.gpus > 0
    device, backend = (torch.device("cuda", 0), "nccl") if cuda else (torch.device("cpu"), "gloo")
    pin_interface(init_method)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    if emit is not None:  # a rank process's watcher bounds the time to get here
        emit({"stage": JOINED})
    try:
        yield device, backend
    finally:
        if keep is None:
            dist.destroy_process_group()


@dataclasses.dataclass
class Replica:
    """One rank's model wrapped in DDP, with what its loop needs (see :func:`replica`)."""
    model: nn.Module
    ddp: nn.Module
    opt: torch.optim.Optimizer
    loss_fn: Any
    task: str
    threshold: float
    out_shape: list
    out_units: int


def replica(spec: TrainSpec, X_probe: np.ndarray, y_probe: pd.Series, classes: list | None, device,
            keep: list | None) -> Replica:
    """The model on *device*, probed on a few rows, its loss chosen (from the whole frame's
    *classes* when they are labels) and wrapped in ``DistributedDataParallel``."""
    from torch.nn.parallel import DistributedDataParallel

    model: nn.Module = spec.model
    torch.manual_seed(spec.seed)
    model.to(device)
    out_shape, out_units = probe_output(model, X_probe, device)
    loss_fn = _choose_loss(spec, model, pd.Series(classes) if classes is not None else y_probe, out_units)
    _, task = _target(loss_fn, y_probe, classes, out_units)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    ddp = DistributedDataParallel(model, device_ids=[0] if device.type == "cuda" else None)
    if keep is not None:
        keep.append(ddp)
    return Replica(model, ddp, _optimizer(spec, model, device), loss_fn, task,
                   0.0 if isinstance(loss_fn, nn.BCEWithLogitsLoss) else 0.5, out_shape, out_units)


def epoch_sums(rep: Replica, loss_sum: torch.Tensor, rows: float, X_te, y_te, eval_bs: int, stop: bool,
               device) -> list[float]:
    """All ranks' [train loss sum, train rows, held-out sums (5), stop votes], all-reduced."""
    import torch.distributed as dist

    sums = torch.cat([torch.stack([loss_sum.double(), torch.tensor(float(rows), dtype=torch.float64, device=device)]),
                      _eval_sums(rep.model, rep.loss_fn, X_te, y_te, rep.task, rep.threshold, eval_bs, device),
                      torch.tensor([1.0 if stop else 0.0], dtype=torch.float64, device=device)])
    dist.all_reduce(sums)
    return sums.tolist()


def epoch_event(values: list[float], task: str, epoch: int, epochs: int, seconds: float) -> dict:
    """The epoch's event (metrics of all ranks together) from :func:`epoch_sums`' values."""
    train_loss = values[0] / max(values[1], 1.0)
    val_loss, val = _metrics_of(values[2:7], task)
    return {"stage": "epoch", "epoch": epoch, "epochs": epochs, "loss": train_loss, "val_loss": val_loss,
            **val, "metrics": _final_metrics(task, train_loss, val_loss, val), "progress": epoch / epochs,
            "seconds": seconds, "samples_per_s": values[1] / seconds if seconds > 0 else float("inf")}


def rank_outcome(spec: TrainSpec, rep: Replica, *, rank: int, world: int, backend: str, fingerprint: str,
                 counts: tuple[int, int], totals: tuple[int, int], history: list, stopped: bool,
                 classes: list | None, feature_names: list, sample: torch.Tensor, device,
                 extra: dict | None = None):
    """``(Fitted or None for ranks > 0, facts)``: the end of a rank, in memory or streamed.
    *counts*: this rank's (train, held-out) rows; *totals*: all ranks'."""
    model, opt, loss_fn = rep.model, rep.opt, rep.loss_fn
    model.to("cpu").eval()
    facts = {"rank": rank, "sha256": weights_sha256(model), "fingerprint": fingerprint,
             "n_train": counts[0], "n_test": counts[1], "backend": backend}
    if rank != 0:
        return None, facts
    params = {"epochs": spec.epochs, "batch_size": spec.batch_size, "effective_batch_size": spec.batch_size * world,
              "workers": world, "lr": common.jsonable(opt.param_groups[0].get("lr")), "optimizer": type(opt).__name__,
              "loss": type(loss_fn).__name__, "n_parameters": sum(p.numel() for p in model.parameters()),
              "module": type(model).__name__, "seed": spec.seed}
    info = {"task": rep.task, "classes": common.jsonable_list(classes) if rep.task == "classification" else None,
            "feature_names": feature_names, "target": spec.target,
            "module_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "data_parallel": {"workers": world, "backend": backend}, **(extra or {})}
    if stopped:
        info.update(stopped=True, epochs_run=len(history))
    export = {"input_dim": int(sample.shape[1]), "out_units": rep.out_units, "out_shape": rep.out_shape,
              "loss_name": type(loss_fn).__name__, "threshold": rep.threshold, "sample": sample[:5].cpu()}
    metrics = history[-1]["metrics"] if history else {}
    fitted = Fitted(framework="torch", model=model, params=params, metrics=metrics, n_train=totals[0],
                    n_test=totals[1], device=str(device), history=history, extra=info, stopped=stopped,
                    epochs_run=len(history), export=export)
    return fitted, facts


def _fit_rank_in_memory(spec: TrainSpec, shard, emit: Emit, *, rank: int, world: int, classes: list | None,
                        should_stop: StopCheck | None, keep: list | None, device, backend: str):
    """A rank whose shard is in memory: the kernel's (train, test) rows, or its partitions computed."""
    import torch.distributed as dist

    given_split = isinstance(shard, (tuple, list))  # (train rows, test rows) of the kernel's one split
    if given_split:
        n_given = len(shard[0])
        shard = pd.concat(shard)
    X_df, y = common.features_and_target(spec, shard)
    X_all = _features(X_df)
    rep = replica(spec, X_all, y, classes, device, keep)
    target, task = _target(rep.loss_fn, y, classes, rep.out_units)
    if given_split:
        idx_train, idx_test = np.arange(n_given), np.arange(n_given, len(y))
    else:
        idx_train, idx_test, _, _ = common.split(spec, np.arange(len(y)), pd.Series(target.reshape(len(y), -1)[:, 0]),
                                                 task == "classification")
    X_tr, y_tr = torch.from_numpy(X_all[idx_train]).to(device), torch.from_numpy(target[idx_train]).to(device)
    X_te, y_te = torch.from_numpy(X_all[idx_test]).to(device), torch.from_numpy(target[idx_test]).to(device)
    n, bs, epochs = X_tr.shape[0], spec.batch_size, spec.epochs
    steps = torch.tensor([max(1, -(-n // bs))], device=device)  # as one worker: the last batch may be short
    dist.all_reduce(steps, op=dist.ReduceOp.MIN)  # every rank the same number of batches
    steps = int(steps.item())
    counts = torch.tensor([float(n), float(len(idx_test))], dtype=torch.float64, device=device)
    dist.all_reduce(counts)
    gen = torch.Generator(device=device)
    gen.manual_seed(spec.seed * 1000 + rank)
    if rank == 0:
        emit({"stage": "fit", "progress": 0.0, "device": str(device), "n_train": int(counts[0].item()),
              "workers": world, "backend": backend})
    history: list[dict] = []
    stopped = False
    rep.ddp.train()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=device, generator=gen)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            loss_sum += train_step(rep.ddp, rep.loss_fn, rep.opt, X_tr[idx], y_tr[idx]).double() * idx.shape[0]
        values = epoch_sums(rep, loss_sum, min(n, steps * bs), X_te, y_te, eval_batch_size(bs),
                            should_stop is not None and should_stop(), device)
        event = epoch_event(values, task, epoch, epochs, time.perf_counter() - t0)
        history.append(event)
        if rank == 0:
            emit(event)
        if values[7] > 0 and epoch < epochs:  # some rank was asked to stop: all stop together
            stopped = True
            break
    return rank_outcome(spec, rep, rank=rank, world=world, backend=backend, fingerprint=common.data_fingerprint(shard),
                        counts=(n, len(idx_test)), totals=(int(counts[0].item()), int(counts[1].item())),
                        history=history, stopped=stopped, classes=classes,
                        feature_names=[str(c) for c in X_df.columns], sample=X_te if len(X_te) else X_tr,
                        device=device)


__all__ = ["fit_rank", "weights_sha256"]
