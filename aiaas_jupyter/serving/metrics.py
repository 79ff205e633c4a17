"""The model server's Prometheus metrics (``GET /metrics``), with ``prometheus_client``.

What a platform engineer scrapes from MLServer or KServe, per model and version: requests by
route and status code, errors, latency histograms, batch sizes (requests and rows per model
call), queue depth and requests in flight. One :class:`ServerMetrics` per server, on its own
``CollectorRegistry`` (never the process-global one, so two servers in one test process do not
share counters). Queue depths are read at scrape time from the live deployments, so the hot path
only counts and observes.

The hot path's cost: the label children of a (model, version, route) are looked up once and
cached, so a request pays two ``observe``/``inc`` calls on objects it already holds.

``/metrics`` needs the server's bearer token like every other route (Prometheus:
``authorization: {credentials_file: .../token}``, see docs/serving.md).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: latency buckets (seconds): sub-millisecond answers up to the request timeout
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Depths:
    """A collector: each live deployment's queue depth and in-flight requests, read when scraped."""

    def __init__(self, live: Callable[[], Iterable]):
        self._live = live

    def collect(self):
        queue = GaugeMetricFamily("aiaas_queue_depth", "requests waiting for the model's next batch",
                                  labels=["model", "version"])
        running = GaugeMetricFamily("aiaas_batch_running", "1 while a batch of the model is running",
                                    labels=["model", "version"])
        for dep in self._live():
            labels = [dep.name, str(dep.version)]
            queue.add_metric(labels, dep.batcher.queue_depth)
            running.add_metric(labels, 1.0 if dep.batcher.busy else 0.0)
        yield queue
        yield running


class ServerMetrics:
    """The counters of one server; ``live()`` gives its deployments (for queue depths)."""

    def __init__(self, live: Callable[[], Iterable]):
        self.registry = CollectorRegistry()
        labels = ["model", "version", "route"]
        self.requests = Counter("aiaas_requests", "requests answered, by status code", labels + ["code"],
                                registry=self.registry)
        self.errors = Counter("aiaas_request_errors", "requests answered with a 4xx or 5xx", labels + ["code"],
                              registry=self.registry)
        self.latency = Histogram("aiaas_request_duration_seconds", "time from request to answer", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("aiaas_requests_in_flight", "requests being answered now", ["model", "version"],
                               registry=self.registry)
        self.batch_requests = Histogram("aiaas_batch_requests", "requests per model call (adaptive batching)",
                                        ["model", "version"], buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_rows = Histogram("aiaas_batch_rows", "rows per model call", ["model", "version"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.deployed = Gauge("aiaas_deployment_info", "1 per deployed model version (a canary's too)",
                              ["model", "version", "ref"], registry=self.registry)
        self.loaded = Gauge("aiaas_deployment_loaded_timestamp_seconds", "when the deployed version was loaded",
                            ["model", "version"], registry=self.registry)
        self.registry.register(_Depths(live))
        self._children: dict[tuple, tuple] = {}
        self._codes: dict[tuple, object] = {}

    # -- the hot path ------------------------------------------------------------------------
    def entered(self, model: str, version: str) -> None:
        """A request is now bound to this version: one more in flight until :meth:`answered`."""
        self.in_flight.labels(model, version).inc()

    def answered(self, model: str, version: str, route: str, code: int, t0: float, counted: bool = True) -> None:
        """One answer: its latency and code (and the in-flight gauge down, when *counted*)."""
        key = (model, version, route)
        latency = self._children.get(key)
        if latency is None:
            latency = self._children[key] = self.latency.labels(model, version, route)
        latency.observe(time.perf_counter() - t0)
        ckey = (model, version, route, code)
        counter = self._codes.get(ckey)
        if counter is None:
            counter = self._codes[ckey] = self.requests.labels(model, version, route, str(code))
            if code >= 400:
                self.errors.labels(model, version, route, str(code))  # the series exists from its first error
        counter.inc()
        if code >= 400:
            self.errors.labels(model, version, route, str(code)).inc()
        if counted:
            self.in_flight.labels(model, version).dec()

    def batch_observer(self, model: str, version: str) -> Callable[[int, int], None]:
        """What a deployment's batcher calls after each model call: ``(requests, rows)``."""
        requests, rows = self.batch_requests.labels(model, version), self.batch_rows.labels(model, version)

        def observe(n_requests: int, n_rows: int) -> None:
            requests.observe(n_requests)
            rows.observe(n_rows)

        return observe

    # -- deployments coming and going --------------------------------------------------------
    def deployment(self, model: str, version: str, ref: str, present: bool) -> None:
        if present:
            self.deployed.labels(model, version, ref).set(1)
            self.loaded.labels(model, version).set(time.time())
            return
        for gauge, labels in ((self.deployed, (model, version, ref)), (self.loaded, (model, version))):
            try:
                gauge.remove(*labels)
            except KeyError:
                pass

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
