"""The worker side of a sweep: one trial per task, a stop flag per trial, the best model kept here.

Functions that run on Dask workers live in the package (every process of the cluster imports it;
see :mod:`.remote`). Why each piece is shaped as it is:

* **Stop flags are worker-local** (:func:`stop_trial`, run on the trial's worker with
  ``client.run``): the trial checks a ``threading.Event`` after each epoch, which costs nothing —
  no scheduler round trip per epoch, no client inside the task.
* **At a rung the trial waits for the verdict** (:func:`go_on` or :func:`stop_trial`): the pruner
  decides only at rung epochs (grace x 4^k), so there, and only there, the trial holds its next
  epoch for one round trip to the kernel; a pruned trial then ends at the rung instead of one
  epoch later, and its worker goes straight to the next trial. A kernel that does not answer
  within :data:`VERDICT_WAIT_S` does not hold the worker: the trial goes on.
* **Only the best model of each worker is kept** (:data:`_BEST`), as the fitted object, not as
  bytes: serialising every trial's model (skops for a forest, ONNX export for a network) would cost
  more than many fits. At the end the kernel asks the worker that holds the overall best to
  package it (:func:`export_trial`); if that worker died, the best parameters are fitted again.
* **A forest grid over ``n_estimators`` fits each ladder once** (:func:`ladder_task`): the first n
  trees of a seeded forest are the n-tree forest (:mod:`.training.forest_prefix`), so the points
  that differ only in ``n_estimators`` are one task that fits the largest and reads the others off it.
* **One event topic per sweep** (:func:`sweep_topic`): one subscription, whatever the trial count.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from typing import Any, Callable

#: the keys of a space that set the training loop rather than the model (torch, and partial_fit)
TRAIN_KEYS = ("lr", "batch_size", "epochs")

#: the longest a trial waits at a rung for the kernel's verdict before it goes on
VERDICT_WAIT_S = 5.0

_lock = threading.Lock()
_STOP: dict[tuple[str, int], threading.Event] = {}
_VERDICT: dict[tuple[str, int], threading.Event] = {}
_BEST: dict[str, tuple[float, int, Any]] = {}  # sweep id -> (value, trial number, Fitted)


def sweep_topic(sweep_id: str) -> str:
    return f"aiaas-sweep-{sweep_id}"


def trial_key(sweep_id: str, number: int) -> str:
    return f"aiaas-trial-{sweep_id}-{number}"


@dataclasses.dataclass
class TrialPlan:
    """What every trial of one sweep shares (shipped to the workers once, as a Dask future)."""

    sweep_id: str
    spec: Any                       # a TrainSpec: model, target, loss, test_size, seed, epochs, ...
    make_model: Callable | None     # torch: make_model(params) -> nn.Module (the cell's function)
    metric: str
    direction: str
    keep_best: bool = True
    rungs: tuple[int, ...] = ()     # epochs (steps) at which the pruner may stop a trial


def _stop_event(sweep_id: str, number: int) -> threading.Event:
    with _lock:
        return _STOP.setdefault((sweep_id, number), threading.Event())


def _verdict_event(sweep_id: str, number: int) -> threading.Event:
    with _lock:
        return _VERDICT.setdefault((sweep_id, number), threading.Event())


def stop_trial(sweep_id: str, number: int) -> bool:
    """Run on a worker (``client.run``): ask the trial to stop after its current epoch (at once,
    if it waits at a rung)."""
    _stop_event(sweep_id, number).set()
    _verdict_event(sweep_id, number).set()
    return True


def go_on(sweep_id: str, number: int) -> bool:
    """Run on a worker (``client.run``): the pruner let the trial waiting at a rung go on."""
    _verdict_event(sweep_id, number).set()
    return True


def drop_sweep(sweep_id: str) -> int:
    """Run on every worker when a sweep ends: forget its stop flags and kept model."""
    with _lock:
        for flags in (_STOP, _VERDICT):
            for key in [k for k in flags if k[0] == sweep_id]:
                del flags[key]
        return int(_BEST.pop(sweep_id, None) is not None)


def build_spec(plan: TrialPlan, params: dict):
    """The trial's TrainSpec: the plan's, with the trial's parameters put where they belong."""
    from .training import detect_framework

    spec = copy.copy(plan.spec)
    train = {k: v for k, v in params.items() if k in TRAIN_KEYS}
    rest = {k: v for k, v in params.items() if k not in TRAIN_KEYS}
    if plan.make_model is not None:
        import torch

        torch.manual_seed(spec.seed)  # the trial's network starts from the seed, as a train job's
        spec.model = plan.make_model(dict(params))  # it sees every parameter, training ones too
        rest = {}
    elif detect_framework(spec.model) == "sklearn":
        from sklearn.base import clone

        spec.model = clone(spec.model).set_params(**rest)
        rest = {}
    else:
        spec.model = copy.deepcopy(spec.model)
    if rest:  # a torch space that reaches into the network needs make_model
        from .errors import SweepError

        raise SweepError(f"parameters {', '.join(sorted(rest))} are not training options "
                         f"({', '.join(TRAIN_KEYS)})", hint="define make_model(params) in the cell to build "
                                                           "the network from them")
    for key, value in train.items():
        setattr(spec, key, value)
    return spec


