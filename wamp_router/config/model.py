"""The router's configuration model: immutable values, no I/O.

Responsibility: describe a router node (its listeners, their transports, serializers,
limits, heartbeat and authentication, and the realms with their roles and
permissions) as plain frozen, slotted dataclasses.

Rules:
- Pure: no imports of twisted, autobahn or socket; no validation here (the loader in
  ``wamp_router.config.loader`` validates a TOML file before it builds these values).
- Every value is immutable (frozen dataclasses, tuples, frozensets), so one config
  object can be shared freely between the router's components.
- ``NodeConfig.source`` names where the config came from; it is metadata and is not
  part of equality (two configs with the same content compare equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Action = Literal["call", "register", "publish", "subscribe"]
MatchPolicy = Literal["exact", "prefix", "wildcard"]
Transport = Literal["websocket", "rawsocket"]
UriCheck = Literal["loose", "strict"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Permission:
    """Actions allowed on the URIs that ``uri`` matches under policy ``match``."""

    uri: str
    match: MatchPolicy = "exact"
    allow: frozenset[Action] = frozenset()


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of permissions inside one realm."""

    name: str
    permissions: tuple[Permission, ...] = ()
    # Identity disclosure of calls/publications made by sessions of this role:
    # True = always disclosed, False = never, None = as the session asks (disclose_me).
    disclose_caller: bool | None = None
    disclose_publisher: bool | None = None


@dataclass(frozen=True, slots=True)
class Realm:
    """A routing namespace; ``uri_check`` selects loose or strict WAMP URI rules."""

    name: str
    roles: tuple[Role, ...] = ()
    uri_check: UriCheck = "loose"
    max_sessions: int = 0  # 0 = unlimited


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Ping every ``interval`` seconds, drop the peer if no pong within ``timeout``.

    ``interval == 0`` disables heartbeats.
    """

    interval: float = 30.0
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class AnonymousAuth:
    """Anonymous access with ``role``; ``realms`` None means any realm."""

    role: str = "anonymous"
    realms: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class TicketPrincipal:
    """A WAMP-Ticket user; ``realm`` None means any realm."""

    authid: str
    ticket: str
    role: str
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class CraPrincipal:
    """A WAMP-CRA user; with ``salt`` set, ``secret`` is the plain secret and the
    router derives the key with PBKDF2(secret, salt, iterations, keylen)."""

    authid: str
    secret: str
    role: str
    realm: str | None = None
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32


@dataclass(frozen=True, slots=True)
class Auth:
    """The authentication methods a listener offers."""

    anonymous: AnonymousAuth | None = None
    ticket: tuple[TicketPrincipal, ...] = ()
    wampcra: tuple[CraPrincipal, ...] = ()


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    """A TCP address; ``host`` is an IPv6 address without brackets, an IPv4 address
    or a host name; port 0 picks a free port."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class UnixEndpoint:
    """A Unix domain socket path."""

    path: str


Endpoint: TypeAlias = TcpEndpoint | UnixEndpoint


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-listener protection against slow and abusive peers.

    ``max_send_buffer``: bytes queued for a peer that does not read before it is
    dropped as a slow consumer; ``max_sessions``: concurrent connections (0 =
    unlimited); ``max_message_rate``: messages per second per session (0 = no
    limit) with bursts up to ``message_burst``; ``rate_limit_action``: "close"
    the session (ABORT) or answer each excess request with an "error".
    """

    max_send_buffer: int = 8 * MIB
    max_sessions: int = 0
    max_message_rate: float = 0.0
    message_burst: int = 0
    rate_limit_action: Literal["close", "error"] = "close"


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening transport and what it accepts."""

    transport: Transport
    endpoint: Endpoint
    path: str = "/ws"
    serializers: tuple[str, ...] = ("json", "msgpack", "cbor")
    max_message_size: int = 16 * MIB
    heartbeat: Heartbeat = Heartbeat()
    auth: Auth = Auth(anonymous=AnonymousAuth())
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class Metrics:
    """The operator's HTTP endpoint: Prometheus metrics and a health check."""

    endpoint: Endpoint
    path: str = "/metrics"
    health_path: str = "/health"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A whole router node; ``source`` (not compared) names the config's origin."""

    listeners: tuple[Listener, ...]
    realms: tuple[Realm, ...]
    source: str = field(default="<embedded default>", compare=False)
    metrics: Metrics | None = None
