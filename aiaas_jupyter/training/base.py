"""What a trainer receives and returns.

A trainer runs *on a Dask worker*. It gets a :class:`TrainSpec` (the user's model objects
and options, shipped by Dask from the kernel) and the training data as a pandas DataFrame,
and returns a :class:`TrainResult` holding only plain data: JSON-able dicts and artifact
*bytes* already in a safe format (skops / safetensors / ONNX). The kernel never receives a
live model object from a worker, so registering never unpickles a model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ..train_defaults import TRAIN_DEFAULTS as D

#: ``emit(event)`` sends a progress event (a JSON-able dict) to the kernel.
Emit = Callable[[dict], None]


@dataclasses.dataclass
class TrainSpec:
    model: Any
    target: str
    optimizer: Any = None
    loss: Any = None
    test_size: float = D["test_size"]
    seed: int = D["seed"]
    epochs: int = D["epochs"]
    batch_size: int = D["batch_size"]
    lr: float | None = D["lr"]
    gpus: int = D["gpus"]


@dataclasses.dataclass
class TrainResult:
    framework: str                      # "sklearn" | "torch"
    params: dict[str, Any]              # hyper-parameters (JSON-able)
    metrics: dict[str, float]           # held-out metrics
    artifacts: dict[str, bytes]         # file name -> bytes, safe formats only
    library_versions: dict[str, str]
    data_fingerprint: str               # sha256 of the training frame's content
    n_train: int
    n_test: int
    device: str = "cpu"
    history: list[dict] = dataclasses.field(default_factory=list)  # per-epoch events
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # task type, classes, ...
