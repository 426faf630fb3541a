"""Prometheus metrics of one gateway process, in their own registry (no import-time globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Fine below 100 ms, where a healthy pod's lag is (the 50 ms end-to-end target); every old bound is kept.
LAG_BUCKETS = (
    0.001, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
    0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
FANOUT_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "flashline_gateway_connections", "Open client connections on this pod (the HPA's metric)", registry=r
        )
        self.subscriptions = Gauge("flashline_gateway_subscriptions", "Client subscriptions on this pod", registry=r)
        self.channels = Gauge("flashline_gateway_channels", "Channels with a local subscriber", registry=r)
        self.known_channels = Gauge("flashline_gateway_known_channels", "Channels with state on this pod", registry=r)
        self.ready = Gauge("flashline_gateway_ready", "1 when warmed up and not draining", registry=r)
        self.publications = Counter(
            "flashline_gateway_publications_total", "Publications read from the push log", registry=r
        )
        self.duplicates = Counter(
            "flashline_gateway_duplicate_publications_total", "Publications dropped as already seen", registry=r
        )
        self.deliveries = Counter("flashline_gateway_deliveries_total", "Publications queued to clients", registry=r)
        self.disconnects = Counter(
            "flashline_gateway_disconnects_total", "Closed connections by close code", ["code"], registry=r
        )
        self.rejected = Counter(
            "flashline_gateway_rejected_connections_total",
            "Connections refused by admission control (3013/3001)",
            ["reason"],
            registry=r,
        )
        self.fanout_lag = Histogram(
            "flashline_gateway_fanout_lag_seconds",
            "Producer commit (published_at) to fan-out on this pod, per publication with local subscribers",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.fanout_seconds = Histogram(
            "flashline_gateway_fanout_seconds",
            "Time to queue one publication for its local subscribers (the writes: flush_seconds)",
            buckets=FANOUT_BUCKETS,
            registry=r,
        )
        self.flush_seconds = Histogram(
            "flashline_gateway_flush_seconds",
            "Time to write one loop turn's queued pushes to every client that has some: receive -> last write",
            buckets=FANOUT_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
