"""Prometheus metrics of one gateway/guardrail instance (own registry, so tests can run many)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "antidistill_requests",
            "Requests handled, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "antidistill_decisions",
            "Policy decisions by enforced action",
            ["action", "dry_run"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "antidistill_request_latency_seconds",
            "End-to-end latency of proxied requests",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decision_latency = Histogram(
            "antidistill_decision_latency_seconds",
            "Guard + policy decision time",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "antidistill_state_store_errors",
            "Requests decided without the state store",
            registry=self.registry,
        )
        self.log_pending = Gauge(
            "antidistill_exchange_log_pending_rows",
            "Exchange rows buffered, not yet written",
            registry=self.registry,
        )

        # labelled children by label values: ``labels()`` validates and locks on every call
        self._children: dict[tuple[object, ...], Any] = {}

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per label combination."""
        key = (id(metric), *values)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*values)
        return c

    def render(self) -> bytes:
        return generate_latest(self.registry)
