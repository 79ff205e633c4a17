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

#: ``emit(event)`` sends a progress event (a JSON-able dict) to the kernel.
Emit = Callable[[dict], None]


@dataclasses.dataclass
class TrainSpec:
    model: Any
    target: str
    optimizer: Any = None
    loss: Any = None
    test_size: float = 0.2
    seed: int = 0
    epochs: int = 10
    batch_size: int = 32
    lr: float | None = None
    gpus: int = 0


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
