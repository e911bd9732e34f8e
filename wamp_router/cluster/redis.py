"""The Redis backplane: several router processes serve the same realms.

Publications (the core's ``Forward`` effects) reach the other nodes through
Redis pub/sub, and each receiving node delivers them with the same broker
code as a local publication (filters travel with the envelope):

- exact subscriptions: a per-topic channel ``<prefix><realm>:t:<topic>``; a node
  SUBSCRIBEs while it has a local exact subscription to the topic (the core's
  ``Interest`` effects), so a node with no interest receives nothing;
- prefix / wildcard subscriptions: each node keeps its patterns in Redis
  (``<prefix>pat:<node>``) and announces changes on the control channel; a
  publishing node matches the topic against every node's patterns (our own
  URI matcher: Redis globs cannot express WAMP wildcards) and sends the
  envelope to the inbox channel of each node with a matching pattern;
- retained events: kept in ``<prefix><realm>:retained`` (a hash) and sent to
  every node on ``<prefix><realm>:ret``, so ``get_retained`` is answered
  locally on any node.

All publishes go out on one connection and all pushes come in on one
subscriber connection, so the publications of one node reach another in the
order they were made (Redis keeps the order per connection pair).

Membership: every node renews its deadline in ``<prefix>nodes`` (a sorted set,
Redis server time) every ``heartbeat`` seconds; every node also runs the
reaper, which removes nodes past their deadline (their pattern interest) and
announces them on the control channel. Commands are never queued while Redis
is unreachable: publications for other nodes are dropped and counted, local
traffic goes on, health and metrics say so; on reconnect the node subscribes
again, re-asserts its interest and reloads the others' patterns and the
retained events.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, Protocol

import msgpack
import orjson
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import task
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from ..config.model import Cluster
from ..core.effects import Advertise, Forward, Interest, Relay, SyncCommit, SyncFetch, SyncReset
from ..core.urimap import UriMap
from .resp import RedisConnectionLost, RedisError, RespFactory, RespProtocol
from .sentinel import SentinelEndpoint, is_master

log = Logger(namespace="wamp_router")



class ClusterDriver(Protocol):
    """What the backplane needs of the driver."""

    def remote(self, realm: str, envelope: dict[str, Any], kind: str) -> None: ...

    def remote_rpc(self, realm: str, node: str, payload: dict[str, Any]) -> None: ...

    def remote_directory(self, realm: str, node: str, op: str,
                         entry: dict[str, Any]) -> None: ...

    def node_gone(self, node: str, dead: bool = False) -> None: ...

    def relay_failed(self, effect: Relay, uri: str, why: str) -> None: ...

    def isolate(self) -> None: ...

    def flush(self) -> None: ...

    def fence(self) -> None: ...

    def advertisements(self) -> list[Advertise]: ...

    def sync_domains(self) -> dict[str, list[str]]: ...

    def sync_committed(self, realm: str, batch: int, results: list[tuple[Any, ...]]) -> None: ...

    def sync_remote(self, realm: str, env: dict[str, Any]) -> None: ...

    def sync_fetch_from(self, realm: str, uri: str) -> int | None: ...

    def sync_fetched(self, realm: str, uri: str, after: int, state: dict[str, Any] | None,
                     patches: list[dict[str, Any]],
                     checkpoints: list[tuple[int, Any, bool]]) -> None: ...

    def sync_loading(self, realm: str) -> None: ...

    def sync_loaded(self, realm: str, epoch: str, records: list[Any]) -> None: ...

# KEYS[1] nodes zset; ARGV: node id, ttl ms. Returns 1 when the node was not
# registered (new, or reaped while it was away).
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"""
# KEYS[1] nodes zset; ARGV: key prefix, control channel, reaper, node_ttl ms. Removes
# the nodes past their deadline with their pattern sets, marks each in
# <prefix>reaped:<node> (a node that comes back after an outage learns it was
# declared dead; the mark expires after a day) and announces each on the control
# channel. When no reaper ran for node_ttl (Redis was down or restarted: every
# deadline is old), it gives every node a fresh deadline instead of reaping.
_REAP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[4])
local armed = redis.call('EXISTS', ARGV[1] .. 'reaper')
redis.call('SET', ARGV[1] .. 'reaper', ARGV[3], 'PX', ttl)
if armed == 0 then
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now + ttl)) do
    redis.call('ZADD', KEYS[1], now + ttl, node)
  end
  return {}
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
for _, node in ipairs(dead) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('DEL', ARGV[1] .. 'pat:' .. node)
  redis.call('DEL', ARGV[1] .. 'dir:' .. node)
  redis.call('SET', ARGV[1] .. 'reaped:' .. node, now, 'PX', 86400000)
  redis.call('PUBLISH', ARGV[2], cmsgpack.pack({'down', node, ARGV[3]}))
end
return dead
"""

# One version of a shared data-sync record, compared and set (SyncEngine):
# KEYS: the record (hash v, t, value, d, ts, by), its log (a stream, one entry per
# version, id "<v>-1"), its checkpoints (hash v -> deleted flag + value JSON), its
# domain's record index (zset). ARGV: expected v, expected token, v, token, value
# JSON, deleted (0/1), ts, by, patch (msgpack), keep versions, min ts, checkpoint
# every, max records, channel, event, uri. Returns {1, v} (committed and
# published), {0, current v, current token} (another version came first), {-1, v}
# (max_records) or {-2, v} (the log is ahead of the record: damaged keys). Nothing
# is written before every check passed (Redis does not undo a failed script).
# The history rules are the MemoryStore's (wamp_router/core/sync/memory.py).
_COMMIT = """
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
local v = tonumber(cur[1]) or 0
if v ~= tonumber(ARGV[1]) or (cur[2] or '') ~= ARGV[2] then return {0, v, cur[2] or ''} end
if v == 0 and tonumber(ARGV[13]) > 0 and redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[13]) then
  return {-1, v}
end
local nv = tonumber(ARGV[3])
local info = redis.pcall('XINFO', 'STREAM', KEYS[2])
if type(info) == 'table' and not info.err then
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' and tonumber(string.match(info[i + 1], '^(%d+)')) >= nv then
      return {-2, v}
    end
  end
end
redis.call('HSET', KEYS[1], 'v', nv, 't', ARGV[4], 'value', ARGV[5], 'd', ARGV[6],
           'ts', ARGV[7], 'by', ARGV[8])
