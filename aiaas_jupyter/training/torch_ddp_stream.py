"""One data-parallel rank reading its partitions one at a time: data larger than the workers.

A dask DataFrame trained with ``--workers N`` deals its partitions out round-robin (see
:func:`aiaas_jupyter.job_ddp.shards`); when the frame can be read by a worker on its own (not
persisted in the cluster's memory), each rank gets the *recipes* of its partitions
(:class:`~.partitions.PartitionStream`) and reads them as the one-worker streaming trainer does
(:mod:`.torch_stream`): a seeded random order per epoch, the next partition computed meanwhile in
a thread, its training rows trained on in shuffled batches, then dropped. No rank ever holds its
whole share.

Keeping N ranks in step when their partitions differ in size: before each run of batches the
ranks agree (one small all-reduce, MIN) on how many batches all of them can take from the
partition each has in hand; a rank whose partition is used up reads its next one first. The
epoch ends for all when one rank has no partition left (the rows the others had left wait for the
next epoch, whose order is new), so every rank takes the same number of steps and no
collective waits for a rank that stopped. The same all-reduce carries a stop (cancel), so a stop
is honoured within one partition, by all ranks together.

Held-out rows are the one-worker streaming trainer's: partition *i* (its number in the whole
frame) is split with seed ``seed + i`` and keeps its share of
:data:`~.torch_stream.MAX_HELDOUT_ROWS`; a rank reads the partitions an epoch did not reach once,
at the end of the first epoch, for their held-out rows and counts.
"""

from __future__ import annotations

import time

import torch

from ..errors import DataError
from . import common
from .base import Emit, StopCheck, TrainSpec, eval_batch_size
from .partitions import PartitionStream
from .torch import PROGRESS_INTERVAL_S, _features, train_step
from .torch_ddp import epoch_event, epoch_sums, process_group, rank_outcome, replica
from .torch_stream import Batches, PartitionReader, _heldout


def fit_rank_stream(spec: TrainSpec, stream: PartitionStream, emit: Emit, *, rank: int, world: int,
                    init_method: str, classes: list | None, timeout_s: float = 60.0,
                    should_stop: StopCheck | None = None, keep: list | None = None):
    """:func:`~.torch_ddp.fit_rank` for a rank given the recipes of its partitions (see the
    module docstring); returns what it returns."""
    with process_group(spec, rank, world, init_method, timeout_s, keep, emit) as (device, backend):
        return _fit(spec, stream, emit, rank=rank, world=world, classes=classes, should_stop=should_stop,
                    keep=keep, device=device, backend=backend)


def _fit(spec: TrainSpec, stream: PartitionStream, emit: Emit, *, rank: int, world: int, classes: list | None,
         should_stop: StopCheck | None, keep: list | None, device, backend: str):
    import torch.distributed as dist

    if len(stream) == 0:
        raise DataError(f"rank {rank} of {world} was dealt no partition")
    first = stream.compute(0)
    X_df, y0 = common.features_and_target(spec, first)  # the probe's rows; partition 0 is read again
    feature_names = [str(c) for c in X_df.columns]
    X0 = _features(X_df)
    rep = replica(spec, X0, y0, classes, device, keep)
    X0 = X0[:5].copy()
    del first, X_df, y0
    bs, epochs = spec.batch_size, spec.epochs
    gen = torch.Generator(device="cpu")
    gen.manual_seed(spec.seed * 1000 + rank)
    reader = PartitionReader(stream, spec, classes, rep.loss_fn, rep.out_units)
    if rank == 0:
        emit({"stage": "fit", "progress": 0.0, "device": str(device), "workers": world, "backend": backend,
              "partitions": stream.total})
    history: list[dict] = []
    stopped = False
    agree = torch.zeros(2, dtype=torch.int64, device=device)  # [batches all can take, -(stop votes)]
    try:
        rep.ddp.train()
        for epoch in range(1, epochs + 1):
            t0 = last = time.perf_counter()
            reader.start(torch.randperm(len(stream), generator=gen).numpy())
            loss_sum, rows, batches, done_parts = torch.zeros((), device=device), 0, None, 0
            while True:
                while batches is None or not batches.left:  # the partition in hand is used up: the next one
                    got = reader.next()
                    if got is None:
                        break
                    done_parts += 1
                    batches = Batches(*got, bs, gen, device)
                agree[0] = len(batches.left) if batches is not None else 0
                agree[1] = -1 if should_stop is not None and should_stop() else 0
                dist.all_reduce(agree, op=dist.ReduceOp.MIN)
                take, stop = int(agree[0].item()), bool(agree[1].item() < 0)
                if stop:
                    stopped = True
                    break
                if take == 0:  # some rank has read all its partitions: this epoch ends for all
                    break
                for xb, yb in batches.take(take):
                    loss_sum.add_(train_step(rep.ddp, rep.loss_fn, rep.opt, xb, yb), alpha=len(xb))
                    rows += len(xb)
                now = time.perf_counter()
                if rank == 0 and now - last >= PROGRESS_INTERVAL_S:
                    last = now
                    emit({"stage": "train", "epoch": epoch, "epochs": epochs,
                          "progress": (epoch - 1 + done_parts / len(stream)) / epochs})
            if stopped:
                break
            batches = None
            reader.start(reader.unseen())  # partitions the first epoch did not reach: held-out rows, counts
            while reader.next() is not None:
                pass
            X_te, y_te = _heldout(reader.held, device)
            values = epoch_sums(rep, loss_sum, rows, X_te, y_te, eval_batch_size(bs), False, device)
            event = epoch_event(values, rep.task, epoch, epochs, time.perf_counter() - t0)
            history.append(event)
            if rank == 0:
                emit(event)
    finally:
        reader.close()
    X_te, _ = _heldout(reader.held, "cpu")
    counts = torch.tensor([float(reader.n_train), float(len(X_te))], dtype=torch.float64, device=device)
    if not stopped:  # a stop is agreed by all: nobody would join this
        dist.all_reduce(counts)
    return rank_outcome(spec, rep, rank=rank, world=world, backend=backend, fingerprint=stream.fingerprint,
                        counts=(reader.n_train, len(X_te)), totals=(int(counts[0].item()), int(counts[1].item())),
                        history=history, stopped=stopped, classes=classes, feature_names=feature_names,
                        sample=X_te if len(X_te) else torch.from_numpy(X0), device=device,
                        extra={"streamed": {"partitions": stream.total, "rank_partitions": len(stream)},
                               "evaluated_on": f"held-out sample of {int(counts[1].item())} rows"})


__all__ = ["fit_rank_stream"]
