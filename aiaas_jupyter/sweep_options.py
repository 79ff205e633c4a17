"""The choices of a sweep's options, in one place: the magic's parser (which must stay light:
``%load_ext`` builds it), the plan checks and the study read them from here. Stdlib only."""

from __future__ import annotations

SEARCHES = ("grid", "random", "tpe")
EARLY_STOPS = ("none", "asha", "hyperband")
DIRECTIONS = ("max", "min")
REGISTER = ("best", "none")
#: metrics where smaller is better (a sweep's default direction, the views' "best" marks)
LOWER_IS_BETTER = frozenset({"loss", "val_loss", "mse", "mae", "rmse", "log_loss"})

__all__ = ["SEARCHES", "EARLY_STOPS", "DIRECTIONS", "REGISTER", "LOWER_IS_BETTER"]
