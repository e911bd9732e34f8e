"""Load and validate a router config file (TOML, read with the stdlib ``tomllib``).

Responsibility: turn TOML text into a ``NodeConfig`` or raise ``ConfigError`` listing
every problem of the file, one per line, as ``FILE: PATH: PROBLEM`` (``PATH`` uses
``key.sub[index].key`` notation, e.g. ``realms[1].roles[0].permissions[2].uri``).

Rules:
- Pure: no twisted, autobahn or socket; the only I/O is reading the file or the
  embedded ``default.toml``.
- Collect all issues of a file; never stop at the first one.  TOML syntax errors are
  reported alone, with the line and column that ``tomllib`` gives.
- Cross-references (roles and realms named by auth) are checked against what the
  ``[[realms]]`` tables define; when a realm or role name itself is broken, the
  references to it are not reported again.
- Secrets (tickets, WAMP-CRA secrets and salts) are never echoed in messages.

The format::

    [[listeners]]
    transport = "websocket"            # or "rawsocket"
    endpoint = "127.0.0.1:8080"        # "HOST:PORT", "[::1]:PORT", or "unix:/path/to.sock"
    path = "/ws"                       # websocket only (error on a rawsocket listener)
    serializers = ["json", "msgpack", "cbor"]
    max_message_size = 16777216
    heartbeat = { interval = 30.0, timeout = 10.0 }   # ping every interval s, drop if no pong within timeout s
                                       # (default: 30/10 on websocket, off on rawsocket)

    [listeners.auth.anonymous]         # present = anonymous allowed on this listener
    role = "anonymous"
    realms = ["realm1"]                # optional: restrict to these realms

    [[listeners.auth.ticket]]
    authid = "alice"
    ticket = "secret123"
    role = "user"
    realm = "realm2"                   # optional

    [[listeners.auth.wampcra]]
    authid = "bob"
    secret = "bobsecret"
    role = "user"
    realm = "realm2"
    # salt = "..."; iterations = 1000; keylen = 32   (salted WAMP-CRA: secret is then the plain secret, the router derives the key)

    [[realms]]
    name = "realm1"
    uri_check = "loose"                # or "strict"

    [[realms.roles]]
    name = "anonymous"
    disclose = { caller = true, publisher = false }   # optional: force (true) or suppress (false)
                                       # disclosure of this role's calls/publications; absent = disclose_me

    [[realms.roles.permissions]]
    uri = ""
    match = "prefix"
    allow = ["call", "register", "publish", "subscribe"]

WAMP-Cryptosign and WAMP-SCRAM principals, dynamic authenticators (a method given
as a table instead of an array), ``[listeners.auth.limits]``, ``ticket_hash``, secrets
as ``{ env = ... }`` / ``{ file = ... }`` and listener ``tls`` are parsed by
``auth_loader`` (its docstring shows them); realms take ``authorizer`` and
``authorizer_timeout``, permissions ``disclose = { caller, publisher }``.

A listener without an ``[listeners.auth]`` table allows anonymous access with role
"anonymous"; a listener with one offers exactly the methods it lists (an empty one is
an error).  Limits: port 0..65535 (0 = pick a free port), max_message_size
512..64 MiB (RawSocket: at most 16 MiB = 2**24), heartbeat interval/timeout >= 0
(interval 0 disables), WAMP-CRA iterations >= 1 and keylen 16..128.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from wamp_router.config import (
    auth_loader,  # cryptosign, scram, dynamic, secrets, TLS
    sync_loader,  # data-sync domains
)
from wamp_router.config.model import (
    MIB,
    Action,
    AnonymousAuth,
    Auth,
    Bridge,
    BridgeToken,
    Cluster,
    CraPrincipal,
    CryptosignPrincipal,
    Endpoint,
    Heartbeat,
    Limits,
    Listener,
    LongPoll,
    MatchPolicy,
    Metrics,
    NodeConfig,
    Permission,
    Realm,
    RedisTls,
    Role,
    ScramPrincipal,
    TcpEndpoint,
    TicketPrincipal,
    Transport,
    UnixEndpoint,
    UriCheck,
    Webhook,
)

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "check_pattern",
    "default_config",
    "load_config",
    "load_config_text",
]

EMBEDDED_SOURCE = "<embedded default>"
MIN_MESSAGE_SIZE = 512
MAX_MESSAGE_SIZE = 64 * MIB
RAWSOCKET_MAX_MESSAGE_SIZE = 2**24

TRANSPORTS: tuple[str, ...] = ("websocket", "rawsocket")
SERIALIZERS: tuple[str, ...] = ("json", "msgpack", "cbor")
ACTIONS: tuple[str, ...] = ("call", "register", "publish", "subscribe")
MATCH_POLICIES: tuple[str, ...] = ("exact", "prefix", "wildcard")
URI_CHECKS: tuple[str, ...] = ("loose", "strict")
AUTH_METHODS: tuple[str, ...] = ("anonymous", "ticket", "wampcra", "cryptosign", "scram")

_ROOT_KEYS = ("listeners", "realms", "metrics", "cluster")
_CLUSTER_KEYS = ("backplane", "prefix", "node_ttl", "heartbeat", "prefer_local_callees",
                 "username", "password", "tls_ca", "tls_certificate", "tls_key",
                 "sentinel_password")
_METRICS_KEYS = ("endpoint", "path", "health_path")
_LIMITS_KEYS = ("max_send_buffer", "max_sessions", "max_message_rate", "message_burst",
                "rate_limit_action")
_LISTENER_KEYS = (
    "transport",
    "endpoint",
    "path",
    "serializers",
    "max_message_size",
    "heartbeat",
    "auth",
    "limits",
    "longpoll",
    "rawsocket",
    "bridge",
    "tls",
)
_BRIDGE_KEYS = ("path", "realm", "tokens", "webhooks", "max_rate", "max_skew")
_BRIDGE_TOKEN_KEYS = ("token", "authid", "role", "hmac_secret")
_WEBHOOK_KEYS = ("name", "topic", "role", "authid", "token")
_LONGPOLL_KEYS = ("path", "request_timeout", "session_timeout", "max_queue")
_HEARTBEAT_KEYS = ("interval", "timeout")
_ANONYMOUS_KEYS = ("role", "realms")
_TICKET_KEYS = ("authid", "ticket", "ticket_hash", "role", "realm")
_CRA_KEYS = ("authid", "secret", "role", "realm", "salt", "iterations", "keylen")
_REALM_KEYS = ("name", "uri_check", "roles", "max_sessions", "authorizer", "authorizer_timeout",
               "sync")
_ROLE_KEYS = ("name", "permissions", "disclose")
_DISCLOSE_KEYS = ("caller", "publisher")
_PERMISSION_KEYS = ("uri", "match", "allow", "disclose")

_BAD_URI_CHAR = re.compile(r"[\s#]")
_STRICT_COMPONENT = re.compile(r"[0-9a-z_]+")
_TOML_POSITION = re.compile(
    r"^(?P<what>.*) \(at (?P<where>line \d+, column \d+|end of document)\)$"
)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: the file, the key path inside it ("" = the file as a whole), what."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        if self.path:
            return f"{self.source}: {self.path}: {self.message}"
        return f"{self.source}: {self.message}"


class ConfigError(Exception):
    """A config could not be loaded; ``errors`` holds every issue found."""

    def __init__(self, errors: Sequence[ConfigIssue]) -> None:
        self.errors: list[ConfigIssue] = list(errors)
        super().__init__(self._text())

    def _text(self) -> str:
        return "\n".join(str(issue) for issue in self.errors)

    def __str__(self) -> str:
        return self._text()


# ----------------------------------------------------------------- URI patterns


def check_pattern(uri: str, match: str, *, strict: bool = False) -> str | None:
    """Return what is wrong with ``uri`` as a pattern for ``match``, or None if valid.

    exact: non-empty components; prefix: "" (everything) or components with an
    optional trailing "."; wildcard: empty components are wildcards, but at least one
    component must be non-empty.  Components never hold whitespace or "#" ("." is
    the separator); with ``strict`` they hold only ``[0-9a-z_]``.
    """
    if match == "exact":
        if uri == "":
            return "empty URI"
        return _check_components(uri.split("."), strict=strict, allow_empty=False)
    if match == "prefix":
        if uri == "":
            return None
        body = uri[:-1] if uri.endswith(".") else uri
        return _check_components(body.split("."), strict=strict, allow_empty=False)
    if match == "wildcard":
        parts = uri.split(".")
        if not any(parts):
            return "a wildcard pattern needs at least one non-empty component"
        return _check_components(parts, strict=strict, allow_empty=True)
    return f"unknown match policy {_q(match)} (allowed: {', '.join(MATCH_POLICIES)})"


def _check_components(parts: Iterable[str], *, strict: bool, allow_empty: bool) -> str | None:
    for part in parts:
        problem = _check_component(part, strict=strict, allow_empty=allow_empty)
        if problem is not None:
            return problem
    return None


def _check_component(part: str, *, strict: bool, allow_empty: bool) -> str | None:
    if part == "":
        return None if allow_empty else "empty component"
    bad = _BAD_URI_CHAR.search(part)
    if bad is not None:
        what = '"#"' if bad.group() == "#" else "whitespace"
        return f"component {_q(part)} contains {what}"
    if strict and _STRICT_COMPONENT.fullmatch(part) is None:
        return f"component {_q(part)} has characters other than [0-9a-z_] (strict URI check)"
    return None


# ------------------------------------------------------------------ public API


def load_config(path: str | os.PathLike[str]) -> NodeConfig:
    """Read and validate the TOML config file at ``path``; raise ``ConfigError``."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigIssue(source, "", f"cannot read file: {reason}")]) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issue = ConfigIssue(source, "", f"not valid UTF-8 (at byte {exc.start})")
        raise ConfigError([issue]) from None
    return load_config_text(text, source)


