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
    # Identity disclosure forced when this permission authorizes a call / publication
    # (None = the role's setting, then the session's disclose_me).
    disclose_caller: bool | None = None
    disclose_publisher: bool | None = None


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
class SyncLimits:
    """Per-domain limits of the data-sync extension (0 = unlimited where noted)."""

    max_record_bytes: int = MIB  # a record's value, JSON-encoded
    max_ops: int = 1000  # ops in one write
    max_depth: int = 64  # nesting of a record's value
    max_key_length: int = 256  # an object member name
    max_records: int = 0  # records (tombstones included) in the domain; 0 = unlimited


@dataclass(frozen=True, slots=True)
class SyncDomain:
    """Record topics under ``prefix``: their store, conflict policy and history."""

    prefix: str
    store: Literal["memory", "sqlite", "redis"] = "memory"  # redis: shared by a cluster
    database: str | None = None  # the SQLite file (absolute path) for store = "sqlite"
    conflict: Literal["reject", "rebase", "lww"] = "rebase"
    create: Literal["implicit", "explicit"] = "implicit"
    history_versions: int = 1000  # patches kept per record; 0 = all
    history_age: float = 0.0  # seconds; patches older are dropped; 0 = no age bound
    checkpoint_every: int = 100  # a checkpoint every N versions (for get_at); 0 = none
    disclose_author: bool = False  # "by" (the writer's authid) in patch events
    limits: SyncLimits = SyncLimits()


@dataclass(frozen=True, slots=True)
class Sync:
    """A realm's data-sync domains and the URI prefix of its procedures."""

    api_prefix: str = "sync."
    domains: tuple[SyncDomain, ...] = ()


@dataclass(frozen=True, slots=True)
class Realm:
    """A routing namespace; ``uri_check`` selects loose or strict WAMP URI rules."""

    name: str
    roles: tuple[Role, ...] = ()
    uri_check: UriCheck = "loose"
    max_sessions: int = 0  # 0 = unlimited
    # Dynamic authorizer: a procedure of this realm, asked about what the static
    # permissions do not allow; its answer must arrive within authorizer_timeout s.
    authorizer: str | None = None
    authorizer_timeout: float = 5.0
    sync: Sync | None = None  # the data-sync extension, when configured


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
    """A WAMP-Ticket user; ``realm`` None means any realm. Either ``ticket`` (the
    ticket itself) or ``ticket_hash`` (``pbkdf2-sha256$ITERATIONS$SALT$HASH``, base64
    salt and hash) is set; the other is empty / None."""

    authid: str
    ticket: str
    role: str
    realm: str | None = None
    ticket_hash: str | None = None


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
class CryptosignPrincipal:
    """A WAMP-Cryptosign user: any of ``pubkeys`` (Ed25519 public keys, 64 lowercase
    hex digits each) authenticates as ``authid`` with ``role``."""

    authid: str
    pubkeys: tuple[str, ...]
    role: str
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class ScramPrincipal:
    """A WAMP-SCRAM user, stored as salted credentials (no password): ``kdf`` is
    "argon2id13" (``memory`` in KiB) or "pbkdf2"; ``salt``, ``stored_key`` and
    ``server_key`` are base64."""

    authid: str
    kdf: Literal["argon2id13", "pbkdf2"]
    salt: str
    iterations: int
    stored_key: str
    server_key: str
    role: str
    realm: str | None = None
    memory: int | None = None


@dataclass(frozen=True, slots=True)
class DynamicAuth:
    """Authentication method ``method`` decided by a WAMP procedure: the router calls
    ``authenticator`` (registered on realm ``realm``, None = the realm being joined)
    and waits at most ``timeout`` seconds for its answer."""

    method: str
    authenticator: str
    realm: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """Failed authentications allowed per peer address and per authid: more than
    ``max_failures`` within ``window`` seconds are refused; every failure is
    answered after ``delay`` seconds."""

    max_failures: int = 5
    window: float = 60.0
    delay: float = 1.0


