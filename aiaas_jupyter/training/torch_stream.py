"""Training a torch model on a dask DataFrame partition by partition: data larger than a worker.

The job's task never holds the whole frame (see :mod:`.partitions`): each epoch visits the
partitions in a seeded random order, computes one (the next one is computed meanwhile, in a
thread), moves its training rows to the device, trains on them in shuffled batches, and drops
it. What stays in memory is the model, the optimizer, two partitions and the held-out sample.

- **Held-out rows**: each partition is split with the job's test fraction (seeded per
  partition). Evaluating every epoch on all of them would read the data twice per epoch, so the
  held-out rows are a sample of at most :data:`MAX_HELDOUT_ROWS` (the first ones of each
  partition's held-out part, an equal share per partition), kept on the device; the version
  records how many (``extra["evaluated_on"]``).
- **Class labels** are the whole frame's (found by the kernel), so every partition codes them
  alike; the loss is chosen from them as the in-memory trainer would.
- Progress ticks, stops, checkpoints and resume behave as in :mod:`.torch`: a stop is honoured
  at the ~1 s tick, a checkpoint is written after each epoch, a resumed job reads the
  partitions once to gather its held-out sample again.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import DataError, ModelSpecError
from . import common
from .base import Emit, Fitted, StopCheck, TrainSpec, eval_batch_size
from .checkpoints import restore
from .partitions import PartitionStream
from .torch import (PROGRESS_INTERVAL_S, _choose_loss, _device, _evaluate, _features, _final_metrics, _optimizer,
                    fitted, probe_output, train_step)
from .torch_ddp import _target

#: held-out rows kept for the per-epoch metrics of a streamed job
MAX_HELDOUT_ROWS = 100_000


def _rows(spec: TrainSpec, i: int, part: pd.DataFrame, classes, loss_fn, out_units: int, quota: int):
    """Partition *i* as ``(X, y, train row indices, X_heldout, y_heldout)``: the features and
    targets of all its rows (the training rows are indexed, not copied: a partition's worth of
    memory less), and at most *quota* of its held-out rows, copied."""
    X_df, y = common.features_and_target(spec, part)
    X = _features(X_df)
    target, task = _target(loss_fn, y, classes, out_units)
    part_spec = dataclasses.replace(spec, seed=spec.seed + i)
    if len(y) >= 4:
        idx_train, idx_test, _, _ = common.split(part_spec, np.arange(len(y)), pd.Series(y.to_numpy()),
                                                 task == "classification" and classes is not None)
    else:  # too few rows to hold any out
        idx_train, idx_test = np.arange(len(y)), np.arange(0)
    keep = idx_test[:quota]
    return X, target, idx_train, X[keep], target[keep]


class PartitionReader:
    """A stream's partitions in a given order, the next one computed in a thread meanwhile; each
    one noted the first time it is read (held-out sample, fingerprint, training rows). Shared by
    the one-worker trainer and each data-parallel rank (:mod:`.torch_ddp_stream`)."""

    def __init__(self, stream: PartitionStream, spec: TrainSpec, classes, loss_fn, out_units: int):
        self.stream, self.spec, self.classes, self.loss_fn, self.out_units = stream, spec, classes, loss_fn, out_units
        self.share, self.extra_rows = divmod(MAX_HELDOUT_ROWS, stream.total)
        self.held: dict[int, tuple] = {}  # local partition index -> its held-out (X, y)
        self.n_train = 0
        self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="aiaas-partition")
        self._queue: list[int] = []
        self._pending = None  # (local index, future of the computed partition)

    def start(self, order) -> None:
        """Read *order* (local indices) from now on, the first one already being computed."""
        if self._pending is not None:
            self._pending[1].cancel()
        self._queue = [int(k) for k in order]
        self._pending = None
        self._fetch()

    def _fetch(self) -> None:
        if self._queue:
            k = self._queue.pop(0)
            self._pending = (k, self._fetcher.submit(self.stream.compute, k))

    def next(self):
        """``(X, y, training row indices)`` of the next partition in the order, or None."""
        if self._pending is None:
            return None
        k, future = self._pending
        self._pending = None
        part = future.result()
        self._fetch()
        i = self.stream.numbers[k]  # its number in the whole frame: its seed and held-out share
        X, y, idx_train, X_ho, y_ho = _rows(self.spec, i, part, self.classes, self.loss_fn, self.out_units,
                                            max(1, self.share + (i < self.extra_rows)))
        if k not in self.held:
            self.held[k] = (X_ho, y_ho)
            self.stream.fingerprints[k] = common.data_fingerprint(part)
            if self.stream.dtypes is None:
                self.stream.dtypes = part.dtypes
            self.n_train += len(idx_train)
        return X, y, idx_train

    def unseen(self) -> list[int]:
        return [k for k in range(len(self.stream)) if k not in self.held]

    def close(self) -> None:
        self._fetcher.shutdown(wait=True, cancel_futures=True)


class Batches:
    """One partition's training rows on the device and its shuffled batches, taken a few at a
    time (no batch of one row, which breaks BatchNorm)."""

    def __init__(self, X, y, idx_train, bs: int, gen: torch.Generator, device):
        n = len(idx_train)
        # torch wants writable memory (pandas may hand out a read-only view): copied only then
        self.X = torch.from_numpy(np.require(X, requirements="W")).to(device)
        self.y = torch.from_numpy(np.require(y, requirements="W")).to(device)
        perm = torch.from_numpy(idx_train)[torch.randperm(n, generator=gen)].to(device)
        stop_at = n - 1 if n > bs and n % bs == 1 else n
        self.left = [perm[s:s + bs] for s in range(0, stop_at, bs)]

    def take(self, k: int):
        """The next *k* batches as ``(X, y)``, each gathered only when its turn comes."""
        out, self.left = self.left[:k], self.left[k:]
        return ((self.X[idx], self.y[idx]) for idx in out)


def fit_stream(spec: TrainSpec, stream: PartitionStream, emit: Emit, should_stop: StopCheck | None = None,
               checkpoints=None) -> Fitted:
    """Train ``spec.model`` on *stream*'s partitions, one at a time (see the module docstring)."""
    model: nn.Module = spec.model
    if spec.epochs < 1 or spec.batch_size < 1:
        raise ModelSpecError(f"epochs and batch_size must be >= 1 (got {spec.epochs}, {spec.batch_size})")
    n_parts = len(stream)
    if n_parts == 0:
        raise DataError("the frame has no partitions")
    device = _device(spec)
    torch.manual_seed(spec.seed)
    model.to(device)
    first = stream.compute(0)
    X_df, y0 = common.features_and_target(spec, first)  # the probe's rows; partition 0 is read again
    X0 = _features(X_df)
    feature_names = [str(c) for c in X_df.columns]
    out_shape, out_units = probe_output(model, X0, device)
    X0 = X0[:5].copy()  # the export's sample: the rest of partition 0 need not stay
    classes = stream.classes
    loss_fn = _choose_loss(spec, model, pd.Series(classes) if classes is not None else y0, out_units)
    _, task = _target(loss_fn, y0, classes, out_units)
    del first, y0
    threshold = 0.0 if isinstance(loss_fn, nn.BCEWithLogitsLoss) else 0.5
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    opt = _optimizer(spec, model, device)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(spec.seed)
    bs, epochs = spec.batch_size, spec.epochs
    reader = PartitionReader(stream, spec, classes, loss_fn, out_units)

    def visit(order, train: bool, epoch: int):
        """Each partition of *order*: its held-out sample noted (first pass), and with *train*
        its rows trained on. Returns ``(loss sum, rows, stopped)``."""
        loss_sum, rows, last = torch.zeros((), device=device), 0, time.perf_counter()
        reader.start(order)
        for k in range(len(order)):
            X, y, idx_train = reader.next()
            if not train or len(idx_train) == 0:
                continue
            batches = Batches(X, y, idx_train, bs, gen, device)
            for b, (xb, yb) in enumerate(batches.take(len(batches.left))):
                loss_sum.add_(train_step(model, loss_fn, opt, xb, yb), alpha=len(xb))
                rows += len(xb)
                now = time.perf_counter()
                if now - last >= PROGRESS_INTERVAL_S:
                    last = now
                    emit({"stage": "train", "epoch": epoch, "epochs": epochs,
                          "progress": (epoch - 1 + (k + b * bs / len(idx_train)) / n_parts) / epochs})
                    if should_stop is not None and should_stop():
                        return loss_sum, rows, True
        return loss_sum, rows, False

    history: list[dict] = []
    metrics: dict[str, float] = {}
    stopped = False
    start_epoch = 1
    resumed = checkpoints.load() if checkpoints is not None else None
    emit({"stage": "fit", "progress": 0.0, "device": str(device), "partitions": n_parts})
    try:
        if resumed is not None:
            restore(resumed, model, opt, gen)
            history, start_epoch = resumed.history, resumed.epoch + 1
            metrics = dict(history[-1]["metrics"]) if history else {}
            emit({"stage": "resumed", "epoch": resumed.epoch, "epochs": epochs, "progress": resumed.epoch / epochs})
            visit(np.arange(n_parts), False, start_epoch)  # the held-out sample again
        model.train()
        for epoch in range(start_epoch, epochs + 1):
            t0 = time.perf_counter()
            order = torch.randperm(n_parts, generator=gen).numpy()
            loss_sum, rows, stopped = visit(order, True, epoch)
            X_te, y_te = _heldout(reader.held, device)
            val_loss, val = _evaluate(model, loss_fn, X_te, y_te, task, threshold, eval_batch_size(bs)) \
                if len(X_te) else (float("nan"), {})
            metrics = _final_metrics(task, loss_sum.item() / max(rows, 1), val_loss, val)
            if stopped:  # mid-epoch: no epoch event
                break
            seconds = time.perf_counter() - t0
            event = {"stage": "epoch", "epoch": epoch, "epochs": epochs, "loss": loss_sum.item() / max(rows, 1),
                     "val_loss": val_loss, **val, "metrics": metrics, "progress": epoch / epochs,
                     "seconds": seconds, "samples_per_s": rows / seconds if seconds > 0 else float("inf")}
            history.append(event)
            emit(event)
            if should_stop is not None and epoch < epochs and should_stop():
                stopped = True
                break
            if checkpoints is not None and epoch < epochs and checkpoints.due():
                if not checkpoints.save(model, opt, gen, epoch, history):
                    emit({"stage": "warning", "message": f"no checkpoints for this job: {checkpoints.disabled}"})
    finally:
        reader.close()
    X_te, _ = _heldout(reader.held, "cpu")
    n_test = len(X_te)
    export = {"input_dim": X0.shape[1], "out_units": out_units, "out_shape": out_shape,
              "loss_name": type(loss_fn).__name__, "threshold": threshold,
              "sample": (X_te if n_test else torch.from_numpy(X0))[:5].cpu()}
    return fitted(spec, model, opt, loss_fn, task=task, classes=classes if task == "classification" else None,
                  feature_names=feature_names, history=history, metrics=metrics, stopped=stopped, resumed=resumed,
                  checkpoints=checkpoints, n_train=reader.n_train, n_test=n_test, device=device, export=export,
                  extra={"streamed": {"partitions": n_parts},
                         "evaluated_on": f"held-out sample of {n_test} rows"})


def _heldout(held: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out sample, partitions in index order, as tensors on *device*."""
    parts = [held[i] for i in sorted(held)]
    X = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 0), np.float32)
    y = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0,), np.float32)
    return torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)


__all__ = ["fit_stream", "MAX_HELDOUT_ROWS"]
