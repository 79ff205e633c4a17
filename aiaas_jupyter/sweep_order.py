"""The order a whole grid runs in: the longest trials first.

Why: a grid's result does not depend on the order its points run in, but its wall time does.
With W workers the sweep ends when the last trial does; started last, the one big trial leaves
W - 1 workers idle for its whole length (W3's 40-tree, depth-16 forest takes 15 times as long as
its 5-tree, depth-4 one). Longest-first (Graham's LPT rule) keeps the tail short: the last trials
to start are the shortest.

Costs are unknown before a trial runs, so they are predicted: log(seconds) as a linear function of
the log of each positive numeric hyper-parameter, fitted by ridge regression towards a prior in
which every such knob costs in proportion to its value (``n_estimators``, ``max_depth``,
``epochs``, ``width``...). The prior orders the first trials; every finished trial's seconds
correct it, so a knob that makes trials cheaper (``min_samples_leaf``) or changes nothing
(``lr``) gets its weight from the data after a few trials. Points predicted alike keep the grid's
seeded shuffled order.

Only a whole grid without early stopping is reordered: a grid cut short by ``--trials`` keeps the
shuffle so that it still covers the space evenly, and under ASHA/Hyperband the order decides which
trials get promoted, which must not depend on their cost.
"""

from __future__ import annotations

import math
from typing import Any

#: how strongly the prior "cost grows with each knob's value" holds against the observed seconds
RIDGE = 1.0


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)


class LongestFirst:
    """Picks the next grid point: the one predicted to take longest."""

    def __init__(self, axes: dict[str, list]):
        #: the axes the cost model reads: numeric, positive, more than one value
        self.knobs = [name for name, values in axes.items()
                      if len(set(values)) > 1 and all(_positive_number(v) for v in values)]
        self._seen: list[tuple[list[float], float]] = []  # (log knobs, log seconds) per finished trial

    @classmethod
    def applies(cls, axes: dict[str, list]) -> bool:
        return bool(cls(axes).knobs)

    def _features(self, point: dict) -> list[float]:
        return [math.log(point[k]) for k in self.knobs]

    def observe(self, point: dict, seconds: float | None) -> None:
        """A finished trial of *point* took *seconds*."""
        if seconds is None or not math.isfinite(seconds) or not all(_positive_number(point.get(k)) for k in self.knobs):
            return
        self._seen.append((self._features(point), math.log(max(seconds, 1e-3))))

    @property
    def n_observed(self) -> int:
        return len(self._seen)

    def weights(self) -> list[float]:
        """Each knob's exponent in the cost model: 1 each before anything was observed."""
        import numpy as np

        k = len(self.knobs)
        if not self._seen:
            return [1.0] * k
        X = np.array([f for f, _ in self._seen], dtype=float)
        y = np.array([s for _, s in self._seen], dtype=float)
        Xc, yc = X - X.mean(axis=0), y - y.mean()  # the intercept is free, only the exponents are pulled
        b = np.linalg.solve(Xc.T @ Xc + RIDGE * np.eye(k), Xc.T @ yc + RIDGE * np.ones(k))
        return [float(v) for v in b]

    def take(self, pending: list[dict]) -> dict:
        """Remove and return the point of *pending* predicted to take longest (the first of equals)."""
        w = self.weights()
        costs = [sum(wi * fi for wi, fi in zip(w, self._features(p))) for p in pending]
        best = max(range(len(pending)), key=lambda i: (round(costs[i], 9), -i))
        return pending.pop(best)


__all__ = ["LongestFirst", "RIDGE"]
