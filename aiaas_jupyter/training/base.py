"""What a trainer receives and returns.

A trainer runs *on a Dask worker*. It gets a :class:`TrainSpec` (the user's model objects
and options, shipped by Dask from the kernel) and the training data as a pandas DataFrame,
and returns a :class:`TrainResult` holding only plain data: JSON-able dicts and artifact
*bytes* already in a safe format (skops / safetensors / ONNX). The kernel never receives a
live model object from a worker, so registering never unpickles a model.

Training is two steps, ``fit`` (-> :class:`Fitted`, the live model on the worker) and
``package`` (-> :class:`TrainResult`, the safe bytes), because a sweep fits many trials and
exports only the best: exporting ONNX for every pruned trial would waste most of its time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from ..train_defaults import TRAIN_DEFAULTS as D

#: the event a data-parallel rank sends once it is in its group (training/torch_ddp.py): until then
#: nothing bounds gloo's connecting to its peers but gloo's own 10 minutes (seen: a peer advertised
#: 127.0.0.1), so the rank's watcher (rank_process) bounds it
JOINED = "joined"

#: ``emit(event)`` sends a progress event (a JSON-able dict) to the kernel.
Emit = Callable[[dict], None]

#: ``should_stop()`` is asked between epochs/steps (and at the ~1 s progress tick of a torch
#: epoch); True ends the fit early with the model as it is (a pruned or cancelled trial).
StopCheck = Callable[[], bool]


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
    #: > 0: fit an iterative scikit-learn estimator in increments, scoring after each (sweeps
    #: prune on those scores); 0 or a non-iterative estimator: one plain fit
    steps: int = 0
    #: torch: the held-out rows each epoch but the last is evaluated on (the first ones of the
    #: shuffled held-out split, so a seeded random sample); None: all of them. The last epoch,
    #: and so the registered metrics, always use all. Evaluating every row after every epoch
    #: cost a 100k-row job 9% of its training time (W1). Sweeps keep None: their rungs compare
    #: trials on the same rows as their final metrics.
    epoch_eval_rows: int | None = None
    #: torch: the sample is also kept to about this share of an epoch's training time (a forward
    #: pass costs about a third of a training step per row, so at most 3 x share x training rows,
    #: and never fewer than ``EPOCH_EVAL_MIN_ROWS``); None: no such bound. The 10,000-row sample
    #: still cost a 100k-row job ~4% of its training (W1); a 2M-row job keeps all 10,000.
    epoch_eval_share: float | None = None


#: the smallest per-epoch sample :attr:`TrainSpec.epoch_eval_share` leaves (or every held-out row,
#: when there are fewer): an accuracy near 0.9 measured on 2,000 rows is within ~0.7% (one s.e.)
EPOCH_EVAL_MIN_ROWS = 2000


def epoch_eval_size(spec: TrainSpec, n_train: int, n_test: int) -> int:
    """How many held-out rows a torch job's epochs but the last are measured on."""
    size = n_test
    if spec.epoch_eval_rows is not None:
        size = min(size, spec.epoch_eval_rows)
    if spec.epoch_eval_share is not None:
        size = min(size, max(EPOCH_EVAL_MIN_ROWS, math.ceil(round(3 * spec.epoch_eval_share * n_train, 6))))
    return max(1, size)


#: the fewest rows a held-out evaluation batch holds (a small training batch would make it slow)
EVAL_MIN_BATCH = 4096


def eval_batch_size(batch_size: int) -> int:
    """Rows per forward when a torch job measures its held-out rows: the training batch, or
    :data:`EVAL_MIN_BATCH` if that is larger. Not more: on the CPU a larger batch needs larger
    activation buffers than the training steps left in the allocator, and glibc maps and faults
    them in afresh each time (W1's 20,000 held-out rows: 93 ms in batches of 8,192 against 132 ms,
    and up to 257 ms, in one of 32,768; 6 alternating runs each). Every torch trainer uses it."""
    return max(batch_size, EVAL_MIN_BATCH)


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


@dataclasses.dataclass
class Fitted:
    """A fitted model still alive on the worker, with everything ``package`` needs to export it.

    ``metrics`` describe the model as it is: the last complete epoch/step's, or, after a stop
    at a torch progress tick (mid-epoch), an evaluation of the partly trained model, which
    ``package`` would export (that partial epoch is in neither the events nor ``history``).
    """
    framework: str                      # "sklearn" | "torch"
    model: Any                          # the live fitted estimator / module (torch: on the CPU)
    params: dict[str, Any]
    metrics: dict[str, float]
    n_train: int
    n_test: int
    device: str = "cpu"
    history: list[dict] = dataclasses.field(default_factory=list)  # per-epoch/step events
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    stopped: bool = False               # should_stop() ended the fit early
    epochs_run: int = 0                 # complete epochs (torch) / steps (sklearn; 1 for a plain fit)
    export: dict[str, Any] = dataclasses.field(default_factory=dict)  # framework-private inputs of package()
