"""What a TrainForm submits, taken apart from the widgets: the checks and the cell text.

Why apart: the rules ("no data chosen", "n_estimators must be ≥ 1", a bad model name, ...) and the
text of the equivalent cell are plain functions of the form's values; keeping them out of the
widget code keeps both small, and makes "the Train button and the cell do the same thing" visible
in one place: both come from the same :class:`Choices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..train_defaults import TRAIN_DEFAULTS as DEFAULTS
from . import catalog
from .namespace import columns
from .roundtrip import train_magic


class FormError(ValueError):
    """A value the form will not submit; its message is shown in the form."""


@dataclass
class Choices:
    """A snapshot of the form's values."""

    data: str | None
    target: str | None
    name: str                     # as typed ("" → the suggested name)
    model: str                    # catalog key
    ctx: catalog.Context
    values: dict                  # hyper-parameters, by key
    test_size: float
    gpus: int
    epochs: int
    batch_size: int
    lr: float
    seed: int

    @property
    def entry(self):
        return catalog.get(self.model)

    @property
    def framework(self) -> str:
        return self.entry.framework_of(self.ctx)

    def suggested_name(self) -> str | None:
        return f"{self.data}-{self.ctx.var or self.entry.short}" if self.data else None

    def final_name(self) -> str | None:
        return self.name.strip() or self.suggested_name()

    def options(self) -> dict:
        """``client.train`` keywords; the PyTorch ones stay at their defaults for scikit-learn."""
        torch = self.framework == "torch"
        return {"test_size": round(self.test_size, 4), "gpus": self.gpus,
                "epochs": self.epochs if torch else DEFAULTS["epochs"],
                "batch_size": self.batch_size if torch else DEFAULTS["batch_size"],
                "lr": self.lr if torch else DEFAULTS["lr"], "seed": self.seed}

    def body(self) -> str:
        """The cell body (what the magic passes to the façade as ``source``)."""
        return self.entry.code(self.ctx, self.values).rstrip() + "\n"


@dataclass
class TrainRequest:
    """Everything one Train click submits, already checked."""

    model: Any
    data: str
    target: str
    name: str
    body: str
    options: dict
    magic: str


def cell(c: Choices, *, block: bool = False, out: str | None = None) -> str:
    """The ``%%aiaas train`` cell ("" until data and target, and a variable if needed, are chosen)."""
    if c.data is None or c.target is None or c.ctx.info is None or (c.model == "variable" and c.ctx.var is None):
        return ""
    return train_magic(data=c.data, target=c.target, body=c.body(), name=c.final_name(), block=block, out=out,
                       **c.options())


def _number_problem(c: Choices) -> str | None:
    """The first option outside the bounds ``%%aiaas train`` accepts, so "Copy as magic" never
    writes a cell the parser refuses, and a 4294967296-epoch job is never submitted."""
    import math

    from ..magics.bounds import MAX_COUNT, MAX_LR, MAX_SEED

    if not 0 <= c.seed <= MAX_SEED:
        return f"seed must be from 0 to {MAX_SEED}, got {c.seed}"
    if c.framework != "torch":
        return None
    for label, value, ok, rule in (
            ("epochs", c.epochs, 1 <= c.epochs <= MAX_COUNT, f"from 1 to {MAX_COUNT}"),
            ("batch size", c.batch_size, 1 <= c.batch_size <= MAX_COUNT, f"from 1 to {MAX_COUNT}"),
            ("learning rate", c.lr, math.isfinite(c.lr) and 0 < c.lr <= MAX_LR, f"in (0, {MAX_LR:g}]")):
        if not ok:
            return f"{label} must be {rule}, got {value}"
    return None


def check(c: Choices, namespace: dict, param_errors: list[str], build: bool = True) -> TrainRequest:
    """The checked request, or :class:`FormError` with the first problem.

    *build* False leaves ``model`` None: the cell text is all "Insert as cell" needs (and a
    PyTorch build would re-seed the notebook's torch generator for nothing).
    """
    from ..errors import AiaasError
    from ..registry import validate_name

    if c.data is None:
        raise FormError("choose the data: a DataFrame in the notebook (↻ looks again)")
    if c.data not in namespace:
        raise FormError(f"no DataFrame named {c.data!r} in the notebook any more (↻ looks again)")
    if c.target is None:
        raise FormError("choose the target column")
    if c.target not in columns(namespace[c.data]):
        raise FormError(f"target column {c.target!r} is not in {c.data}")
    try:
        name = validate_name(c.final_name())
    except AiaasError as exc:
        raise FormError(str(exc)) from None
    problem = c.entry.check(c.ctx, c.values) or next(iter(param_errors), None)
    if problem is None:
        problem = _number_problem(c)
    if problem:
        raise FormError(problem)
    try:
        model = c.entry.build(c.ctx, c.values) if build else None
    except Exception as exc:  # noqa: BLE001 - the estimator refused the values: say so in the form
        raise FormError(f"cannot build the model: {type(exc).__name__}: {exc}") from None
    return TrainRequest(model, c.data, c.target, name, c.body(), c.options(), cell(c))