@dataclass(frozen=True, slots=True)
class Auth:
    """The authentication methods a listener offers."""

    anonymous: AnonymousAuth | None = None
    ticket: tuple[TicketPrincipal, ...] = ()
    wampcra: tuple[CraPrincipal, ...] = ()
    cryptosign: tuple[CryptosignPrincipal, ...] = ()
    scram: tuple[ScramPrincipal, ...] = ()
    dynamic: tuple[DynamicAuth, ...] = ()
    limits: AuthLimits | None = None  # None = no limit on failed authentications


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
class LongPoll:
    """The WAMP HTTP long-poll transport, served under ``path`` of a websocket
    listener's port. ``request_timeout``: a parked receive request is answered
    204 after this many seconds; ``session_timeout``: a session whose client
    stopped polling for this long is closed; ``max_queue``: messages waiting for
    a receive request before the session is dropped as a slow consumer."""

    path: str = "/lp"
    request_timeout: float = 10.0
    session_timeout: float = 30.0
    max_queue: int = 1000


@dataclass(frozen=True, slots=True)
class Tls:
    """A listener's TLS server certificate and private key (PEM file paths, resolved
    against the config file's directory); ``chain``: optional intermediate
    certificates (PEM) sent after the certificate."""

    certificate: str
    key: str
    chain: str | None = None


@dataclass(frozen=True, slots=True)
class BridgeToken:
    """A principal of the HTTP bridge: requests with ``Authorization: Bearer
    <token>`` act as a session with ``authid`` and ``role``. With ``hmac_secret``
    set, each request must also carry ``X-Timestamp`` (unix seconds, within
    ``max_skew``) and ``X-Signature`` = hex HMAC-SHA256(secret, timestamp + "." + body)."""

    token: str
    authid: str
    role: str
    hmac_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    """``POST <bridge path>/webhook/<name>`` publishes the request on ``topic``
    as the session of ``authid``/``role`` (with an optional shared secret in the
    ``X-Webhook-Token`` header)."""

    name: str
    topic: str
    role: str
    authid: str = "webhook"
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Bridge:
    """The HTTP bridge for publish and call, on a websocket listener's port."""

    realm: str
    path: str = "/bridge"
    tokens: tuple[BridgeToken, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    max_rate: float = 0.0  # requests per second per token / webhook (0 = no limit)
    max_skew: float = 300.0  # seconds, for signed requests


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
    longpoll: LongPoll | None = None  # websocket listeners: long-poll on the same port
    bridge: Bridge | None = None  # websocket listeners: HTTP publish/call on the same port
    rawsocket: bool = False  # websocket listeners: also accept RawSocket (first octet 0x7F)
    tls: Tls | None = None  # TLS (wss:// / RawSocket over TLS); None = plain TCP


@dataclass(frozen=True, slots=True)
class Metrics:
    """The operator's HTTP endpoint: Prometheus metrics and a health check."""

    endpoint: Endpoint
    path: str = "/metrics"
    health_path: str = "/health"


@dataclass(frozen=True, slots=True)
class RedisTls:
    """TLS to Redis (``rediss://``): the server is verified against ``ca`` (PEM
    file; the system's trust store when None) and the host name; ``certificate``
    and ``key`` (PEM files) when Redis asks for a client certificate."""

    ca: str | None = None
    certificate: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """Several router processes serving the same realms through a Redis backplane."""

    backplane: str  # the URL as configured, its password replaced by "***"
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    unix: str | None = None  # a Unix socket path (unix://) instead of host and port
    username: str | None = None  # Redis 6 ACL user (AUTH username password)
    password: str | None = field(default=None, repr=False)
    tls: RedisTls | None = None  # rediss://
    # redis+sentinel://: the Sentinels to ask for the master of ``service``
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """Where Redis is, for messages (never with the password)."""
        if self.sentinels:
            at = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
            return f"the master of {self.service!r} (Sentinel {at})"
        return self.unix if self.unix is not None else f"{self.host}:{self.port}"
    prefix: str = "wr:"  # Redis key and channel prefix
    node_ttl: float = 3.0  # a node silent for this long is declared dead
    heartbeat: float = 1.0  # how often a node renews its liveness
    # shared registrations (roundrobin, random): choose among this node's callees
    # when it has an available one
    prefer_local_callees: bool = False


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A whole router node; ``source`` (not compared) names the config's origin."""

    listeners: tuple[Listener, ...]
    realms: tuple[Realm, ...]
    source: str = field(default="<embedded default>", compare=False)
    metrics: Metrics | None = None
    cluster: Cluster | None = None  # None: one process (the local backplane)
