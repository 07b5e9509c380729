"""Prometheus metrics of one server process (``GET /metrics``), on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Requests, inputs, tokens, batch sizes, queue depth and latencies.

    Attributes:
        registry: The registry ``/metrics`` renders.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "instructor_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=r
        )
        self.inputs = Counter(
            "instructor_inputs", "Inputs received in accepted requests, by route", ["route"], registry=r
        )
        self.tokens = Counter("instructor_tokens", "Tokens embedded (instructions included)", registry=r)
        self.embedded = Counter("instructor_inputs_embedded", "Inputs that went through a forward pass", registry=r)
        self.dropped = Counter(
            "instructor_inputs_dropped",
            "Queued inputs dropped before a forward pass: their client had gone",
            registry=r,
        )
        self.passes = Counter("instructor_forward_passes", "Forward passes of the model", registry=r)
        self.batch_size = Histogram("instructor_batch_size", "Inputs per forward pass", buckets=_SIZES, registry=r)
        self.batch_tokens = Histogram(
            "instructor_batch_tokens",
            "Padded tokens per forward pass",
            buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
            registry=r,
        )
        self.queue_depth = Gauge("instructor_queue_depth", "Inputs waiting in the queue", registry=r)
        self.latency = Histogram(
            "instructor_request_duration_seconds", "Request latency, by route", ["route"], buckets=_LATENCY, registry=r
        )
        self.forward_seconds = Histogram(
            "instructor_forward_seconds", "Seconds per forward pass", buckets=_LATENCY, registry=r
        )

    def observe_pass(self, inputs: int, padded_tokens: int, seconds: float) -> None:
        """One forward pass done."""
        self.passes.inc()
        self.embedded.inc(inputs)
        self.batch_size.observe(inputs)
        self.batch_tokens.observe(padded_tokens)
        self.forward_seconds.observe(seconds)
