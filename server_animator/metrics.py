"""Prometheus metrics of the API process: counts and durations only, labelled by route template (never an id)."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

disable_created_metrics()  # *_created series are noise for counters that start with the process


class Metrics:
    def __init__(self, job_counts: Callable[[], dict[str, int]], queue_pending: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = Counter("cogma_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("cogma_http_request_seconds", "HTTP request duration", ["method", "route"],
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.submissions = Counter("cogma_submissions_total", "Submissions by outcome", ["outcome"],
                                   registry=self.registry)
        self.erasures = Counter("cogma_erasures_total", "Erasures", ["kind"], registry=self.registry)
        self.registry.register(_JobCollector(job_counts, queue_pending))


class _JobCollector:
    """Jobs by status, read from the database at scrape time (the workers are other processes)."""

    def __init__(self, job_counts: Callable[[], dict[str, int]], queue_pending: Callable[[], int]):
        self.job_counts, self.queue_pending = job_counts, queue_pending

    def collect(self):
        jobs = GaugeMetricFamily("cogma_jobs", "Jobs by status", labels=["status"])
        for status, n in sorted(self.job_counts().items()):
            jobs.add_metric([status], n)
        yield jobs
        pending = GaugeMetricFamily("cogma_queue_pending", "Messages waiting in the queue")
        try:
            pending.add_metric([], self.queue_pending())
        except Exception:  # queue unreachable: readiness reports it; metrics stay up
            pending.add_metric([], float("nan"))
        yield pending

    def describe(self):
        return []
