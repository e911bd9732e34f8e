"""The operator's HTTP endpoint: Prometheus metrics and a health check.

Counters are plain integers kept by the core and the driver (``Stats``);
they become Prometheus metric families only when the endpoint is scraped,
so metrics cost nothing on the message path.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from twisted.web.resource import Resource

from ..core.errors import AUTHENTICATION_FAILED
from ..core.messages import NAMES
from ..core.session import State
from ..core.stats import LATENCY_BUCKETS

if TYPE_CHECKING:
    from .service import RouterNode


class RouterCollector:
    def __init__(self, node: RouterNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        driver = self.node.driver
        stats = driver.stats
        sessions = GaugeMetricFamily("wamp_sessions", "Established WAMP sessions",
                                     labels=["realm", "transport"])
        per: Counter[tuple[str, str]] = Counter(
            (s.realm_name, s.transport.kind) for s in driver.router.conns.values()
            if s.state is State.ESTABLISHED)
        for (realm, transport), n in sorted(per.items()):
            sessions.add_metric([realm, transport], n)
        yield sessions
        yield GaugeMetricFamily("wamp_connections", "Open transport connections",
                                value=driver.connection_count())
        yield GaugeMetricFamily("wamp_send_queue_bytes",
                                "Bytes queued for peers that have not read them yet",
                                value=driver.queued_bytes())
        yield from self._messages(stats.messages_in, stats.messages_out)
        yield from self._errors(stats.errors)
        yield self._latency(stats.latency_buckets, stats.latency_sum)
        for name, help_text, value in (
            ("wamp_slow_consumers_dropped", "Peers dropped for not reading fast enough",
             stats.slow_consumers),
            ("wamp_rate_limited_messages", "Messages over a listener's max_message_rate",
             stats.rate_limited),
            ("wamp_rejected_connections", "Connections refused at a max_sessions limit",
             stats.rejected_connections),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        yield from self._sync(driver.router.realms)
        backplane = self.node.backplane
        if backplane is not None:
            yield GaugeMetricFamily("wamp_cluster_connected",
                                    "1 when the node is connected to the Redis backplane",
                                    value=1 if backplane.up else 0)
            yield GaugeMetricFamily("wamp_cluster_nodes", "Live nodes in the cluster",
                                    value=backplane.nodes)
            for key, help_text in (
                ("sent", "Publications sent to other nodes (Redis PUBLISH commands)"),
                ("received", "Publications received from other nodes"),
                ("dropped", "Publications for other nodes dropped while Redis was unreachable"),
                ("reconnects", "Connections to Redis lost"),
                ("nodes_reaped", "Nodes this node declared dead"),
                ("barrier_timeouts", "Replies sent without every node's confirmation "
                                     "(a node did not answer within node_ttl)"),
            ):
                yield CounterMetricFamily(f"wamp_cluster_{key}", help_text,
                                          value=backplane.counters[key])

    @staticmethod
    def _sync(realms: dict[str, Any]) -> Iterator[Metric]:
        """Data-sync counters per realm (records written, conflicts, resyncs, commits)."""
        engines = [(name, realm.sync) for name, realm in sorted(realms.items())
                   if realm.sync is not None]
        if not engines:
            return
        for key, help_text in (
            ("writes", "Data-sync versions accepted"),
            ("conflicts", "Data-sync writes refused with sync.error.conflict"),
            ("rebased", "Data-sync conditional writes rebased over newer versions"),
            ("snapshots", "Data-sync full states sent (retained events and sync.get)"),
            ("deltas", "Data-sync resyncs answered with missing patches"),
            ("commits", "Data-sync store transactions (group commits)"),
            ("commit_failures", "Data-sync store transactions that failed"),
            ("cas_retries", "Data-sync writes run again after another node's version came "
                            "first (shared records)"),
            ("remote_versions", "Data-sync versions committed by other nodes, applied here"),
            ("resyncs", "Shared records this node replaced whole from Redis after a gap"),
            ("readbacks", "Shared records this node read back from Redis (a version it "
                          "missed, or lost a race to, had not reached it)"),
        ):
            family = CounterMetricFamily(f"wamp_sync_{key}", help_text, labels=["realm"])
            for name, engine in engines:
                family.add_metric([name], engine.counters[key])
            yield family

    @staticmethod
    def _messages(inbound: dict[int, int], outbound: dict[int, int]) -> Iterator[Metric]:
        for name, counts, help_text in (
            ("wamp_messages_received", inbound, "WAMP messages received, by type"),
            ("wamp_messages_sent", outbound, "WAMP messages sent, by type"),
        ):
            family = CounterMetricFamily(name, help_text, labels=["type"])
            for code, n in sorted(counts.items()):
                family.add_metric([NAMES.get(code, str(code))], n)
            yield family
        yield CounterMetricFamily("wamp_publications", "PUBLISH messages received",
                                  value=inbound.get(16, 0))
        yield CounterMetricFamily("wamp_events_delivered", "EVENT messages sent",
                                  value=outbound.get(36, 0))
        yield CounterMetricFamily("wamp_calls", "CALL messages received", value=inbound.get(48, 0))

    @staticmethod
    def _errors(errors: dict[str, int]) -> Iterator[Metric]:
        family = CounterMetricFamily("wamp_errors", "ERROR and ABORT messages sent, by URI",
                                     labels=["uri"])
        for uri, n in sorted(errors.items()):
            family.add_metric([uri], n)
        yield family
        yield CounterMetricFamily("wamp_authentication_failures",
                                  "Joins refused with wamp.error.authentication_failed",
                                  value=errors.get(AUTHENTICATION_FAILED, 0))

    @staticmethod
    def _latency(buckets: list[int], total: float) -> Metric:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
            running += n
            cumulative.append((repr(bound), running))
        cumulative.append(("+Inf", running))
        return HistogramMetricFamily("wamp_call_duration_seconds",
                                     "Time from CALL to the final RESULT or ERROR",
                                     buckets=cumulative, sum_value=total)


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, node: RouterNode) -> None:
        super().__init__()
        self.node = node
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RouterCollector(node))

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        return generate_latest(self.registry)


class HealthResource(Resource):
    isLeaf = True

    def __init__(self, node: RouterNode) -> None:
        super().__init__()
        self.node = node

    def render_GET(self, request: Any) -> bytes:
        listeners = self.node.listener_status()
        healthy = bool(listeners) and all(entry["up"] for entry in listeners)
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"content-type", b"application/json")
        backplane = {"kind": "local", "up": True}
        if self.node.backplane is not None:
            backplane = self.node.backplane.status()
        status = "ok" if healthy else "unavailable"
        if healthy and not backplane["up"]:
            status = "degraded"  # local traffic is served; other nodes are out of reach
        body = {"status": status, "listeners": listeners, "backplane": backplane}
        return json.dumps(body).encode() + b"\n"


def make_site_root(node: RouterNode, metrics_path: str, health_path: str) -> Resource:
    root = Resource()
    mount(root, metrics_path, MetricsResource(node))
    mount(root, health_path, HealthResource(node))
    return root


def mount(root: Resource, path: str, leaf: Resource) -> None:
    parts = [p.encode() for p in path.strip("/").split("/")]
    node = root
    for part in parts[:-1]:
        child = node.children.get(part)
        if child is None:
            child = Resource()
            node.putChild(part, child)
        node = child
    node.putChild(parts[-1], leaf)
