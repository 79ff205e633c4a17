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

import datetime
import hashlib
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import DataError
from . import common
from .base import Emit, Fitted, StopCheck, TrainSpec
from .torch import (BINARY_LOSSES, CLASS_LOSSES, REGRESSION_LOSSES, _choose_loss, _features, _final_metrics,
                    _optimizer, probe_output, train_step)


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


def fit_rank(spec: TrainSpec, shard: pd.DataFrame, emit: Emit, *, rank: int, world: int, init_method: str,
             classes: list | None, timeout_s: float = 60.0, should_stop: StopCheck | None = None,
             keep: list | None = None):
    """Train this rank's replica; ``(Fitted or None for ranks > 0, facts)`` where facts hold the
    rank's weights' sha256, its shard's fingerprint and its train/test counts.

    *keep*: for a process that ends right after this rank without any teardown (the rank
    processes of :mod:`aiaas_jupyter.rank_process`): the process group is not destroyed and the
    DDP wrapper is kept in *keep*, alive. Tearing them down is where torch once deadlocked on the
    GIL (a native thread of the group took it and never gave it back; seen after a rank returned,
    in a process that had trained ranks before)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    cuda = torch.cuda.is_available() and spec.gpus > 0
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    try:
        given_split = isinstance(shard, (tuple, list))  # (train rows, test rows) of the kernel's one split
        if given_split:
            n_given = len(shard[0])
            shard = pd.concat(shard)
        model: nn.Module = spec.model
        X_df, y = common.features_and_target(spec, shard)
        X_all = _features(X_df)
        torch.manual_seed(spec.seed)
        model.to(device)
        out_shape, out_units = probe_output(model, X_all, device)
        loss_fn = _choose_loss(spec, model, pd.Series(classes) if classes is not None else y, out_units)
        target, task = _target(loss_fn, y, classes, out_units)
        threshold = 0.0 if isinstance(loss_fn, nn.BCEWithLogitsLoss) else 0.5
        if isinstance(loss_fn, nn.Module):
            loss_fn.to(device)
        ddp = DistributedDataParallel(model, device_ids=[0] if cuda else None)
        if keep is not None:
            keep.append(ddp)
        opt = _optimizer(spec, model, device)
        if given_split:
            idx_train, idx_test = np.arange(n_given), np.arange(n_given, len(y))
        else:
            idx_train, idx_test, _, _ = common.split(spec, np.arange(len(y)),
                                                     pd.Series(target.reshape(len(y), -1)[:, 0]),
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
        eval_bs = max(bs, 4096)
        if rank == 0:
            emit({"stage": "fit", "progress": 0.0, "device": str(device), "n_train": int(counts[0].item()),
                  "workers": world, "backend": backend})
        history: list[dict] = []
        metrics: dict = {}
        stopped = False
        ddp.train()
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n, device=device, generator=gen)
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            for s in range(steps):
                idx = perm[s * bs:(s + 1) * bs]
                loss_sum += train_step(ddp, loss_fn, opt, X_tr[idx], y_tr[idx]).double() * idx.shape[0]
            sums = torch.cat([torch.stack([loss_sum, torch.tensor(float(min(n, steps * bs)), dtype=torch.float64,
                                                                  device=device)]),
                              _eval_sums(model, loss_fn, X_te, y_te, task, threshold, eval_bs, device),
                              torch.tensor([1.0 if (should_stop is not None and should_stop()) else 0.0],
                                           dtype=torch.float64, device=device)])
            dist.all_reduce(sums)
            values = sums.tolist()
            train_loss = values[0] / max(values[1], 1.0)
            val_loss, val = _metrics_of(values[2:7], task)
            metrics = _final_metrics(task, train_loss, val_loss, val)
            seconds = time.perf_counter() - t0
            event = {"stage": "epoch", "epoch": epoch, "epochs": epochs, "loss": train_loss, "val_loss": val_loss,
                     **val, "metrics": metrics, "progress": epoch / epochs, "seconds": seconds,
                     "samples_per_s": values[1] / seconds if seconds > 0 else float("inf")}
            history.append(event)
            if rank == 0:
                emit(event)
            if values[7] > 0 and epoch < epochs:  # some rank was asked to stop: all stop together
                stopped = True
                break
        model.to("cpu").eval()
        facts = {"rank": rank, "sha256": weights_sha256(model), "fingerprint": common.data_fingerprint(shard),
                 "n_train": n, "n_test": len(idx_test), "backend": backend}
        if rank != 0:
            return None, facts
        params = {"epochs": epochs, "batch_size": bs, "effective_batch_size": bs * world, "workers": world,
                  "lr": common.jsonable(opt.param_groups[0].get("lr")), "optimizer": type(opt).__name__,
                  "loss": type(loss_fn).__name__, "n_parameters": sum(p.numel() for p in model.parameters()),
                  "module": type(model).__name__, "seed": spec.seed}
        extra = {"task": task, "classes": common.jsonable_list(classes) if task == "classification" else None,
                 "feature_names": [str(c) for c in X_df.columns], "target": spec.target,
                 "module_class": f"{type(model).__module__}.{type(model).__qualname__}",
                 "data_parallel": {"workers": world, "backend": backend}}
        if stopped:
            extra.update(stopped=True, epochs_run=len(history))
        export = {"input_dim": X_all.shape[1], "out_units": out_units, "out_shape": out_shape,
                  "loss_name": type(loss_fn).__name__, "threshold": threshold,
                  "sample": (X_te if len(X_te) else X_tr)[:5].cpu()}
        fitted = Fitted(framework="torch", model=model, params=params, metrics=metrics,
                        n_train=int(counts[0].item()), n_test=int(counts[1].item()), device=str(device),
                        history=history, extra=extra, stopped=stopped, epochs_run=len(history), export=export)
        return fitted, facts
    finally:
        if keep is None:
            dist.destroy_process_group()


__all__ = ["fit_rank", "weights_sha256"]
