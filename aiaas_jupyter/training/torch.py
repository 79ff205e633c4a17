"""The built-in PyTorch training loop, written for throughput.

It is benchmarked against a hand-written loop, so the hot path does only what such a loop
does: the data go to the device once as tensors, each epoch is one ``randperm`` on the
device and index slices (no DataLoader, no per-batch copies from the host), and the loss is
summed on the device and read back once per epoch (no per-batch host sync). Progress inside
an epoch is a ~1 s wall-clock check, which costs nothing on the device.

``fit`` trains and returns the live module; :mod:`.torch_export` packages it in safe formats
only: the weights as safetensors, the network as ONNX (usable without the user's class), and
a small JSON describing inputs, outputs and classes.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import DataError, ModelSpecError, ResourceError
from . import common
from .base import Emit, Fitted, StopCheck, TrainSpec, epoch_eval_size, eval_batch_size
from .checkpoints import restore

CLASS_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
BINARY_LOSSES = (nn.BCELoss, nn.BCEWithLogitsLoss)
REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
PROGRESS_INTERVAL_S = 1.0


def _device(spec: TrainSpec) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if spec.gpus > 0:
        raise ResourceError(f"{spec.gpus} GPU(s) requested but this worker has no CUDA device")
    return torch.device("cpu")


def _features(X: pd.DataFrame) -> np.ndarray:
    bad = [str(c) for c in X.columns
           if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
    if bad:
        raise DataError(f"torch models need numeric features; non-numeric columns: {', '.join(bad)}",
                        hint="encode them (e.g. pandas.get_dummies) before training")
    arr = X.to_numpy(dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DataError("the features contain NaN or infinite values", hint="fill or drop them first")
    return arr


def _integer_like(y: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return True
    return bool(np.all(np.mod(y.to_numpy(dtype=np.float64), 1) == 0))


def last_leaf(model: nn.Module) -> nn.Module | None:
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    return leaves[-1] if leaves else None


def _choose_loss(spec: TrainSpec, model: nn.Module, y: pd.Series, out_units: int):
    """The user's loss, else CE for labels with >=2 outputs, BCE* for binary labels with one
    output (BCELoss when the model already ends in a Sigmoid), MSE otherwise."""
    if spec.loss is not None:
        if isinstance(spec.loss, type) or not callable(spec.loss):
            raise ModelSpecError(f"loss must be a loss instance such as nn.CrossEntropyLoss(), "
                                 f"got {spec.loss!r}")
        return spec.loss
    n_classes = y.nunique()
    if _integer_like(y) and n_classes >= 2 and out_units >= 2:
        return nn.CrossEntropyLoss()
    if _integer_like(y) and n_classes == 2 and out_units == 1:
        return nn.BCELoss() if isinstance(last_leaf(model), nn.Sigmoid) else nn.BCEWithLogitsLoss()
    return nn.MSELoss()


def _prepare_target(loss_fn, y: pd.Series, out_shape: tuple, out_units: int):
    """Target array shaped and typed for the loss, the task, and the class labels (if any)."""
    if y.isna().any():
        raise DataError(f"the target column has {int(y.isna().sum())} missing values")
    long_target = isinstance(loss_fn, CLASS_LOSSES) or (
        not isinstance(loss_fn, BINARY_LOSSES + REGRESSION_LOSSES)
        and _integer_like(y) and out_units >= 2)
    if long_target or isinstance(loss_fn, BINARY_LOSSES):
        codes, classes = pd.Series(y).factorize(sort=True)
        if isinstance(loss_fn, BINARY_LOSSES) and len(classes) > 2:
            raise DataError(f"{type(loss_fn).__name__} needs a binary target, "
                            f"got {len(classes)} distinct values")
        if long_target and len(classes) > out_units:
            raise ModelSpecError(f"the target has {len(classes)} classes but the model outputs "
                                 f"{out_units} values per sample")
        classes = common.jsonable_list(classes)
        if long_target:
            return codes.astype(np.int64), "classification", classes
        target = codes.astype(np.float32)
        return target.reshape((-1,) + out_shape) if out_units == 1 else target, "classification", classes
    if not pd.api.types.is_numeric_dtype(y):
        raise DataError(f"{type(loss_fn).__name__} needs a numeric target, got dtype {y.dtype}")
    if isinstance(loss_fn, REGRESSION_LOSSES) and out_units != 1:
        raise ModelSpecError(f"regression on one target column needs a model with one output, "
                             f"got {out_units} outputs per sample")
    target = y.to_numpy(dtype=np.float32)
    return (target.reshape((-1,) + out_shape) if out_units == 1 else target), "regression", None


def _bind_optimizer(opt, model: nn.Module, device: torch.device) -> None:
    """Make sure ``opt`` updates the parameters the loop trains, with its state on ``device``.

    ``Module.to`` keeps Parameter identities (it swaps ``.data`` in place, or swaps tensors
    under ``torch.__future__``), so an optimizer built on the CPU model still points at the
    moved parameters. If model and optimizer were unpickled separately the identities differ;
    then the optimizer is rebound by position (the order ``model.parameters()`` gives).
    """
    model_params = list(model.parameters())
    own = {id(p) for p in model_params}
    opt_params = [p for g in opt.param_groups for p in g["params"]]
    if not all(id(p) in own for p in opt_params):
        if len(opt_params) != len(model_params) or any(
                a.shape != b.shape for a, b in zip(opt_params, model_params)):
            raise ModelSpecError("the optimizer does not hold this model's parameters",
                                 hint="create it as torch.optim.X(model.parameters(), ...)")
        new = {id(a): b for a, b in zip(opt_params, model_params)}
        for g in opt.param_groups:
            g["params"] = [new[id(p)] for p in g["params"]]
        opt.state = defaultdict(dict, {new[id(p)]: s for p, s in opt.state.items()})
    for state in opt.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                state[k] = v.to(device)


def _optimizer(spec: TrainSpec, model: nn.Module, device: torch.device):
    if spec.optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ModelSpecError("the model has no trainable parameters")
        fused = {"fused": True} if device.type == "cuda" else {}
        return torch.optim.AdamW(params, lr=spec.lr or 1e-3, **fused)
    opt = spec.optimizer
    if not isinstance(opt, torch.optim.Optimizer):
        raise ModelSpecError(f"optimizer must be a torch.optim.Optimizer, got {type(opt).__name__}")
    _bind_optimizer(opt, model, device)
    if spec.lr is not None:
        for g in opt.param_groups:
            g["lr"] = spec.lr
    return opt


def _evaluate(model, loss_fn, X, y, task, threshold, batch_size):
    """(mean loss, accuracy or [r2, mse]) on held-out tensors; one host sync at the end."""
    model.eval()
    n = X.shape[0]
    loss_sum = torch.zeros((), device=X.device)
    stat = torch.zeros((), device=X.device, dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, n, batch_size):
            xb, yb = X[s:s + batch_size], y[s:s + batch_size]
            out = model(xb)
            loss_sum.add_(loss_fn(out, yb).detach(), alpha=xb.shape[0])
            if task == "classification":
                if yb.dtype == torch.int64:
                    pred = out.argmax(dim=1) if out.dim() > 1 and out.shape[1] > 1 else out.reshape(-1)
                    stat += (pred == yb).sum()
                else:
                    stat += ((out.reshape(-1) > threshold) == (yb.reshape(-1) > 0.5)).sum()
            else:
                stat += ((out.reshape(yb.shape) - yb).double() ** 2).sum()
    val_loss, s = torch.stack([loss_sum.double(), stat]).tolist()
    model.train()
    if task == "classification":
        return val_loss / n, {"val_accuracy": s / n}
    sst = float(((y.double() - y.double().mean()) ** 2).sum())
    return val_loss / n, {"val_r2": 1.0 - s / sst if sst > 0 else float("nan"), "val_mse": s / n}


def _final_metrics(task: str, train_loss: float, val_loss: float, val: dict) -> dict[str, float]:
    """The final metrics' names for one epoch: a sweep reads metric M from every epoch event."""
    if task == "classification":
        metrics = {"accuracy": val["val_accuracy"]}
    else:
        metrics = {"r2": val["val_r2"], "mse": val["val_mse"]}
    metrics.update(loss=train_loss, val_loss=val_loss)
    return metrics


