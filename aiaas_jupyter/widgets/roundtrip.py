"""Forms stay reproducible: every form's settings become the equivalent ``%%aiaas train`` cell.

One function writes that cell for the TrainForm, for JobProgress's "Copy as magic" and for
anything else that needs it, so the text a form shows is exactly what the magic parser reads
(`aiaas_jupyter.magics.parser`); arguments equal to the parser's defaults are left out.
"""

from __future__ import annotations

import shlex

#: the ``train`` sub-parser's defaults (kept in step by a test in tests/test_widgets_train.py)
DEFAULTS = {"test_size": 0.2, "gpus": 0, "epochs": 10, "batch_size": 32, "lr": None, "seed": 0}


def train_magic(*, data: str, target: str, body: str, name: str | None = None, test_size: float = 0.2,
                gpus: int = 0, epochs: int = 10, batch_size: int = 32, lr: float | None = None,
                seed: int = 0, block: bool = False, out: str | None = None) -> str:
    """The ``%%aiaas train ...`` cell (first line + ``body``, the code that defines ``model``)."""
    parts = ["%%aiaas", "train", "--data", data, "--target", target]
    if name:
        parts += ["--name", name]
    given = {"test_size": test_size, "gpus": gpus, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "seed": seed}
    for key, value in given.items():
        if value is not None and value != DEFAULTS[key]:
            parts += ["--" + key.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    if block:
        parts.append("--block")
    elif out:
        parts += ["-o", out]
    line = " ".join(shlex.quote(p) if p not in ("%%aiaas",) else p for p in parts)
    return f"{line}\n{body.rstrip()}\n"