if v == 0 then redis.call('ZADD', KEYS[4], 0, ARGV[16]) end
redis.call('XADD', KEYS[2], nv .. '-1', 'p', ARGV[9], 'ts', ARGV[7])
local trimmed = 0
local keep = tonumber(ARGV[10])
if keep > 0 and nv - keep >= 1 then
  trimmed = redis.call('XTRIM', KEYS[2], 'MINID', (nv - keep + 1) .. '-0')
end
if ARGV[11] ~= '' then
  while true do
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    if #first == 0 or first[1][2][4] >= ARGV[11] then break end
    redis.call('XDEL', KEYS[2], first[1][1])
    trimmed = trimmed + 1
  end
end
local every = tonumber(ARGV[12])
if every > 0 and nv % every == 0 then redis.call('HSET', KEYS[3], nv, ARGV[6] .. ARGV[5]) end
if trimmed > 0 then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  local start = nv
  if #first > 0 then start = tonumber(string.match(first[1][1], '^(%d+)')) - 1 end
  local cps = redis.call('HKEYS', KEYS[3])
  local best = -1
  for _, k in ipairs(cps) do
    local n = tonumber(k)
    if n <= start and n > best then best = n end
  end
  for _, k in ipairs(cps) do
    if tonumber(k) < best then redis.call('HDEL', KEYS[3], k) end
  end
end
redis.call('PUBLISH', ARGV[14], ARGV[15])
return {1, nv}
"""
_COMMIT_SHA = hashlib.sha1(_COMMIT.encode()).hexdigest()  # Redis names scripts by SHA-1
# One record as it is, in one step: its hash, its log, its checkpoints.
# ARGV[1]: the version after which the log is wanted (0: all, with the checkpoints).
_READ = """
local after = tonumber(ARGV[1])
local cps = {}
if after == 0 then cps = redis.call('HGETALL', KEYS[3]) end
return {redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', '+'),
        cps}
"""
_READ_SHA = hashlib.sha1(_READ.encode()).hexdigest()
# A new epoch for a realm's shared records, if it is still ARGV[1]; the nodes are
# told to reload (KEYS[1]: the epoch key; ARGV: old, new, control channel, message).
_NEW_EPOCH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


# A topic's retained event. Online, it is the newest (stamped with Redis's clock);
# one a node kept while cut off from Redis carries that node's clock, converted to
# Redis's, and loses to a newer one stored meanwhile. KEYS: the retained hash, its
# times (hash); ARGV: topic, time (ms; 0: now), the event, channel.
_RETAIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local ts = tonumber(ARGV[2])
if ts == 0 then ts = math.max(now, cur) elseif ts < cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ts)
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
"""


TAG = 16  # a node id: 16 hex characters, also the prefix of its envelopes
# ("ping" is not a change, but waits like one while its node is being loaded)
_DELTAS = frozenset({"pat+", "pat-", "reg+", "reg-", "sess+", "sess-", "test", "sub+", "sub-",
                     "ping"})


_RETAINED = b"\x93" + msgpack.packb("retained")  # how a retained event's envelope starts
_RETAINED_AT = len(_RETAINED)


@implementer(IStreamClientEndpoint)
class _Reporting:
    """An endpoint that says why a connection to Redis could not be made (the
    service retries on its own, silently)."""

    def __init__(self, endpoint: Any, failed: Callable[[str], None]) -> None:
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, factory: Any) -> Any:
        return self._endpoint.connect(factory).addErrback(self._report)

    def _report(self, failure: Any) -> Any:
        if not failure.check(CancelledError):
            self._failed(failure.getErrorMessage())
        return failure