def fit(spec: TrainSpec, data: pd.DataFrame, emit: Emit,
        should_stop: StopCheck | None = None, checkpoints=None) -> Fitted:
    """Train ``spec.model``; it ends on the CPU, in eval mode, ready for :mod:`.torch_export`.

    ``should_stop`` is asked after each epoch's event and at the ~1 s progress tick, never per
    batch (the loop is benchmarked against a hand-written one). A stop at the tick drops the
    partial epoch from the history; the metrics then describe the model as it is.

    *checkpoints* (:class:`~.checkpoints.JobCheckpoints`): the state is saved after each epoch
    (when due), and a checkpoint found at the start is resumed from — the job's earlier run
    died with its worker. A "resumed" event says from which epoch.
    """
    model: nn.Module = spec.model
    if spec.epochs < 1 or spec.batch_size < 1:
        raise ModelSpecError(f"epochs and batch_size must be >= 1 (got {spec.epochs}, {spec.batch_size})")
    X_df, y = common.features_and_target(spec, data)
    X_all = _features(X_df)
    device = _device(spec)
    torch.manual_seed(spec.seed)
    model.to(device)

    out_shape, out_units = probe_output(model, X_all, device)
    loss_fn = _choose_loss(spec, model, y, out_units)
    target, task, classes = _prepare_target(loss_fn, y, out_shape, out_units)
    threshold = 0.0 if isinstance(loss_fn, nn.BCEWithLogitsLoss) else 0.5
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    opt = _optimizer(spec, model, device)

    idx_train, idx_test, _, _ = common.split(spec, np.arange(len(y)), y, task == "classification")
    X_tr = torch.from_numpy(X_all[idx_train]).to(device)
    y_tr = torch.from_numpy(target[idx_train]).to(device)
    X_te = torch.from_numpy(X_all[idx_test]).to(device)
    y_te = torch.from_numpy(target[idx_test]).to(device)
    n_eval = epoch_eval_size(spec, len(idx_train), len(idx_test))
    sample = {"val_rows": n_eval} if n_eval < len(idx_test) else {}  # noted in each sampled epoch's event
    n, bs, epochs = X_tr.shape[0], spec.batch_size, spec.epochs
    eval_bs = eval_batch_size(bs)
    # A trailing batch of one sample breaks BatchNorm; it is reshuffled next epoch anyway.
    stop = n - 1 if n > bs and n % bs == 1 else n
    gen = torch.Generator(device=device)
    gen.manual_seed(spec.seed)

    emit({"stage": "fit", "progress": 0.0, "device": str(device), "n_train": n})
    history: list[dict] = []
    metrics: dict[str, float] = {}
    stopped = False
    first = 1
    resumed = checkpoints.load() if checkpoints is not None else None
    if resumed is not None:
        restore(resumed, model, opt, gen)
        history, first = resumed.history, resumed.epoch + 1
        metrics = dict(history[-1]["metrics"]) if history else {}
        emit({"stage": "resumed", "epoch": resumed.epoch, "epochs": epochs, "progress": resumed.epoch / epochs})
    model.train()
    for epoch in range(first, epochs + 1):
        t0 = last = time.perf_counter()
        perm = torch.randperm(n, device=device, generator=gen)
        loss_sum = torch.zeros((), device=device)
        done = 0
        for start in range(0, stop, bs):
            idx = perm[start:start + bs]
            loss_sum.add_(train_step(model, loss_fn, opt, X_tr[idx], y_tr[idx]), alpha=min(bs, stop - start))
            now = time.perf_counter()
            if now - last >= PROGRESS_INTERVAL_S:
                last = now
                emit({"stage": "train", "epoch": epoch, "epochs": epochs,
                      "progress": (epoch - 1 + start / n) / epochs})
                if should_stop is not None and should_stop():
                    stopped, done = True, min(start + bs, stop)
                    break
        if stopped:  # mid-epoch: no epoch event; measure the model we hand back
            val_loss, val = _evaluate(model, loss_fn, X_te, y_te, task, threshold, eval_bs)
            metrics = _final_metrics(task, loss_sum.item() / done, val_loss, val)
            break
        train_loss = loss_sum.item() / stop
        seconds = time.perf_counter() - t0
        rows = n_eval if epoch < epochs else len(idx_test)
        val_loss, val = _evaluate(model, loss_fn, X_te[:rows], y_te[:rows], task, threshold, eval_bs)
        metrics = _final_metrics(task, train_loss, val_loss, val)
        event = {"stage": "epoch", "epoch": epoch, "epochs": epochs, "loss": train_loss,
                 "val_loss": val_loss, **val, "metrics": metrics, "progress": epoch / epochs,
                 "seconds": seconds, "samples_per_s": stop / seconds if seconds > 0 else float("inf"),
                 **(sample if epoch < epochs else {})}
        history.append(event)
        emit(event)
        if should_stop is not None and epoch < epochs and should_stop():
            stopped = True  # before a save: a stopped job's checkpoints may already be gone
            if sample:  # the model handed back is measured on every held-out row
                val_loss, val = _evaluate(model, loss_fn, X_te, y_te, task, threshold, eval_bs)
                metrics = _final_metrics(task, train_loss, val_loss, val)
            break
        if checkpoints is not None and epoch < epochs and checkpoints.due():
            if not checkpoints.save(model, opt, gen, epoch, history):
                emit({"stage": "warning", "message": f"no checkpoints for this job: {checkpoints.disabled}"})

    export = {"input_dim": X_all.shape[1], "out_units": out_units, "out_shape": out_shape,
              "loss_name": type(loss_fn).__name__, "threshold": threshold,
              "sample": (X_te if len(X_te) else X_tr)[:5].cpu()}
    return fitted(spec, model, opt, loss_fn, task=task, classes=classes, feature_names=[str(c) for c in X_df.columns],
                  history=history, metrics=metrics, stopped=stopped, resumed=resumed, checkpoints=checkpoints,
                  n_train=n, n_test=len(idx_test), device=device, export=export)