def load_config_text(text: str, source: str) -> NodeConfig:
    """Validate TOML ``text``; ``source`` names it in issues and in the result."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_issue(source, exc)]) from None
    ctx = _Ctx(source)
    config = _parse_root(ctx, data)
    if ctx.issues:
        raise ConfigError(ctx.issues)
    return config


def default_config() -> NodeConfig:
    """The embedded default config (``wamp_router/config/default.toml``)."""
    resource = resources.files("wamp_router.config").joinpath("default.toml")
    return load_config_text(resource.read_text(encoding="utf-8"), EMBEDDED_SOURCE)


def _syntax_issue(source: str, exc: tomllib.TOMLDecodeError) -> ConfigIssue:
    text = str(exc)
    found = _TOML_POSITION.match(text)
    if found is None:
        return ConfigIssue(source, "", f"TOML syntax error: {text}")
    return ConfigIssue(source, "", f"TOML syntax error at {found['where']}: {found['what']}")


# ------------------------------------------------------------- typed accessors


def _q(text: str) -> str:
    """Quote a string for a message (JSON style, non-ASCII kept)."""
    return json.dumps(text, ensure_ascii=False)


def _describe(value: object, *, reveal: bool = True) -> str:
    """Name the TOML type of ``value`` (and the value itself unless secret)."""
    if isinstance(value, bool):
        kind, shown = "a boolean", "true" if value else "false"
    elif isinstance(value, int):
        kind, shown = "an integer", str(value)
    elif isinstance(value, float):
        kind, shown = "a float", repr(value)
    elif isinstance(value, str):
        kind, shown = "a string", _q(value)
    elif isinstance(value, list):
        return "an array"
    elif isinstance(value, dict):
        return "a table"
    else:
        kind, shown = "a date/time", str(value)
    return f"{kind} {shown}" if reveal else kind


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _allowed(choices: Iterable[str]) -> str:
    return ", ".join(choices)


class _Ctx:
    """Where issues of one file are collected."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.issues: list[ConfigIssue] = []

    def error(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.source, path, message))


