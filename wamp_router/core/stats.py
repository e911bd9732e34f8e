"""Counters kept by the core and the adapters, exported by the metrics
endpoint. Plain integers on the hot path; turning them into Prometheus
families happens only when someone scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# call latency histogram bucket upper bounds, in seconds
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class Stats:
    messages_in: dict[int, int] = field(default_factory=dict)  # message type code -> count
    messages_out: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # ERROR/ABORT uri -> count
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0
    slow_consumers: int = 0
    rate_limited: int = 0
    rejected_connections: int = 0

    def call_finished(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1
                return