def trial_task(plan: TrialPlan, data, number: int, params: dict) -> dict:
    """Fit one trial on this worker; stream each epoch's metrics to the kernel; keep the model
    if it is the best this worker has seen in this sweep. Returns plain data only."""
    from distributed import get_worker

    return _run_trial(plan, data, number, params, get_worker(), time.time())[0]


def ladder_task(plan: TrialPlan, data, numbers: list[int], params: list[dict]) -> dict:
    """Run the trials of one forest ladder (:mod:`.training.forest_prefix`) as one fit: the
    first trial is the largest forest, fitted as any trial; each other trial, the same point
    with fewer trees, is that forest's prefix, scored on the same held-out split. Returns
    ``{"trials": {number: the trial's result}}``; a failed or stopped first trial ends them all
    the same way."""
    from distributed import get_worker

    from .training.forest_prefix import prefix

    worker, started = get_worker(), time.time()
    for number in numbers[1:]:
        worker.log_event(sweep_topic(plan.sweep_id), {"number": number, "stage": "start", "worker": worker.address})
    top, fitted = _run_trial(plan, data, numbers[0], params[0], worker, started)
    out = {numbers[0]: top}
    for number, point in zip(numbers[1:], params[1:]):
        t0 = time.time()
        if fitted is None or top["stopped"] or _stop_event(plan.sweep_id, number).is_set():
            out[number] = {**top, "number": number, "value": None, "metrics": {}, "stopped": "error" not in top}
            continue
        sub = prefix(fitted, int(point["n_estimators"]), build_spec(plan, point), data)
        value = sub.metrics.get(plan.metric)
        if plan.keep_best and value is not None:
            _keep_if_best(plan, number, float(value), sub)
        out[number] = {"number": number, "stopped": False, "value": value, "metrics": sub.metrics, "epochs_run": 1,
                       "worker": worker.address, "seconds": time.time() - t0, "prefix_of": numbers[0]}
    return {"trials": out}


def _run_trial(plan: TrialPlan, data, number: int, params: dict, worker, started: float):
    """One trial's fit on *worker*: ``(result dict, Fitted or None)``."""
    from .remote import use_worker_threads
    from .training import fit

    topic = sweep_topic(plan.sweep_id)
    stop = _stop_event(plan.sweep_id, number)
    verdict = _verdict_event(plan.sweep_id, number)

    def emit(event: dict) -> None:
        if event.get("stage") == "epoch":
            worker.log_event(topic, {"number": number, "epoch": event.get("epoch"),
                                     "metrics": event.get("metrics") or {}, "worker": worker.address,
                                     "seconds": round(time.time() - started, 3)})
            if event.get("epoch") in plan.rungs:  # the trainer asks should_stop right after this
                verdict.wait(VERDICT_WAIT_S)
                verdict.clear()

    worker.log_event(topic, {"number": number, "stage": "start", "worker": worker.address})
    use_worker_threads(worker)
    try:
        spec = build_spec(plan, params)
        if stop.is_set():  # stopped (cancelled) while the worker was still importing / building
            return {"number": number, "stopped": True, "value": None, "metrics": {}, "epochs_run": 0,
                    "worker": worker.address, "seconds": time.time() - started}, None
        fitted = fit(spec, data, emit, should_stop=stop.is_set)
    except Exception as exc:  # noqa: BLE001 - the trial's outcome, one line; the sweep goes on
        from .errors import AiaasError
        from .tracebacks import one_line

        return {"number": number, "error": str(exc) if isinstance(exc, AiaasError) else one_line(exc),
                "stopped": False, "value": None, "metrics": {}, "epochs_run": 0, "worker": worker.address,
                "seconds": time.time() - started}, None
    value = fitted.metrics.get(plan.metric)
    if not fitted.stopped and plan.keep_best and value is not None:
        _keep_if_best(plan, number, float(value), fitted)
    return {"number": number, "stopped": bool(fitted.stopped), "value": value, "metrics": fitted.metrics,
            "epochs_run": fitted.epochs_run, "worker": worker.address, "seconds": time.time() - started}, fitted


def _keep_if_best(plan: TrialPlan, number: int, value: float, fitted) -> None:
    with _lock:
        held = _BEST.get(plan.sweep_id)
        if held is None or (value > held[0] if plan.direction == "max" else value < held[0]):
            _BEST[plan.sweep_id] = (value, number, fitted)


def export_trial(plan: TrialPlan, data, number: int, params: dict):
    """Package the kept model of trial *number* (skops / safetensors + ONNX) for registration;
    fit it again from *params* if this worker does not hold it (it restarted). Returns
    ``(TrainResult, "kept" | "retrained")``."""
    from distributed import get_worker

    from .training import fit, package

    with _lock:
        held = _BEST.get(plan.sweep_id)
    if held is not None and held[1] == number:
        result, how = package(held[2], data), "kept"
    else:
        result, how = package(fit(build_spec(plan, params), data, lambda event: None), data), "retrained"
    result.extra.update(worker=get_worker().address)
    return result, how


__all__ = ["TrialPlan", "trial_task", "ladder_task", "export_trial", "stop_trial", "go_on", "VERDICT_WAIT_S",
           "drop_sweep", "sweep_topic", "trial_key", "build_spec", "TRAIN_KEYS"]
