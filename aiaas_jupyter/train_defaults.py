"""The defaults of a training job, in one place: the magic's parser, the Python API, the
trainer's ``TrainSpec``, the train form and "Copy as magic" all read them from here.

Stdlib only and import-free, so ``%load_ext`` (which builds the parser) stays light.
"""

from __future__ import annotations

from types import MappingProxyType

#: option -> default; ``lr=None`` means the optimizer's own default learning rate
TRAIN_DEFAULTS = MappingProxyType({
    "test_size": 0.2,
    "gpus": 0,
    "epochs": 10,
    "batch_size": 32,
    "lr": None,
    "seed": 0,
})
