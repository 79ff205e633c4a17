"""The model server's Prometheus metrics (``GET /metrics``), with ``prometheus_client``.

What a platform engineer scrapes from MLServer or KServe, per model and version: requests by
route and status code, errors, latency histograms, batch sizes (requests and rows per model
call), queue depth and requests in flight. One :class:`ServerMetrics` per server, on its own
``CollectorRegistry`` (never the process-global one, so two servers in one test process do not
share counters). Queue depths are read at scrape time from the live deployments, so the hot path
only counts and observes. ``aiaas serve --workers N`` sums every process' series (multiprocess
mode: :class:`_Summed`).

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


class _Live:
    """A collector of what the live deployments are, read when scraped: each loaded version (and
    when it was loaded) and, with *depths*, its queue depth and whether a batch runs. Read from
    the deployments, not kept in gauges, so a version that leaves is gone from the next scrape
    however it left (redeploy, canary replaced, promote, rollback, undeploy)."""

    def __init__(self, live: Callable[[], Iterable], depths: bool):
        self._live, self._depths = live, depths

    def collect(self):
        info = GaugeMetricFamily("aiaas_deployment_info", "1 per deployed model version (a canary's too)",
                                 labels=["model", "version", "ref"])
        loaded = GaugeMetricFamily("aiaas_deployment_loaded_timestamp_seconds", "when the deployed version was "
                                   "loaded", labels=["model", "version"])
        queue = GaugeMetricFamily(*_QUEUE, labels=["model", "version"])
        running = GaugeMetricFamily(*_RUNNING, labels=["model", "version"])
        for dep in self._live():
            labels = [dep.name, str(dep.version)]
            info.add_metric([*labels, dep.ref], 1.0)
            loaded.add_metric(labels, dep.loaded_ts)
            queue.add_metric(labels, dep.batcher.queue_depth)
            running.add_metric(labels, 1.0 if dep.batcher.busy else 0.0)
        yield info
        yield loaded
        if self._depths:
            yield queue
            yield running


_QUEUE = ("aiaas_queue_depth", "requests waiting for the model's next batch")
_RUNNING = ("aiaas_batch_running", "1 while a batch of the model is running")


class _Summed:
    """``--workers N``: every process' counters, histograms and gauges summed from
    ``prometheus_client``'s files (multiprocess mode), the depths kept to the versions live now
    (a process writes its depths at each :data:`.peers.TICK_S`; a version gone keeps its file)."""

    def __init__(self, live: Callable[[], Iterable]):
        from prometheus_client import multiprocess

        self._files = multiprocess.MultiProcessCollector(None)
        self._live = live

    def collect(self):
        live = {(d.name, str(d.version)) for d in self._live()}
        for family in self._files.collect():
            if family.name in (_QUEUE[0], _RUNNING[0]):
                family.samples = [s for s in family.samples if (s.labels.get("model"), s.labels.get("version")) in live]
            yield family


class ServerMetrics:
    """The counters of one server process; ``live()`` gives its deployments. With
    *multiprocess* (``aiaas serve --workers N``, ``PROMETHEUS_MULTIPROC_DIR`` set before
    ``prometheus_client`` was imported) the exposition sums every process of the server."""

    def __init__(self, live: Callable[[], Iterable], multiprocess: bool = False):
        own = CollectorRegistry()  # never the process-global one
        labels = ["model", "version", "route"]
        self.requests = Counter("aiaas_requests", "requests answered, by status code", labels + ["code"],
                                registry=own)
        self.errors = Counter("aiaas_request_errors", "requests answered with a 4xx or 5xx", labels + ["code"],
                              registry=own)
        self.latency = Histogram("aiaas_request_duration_seconds", "time from request to answer", labels,
                                 buckets=LATENCY_BUCKETS, registry=own)
        self.in_flight = Gauge("aiaas_requests_in_flight", "requests being answered now", ["model", "version"],
                               registry=own, multiprocess_mode="livesum")
        self.batch_requests = Histogram("aiaas_batch_requests", "requests per model call (adaptive batching)",
                                        ["model", "version"], buckets=BATCH_BUCKETS, registry=own)
        self.batch_rows = Histogram("aiaas_batch_rows", "rows per model call", ["model", "version"],
                                    buckets=BATCH_BUCKETS, registry=own)
        self.multiprocess = multiprocess
        if multiprocess:
            self.queue = Gauge(*_QUEUE, ["model", "version"], registry=None, multiprocess_mode="livesum")
            self.running = Gauge(*_RUNNING, ["model", "version"], registry=None, multiprocess_mode="livemax")
            self.registry = CollectorRegistry()
            self.registry.register(_Summed(live))
        else:
            self.registry = own
        self.registry.register(_Live(live, depths=not multiprocess))
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

    def publish(self, loaded: Iterable) -> None:
        """``--workers N``: write this process' queue depths where the other processes sum them."""
        for dep in loaded:
            labels = (dep.name, str(dep.version))
            self.queue.labels(*labels).set(dep.batcher.queue_depth)
            self.running.labels(*labels).set(1.0 if dep.batcher.busy else 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
