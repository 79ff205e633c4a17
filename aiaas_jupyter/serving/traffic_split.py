"""A canary: a second version of a deployment that takes a set share of its requests.

Why deterministic, not random: with a random draw per request, 10% of 2,000 requests lands
anywhere from ~170 to ~230; counting instead sends request n to the canary exactly when
``floor(n·p/100)`` steps up, so every window of requests holds the share to within one request,
and a test (or an operator reading the metrics) sees the split that was asked for. The counter
lives on the server's event loop, which routes every request: no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def check_percent(percent: Any) -> float:
    """A canary share in (0, 100); a ValueError with one line otherwise."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent < 100:
        raise ValueError(f"the canary's share must be a number of percent between 0 and 100 (exclusive), "
                         f"got {percent!r}")
    return float(percent)


@dataclass
class Canary:
    model: Any              #: the candidate's LoadedModel
    percent: float          #: its share of the deployment's requests
    seen: int = 0           #: requests routed since the split began

    def take(self) -> bool:
        """Whether the next request goes to the canary."""
        self.seen += 1
        return int(self.seen * self.percent / 100) > int((self.seen - 1) * self.percent / 100)
