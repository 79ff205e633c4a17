"""Forms stay reproducible: every form's settings become the equivalent ``%%aiaas train`` cell.

One function writes that cell for the TrainForm, for JobProgress's "Copy as magic" and for
anything else that needs it, so the text a form shows is exactly what the magic parser reads
(`aiaas_jupyter.magics.parser`); arguments equal to the parser's defaults
(:data:`aiaas_jupyter.train_defaults.TRAIN_DEFAULTS`, the one source) are left out.
"""

from __future__ import annotations

import shlex

from ..train_defaults import TRAIN_DEFAULTS as D


def train_magic(*, data: str, target: str, body: str, name: str | None = None,
                test_size: float = D["test_size"], gpus: int = D["gpus"], epochs: int = D["epochs"],
                batch_size: int = D["batch_size"], lr: float | None = D["lr"], seed: int = D["seed"],
                block: bool = False, out: str | None = None) -> str:
    """The ``%%aiaas train ...`` cell (first line + ``body``, the code that defines ``model``)."""
    parts = ["%%aiaas", "train", "--data", data, "--target", target]
    if name:
        parts += ["--name", name]
    given = {"test_size": test_size, "gpus": gpus, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "seed": seed}
    for key, value in given.items():
        if value is not None and value != D[key]:
            parts += ["--" + key.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    if block:
        parts.append("--block")
    elif out:
        parts += ["-o", out]
    line = " ".join(shlex.quote(p) if p not in ("%%aiaas",) else p for p in parts)
    return f"{line}\n{body.rstrip()}\n"
