"""Each deployment's traffic, read from the model server's ``/metrics`` for ``%aiaas endpoints``.

A Prometheus server would compute ``rate()`` and ``histogram_quantile()`` over a window; a notebook
has no Prometheus, so the same two are computed here between two looks: requests per second and
the 99th-percentile latency since the previous ``%aiaas endpoints`` of this kernel (within
:data:`WINDOW_S`), else since the version was loaded. The quantile interpolates linearly inside
the histogram bucket that holds it, as ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

#: an earlier look older than this is not used as the window's start
WINDOW_S = 600.0
#: the routes that are traffic (metadata and readiness calls of a model are not)
TRAFFIC_ROUTES = frozenset({"infer", "predict", "embeddings"})


@dataclass
class Sample:
    """One deployment's counters at one scrape."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count (all routes)
    loaded: float | None = None


def parse(text: str) -> dict[tuple[str, str], Sample]:
    """``(model, version)`` → :class:`Sample`, from the exposition text (model "" left out)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str], Sample] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            model, version = s.labels.get("model", ""), s.labels.get("version", "")
            if not model:
                continue
            sample = out.setdefault((model, version), Sample())
            if "route" in s.labels and s.labels["route"] not in TRAFFIC_ROUTES:
                continue
            if s.name == "aiaas_requests_total":
                sample.requests += s.value
            elif s.name == "aiaas_request_errors_total":
                sample.errors += s.value
            elif s.name == "aiaas_request_duration_seconds_bucket":
                le = float(s.labels["le"])
                sample.buckets[le] = sample.buckets.get(le, 0.0) + s.value
            elif s.name == "aiaas_deployment_loaded_timestamp_seconds":
                sample.loaded = s.value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float:
    """The q-quantile of a cumulative histogram ``{le: count}``; NaN when it is empty."""
    edges = sorted(buckets)
    if not edges or buckets[edges[-1]] <= 0:
        return math.nan
    total = buckets[edges[-1]]
    rank, lower, below = q * total, 0.0, 0.0
    for le in edges:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower  # in the open top bucket: its lower edge, as Prometheus answers
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = le, count
    return lower


@dataclass
class Traffic:
    requests: float
    per_s: float
    p99_s: float
    errors: float
    since: str  # "last look" or "loaded"


class TrafficWatch:
    """The previous look of one kernel, to compute the next one's window."""

    def __init__(self):
        self._last: tuple[float, dict[tuple[str, str], Sample]] | None = None

    def look(self, text: str, now: float | None = None) -> dict[tuple[str, str], Traffic]:
        now = time.time() if now is None else now
        current = parse(text)
        previous = self._last[1] if self._last is not None and now - self._last[0] <= WINDOW_S else {}
        since_t = self._last[0] if previous else None
        self._last = (now, current)
        out = {}
        for key, cur in current.items():
            prev = previous.get(key)
            if prev is not None and since_t is not None and now > since_t and cur.requests >= prev.requests:
                window = now - since_t
                delta = {le: cur.buckets.get(le, 0.0) - prev.buckets.get(le, 0.0) for le in cur.buckets}
                requests, since = cur.requests - prev.requests, "last look"
            else:
                window = now - cur.loaded if cur.loaded else math.nan
                delta, requests, since = cur.buckets, cur.requests, "loaded"
            per_s = requests / window if window and window > 0 else math.nan
            out[key] = Traffic(requests=cur.requests, per_s=per_s, p99_s=quantile(0.99, delta),
                               errors=cur.errors, since=since)
        return out