def _peer(proto: RespProtocol) -> str:
    peer = proto.transport.getPeer() if proto.transport is not None else None
    return f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class RedisBackplane:
    kind = "redis"
    # why Redis refused the last connection (AUTH, TLS, ...), for /health; logged
    # when it changes and then at most once a minute
    error: str | None = None
    master: str | None = None  # behind Sentinel: the master last connected to
    _error_logged: tuple[str | None, float] = (None, 0.0)
    # retained events published while Redis was unreachable: (realm, topic) -> it
    _unsent_retained: dict[tuple[str, str], tuple[Forward, int]]
    # (realm, topic) -> the publication id of our last retained event sent to Redis
    # and not yet heard back (see _push)
    _own_retained: dict[tuple[str, str], int]

    def __init__(self, config: Cluster, reactor: Any, driver: ClusterDriver,
                 realms: Callable[[], list[str]],
                 interests: Callable[[str], list[tuple[str, str]]]) -> None:
        self.config = config
        self.reactor = reactor
        self.driver = driver
        self.deliver = driver.remote
        self._realms = realms  # the realms this node serves
        self._interests = interests  # realm -> [(topic, match)] of its subscriptions now
        self.node_id = secrets.token_hex(TAG // 2)
        self._tag = self.node_id.encode()  # the first bytes of every envelope it sends
        p = config.prefix
        self.k_nodes = f"{p}nodes"
        self.k_patterns = f"{p}pat:{self.node_id}"
        self.k_directory = f"{p}dir:{self.node_id}"
        self.k_reaped = f"{p}reaped:{self.node_id}"  # set by the node that reaped this one
        # what this node advertised (its callees, sessions, testaments): key -> entry
        self.directory: dict[bytes, bytes] = {}
        self.known: set[str] = set()  # other nodes whose callees this node routes to
        self.ch_ctl = f"{p}ctl"
        self._ctl = self.ch_ctl.encode()
        self.ch_inbox = f"{p}n:{self.node_id}"
        self.cmd: RespProtocol | None = None
        self.sub: RespProtocol | None = None
        self.exact: set[tuple[str, str]] = set()  # (realm, topic) with local exact interest
        self.patterns: set[tuple[str, str, str]] = set()  # (realm, match, topic) here
        # the other nodes' patterns: realm -> UriMap of node sets; node -> its keys
        self.remote: dict[str, UriMap[set[str]]] = {}
        self.remote_keys: dict[str, set[tuple[str, str, str]]] = {}
        self.counters = {"sent": 0, "received": 0, "dropped": 0, "reconnects": 0,
                         "nodes_reaped": 0, "barrier_timeouts": 0}
        self.nodes = 1  # live nodes seen at the last heartbeat
        self._services: list[ClientService] = []
        self._beat: task.LoopingCall | None = None
        self._synced = False  # interest asserted and caches loaded since the last connect
        # nodes whose directory is being (re)loaded: their deltas wait for the snapshot
        self._loading: dict[str, list[list[Any]]] = {}
        self._served: set[str] = set()  # realms whose channels are subscribed
        self._unsent_retained, self._own_retained = {}, {}
        # this node's sessions' subscriber keys in its directory: (realm, session) -> keys
        self._subs_of: dict[tuple[str, int], set[bytes]] = {}
        self._clock_offset = 0  # Redis's clock minus this node's, in ms
        # barriers (see barrier()): number -> (who has yet to answer, done, timeout);
        # "" stands for this node's own subscriber connection
        self._barriers: dict[int, tuple[set[str], Callable[[], None], Any]] = {}
        self._barrier_no = 0
        self._unconfirmed = False  # a SUBSCRIBE sent since the last PING
        self._stopping = False  # stop() was called: a lost connection is no outage
        # other nodes' pings that came while this node was (re)joining: answered once
        # it has loaded the others' state (see _now_up)
        self._early_pings: list[list[Any]] = []
        self._mute: set[str] = set()  # nodes that let a barrier time out: not waited for

    # -- channels --------------------------------------------------------------
    def _topic_channel(self, realm: str, topic: str) -> str:
        return f"{self.config.prefix}{realm}:t:{topic}"

    def _retained_channel(self, realm: str) -> str:
        return f"{self.config.prefix}{realm}:ret"

    def _retained_key(self, realm: str) -> str:
        return f"{self.config.prefix}{realm}:retained"

    def _sync_key(self, realm: str, kind: str, uri: str = "") -> str:
        """Shared data-sync records: r: record, l: log, c: checkpoints, uris, epoch."""
        return f"{self.config.prefix}{realm}:s:{kind}{uri}"

    def _sync_channel(self, realm: str) -> str:
        return f"{self.config.prefix}{realm}:sync"

    @property
    def up(self) -> bool:
        return self.cmd is not None and self.sub is not None and self._synced

    def status(self) -> dict[str, Any]:
        return {"kind": "redis", "up": self.up, "node": self.node_id,
                "redis": self.config.address, "nodes": self.nodes,
                **({"master": self.master} if self.master is not None else {}),
                **({"error": self.error} if self.error is not None and not self.up else {})}

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        policy = backoffPolicy(initialDelay=0.1, maxDelay=2.0, factor=1.5)
        hello = self._hello()
        verify = is_master if self.config.sentinels else None
        endpoint = self._endpoint()
        for push in (None, self._push):
            factory: Any = RespFactory(self._connected, self._lost, push,
                                       self.driver.flush if push is not None else None,
                                       hello, self._refused, verify, self.reactor)
            service = ClientService(endpoint, factory,
                                    retryPolicy=policy, clock=self.reactor)
            service.startService()
            self._services.append(service)
        self._beat = task.LoopingCall(self._heartbeat)
        self._beat.clock = self.reactor
        self._beat.start(self.config.heartbeat, now=False)

    def stop(self) -> Any:
        """A clean leave: the other nodes forget this node's interest at once."""
        self._stopping = True
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        d = None
        if self.cmd is not None:
            self.cmd.fire("ZREM", self.k_nodes, self.node_id)
            self.cmd.fire("DEL", self.k_patterns)
            self.cmd.fire("DEL", self.k_directory)
            d = self.cmd.command("PUBLISH", self.ch_ctl, _pack(["down", self.node_id]))
            d.addErrback(lambda _: None)
        from twisted.internet.defer import gatherResults, maybeDeferred

        def stop_services(_: Any) -> Any:
            return gatherResults([maybeDeferred(s.stopService) for s in self._services])

        if d is None:
            return stop_services(None)
        return d.addBoth(stop_services)

    def _endpoint(self) -> Any:
        return _Reporting(self._endpoint_to_redis(), lambda why: self._refused("reach", why))

    def _endpoint_to_redis(self) -> Any:
        config = self.config
        if config.sentinels:  # (a short timeout: a silent Sentinel must not last node_ttl)
            return SentinelEndpoint(self.reactor, config.sentinels, config.service,
                                    config.sentinel_password,
                                    max(0.5, min(2.0, config.node_ttl / 3)), self._master_found)
        if config.unix is not None:
            return UNIXClientEndpoint(self.reactor, config.unix, timeout=5)  # type: ignore[no-untyped-call]
        make = TCP6ClientEndpoint if ":" in config.host else TCP4ClientEndpoint
        endpoint: Any = make(self.reactor, config.host, config.port, timeout=5)
        if config.tls is not None:
            from ..twisted.tls import client_options

            endpoint = wrapClientTLS(client_options(config.tls, config.host), endpoint)
        return endpoint

    def _hello(self) -> list[tuple[Any, ...]]:
        """What a connection runs before it is used: AUTH, SELECT, and a PING that
        says whether Redis wants a password nobody gave."""
        config = self.config
        hello: list[tuple[Any, ...]] = []
        if config.password is not None:
            user = () if config.username is None else (config.username,)
            hello.append(("AUTH", *user, config.password))
        if config.db:
            hello.append(("SELECT", config.db))
        # (behind Sentinel: is it still the master?)
        hello.append(("ROLE",) if config.sentinels else ("PING",))
        return hello

    def _master_found(self, host: str, port: int) -> None:
        self.master = f"{host}:{port}"

    def _refused(self, what: str, why: str) -> None:
        """A connection to Redis failed its opening: say why (the service retries)."""
        where = self.config.address
        if what == "AUTH" or why.startswith(("WRONGPASS", "NOAUTH")):
            user = f" of user {self.config.username!r}" if self.config.username else ""
            if why.startswith("NOAUTH"):
                text = f"Redis at {where} wants a password ([cluster] password): {why}"
            else:
                text = f"Redis at {where} refused the credentials{user}: {why}"
        elif what == "connect":
            text = f"the connection to Redis at {where} closed while opening: {why}"
        elif what == "reach":
            text = f"cannot reach Redis at {where}: {why}"
        else:
            text = f"Redis at {where} refused {what}: {why}"
        self.error = text
        now = self.reactor.seconds()
        last, at = self._error_logged
        if text != last or now - at >= 60:
            self._error_logged = (text, now)
            log.error("cluster backplane: {text}; retrying", text=text)

    def _connected(self, proto: RespProtocol) -> None:
        self.error = None
        other = self.cmd if proto._push is not None else self.sub
        if self.config.sentinels and other is not None and _peer(other) != _peer(proto):
            # (a failover between the two connections: the older one goes, and comes
            # back to the master the Sentinels name now, as this one did)
            log.warn("cluster backplane: the two connections reached different Redis "
                     "masters ({a} before, {b} now); reconnecting the other",
                     a=_peer(other), b=_peer(proto))
            other.close()
        if proto._push is not None:
            self.sub = proto
        else:
            self.cmd = proto
        if self.cmd is not None and self.sub is not None:
            self._sync()

    def _lost(self, proto: RespProtocol) -> None:
        was_up = self.up
        if proto is self.sub:
            self.sub = None
        if proto is self.cmd:
            self.cmd = None
        self._synced = False
        self._loading.clear()
        self._early_pings.clear()  # (their nodes time out, or see us rejoin)
        self._own_retained.clear()  # (the retained events are reloaded when Redis is back)
        self._settle(everything=True)  # nobody can answer now: replies go out
        if self._stopping:
            return  # a clean stop (stop()), not an outage
        if self.known or was_up:
            self.known.clear()
            self.driver.isolate()  # calls to other nodes fail now
        if was_up:
            self.counters["reconnects"] += 1
            log.warn("cluster backplane: lost the connection to Redis at {where}; "
                     "serving local traffic only until it is back", where=self.config.address)

    def _sync(self) -> None:
        """After (re)connecting: subscribe, re-assert this node's interest and reload
        the other nodes' patterns and the retained events."""
        assert self.cmd is not None and self.sub is not None
        realms = self._realms()
        shared = self.driver.sync_domains()
        self._served = set(realms)
        channels = [self.ch_ctl, self.ch_inbox]
        channels += [self._retained_channel(r) for r in realms]
        channels += [self._sync_channel(r) for r in shared]
        channels += [self._topic_channel(r, t) for r, t in sorted(self.exact)]
        for i in range(0, len(channels), 500):
            self.sub.send("SUBSCRIBE", *channels[i:i + 500])
        cmd = self.cmd
        cmd.fire("EVAL", _BEAT, 1, self.k_nodes, self.node_id,
                    int(self.config.node_ttl * 1000))
        # declared dead while cut off? then end its sessions before announcing them
        cmd.command("GET", self.k_reaped).addCallbacks(
            self._sync_rest, self._sync_failed, callbackArgs=(cmd, realms, shared),
            errbackArgs=(cmd,))

    def _sync_rest(self, reaped: bytes | None, cmd: RespProtocol, realms: list[str],
                   shared: dict[str, list[str]]) -> None:
        if cmd is not self.cmd or not cmd.open or self.sub is None:
            return  # the connection went meanwhile: the next one syncs
        if reaped is not None:
            self._fence_here()
            cmd.fire("DEL", self.k_reaped)
        self._assert_patterns()
        d = cmd.command("ZRANGE", self.k_nodes, 0, -1)
        d.addCallback(self._load_patterns)
        unsent, self._unsent_retained = self._unsent_retained, {}
        for effect, ms in unsent.values():  # before reloading Redis's: unless older
            try:
                self._retain(cmd, effect.realm, effect.envelope, ms)
            except Exception as exc:  # a payload msgpack cannot carry
                log.warn("cluster backplane: cannot store a retained event: {exc}", exc=exc)
        for realm in realms:
            self._reload_retained(cmd, realm)
        if shared:
            from twisted.internet.defer import gatherResults

            for script in (_COMMIT, _READ):
                cmd.fire("SCRIPT", "LOAD", script)
            loads = [self._load_records(r, prefixes) for r, prefixes in shared.items()]
            d.addCallback(lambda _: gatherResults(loads, consumeErrors=True))
        d.addCallback(lambda _: self._now_up())
        d.addErrback(self._sync_failed, cmd)

    def _sync_failed(self, failure: Any, cmd: RespProtocol) -> None:
        """Joining failed half-way (e.g. Redis still loading its data): again soon,
        on the same connection (a new one starts its own)."""
        self._failed(failure, "sync")
        if cmd is self.cmd and cmd.open and self.sub is not None and not self._synced:
            self.reactor.callLater(1.0, self._resync, cmd)

    def _resync(self, cmd: RespProtocol) -> None:
        if cmd is self.cmd and cmd.open and self.sub is not None and not self._synced:
            self._sync()

    def refresh(self) -> None:
        """Realms added by a config reload: their channels and what Redis holds."""
        if self.cmd is None or self.sub is None or not self._synced:
            return  # the next (re)connect covers them
        new = [r for r in self._realms() if r not in self._served]
        if not new:
            return
        self._served.update(new)
        shared = self.driver.sync_domains()
        channels = [self._retained_channel(r) for r in new]
        channels += [self._sync_channel(r) for r in new if r in shared]
        self.sub.send("SUBSCRIBE", *channels)
        for realm in new:
            self._reload_retained(self.cmd, realm)
            if realm in shared:
                self._reload_records(realm)

    def _reload_retained(self, cmd: RespProtocol, realm: str) -> None:
        cmd.command("HGETALL", self._retained_key(realm)).addCallbacks(
            self._load_retained, self._failed, callbackArgs=(realm,),
            errbackArgs=("retained",))

    def _now_up(self) -> None:
        self._synced = True
        early, self._early_pings = self._early_pings, []
        for msg in early:  # after what this node loaded of the pinging node
            if msg[1] in self._loading:
                self._loading[msg[1]].append(msg)
            else:
                self._apply_delta(msg)
        where = self.config.address + (f": {self.master}" if self.master else "")
        log.info("cluster backplane: connected to Redis at {where} node={node}",
                 where=where, node=self.node_id)

    def _assert_patterns(self) -> None:
        """Write this node's pattern interest and callees again, and tell the others
        to reload them."""
        assert self.cmd is not None
        self.cmd.fire("DEL", self.k_patterns)
        if self.patterns:
            self.cmd.fire("SADD", self.k_patterns, *[_pack(list(k)) for k in self.patterns])
        adverts = self.driver.advertisements()
        self.directory = {self._dir_key(a.realm, a.op, a.entry): _pack([a.realm, a.op, a.entry])
                          for a in adverts}
        self._subs_of = {}
        for a in adverts:
            if a.op == "sub+":
                self._subs_of.setdefault((a.realm, a.entry["session"]), set()).add(
                    self._dir_key(a.realm, a.op, a.entry))
        self.cmd.fire("DEL", self.k_directory)
        flat: list[bytes] = []
        for key, value in self.directory.items():
            flat += [key, value]
        for i in range(0, len(flat), 1000):
            self.cmd.fire("HSET", self.k_directory, *flat[i:i + 1000])
        self.cmd.fire("PUBLISH", self.ch_ctl, _pack(["reload", self.node_id]))

    @staticmethod
    def _dir_key(realm: str, op: str, e: dict[str, Any]) -> bytes:
        if op in ("reg+", "reg-"):
            return _pack([realm, "reg", e["sid"], e["proc"], e["match"]])
        if op in ("sub+", "sub-"):
            return _pack([realm, "sub", e["session"], e["topic"], e["match"]])
        return _pack([realm, "test" if op == "test" else "sess", e["session"]])

    def _load_patterns(self, nodes: list[bytes]) -> Any:
        from twisted.internet.defer import gatherResults

        self.nodes = len(nodes) or 1
        live = {raw.decode() for raw in nodes}
        for node in list(self.remote_keys):
            if node not in live:
                self._forget(node)
        ds = []  # (each node's patterns are replaced when they are in: no gap)
        for node in sorted(live):
            if node != self.node_id:
                ds.append(self._load_node(node))
        return gatherResults(ds) if ds else None

    def _load_node(self, node: str) -> Any:
        assert self.cmd is not None

        def got(members: list[bytes]) -> None:
            self._forget(node)
            for m in members:
                realm, match, topic = _unpack(m)
                self._remember(node, (realm, match, topic))

        def got_directory(flat: list[bytes]) -> None:
            if node in self.known:  # a reload: forget what it had
                self.driver.node_gone(node)
            self.known.add(node)
            entries = [_unpack(flat[i]) for i in range(1, len(flat), 2)]
            order = {"sess+": 0, "test": 1, "reg+": 2}
            for realm, op, entry in sorted(entries, key=lambda e: order.get(e[1], 3)):
                self.driver.remote_directory(realm, node, op, entry)
            # the changes announced while the snapshot was read: they may be newer than
            # it (another connection), and replaying older ones is harmless (idempotent)
            for msg in self._loading.pop(node, []):
                self._apply_delta(msg)

        # deltas of this node wait until its snapshot is in (see got_directory)
        self._loading.setdefault(node, [])
        d1 = self.cmd.command("SMEMBERS", f"{self.config.prefix}pat:{node}").addCallback(got)
        def failed(failure: Any) -> None:
            self._loading.pop(node, None)
            self._failed(failure, "directory")

        self.cmd.command("HGETALL", f"{self.config.prefix}dir:{node}").addCallbacks(
            got_directory, failed)
        return d1

    def _load_retained(self, flat: list[bytes], realm: str) -> None:
        for i in range(1, len(flat), 2):
            try:
                _, _, env = _unpack(flat[i][TAG:])
            except Exception:  # a damaged entry: skip it
                continue
            self.deliver(realm, env, "retained")

    def _remember(self, node: str, key: tuple[str, str, str]) -> None:
        realm, match, topic = key
        self.remote_keys.setdefault(node, set()).add(key)
        umap = self.remote.setdefault(realm, UriMap())
        nodes = umap.get(topic, match)
        if nodes is None:
            umap.set(topic, match, {node})
        else:
            nodes.add(node)

    def _forget(self, node: str, key: tuple[str, str, str] | None = None) -> None:
        keys = self.remote_keys.get(node, set())
        for k in [key] if key is not None else list(keys):
            keys.discard(k)
            realm, match, topic = k
            umap = self.remote.get(realm)
            nodes = umap.get(topic, match) if umap is not None else None
            if nodes is not None:
                nodes.discard(node)
                if not nodes and umap is not None:
                    umap.remove(topic, match)
        if not keys:
            self.remote_keys.pop(node, None)

    def _heartbeat(self) -> None:
        now, limit = self.reactor.seconds(), self.config.node_ttl + self.config.heartbeat
        for proto in (self.cmd, self.sub):
            if proto is not None and proto.stalled(now, limit):
                # (a Redis host gone without a reset: the connection would look open
                # until TCP gives up, minutes later)
                log.warn("cluster backplane: no answer from Redis at {where} for {s:.1f} s; "
                         "reconnecting", where=self.config.address, s=limit)
                proto.abort()
        cmd = self.cmd
        if self.sub is not None:
            self.sub.send("PING", "0")  # (answered even while it is subscribed)
        if cmd is None or not self._synced:
            return

        def beat(new: int) -> None:
            if new:  # we were declared dead (a pause longer than node_ttl)
                self._fenced()

        cmd.command("EVAL", _BEAT, 1, self.k_nodes, self.node_id,
                    int(self.config.node_ttl * 1000)).addCallbacks(
            beat, self._failed, errbackArgs=("heartbeat",))
        cmd.command("EVAL", _REAP, 1, self.k_nodes, self.config.prefix, self.ch_ctl,
                    self.node_id, int(self.config.node_ttl * 1000)).addCallbacks(
            self._reaped, self._failed, errbackArgs=("reaper",))
        cmd.command("TIME").addCallbacks(self._redis_time, self._failed, callbackArgs=(
            self.reactor.seconds(),), errbackArgs=("TIME",))
        cmd.command("ZCARD", self.k_nodes).addCallbacks(self._count, self._failed,
                                                       errbackArgs=("ZCARD",))

    def _redis_time(self, reply: list[bytes], asked: float) -> None:
        redis_ms = int(reply[0]) * 1000 + int(reply[1]) // 1000
        local_ms = (asked + self.reactor.seconds()) * 500  # the middle of the round trip
        self._clock_offset = int(redis_ms - local_ms)

    def _count(self, n: int) -> None:
        self.nodes = n

    def _reaped(self, dead: list[bytes]) -> None:
        for raw in dead:
            node = raw.decode()
            self.counters["nodes_reaped"] += 1  # the "down" message does the rest
            log.warn("cluster backplane: node {node} stopped renewing its liveness; removed "
                     "its subscriptions from the cluster", node=node)

    def _fenced(self) -> None:
        """The cluster declared this node dead while it was alive: the others ended
        its sessions; end them here too and join again as if reconnected."""
        self._fence_here()
        if self.cmd is not None and self.sub is not None:
            self._synced = False
            self.cmd.fire("DEL", self.k_reaped)
            self._sync()

    def _fence_here(self) -> None:
        log.warn("cluster backplane: the cluster declared this node dead (it was silent "
                 "for more than node_ttl); closing its sessions and joining again")
        self.known.clear()
        self._loading.clear()
        self.driver.fence()

    def _node_down(self, node: str, dead: bool = False) -> None:
        self._forget(node)
        log.info("cluster backplane: node {node} left the cluster{how}", node=node,
                 how=" (declared dead here: its sessions' testaments fire here)" if dead else "")
        self.known.discard(node)
        self._loading.pop(node, None)
        self.driver.node_gone(node, dead)  # also for a node that only ever called here
        self._answered(node, self._barrier_no)  # not waited for any more

    def _failed(self, failure: Any, what: str) -> None:
        if failure.check(RedisError) and not self.up:
            return  # the connection is gone; _lost said so
        log.warn("cluster backplane: {what} failed: {why}", what=what,
                 why=failure.getErrorMessage())

    # -- effects from the core --------------------------------------------------
    def forward(self, effect: Forward) -> None:
        cmd = self.cmd
        if cmd is None:
            self.counters["dropped"] += 1
            if effect.envelope.get("r"):  # kept here; Redis gets it when it is back
                self._unsent_retained[(effect.realm, effect.envelope["t"])] = (
                    effect, self._ms())
            return
        env = effect.envelope
        realm = effect.realm
        topic = env["t"]
        # the topic's channel only when another node subscribes to it (its subscribers
        # are announced before their SUBSCRIBED leaves), or while that is not certain
        channel = effect.exact or bool(self._loading) or not self._synced
        targets = self._pattern_targets(realm, topic)
        retain = env.get("r")
        if not (channel or targets or retain):
            return  # no other node wants it
        try:
            body = _pack(env)  # once, whatever the number of messages it goes in
        except Exception as exc:  # a payload msgpack cannot carry (a CBOR bignum, a date)
            log.warn("cluster backplane: cannot forward a publication to {topic}: {exc}",
                     topic=topic, exc=exc)
            self.counters["dropped"] += 1
            return
        sent = 0
        if channel:
            cmd.fire("PUBLISH", self._topic_channel(realm, topic),
                        self._envelope("exact", realm, body))
            sent = 1
        if targets:
            pattern = self._envelope("pattern", realm, body)
            for node in sorted(targets):
                cmd.fire("PUBLISH", f"{self.config.prefix}n:{node}", pattern)
                sent += 1
        if retain:
            self._retain(cmd, realm, env, 0, body)
            self._own_retained[(realm, topic)] = env["p"]
            sent += 1
        self.counters["sent"] += sent

    def _pattern_targets(self, realm: str, topic: str) -> set[str]:
        """The other nodes with a prefix or wildcard subscription matching ``topic``."""
        targets: set[str] = set()
        umap = self.remote.get(realm)
        if umap is not None and umap.has_patterns():
            for nodes in umap.all_matches(topic):
                targets |= nodes
            targets.discard(self.node_id)
        return targets

    def _envelope(self, kind: str, realm: str, body: bytes) -> bytes:
        """This node's tag and ``[kind, realm, envelope]`` packed, the envelope
        packed already (``body``)."""
        return self._tag + b"\x93" + _pack(kind) + _pack(realm) + body

    def _retain(self, cmd: RespProtocol, realm: str, env: dict[str, Any], ms: int,
                body: bytes | None = None) -> None:
        """The topic's retained event (published at ``ms``), in Redis and on every
        node (not delivered), unless Redis has a newer one."""
        retained = self._envelope("retained", realm, _pack(env) if body is None else body)
        key = self._retained_key(realm)
        cmd.fire("EVAL", _RETAIN, 2, key, key + ":ts", env["t"], ms, retained,
                    self._retained_channel(realm))

    def _ms(self) -> int:
        """Now, on Redis's clock as far as this node knows it (see _heartbeat)."""
        return int(self.reactor.seconds() * 1000) + self._clock_offset

    def relay(self, effect: Relay) -> None:
        """A piece of a call for another node's inbox."""
        cmd = self.cmd
        if cmd is None or not self._synced:
            self.counters["dropped"] += 1
            self.driver.relay_failed(effect, "wamp.error.unavailable",
                                     "this router node cannot reach the cluster now")
            return
        try:
            data = self._tag + _pack(["rpc", effect.realm, effect.payload])
        except Exception as exc:  # a payload msgpack cannot carry (a CBOR bignum, a date)
            self.counters["dropped"] += 1
            self.driver.relay_failed(effect, "wamp.error.invalid_argument",
                                     f"the payload cannot be carried to another router "
                                     f"node: {exc}")
            return
        cmd.fire("PUBLISH", f"{self.config.prefix}n:{effect.node}", data)
        self.counters["sent"] += 1

    def advertise(self, effect: Advertise) -> None:
        """A local callee, session or testament came or went: the other nodes keep a
        copy (they route calls, answer the session meta API, fire testaments)."""
        realm, op, entry = effect.realm, effect.op, effect.entry
        key = self._dir_key(realm, op, entry)
        remove = [key] if op in ("reg-", "sess-", "sub-") or (op == "test"
                                                      and not entry.get("testaments")) else []
        if op == "sess-":  # its subscribers go with it (one HDEL, one message)
            remove.append(self._dir_key(realm, "test", entry))
            remove.extend(self._subs_of.pop((realm, entry["session"]), ()))
        elif op in ("sub+", "sub-"):
            keys = self._subs_of.setdefault((realm, entry["session"]), set())
            (keys.add if op == "sub+" else keys.discard)(key)
        value = b""
        if not remove:
            value = _pack([realm, op, entry])
            self.directory[key] = value
        for k in remove:
            self.directory.pop(k, None)
        cmd = self.cmd
        if cmd is None:
            return  # re-asserted when Redis is back
        if remove:
            cmd.fire("HDEL", self.k_directory, *remove)
        else:
            cmd.fire("HSET", self.k_directory, key, value)
        cmd.fire("PUBLISH", self.ch_ctl, _pack(
            [effect.op, self.node_id, effect.realm, effect.entry]))

    def interest(self, effect: Interest) -> None:
        realm, topic, match = effect.realm, effect.topic, effect.match
        if match == "exact":
            key2 = (realm, topic)
            if effect.added:
                self.exact.add(key2)
            else:
                self.exact.discard(key2)
            if self.sub is not None:
                self.sub.send("SUBSCRIBE" if effect.added else "UNSUBSCRIBE",
                              self._topic_channel(realm, topic))
                self._unconfirmed = True
            return
        key = (realm, match, topic)
        if effect.added:
            self.patterns.add(key)
        else:
            self.patterns.discard(key)
        if self.cmd is not None:
            packed = _pack(list(key))
            self.cmd.fire("SADD" if effect.added else "SREM", self.k_patterns, packed)
            self.cmd.fire("PUBLISH", self.ch_ctl, _pack(
                ["pat+" if effect.added else "pat-", self.node_id, realm, match, topic]))

    def flush(self) -> None:
        """Send the commands of this turn now (before the replies that follow from
        them leave for the clients)."""
        if self.cmd is not None:
            self.cmd.flush()
        if self.sub is not None:
            self.sub.flush()

    # -- barriers: a reply that must not run ahead of the cluster ----------------
    def barrier(self, done: Callable[[], None]) -> None:
        """Call ``done`` once Redis has run this node's SUBSCRIBEs so far and every
        other node has handled what this node announced so far: its pattern
        interest, callees, subscribers and sessions (then a WELCOME, SUBSCRIBED or
        REGISTERED may go out: a publication or call any node takes after it sees
        the new state). A ``ping`` on the control channel is answered by each node
        with a ``pong`` to this node's inbox once it has handled everything before
        it (control messages arrive in order); a PING on the subscriber connection
        comes back after the SUBSCRIBEs sent before it. A node that does not answer
        within ``node_ttl`` (it is about to be declared dead) is not waited for."""
        everyone = self.known | set(self._loading)
        others = everyone - self._mute  # (a muted node is asked, but not waited for)
        if not self.up:
            self._settle(everything=True)  # (the driver releases the earlier ones too)
            done()
            return
        assert self.cmd is not None and self.sub is not None
        self._barrier_no += 1
        n = self._barrier_no
        waiting = set(others)
        if self._unconfirmed or any("" in w for w, _, _ in self._barriers.values()):
            self.sub.send("PING", str(n))  # Redis has run the SUBSCRIBEs sent before
            self._unconfirmed = False
            waiting.add("")
        if everyone:  # (a muted node is asked too: once it answers, it is waited for)
            self.cmd.fire("PUBLISH", self.ch_ctl, _pack(["ping", self.node_id, n])
                             )
        if not waiting:  # alone, or only muted nodes: nothing to wait for
            done()
            return
        timer = self.reactor.callLater(self.config.node_ttl, self._barrier_late, n)
        self._barriers[n] = (waiting, done, timer)

    def _answered(self, who: str, n: int) -> None:
        """``who`` ("" this node's subscriber connection) handled barrier ``n``, and
        so every earlier one."""
        self._mute.discard(who)
        for m, (waiting, _, _) in self._barriers.items():
            if m > n:
                break
            waiting.discard(who)
        self._settle()

    def _settle(self, everything: bool = False) -> None:
        """Complete the barriers up to the last one nobody is waiting for (what the
        others handled later, they handled after the earlier ones too)."""
        last = 0
        for m, (waiting, _, _) in self._barriers.items():
            if everything or not waiting:
                last = m
        while self._barriers:
            m = next(iter(self._barriers))
            if m > last:
                break
            _, done, timer = self._barriers.pop(m)
            if timer.active():
                timer.cancel()
            done()

    def _barrier_late(self, n: int) -> None:
        entry = self._barriers.get(n)
        if entry is None:
            return
        self.counters["barrier_timeouts"] += 1
        log.warn("cluster backplane: {who} did not confirm within node_ttl; replies that "
                 "waited for them go out now, and later ones do not wait for them until "
                 "they answer again", who=", ".join(
                     sorted(w or "Redis" for w in entry[0])) or "nobody")
        self._mute |= entry[0] - {""}
        entry[0].clear()
        self._settle()

    def _pong(self, node: str, n: int) -> None:
        """Another node's barrier ``n``: everything it announced before is handled."""
        if self.cmd is not None:
            self.cmd.fire("PUBLISH", f"{self.config.prefix}n:{node}",
                             self._tag + _pack(["pong", "", n]))

    # -- shared data-sync records --------------------------------------------------
    def sync_commit(self, effect: SyncCommit) -> None:
        """Compare-and-set each version (in order, on one connection), then tell the
        engine how each went."""
        from twisted.internet.defer import DeferredList

        realm, items = effect.realm, effect.items
        cmd = self.cmd
        if cmd is None or not self._synced:
            down = [("refused", "Redis is not reachable")] * len(items)
            self.reactor.callLater(0, self.driver.sync_committed, realm, effect.batch, down)
            return
        ds = []
        for item in items:
            p, uri = item["p"], item["u"]
            event = self._tag + _pack(["sync", realm, {"u": uri, "p": p, "i": item["i"]}])
            d = cmd.command("EVALSHA", _COMMIT_SHA, 4, self._sync_key(realm, "r:", uri),
                            self._sync_key(realm, "l:", uri), self._sync_key(realm, "c:", uri),
                            self._sync_key(realm, "uris:", item["dom"]), item["pv"],
                            item["pt"], p["v"],
                            p["t"], item["value"], int(p["d"]), p["ts"], p["by"] or "",
                            _pack(p), p["k"], p["m"], p["c"], item["max"],
                            self._sync_channel(realm), event, uri)
            ds.append(d.addCallbacks(_commit_result, _commit_error))
        self.counters["sent"] += len(items)
        DeferredList(ds).addCallback(lambda done: self.driver.sync_committed(
            realm, effect.batch, [r for _, r in done]))

    def sync_fetch(self, effect: SyncFetch, delay: float = 0.005) -> None:
        """Read one record back (a gap in its versions here), after a few ms: the
        versions it misses are usually already on their way from Redis."""
        self.reactor.callLater(delay, self._fetch, effect)

    def _fetch(self, effect: SyncFetch) -> None:
        if self.cmd is None or not self._synced:
            return  # the reload after the reconnect brings it
        realm, uri = effect.realm, effect.uri
        after = self.driver.sync_fetch_from(realm, uri)
        if after is None:
            return  # what it waited for arrived

        def failed(failure: Any) -> None:
            self._failed(failure, "reading a record back")
            self.sync_fetch(effect, 0.5)  # (dropped if not up)

        self._read_record(realm, uri, after).addCallbacks(
            lambda r: self.driver.sync_fetched(realm, uri, after, *r), failed)

    def sync_reset(self, effect: SyncReset) -> None:
        """Redis lost versions of the realm's records (same epoch): a new epoch, and
        every node (this one too) reloads the records from Redis."""
        cmd = self.cmd
        if cmd is None or not self._synced:
            return  # the reload after the reconnect checks again
        realm = effect.realm
        log.warn("cluster backplane: Redis lacks data-sync versions this node has (it lost "
                 "data?); starting a new epoch for realm {realm}", realm=realm)
        cmd.command("EVAL", _NEW_EPOCH, 1, self._sync_key(realm, "epoch"), effect.epoch,
                    secrets.token_hex(8), self.ch_ctl,
                    _pack(["epoch", self.node_id, realm])).addCallbacks(
            lambda _: self._reload_records(realm), self._failed, errbackArgs=("new epoch",))

    def _reload_records(self, realm: str) -> None:
        prefixes = self.driver.sync_domains().get(realm)
        if prefixes and self.cmd is not None:
            self._load_records(realm, prefixes).addErrback(self._failed, "loading records")

    def _read_record(self, realm: str, uri: str, after: int = 0) -> Any:
        assert self.cmd is not None
        return self.cmd.command(
            "EVALSHA", _READ_SHA, 3, self._sync_key(realm, "r:", uri),
            self._sync_key(realm, "l:", uri), self._sync_key(realm, "c:", uri),
            after).addCallback(_record)

    def _load_records(self, realm: str, prefixes: list[str]) -> Any:
        """Every shared record of the realm's domains, for the engine's replica."""
        from twisted.internet.defer import gatherResults

        assert self.cmd is not None
        cmd = self.cmd
        self.driver.sync_loading(realm)  # what the node has now, Redis must still have
        cmd.fire("SET", self._sync_key(realm, "epoch"), secrets.token_hex(8), "NX")
        epoch_d = cmd.command("GET", self._sync_key(realm, "epoch"))
        uris: list[str] = []

        def got(indexes: list[list[bytes]]) -> Any:
            uris.extend(sorted({raw.decode() for index in indexes for raw in index}))
            return gatherResults([epoch_d, *(self._read_record(realm, u) for u in uris)],
                                 consumeErrors=True)

        def loaded(results: list[Any]) -> None:
            records = [(uri, *record) for uri, record in zip(uris, results[1:], strict=True)]
            self.driver.sync_loaded(realm, results[0].decode(), records)

        indexes = [cmd.command("ZRANGE", self._sync_key(realm, "uris:", p), 0, -1)
                   for p in prefixes]
        return gatherResults(indexes, consumeErrors=True).addCallback(got).addCallback(loaded)

    # -- pushes from Redis ------------------------------------------------------
    def _push(self, channel: bytes, data: bytes) -> None:
        if channel == self._ctl or not channel:
            self._control_push(channel, data)
            return
        own = data[:TAG] == self._tag
        if own and data[TAG:TAG + _RETAINED_AT] != _RETAINED:
            return  # our own publication (we subscribe to its topic too): delivered already
        try:
            sender = data[:TAG].decode()
            kind, realm, env = _unpack(data[TAG:])
        except Exception:
            log.warn("cluster backplane: undecodable message on {channel}", channel=channel)
            return
        if own:
            self._own_retained_back(realm, env)
            return
        if kind == "pong":
            if type(env) is int:  # (anything else is not ours: ignored)
                self._answered(sender, env)
            return
        if kind == "rpc" and not self._synced:
            return  # isolated or rejoining: calls between nodes were failed on both sides
        self.counters["received"] += 1
        if kind == "rpc":
            self.driver.remote_rpc(realm, sender, env)
        elif kind == "sync":
            self.driver.sync_remote(realm, env)
        else:
            self.deliver(realm, env, kind)

    def _own_retained_back(self, realm: str, env: dict[str, Any]) -> None:
        """Our own retained event is stored again, in the order Redis stored them all
        (so every node ends with the one Redis has), unless a later one of ours is on
        its way (its turn comes; until then ours is the newest here)."""
        key = (realm, env.get("t", ""))
        if self._own_retained.get(key) == env.get("p"):
            del self._own_retained[key]
            self.deliver(realm, env, "retained")

    def _control_push(self, channel: bytes, data: bytes) -> None:
        try:
            if not channel:  # our PING came back (0: the heartbeat's, no barrier)
                n = int(data)
                if n:
                    self._answered("", n)
            else:
                self._control(_unpack(data))
        except Exception:
            log.warn("cluster backplane: undecodable control message")

    def _control(self, msg: list[Any]) -> None:
        op, node = msg[0], msg[1]
        if node == self.node_id:
            if op == "down" and len(msg) > 2 and self._synced:
                self._fenced()  # another node declared this one dead
            return
        if op in _DELTAS and node in self._loading:
            self._loading[node].append(msg)
            return
        if op == "ping" and not self._synced:  # (re)joining: not all loaded yet
            self._early_pings.append(msg)
            return
        if op == "down":  # from the reaper (msg[2]: the node that declared it dead)
            self._node_down(node, dead=len(msg) > 2 and msg[2] == self.node_id)
        elif op == "epoch" and self._synced:  # another node started a new epoch
            self._reload_records(msg[2])
        elif op == "reload" and self.cmd is not None:
            self._load_node(node).addErrback(self._failed, "reload")
        elif op in _DELTAS:
            self._apply_delta(msg)

    def _apply_delta(self, msg: list[Any]) -> None:
        op, node = msg[0], msg[1]
        if op == "ping":
            self._pong(node, msg[2])
        elif op == "pat+":
            self._remember(node, (msg[2], msg[3], msg[4]))
        elif op == "pat-":
            self._forget(node, (msg[2], msg[3], msg[4]))
        else:
            self.known.add(node)
            self.driver.remote_directory(msg[2], node, op, msg[3])


def _commit_result(reply: list[Any]) -> tuple[Any, ...]:
    if reply[0] == 1:
        return ("ok",)
    if reply[0] == 0:
        return ("conflict", reply[1], reply[2].decode())
    if reply[0] == -1:
        return ("too_many",)
    return ("refused", "the record's log in Redis is ahead of its version (damaged keys?)")


def _commit_error(failure: Any) -> tuple[Any, ...]:
    if failure.check(RedisConnectionLost):
        return ("error", failure.getErrorMessage())  # it may have run
    return ("refused", failure.getErrorMessage())  # an error reply: the script did not commit


def _record(replies: list[Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                          list[tuple[int, Any, bool]]]:
    """(state, patches, checkpoints) of one record from HGETALL, XRANGE, HGETALL."""
    flat, entries, cps = replies
    fields = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
    state = None
    if fields:
        state = {"v": int(fields["v"]), "t": fields["t"].decode(),
                 "value": orjson.loads(fields["value"]), "d": fields["d"] == b"1",
                 "ts": fields["ts"].decode(), "by": fields["by"].decode() or None}
    patches = [_unpack(entry[1][1]) for entry in entries]
    checkpoints = [(int(cps[i]), orjson.loads(cps[i + 1][1:]), cps[i + 1][:1] == b"1")
                   for i in range(0, len(cps), 2)]
    return state, patches, checkpoints