@dataclass(slots=True)
class _Table:
    """A TOML table at ``path`` with typed getters that report issues to ``ctx``.

    Getters return None when the key is absent (reporting it if required) or holds
    a value of the wrong type (always reported).
    """

    ctx: _Ctx
    data: dict[str, Any]
    path: str

    def sub(self, key: str) -> str:
        return _join(self.path, key)

    def error(self, key: str, message: str) -> None:
        self.ctx.error(self.sub(key), message)

    def check_keys(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.error(key, f"unknown key {_q(key)} (allowed: {_allowed(allowed)})")

    def _value(self, key: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                self.error(key, "missing required key")
            return None
        return self.data[key]

    def _wrong(self, key: str, expected: str, value: object, reveal: bool = True) -> None:
        self.error(key, f"expected {expected}, found {_describe(value, reveal=reveal)}")

    def string(
        self, key: str, *, required: bool = False, nonempty: bool = False, secret: bool = False
    ) -> str | None:
        value = self._value(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self._wrong(key, "a string", value, reveal=not secret)
            return None
        if nonempty and value == "":
            self.error(key, "must not be empty")
            return None
        return value

    def choice(
        self, key: str, choices: Sequence[str], what: str, *, required: bool = False
    ) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        if value not in choices:
            self.error(key, f"unknown {what} {_q(value)} (allowed: {_allowed(choices)})")
            return None
        return value

    def integer(self, key: str, low: int, high: int | None = None) -> int | None:
        value = self._value(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, "an integer", value)
            return None
        if high is None and value < low:
            self.error(key, f"must be at least {low}, found {value}")
            return None
        if high is not None and not low <= value <= high:
            self.error(key, f"{value} is out of range ({low}..{high})")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self._value(key, False)
        if value is None:
            return None
        if not isinstance(value, bool):
            self._wrong(key, "true or false", value)
            return None
        return value

    def seconds(self, key: str) -> float | None:
        value = self._value(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong(key, "a number of seconds", value)
            return None
        if not math.isfinite(value) or value < 0:
            self.error(key, f"must be a finite number >= 0, found {value}")
            return None
        return float(value)

    def table(self, key: str) -> _Table | None:
        value = self._value(key, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            self._wrong(key, "a table", value)
            return None
        return _Table(self.ctx, value, self.sub(key))

    def tables(self, key: str, *, required: bool = False) -> list[_Table] | None:
        """An array of tables; elements that are not tables are reported and skipped."""
        items = self._array(key, "an array of tables", required)
        if items is None:
            return None
        out: list[_Table] = []
        for path, item in items:
            if isinstance(item, dict):
                out.append(_Table(self.ctx, item, path))
            else:
                self.ctx.error(path, f"expected a table, found {_describe(item)}")
        return out

    def strings(self, key: str) -> list[tuple[str, str]] | None:
        """An array of strings as (path, value); non-strings are reported and skipped."""
        items = self._array(key, "an array of strings", False)
        if items is None:
            return None
        out: list[tuple[str, str]] = []
        for path, item in items:
            if isinstance(item, str):
                out.append((path, item))
            else:
                self.ctx.error(path, f"expected a string, found {_describe(item)}")
        return out

    def _array(self, key: str, expected: str, required: bool) -> list[tuple[str, Any]] | None:
        value = self._value(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            self._wrong(key, expected, value)
            return None
        return [(f"{self.sub(key)}[{index}]", item) for index, item in enumerate(value)]


# ------------------------------------------------------------------ realm index


@dataclass(slots=True)
class _RealmIndex:
    """Realm name -> role names it defines, read leniently from the raw TOML.

    ``complete`` is False when some realm's name could not be read; a realm maps to
    None when some of its role names could not be read.  Unknown entries are given
    the benefit of the doubt so one broken name is not reported twice.
    """

    roles: dict[str, frozenset[str] | None] = field(default_factory=dict)
    complete: bool = True

    def names(self) -> str:
        return _allowed(_q(name) for name in self.roles) or "none"

    def realm_known(self, realm: str) -> bool:
        return realm in self.roles or not self.complete

    def role_in(self, realm: str, role: str) -> bool:
        defined = self.roles.get(realm)
        return defined is None or role in defined

    def role_anywhere(self, role: str) -> bool:
        if not self.complete:
            return True
        return any(defined is None or role in defined for defined in self.roles.values())


def _index_realms(raw: object) -> _RealmIndex:
    index = _RealmIndex()
    if not isinstance(raw, list):
        index.complete = False
        return index
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            # a duplicated realm name is reported elsewhere; trust no role list for it
            roles = None if name in index.roles else _index_roles(item.get("roles", []))
            index.roles[name] = roles
        else:
            index.complete = False
    return index


def _index_roles(raw: object) -> frozenset[str] | None:
    if not isinstance(raw, list):
        return None
    names = [item.get("name") if isinstance(item, dict) else None for item in raw]
    if not all(isinstance(name, str) for name in names):
        return None
    return frozenset(cast(list[str], names))


# ----------------------------------------------------------------------- root


def _parse_root(ctx: _Ctx, data: dict[str, Any]) -> NodeConfig:
    root = _Table(ctx, data, "")
    root.check_keys(_ROOT_KEYS)
    index = _index_realms(data.get("realms"))
    listeners = _parse_listeners(root, index)
    realms = _parse_realms(root)
    metrics = _parse_metrics(root)
    cluster = _parse_cluster(root, realms)
    _check_sync_stores(root, realms, cluster)
    return NodeConfig(listeners=listeners, realms=realms, source=ctx.source, metrics=metrics,
                      cluster=cluster)


def _check_sync_stores(root: _Table, realms: tuple[Realm, ...], cluster: Cluster | None) -> None:
    """A cluster keeps data-sync records in Redis; Redis records need a cluster."""
    for index, realm in enumerate(realms):
        for j, domain in enumerate(realm.sync.domains if realm.sync is not None else ()):
            path = f"realms[{index}].sync.domains[{j}].store"
            if cluster is not None and domain.store != "redis":
                root.ctx.error(path, f'domain {_q(domain.prefix)} uses store = '
                               f'"{domain.store}", which each router node would keep for '
                               'itself; with a [cluster] backplane its records must be shared: '
                               'store = "redis"')
            elif cluster is None and domain.store == "redis":
                root.ctx.error(path, f'domain {_q(domain.prefix)} uses store = "redis", which '
                               'needs a [cluster] backplane = "redis://HOST[:PORT][/DB]"')


_REDIS_URL = ('redis://[USER[:PASSWORD]@]HOST[:PORT][/DB], rediss://... (TLS), '
              'unix:///PATH[?db=DB] or redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST'
              '[:PORT]...]/SERVICE[/DB]')


def _parse_cluster(root: _Table, realms: tuple[Realm, ...]) -> Cluster | None:
    table = root.table("cluster")
    if table is None:
        return None
    table.check_keys(_CLUSTER_KEYS)
    url = table.string("backplane", required=True, nonempty=True, secret=True)
    if url is None or url == "local":
        return None
    where = _redis_url(table, url)
    if where is None:
        return None
    prefix = table.string("prefix", nonempty=True) or "wr:"
    node_ttl, heartbeat = table.seconds("node_ttl"), table.seconds("heartbeat")
    for key, value in (("node_ttl", node_ttl), ("heartbeat", heartbeat)):
        if value is not None and not 0 < value <= 3600:
            table.error(key, f"must be more than 0 and at most 3600 seconds, found {value}")
    node_ttl = node_ttl if node_ttl and node_ttl <= 3600 else 3.0
    heartbeat = heartbeat if heartbeat and heartbeat <= 3600 else 1.0
    if heartbeat >= node_ttl:
        table.error("heartbeat", f"must be shorter than node_ttl ({node_ttl} s), found {heartbeat}")
    username, password = _redis_credentials(table, where)
    tls = _redis_tls(table, bool(where["tls"]))
    sentinel_password = auth_loader.secret(table, "sentinel_password")
    if sentinel_password is not None and not where["sentinels"]:
        table.error("sentinel_password", "needs a redis+sentinel:// backplane URL")
    return Cluster(backplane=where["shown"], host=where["host"], port=where["port"],
                   db=where["db"], unix=where["unix"], sentinels=where["sentinels"],
                   service=where["service"], sentinel_password=sentinel_password,
                   username=username, password=password, tls=tls, prefix=prefix, node_ttl=node_ttl, heartbeat=heartbeat,
                   prefer_local_callees=table.boolean("prefer_local_callees") or False)


def _redis_credentials(table: _Table, where: dict[str, Any]) -> tuple[str | None, str | None]:
    """(username, password) from the URL or the keys, in one place each."""
    username = table.string("username", nonempty=True)
    password = auth_loader.secret(table, "password")
    if where["password"] is not None and password is not None:
        table.error("password", "the backplane URL has a password already; give it in one "
                    "place (password = { env = ... } keeps it out of the file)")
    if where["username"] is not None and username is not None:
        table.error("username", "the backplane URL names a user already")
    username = username if username is not None else where["username"]
    password = password if password is not None else where["password"]
    if username and password is None:
        table.error("username", "a Redis user needs a password (in the backplane URL, or "
                    "password = ...)")
    return username, password


def _redis_url(table: _Table, url: str) -> dict[str, Any] | None:
    """The parts of a Redis URL, or None (reported). Issues never show a password."""
    from urllib.parse import unquote

    def bad(problem: str) -> None:
        table.error("backplane", f"{problem}; expected \"local\" or {_REDIS_URL}")

    parts = _split_url(url, bad)
    if parts is None:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
        bad(f"unknown scheme {_q(scheme)}" if scheme else "not a URL")
        return None
    password = unquote(parts.password) if parts.password else None  # ("" = none)
    username = unquote(parts.username) if parts.username else None
    shown = url
    if parts.password is not None:
        shown = url.replace(":" + parts.password + "@", ":***@", 1)
    found: dict[str, Any] = {"shown": shown, "username": username, "password": password,
                             "tls": scheme == "rediss", "unix": None, "host": "127.0.0.1",
                             "port": 6379, "db": 0, "sentinels": (), "service": ""}
    if scheme == "unix":
        where = _redis_socket(parts, bad)
    elif scheme == "redis+sentinel":
        where = _redis_sentinels(parts, bad)
    else:
        where = _redis_host(table, parts, bad)
    if where is None:
        return None
    found.update(where)
    db = found["db"]
    if not (db.isascii() and db.isdigit()):
        bad(f"database {_q(db)} is not a number")
        return None
    found["db"] = int(db)
    return found


def _split_url(url: str, bad: Callable[[str], None]) -> Any:
    from urllib.parse import urlsplit

    userinfo = url.partition("://")[2].rpartition("@")[0]
    if any(c in userinfo for c in "/?#"):  # (the URL would split inside the password)
        bad("the user or password has a '/', '?' or '#': percent-encode it "
            "(%2F, %3F, %23), or give it as password = ...")
        return None
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # (Sentinel URLs list several host:port)
            parts.port  # noqa: B018 (raises for a port that is no number or out of range)
    except ValueError as exc:
        bad(f"cannot read the URL ({exc})")
        return None
    return parts


def _redis_socket(parts: Any, bad: Callable[[str], None]) -> dict[str, Any] | None:
    from urllib.parse import parse_qs, unquote

    if not parts.path or parts.hostname:
        bad("a unix:// URL needs an absolute socket path (unix:///run/redis.sock)")
        return None
    query = parse_qs(parts.query)
    db = query.pop("db", ["0"])[-1]
    if query:
        bad(f"unknown URL parameter {_q(next(iter(query)))} (only db)")
        return None
    return {"unix": unquote(parts.path), "db": db}


def _redis_sentinels(parts: Any, bad: Callable[[str], None]) -> dict[str, Any] | None:
    hosts = parts.netloc.rpartition("@")[2]
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        found = re.fullmatch(r"(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+))(?::(\d{1,5}))?", item)
        port = int(found.group(3) or 26379) if found else 0
        if found is None or not 0 < port < 65536:
            bad(f"cannot read the Sentinel address {_q(item)}")
            return None
        sentinels.append((found.group(1) or found.group(2), port))
    path = [part for part in parts.path.split("/") if part]
    if not 1 <= len(path) <= 2 or parts.query or parts.fragment:
        bad("a redis+sentinel:// URL names the service after the Sentinels (/SERVICE[/DB])")
        return None
    return {"sentinels": tuple(sentinels), "service": path[0],
            "db": path[1] if len(path) == 2 else "0"}


def _redis_host(table: _Table, parts: Any, bad: Callable[[str], None]) -> dict[str, Any] | None:
    if not parts.hostname:
        bad("no host")
        return None
    if parts.query or parts.fragment:
        bad("no URL parameters are read from a redis:// URL")
        return None
    if parts.port == 0:
        table.error("backplane", "port 0 is out of range (1..65535)")
    return {"host": parts.hostname, "port": parts.port or 6379,
            "db": parts.path.strip("/") or "0"}


def _redis_tls(table: _Table, tls: bool) -> RedisTls | None:
    paths: dict[str, str | None] = {}
    for key in ("tls_ca", "tls_certificate", "tls_key"):
        text = table.string(key, nonempty=True)
        if text is None:
            paths[key] = None
            continue
        if not tls:
            table.error(key, "TLS needs a rediss:// backplane URL")
        path = auth_loader.readable_path(table, key, text)
        paths[key] = path
    if (paths["tls_certificate"] is None) != (paths["tls_key"] is None):
        table.error("tls_key" if paths["tls_key"] is None else "tls_certificate",
                    "a client certificate needs both tls_certificate and tls_key")
    if not tls:
        return None
    return RedisTls(ca=paths["tls_ca"], certificate=paths["tls_certificate"],
                    key=paths["tls_key"])


def _parse_metrics(root: _Table) -> Metrics | None:
    table = root.table("metrics")
    if table is None:
        return None
    table.check_keys(_METRICS_KEYS)
    endpoint = _parse_endpoint(table)
    paths = []
    for key, default in (("path", "/metrics"), ("health_path", "/health")):
        path = table.string(key)
        if path is not None and not path.startswith("/"):
            table.error(key, f'path {_q(path)} must start with "/"')
        paths.append(path or default)
    return Metrics(endpoint=endpoint or TcpEndpoint("", 0), path=paths[0], health_path=paths[1])


def _parse_limits(table: _Table) -> Limits:
    limits = table.table("limits")
    if limits is None:
        return Limits()
    limits.check_keys(_LIMITS_KEYS)
    default = Limits()
    buffer = limits.integer("max_send_buffer", 64 * 1024)
    sessions = limits.integer("max_sessions", 0)
    rate = limits.seconds("max_message_rate")  # a number >= 0, like seconds
    burst = limits.integer("message_burst", 0)
    action = limits.choice("rate_limit_action", ("close", "error"), "rate limit action")
    return Limits(
        max_send_buffer=default.max_send_buffer if buffer is None else buffer,
        max_sessions=sessions or 0,
        max_message_rate=rate or 0.0,
        message_burst=burst or 0,
        rate_limit_action=cast(Literal["close", "error"], action or "close"),
    )


def _parse_listeners(root: _Table, index: _RealmIndex) -> tuple[Listener, ...]:
    tables = root.tables("listeners", required=True)
    if tables is None:
        return ()
    if not tables and root.data["listeners"] == []:
        root.error("listeners", "at least one listener is required")
    used: dict[tuple[str, str, int], str] = {}
    listeners: list[Listener] = []
    for table in tables:
        endpoint = _parse_endpoint(table)
        if endpoint is not None:
            _check_endpoint_unused(table, endpoint, used)
        listeners.append(_parse_listener(table, endpoint, index))
    return tuple(listeners)


def _parse_realms(root: _Table) -> tuple[Realm, ...]:
    tables = root.tables("realms", required=True)
    if tables is None:
        return ()
    if not tables and root.data["realms"] == []:
        root.error("realms", "at least one realm is required")
    seen: dict[str, str] = {}
    return tuple(_parse_realm(table, seen) for table in tables)


# ------------------------------------------------------------------- listeners


class _Invalid(Exception):
    """An endpoint string is malformed; the message says why."""


def _parse_endpoint(table: _Table) -> Endpoint | None:
    text = table.string("endpoint", required=True)
    if text is None:
        return None
    try:
        return _endpoint_from_text(text)
    except _Invalid as exc:
        table.error("endpoint", f"invalid endpoint {_q(text)}: {exc}")
        return None


def _endpoint_from_text(text: str) -> Endpoint:
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if not path:
            raise _Invalid("empty socket path (write unix:/path/to.sock)")
        return UnixEndpoint(path)
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise _Invalid('expected "HOST:PORT", "[IPv6]:PORT" or "unix:/path/to.sock"')
    return TcpEndpoint(_host_from_text(host), _port_from_text(port))


def _host_from_text(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise _Invalid(f"{_q(inner)} is not an IPv6 address") from None
        return inner
    if ":" in host:
        raise _Invalid("write an IPv6 address in brackets, e.g. [::1]:8080")
    if any(ch.isspace() or ch in "[]/" for ch in host):
        raise _Invalid(f"invalid host {_q(host)}")
    return host


def _port_from_text(port: str) -> int:
    if not (port.isascii() and port.isdigit()):
        raise _Invalid(f"port {_q(port)} is not a number")
    if len(port) > 5 or int(port) > 65535:
        raise _Invalid(f"port {port} is out of range (0..65535)")
    return int(port)


def _endpoint_key(endpoint: Endpoint) -> tuple[str, str, int] | None:
    if isinstance(endpoint, UnixEndpoint):
        return ("unix", endpoint.path, 0)
    if endpoint.port == 0:
        return None  # every port-0 listener gets its own free port
    return ("tcp", endpoint.host.lower(), endpoint.port)


def _check_endpoint_unused(
    table: _Table, endpoint: Endpoint, used: dict[tuple[str, str, int], str]
) -> None:
    key = _endpoint_key(endpoint)
    if key is None:
        return
    if key in used:
        text = table.data["endpoint"]
        table.error("endpoint", f"endpoint {_q(text)} is already used by {used[key]}")
    else:
        used[key] = table.path


def _parse_listener(table: _Table, endpoint: Endpoint | None, index: _RealmIndex) -> Listener:
    table.check_keys(_LISTENER_KEYS)
    transport = table.choice("transport", TRANSPORTS, "transport", required=True)
    return Listener(
        transport=cast(Transport, transport or "websocket"),
        endpoint=endpoint or TcpEndpoint("", 0),
        path=_parse_ws_path(table, transport),
        serializers=_parse_serializers(table),
        max_message_size=_parse_max_message_size(table, transport),
        heartbeat=_parse_heartbeat(table, transport),
        auth=_parse_auth(table, index),
        limits=_parse_limits(table),
        longpoll=_parse_longpoll(table, transport),
        rawsocket=_parse_shared_rawsocket(table, transport),
        bridge=_parse_bridge(table, transport, index),
        tls=auth_loader.parse_tls(table),
    )


def _parse_bridge(table: _Table, transport: str | None, index: _RealmIndex) -> Bridge | None:
    bridge = table.table("bridge")
    if bridge is None:
        return None
    if transport != "websocket":
        table.error("bridge", '"bridge" applies only to websocket listeners')
        return None
    bridge.check_keys(_BRIDGE_KEYS)
    realm = bridge.string("realm", required=True, nonempty=True) or ""
    if realm and not index.realm_known(realm):
        bridge.error("realm", f"unknown realm {_q(realm)}")
    path = bridge.string("path") or "/bridge"
    if not path.startswith("/"):
        bridge.error("path", f'path {_q(path)} must start with "/"')
    tokens = []
    for t in bridge.tables("tokens") or []:
        t.check_keys(_BRIDGE_TOKEN_KEYS)
        role = t.string("role", required=True, nonempty=True) or ""
        if realm and role and not index.role_in(realm, role):
            t.error("role", f"role {_q(role)} is not defined in realm {_q(realm)}")
        tokens.append(BridgeToken(
            token=t.string("token", required=True, nonempty=True, secret=True) or "",
            authid=t.string("authid", required=True, nonempty=True) or "",
            role=role, hmac_secret=t.string("hmac_secret", nonempty=True, secret=True)))
    hooks = []
    for w in bridge.tables("webhooks") or []:
        w.check_keys(_WEBHOOK_KEYS)
        topic = w.string("topic", required=True, nonempty=True) or ""
        problem = check_pattern(topic, "exact") if topic else None
        if problem is not None:
            w.error("topic", f"invalid topic {_q(topic)}: {problem}")
        role = w.string("role", required=True, nonempty=True) or ""
        if realm and role and not index.role_in(realm, role):
            w.error("role", f"role {_q(role)} is not defined in realm {_q(realm)}")
        hooks.append(Webhook(
            name=w.string("name", required=True, nonempty=True) or "", topic=topic, role=role,
            authid=w.string("authid", nonempty=True) or "webhook",
            token=w.string("token", nonempty=True, secret=True)))
    max_rate = bridge.seconds("max_rate")
    max_skew = bridge.seconds("max_skew")
    return Bridge(realm=realm, path=path.rstrip("/") or "/", tokens=tuple(tokens),
                  webhooks=tuple(hooks), max_rate=max_rate or 0.0,
                  max_skew=300.0 if max_skew is None else max_skew)


def _parse_longpoll(table: _Table, transport: str | None) -> LongPoll | None:
    lp = table.table("longpoll")
    if lp is None:
        return None
    if transport != "websocket":
        table.error("longpoll", '"longpoll" applies only to websocket listeners')
        return None
    lp.check_keys(_LONGPOLL_KEYS)
    default = LongPoll()
    path = lp.string("path") or default.path
    if not path.startswith("/"):
        lp.error("path", f'path {_q(path)} must start with "/"')
    request_timeout = lp.seconds("request_timeout")
    session_timeout = lp.seconds("session_timeout")
    max_queue = lp.integer("max_queue", 1)
    return LongPoll(
        path=path.rstrip("/") or "/",
        request_timeout=default.request_timeout if request_timeout is None else request_timeout,
        session_timeout=default.session_timeout if session_timeout is None else session_timeout,
        max_queue=max_queue or default.max_queue,
    )


def _parse_shared_rawsocket(table: _Table, transport: str | None) -> bool:
    value = table.boolean("rawsocket")
    if value and transport != "websocket":
        table.error("rawsocket", '"rawsocket = true" applies only to websocket listeners '
                    "(RawSocket on the same port)")
    return bool(value)


def _parse_ws_path(table: _Table, transport: str | None) -> str:
    path = table.string("path")
    if path is None:
        return "/ws"
    if transport == "rawsocket":
        table.error("path", '"path" applies only to websocket listeners')
    elif not path.startswith("/"):
        table.error("path", f'path {_q(path)} must start with "/"')
    return path


def _parse_serializers(table: _Table) -> tuple[str, ...]:
    items = table.strings("serializers")
    if items is None:
        return SERIALIZERS
    if table.data["serializers"] == []:
        table.error("serializers", f"at least one serializer is required ({_allowed(SERIALIZERS)})")
    names: list[str] = []
    for path, name in items:
        if name not in SERIALIZERS:
            table.ctx.error(
                path, f"unknown serializer {_q(name)} (allowed: {_allowed(SERIALIZERS)})"
            )
        elif name in names:
            table.ctx.error(path, f"serializer {_q(name)} is listed twice")
        else:
            names.append(name)
    return tuple(names)


def _parse_max_message_size(table: _Table, transport: str | None) -> int:
    size = table.integer("max_message_size", MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE)
    if size is None:
        return 16 * MIB
    if transport == "rawsocket" and size > RAWSOCKET_MAX_MESSAGE_SIZE:
        table.error(
            "max_message_size",
            f"{size} exceeds the RawSocket limit of {RAWSOCKET_MAX_MESSAGE_SIZE} (2**24)",
        )
    return size


# RawSocket heartbeats are off unless configured: autobahn-python's Twisted
# RawSocket client does not understand PING frames and drops the connection.
RAWSOCKET_DEFAULT_HEARTBEAT = Heartbeat(interval=0.0, timeout=10.0)


def _parse_heartbeat(table: _Table, transport: str | None) -> Heartbeat:
    heartbeat = table.table("heartbeat")
    default = RAWSOCKET_DEFAULT_HEARTBEAT if transport == "rawsocket" else Heartbeat()
    if heartbeat is None:
        return default
    heartbeat.check_keys(_HEARTBEAT_KEYS)
    interval = heartbeat.seconds("interval")
    timeout = heartbeat.seconds("timeout")
    return Heartbeat(
        interval=default.interval if interval is None else interval,
        timeout=default.timeout if timeout is None else timeout,
    )


# ------------------------------------------------------------------------ auth


def _parse_auth(table: _Table, index: _RealmIndex) -> Auth:
    if "auth" not in table.data:
        _check_implicit_anonymous(table, index)
        return Auth(anonymous=AnonymousAuth())
    auth = table.table("auth")
    if auth is None:
        return Auth()
    auth.check_keys((*AUTH_METHODS, "limits"))
    data = auth.data
    if not ("anonymous" in data or any(data.get(m) for m in AUTH_METHODS[1:])):
        table.error("auth", f"no authentication method (allowed: {_allowed(AUTH_METHODS)})")
    return Auth(
        anonymous=_parse_anonymous(auth, index),
        ticket=_parse_principals(auth, "ticket", _parse_ticket, index),
        wampcra=_parse_principals(auth, "wampcra", _parse_cra, index),
        cryptosign=_parse_principals(auth, "cryptosign", auth_loader.parse_cryptosign, index),
        scram=_parse_principals(auth, "scram", auth_loader.parse_scram, index),
        dynamic=auth_loader.parse_dynamic(auth, index),  # a method given as a table
        limits=auth_loader.parse_limits(auth),
    )


def _check_implicit_anonymous(table: _Table, index: _RealmIndex) -> None:
    role = AnonymousAuth().role
    if not index.role_anywhere(role):
        table.error(
            "auth",
            f"without an auth table this listener allows anonymous access with role "
            f"{_q(role)}, which no realm defines",
        )


def _parse_anonymous(auth: _Table, index: _RealmIndex) -> AnonymousAuth | None:
    table = auth.table("anonymous")
    if table is None:
        return None
    table.check_keys(_ANONYMOUS_KEYS)
    role = table.string("role", nonempty=True)
    realms = _parse_anonymous_realms(table, index)
    if role is not None or "role" not in table.data:
        _check_anonymous_role(table, role or AnonymousAuth().role, realms, index)
    return AnonymousAuth(role=role or AnonymousAuth().role, realms=realms)


def _parse_anonymous_realms(table: _Table, index: _RealmIndex) -> frozenset[str] | None:
    items = table.strings("realms")
    if items is None:
        return None
    if table.data["realms"] == []:
        table.error("realms", "must not be empty (leave it out to allow any realm)")
    for path, name in items:
        if not index.realm_known(name):
            table.ctx.error(path, _unknown_realm(name, index))
    return frozenset(name for _, name in items)


def _check_anonymous_role(
    table: _Table, role: str, realms: frozenset[str] | None, index: _RealmIndex
) -> None:
    if realms is None:
        if not index.role_anywhere(role):
            table.error("role", f"role {_q(role)} is not defined in any realm")
        return
    for realm in sorted(realms):
        if index.realm_known(realm) and not index.role_in(realm, role):
            table.error("role", f"role {_q(role)} is not defined in realm {_q(realm)}")


def _unknown_realm(name: str, index: _RealmIndex) -> str:
    return f"unknown realm {_q(name)} (defined realms: {index.names()})"


_P = TypeVar("_P", TicketPrincipal, CraPrincipal, CryptosignPrincipal, ScramPrincipal)


def _parse_principals(
    auth: _Table,
    key: str,
    parse: Callable[[_Table, _RealmIndex], _P],
    index: _RealmIndex,
) -> tuple[_P, ...]:
    if isinstance(auth.data.get(key), dict):
        return ()  # a table, not an array of principals: a dynamic authenticator
    tables = auth.tables(key) or []
    seen: dict[str, str] = {}
    principals: list[_P] = []
    for table in tables:
        principal = parse(table, index)
        authid = principal.authid
        if authid and authid in seen:
            table.error("authid", f"duplicate authid {_q(authid)} (also at {seen[authid]})")
        elif authid:
            seen[authid] = table.path
        principals.append(principal)
    return tuple(principals)


def _parse_role_ref(table: _Table, index: _RealmIndex) -> tuple[str, str | None]:
    """Read ``role`` and optional ``realm`` and check that they are defined."""
    role = table.string("role", required=True, nonempty=True)
    realm = table.string("realm", nonempty=True)
    if realm is not None and not index.realm_known(realm):
        table.error("realm", _unknown_realm(realm, index))
    elif role is not None and realm is not None and not index.role_in(realm, role):
        table.error("role", f"role {_q(role)} is not defined in realm {_q(realm)}")
    elif role is not None and realm is None and not index.role_anywhere(role):
        table.error("role", f"role {_q(role)} is not defined in any realm")
    return role or "", realm


def _parse_ticket(table: _Table, index: _RealmIndex) -> TicketPrincipal:
    table.check_keys(_TICKET_KEYS)
    authid = table.string("authid", required=True, nonempty=True)
    ticket, ticket_hash = auth_loader.ticket_secret(table)
    role, realm = _parse_role_ref(table, index)
    return TicketPrincipal(authid=authid or "", ticket=ticket, role=role, realm=realm,
                           ticket_hash=ticket_hash)


def _parse_cra(table: _Table, index: _RealmIndex) -> CraPrincipal:
    table.check_keys(_CRA_KEYS)
    authid = table.string("authid", required=True, nonempty=True)
    secret = auth_loader.secret(table, "secret", required=True)
    role, realm = _parse_role_ref(table, index)
    salt = table.string("salt", nonempty=True, secret=True)
    iterations = table.integer("iterations", 1)
    keylen = table.integer("keylen", 16, 128)
    if "salt" not in table.data:
        for key in ("iterations", "keylen"):
            if key in table.data:
                table.error(key, f'"{key}" only applies to salted WAMP-CRA (set "salt")')
    default = CraPrincipal(authid="", secret="", role="")
    return CraPrincipal(
        authid=authid or "",
        secret=secret or "",
        role=role,
        realm=realm,
        salt=salt,
        iterations=default.iterations if iterations is None else iterations,
        keylen=default.keylen if keylen is None else keylen,
    )


# ---------------------------------------------------------------------- realms


def _parse_realm(table: _Table, seen: dict[str, str]) -> Realm:
    table.check_keys(_REALM_KEYS)
    name = table.string("name", required=True)
    if name is not None:
        _check_realm_name(table, name, seen)
    uri_check = table.choice("uri_check", URI_CHECKS, "URI check")
    authorizer = table.string("authorizer")
    if authorizer is not None and (problem := check_pattern(authorizer, "exact")) is not None:
        table.error("authorizer", f"invalid procedure URI {_q(authorizer)}: {problem}")
    timeout = table.seconds("authorizer_timeout")
    if timeout == 0:
        table.error("authorizer_timeout", "must be more than 0")
    return Realm(
        name=name or "",
        roles=_parse_roles(table, name or "", strict=uri_check == "strict"),
        uri_check=cast(UriCheck, uri_check or "loose"),
        max_sessions=table.integer("max_sessions", 0) or 0,
        authorizer=authorizer,
        authorizer_timeout=timeout or 5.0,
        sync=sync_loader.parse_sync(
            table, name or "", lambda uri, match: check_pattern(
                uri, match, strict=uri_check == "strict")),
    )


def _check_realm_name(table: _Table, name: str, seen: dict[str, str]) -> None:
    problem = check_pattern(name, "exact")
    if problem is not None:
        table.error("name", f"invalid realm name {_q(name)}: {problem}")
    if name in seen:
        table.error("name", f"duplicate realm name {_q(name)} (also at {seen[name]})")
    else:
        seen[name] = table.path


def _parse_roles(table: _Table, realm: str, *, strict: bool) -> tuple[Role, ...]:
    tables = table.tables("roles") or []
    seen: dict[str, str] = {}
    roles: list[Role] = []
    for role_table in tables:
        role_table.check_keys(_ROLE_KEYS)
        name = role_table.string("name", required=True, nonempty=True)
        if name is not None and name in seen:
            role_table.error(
                "name",
                f"duplicate role name {_q(name)} in realm {_q(realm)} (also at {seen[name]})",
            )
        elif name is not None:
            seen[name] = role_table.path
        permissions = tuple(
            _parse_permission(item, strict=strict)
            for item in role_table.tables("permissions") or []
        )
        caller, publisher = _parse_disclose(role_table)
        roles.append(Role(name=name or "", permissions=permissions,
                          disclose_caller=caller, disclose_publisher=publisher))
    return tuple(roles)


def _parse_disclose(table: _Table) -> tuple[bool | None, bool | None]:
    disclose = table.table("disclose")
    if disclose is None:
        return None, None
    disclose.check_keys(_DISCLOSE_KEYS)
    return disclose.boolean("caller"), disclose.boolean("publisher")


def _parse_permission(table: _Table, *, strict: bool) -> Permission:
    table.check_keys(_PERMISSION_KEYS)
    uri = table.string("uri", required=True)
    match = table.choice("match", MATCH_POLICIES, "match policy")
    effective = match or "exact"
    if uri is not None and (match is not None or "match" not in table.data):
        problem = check_pattern(uri, effective, strict=strict)
        if problem is not None:
            table.error(
                "uri", f"invalid URI pattern {_q(uri)} for match {_q(effective)}: {problem}"
            )
    caller, publisher = _parse_disclose(table)
    return Permission(
        uri=uri or "",
        match=cast(MatchPolicy, effective),
        allow=_parse_actions(table),
        disclose_caller=caller,
        disclose_publisher=publisher,
    )


def _parse_actions(table: _Table) -> frozenset[Action]:
    items = table.strings("allow") or []
    actions: set[Action] = set()
    for path, name in items:
        if name in ACTIONS:
            actions.add(cast(Action, name))
        else:
            table.ctx.error(path, f"unknown action {_q(name)} (allowed: {_allowed(ACTIONS)})")
    return frozenset(actions)