def train_step(model: nn.Module, loss_fn, opt, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One optimizer step on the batch ``(X, y)``; its loss, detached and left on the device (a
    ``.item()`` per batch would wait for the device: the callers sum it and read it once an epoch)."""
    loss = loss_fn(model(X), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def probe_output(model: nn.Module, X: np.ndarray, device) -> tuple[tuple, int]:
    """The model's output shape and size per row, from one forward on two rows (in eval mode),
    and a clear error if the input does not suit it."""
    model.eval()
    try:
        with torch.no_grad():
            probe = model(torch.tensor(X[:2], device=device))
    except Exception as e:  # user code: surface whatever it raised as a spec problem
        raise ModelSpecError(f"the model failed on a batch of shape {tuple(X[:2].shape)}: "
                             f"{type(e).__name__}: {e}") from e
    if not isinstance(probe, torch.Tensor):
        raise ModelSpecError(f"the model must return a tensor, got {type(probe).__name__}")
    out_shape = tuple(probe.shape[1:])
    return out_shape, int(np.prod(out_shape)) if out_shape else 1


def fitted(spec: TrainSpec, model: nn.Module, opt, loss_fn, *, task: str, classes, feature_names: list,
           history: list, metrics: dict, stopped: bool, resumed, checkpoints, n_train: int, n_test: int,
           device, export: dict, extra: dict | None = None) -> Fitted:
    """The trained model as a :class:`Fitted` (on the CPU, in eval mode), with the params and
    lineage a torch job records: shared by the in-memory and the streaming trainer."""
    model.to("cpu").eval()
    params = {"epochs": spec.epochs, "batch_size": spec.batch_size, "lr": common.jsonable(opt.param_groups[0].get("lr")),
              "optimizer": type(opt).__name__, "loss": type(loss_fn).__name__,
              "n_parameters": sum(p.numel() for p in model.parameters()),
              "module": type(model).__name__, "seed": spec.seed}
    extra = {"task": task, "classes": classes, "feature_names": feature_names,
             "target": spec.target, "module_class": f"{type(model).__module__}.{type(model).__qualname__}",
             **(extra or {})}
    if stopped:
        extra.update(stopped=True, epochs_run=len(history))
    if resumed is not None:
        extra["resumed_from_epoch"] = resumed.epoch
    if checkpoints is not None:
        extra["checkpoints"] = {"saves": checkpoints.saves, "seconds": round(checkpoints.seconds, 4),
                                "disabled": checkpoints.disabled}
    return Fitted(framework="torch", model=model, params=params, metrics=metrics, n_train=n_train,
                  n_test=n_test, device=str(device), history=history, extra=extra,
                  stopped=stopped, epochs_run=len(history), export=export)
