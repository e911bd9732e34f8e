"""Tests for the config model and loader (``wamp_router.config``).

Each check of the loader is exercised with a small TOML text and asserted on the
exact issue path and a key part of the message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wamp_router.config.loader import (
    ConfigError,
    ConfigIssue,
    check_pattern,
    default_config,
    load_config,
    load_config_text,
)
from wamp_router.config.model import (
    Action,
    AnonymousAuth,
    Auth,
    Cluster,
    CraPrincipal,
    Heartbeat,
    Listener,
    NodeConfig,
    Permission,
    Realm,
    Role,
    TcpEndpoint,
    TicketPrincipal,
    UnixEndpoint,
)

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
ALL_ACTIONS: frozenset[Action] = frozenset({"call", "register", "publish", "subscribe"})

# Two realms: realm1 defines role "anonymous", realm2 defines role "user".
REALMS = """
[[realms]]
name = "realm1"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[[realms]]
name = "realm2"

[[realms.roles]]
name = "user"
"""


def listener(
    extra: str = "", *, transport: str = "websocket", endpoint: str = "127.0.0.1:8080"
) -> str:
    """One [[listeners]] table; ``extra`` holds its keys, then its sub-tables."""
    return f'[[listeners]]\ntransport = "{transport}"\nendpoint = "{endpoint}"\n{extra}\n'


def config(*listeners: str, realms: str = REALMS) -> str:
    return "".join(listeners or (listener(),)) + realms


def load(text: str) -> NodeConfig:
    return load_config_text(text, "test.toml")


def issues(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert all(issue.source == "test.toml" for issue in info.value.errors)
    return [(issue.path, issue.message) for issue in info.value.errors]


def assert_issue(text: str, path: str, fragment: str) -> None:
    found = issues(text)
    matching = [message for where, message in found if where == path]
    assert matching, f"no issue at {path!r}; got {found}"
    assert any(fragment in message for message in matching), f"{fragment!r} not in {matching}"


def realm_with_permission(body: str, uri_check: str = "loose") -> str:
    return f"""
[[realms]]
name = "realm1"
uri_check = "{uri_check}"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
{body}
"""


# ------------------------------------------------------------- shipped configs


def test_embedded_default_loads() -> None:
    cfg = default_config()
    assert cfg.source == "<embedded default>"
    ws, raw = cfg.listeners
    assert ws == Listener(
        transport="websocket",
        endpoint=TcpEndpoint("127.0.0.1", 8080),
        path="/ws",
        serializers=("json", "msgpack", "cbor"),
        max_message_size=16 * MIB,
        auth=Auth(anonymous=AnonymousAuth(role="anonymous")),
    )
    assert raw.transport == "rawsocket"
    assert raw.endpoint == TcpEndpoint("127.0.0.1", 8081)
    assert raw.serializers == ("json", "msgpack", "cbor")
    assert raw.max_message_size == 16 * MIB
    assert raw.auth == Auth(anonymous=AnonymousAuth(role="anonymous"))
    assert cfg.realms == (
        Realm(
            name="realm1",
            roles=(Role("anonymous", (Permission("", "prefix", ALL_ACTIONS),)),),
        ),
    )


def test_shipped_default_equals_embedded_default() -> None:
    shipped = load_config(ROOT / "realms" / "default.toml")
    assert shipped == default_config()
    assert shipped.source.endswith("default.toml")


def test_shipped_interop_config() -> None:
    cfg = load_config(str(ROOT / "realms" / "interop.toml"))
    ws, raw = cfg.listeners
    assert (ws.transport, ws.endpoint, ws.path) == (
        "websocket",
        TcpEndpoint("127.0.0.1", 8080),
        "/ws",
    )
    assert (raw.transport, raw.endpoint) == ("rawsocket", TcpEndpoint("127.0.0.1", 8081))
    expected_auth = Auth(
        anonymous=AnonymousAuth(role="anonymous", realms=frozenset({"realm1"})),
        ticket=(TicketPrincipal("alice", "secret123", "user", "realm2"),),
        wampcra=(CraPrincipal("bob", "bobsecret", "user", "realm2"),),
    )
    for lis in (ws, raw):
        assert lis.serializers == ("json", "msgpack", "cbor")
        assert lis.max_message_size == 16 * MIB
        assert lis.auth == expected_auth
    assert cfg.realms == (
        Realm("realm1", (Role("anonymous", (Permission("", "prefix", ALL_ACTIONS),)),)),
        Realm("realm2", (Role("user", (Permission("com.example.", "prefix", ALL_ACTIONS),)),)),
    )


# ------------------------------------------------------------------- model


def test_model_is_frozen_and_slotted() -> None:
    realm = Realm("realm1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        realm.name = "other"  # type: ignore[misc]
    assert not hasattr(realm, "__dict__")


def test_model_defaults() -> None:
    lis = Listener(transport="websocket", endpoint=TcpEndpoint("localhost", 0))
    assert lis.path == "/ws"
    assert lis.serializers == ("json", "msgpack", "cbor")
    assert lis.max_message_size == 16 * MIB
    assert lis.heartbeat == Heartbeat(30.0, 10.0)
    assert lis.auth == Auth(anonymous=AnonymousAuth("anonymous", None))


def test_node_config_equality_ignores_source() -> None:
    a = NodeConfig(listeners=(), realms=(Realm("realm1"),), source="a.toml")
    b = NodeConfig(listeners=(), realms=(Realm("realm1"),), source="b.toml")
    assert a == b


# --------------------------------------------------------------- valid inputs


def test_listener_without_auth_table_gets_anonymous() -> None:
    cfg = load(config())
    assert cfg.listeners[0].auth == Auth(anonymous=AnonymousAuth(role="anonymous"))
    assert cfg.source == "test.toml"


def test_auth_table_gives_only_listed_methods() -> None:
    extra = '[[listeners.auth.ticket]]\nauthid = "alice"\nticket = "t"\nrole = "user"\n'
    cfg = load(config(listener(extra)))
    assert cfg.listeners[0].auth == Auth(ticket=(TicketPrincipal("alice", "t", "user"),))


def test_full_listener_values() -> None:
    extra = """
path = "/wamp"
serializers = ["cbor"]
max_message_size = 512
heartbeat = { interval = 0, timeout = 2.5 }

[[listeners.auth.wampcra]]
authid = "bob"
secret = "s"
role = "user"
realm = "realm2"
salt = "salt123"
iterations = 100
keylen = 16
"""
    lis = load(config(listener(extra))).listeners[0]
    assert lis.path == "/wamp"
    assert lis.serializers == ("cbor",)
    assert lis.max_message_size == 512
    assert lis.heartbeat == Heartbeat(interval=0.0, timeout=2.5)
    assert lis.auth.wampcra == (CraPrincipal("bob", "s", "user", "realm2", "salt123", 100, 16),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", TcpEndpoint("127.0.0.1", 8080)),
        ("localhost:0", TcpEndpoint("localhost", 0)),
        ("[::1]:9000", TcpEndpoint("::1", 9000)),
        ("0.0.0.0:65535", TcpEndpoint("0.0.0.0", 65535)),
        ("unix:/tmp/router.sock", UnixEndpoint("/tmp/router.sock")),
    ],
)
def test_endpoint_forms(text: str, expected: object) -> None:
    cfg = load(config(listener(endpoint=text)))
    assert cfg.listeners[0].endpoint == expected


def test_two_listeners_on_port_zero_are_fine() -> None:
    cfg = load(config(listener(endpoint="127.0.0.1:0"), listener(endpoint="127.0.0.1:0")))
    assert len(cfg.listeners) == 2


def test_same_port_on_different_hosts_is_fine() -> None:
    load(config(listener(endpoint="127.0.0.1:8080"), listener(endpoint="127.0.0.2:8080")))


def test_rawsocket_accepts_2_pow_24() -> None:
    lis = listener(f"max_message_size = {2**24}", transport="rawsocket")
    assert load(config(lis)).listeners[0].max_message_size == 2**24


def test_websocket_accepts_64_mib() -> None:
    assert load(config(listener(f"max_message_size = {64 * MIB}"))).listeners[0].max_message_size


def test_same_authid_in_different_methods_is_fine() -> None:
    extra = """
[[listeners.auth.ticket]]
authid = "alice"
ticket = "t"
role = "user"

[[listeners.auth.wampcra]]
authid = "alice"
secret = "s"
role = "user"
"""
    load(config(listener(extra)))


def test_strict_realm_accepts_strict_uris() -> None:
    body = 'uri = "com.example.add2"\nallow = ["call"]'
    cfg = load(config(realms=realm_with_permission(body, "strict")))
    assert cfg.realms[0].uri_check == "strict"
    assert cfg.realms[0].roles[0].permissions == (
        Permission("com.example.add2", "exact", frozenset({"call"})),
    )


def test_permission_defaults() -> None:
    cfg = load(config(realms=realm_with_permission('uri = "com.example.x"')))
    assert cfg.realms[0].roles[0].permissions == (Permission("com.example.x"),)


# ------------------------------------------------------------ syntax, file


def test_toml_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("[[listeners]]\ntransport = \n", "bad.toml")
    (issue,) = info.value.errors
    assert issue.source == "bad.toml"
    assert issue.path == ""
    assert "TOML syntax error at line 2, column 13" in issue.message
    assert str(info.value).startswith("bad.toml: TOML syntax error at line 2, column 13")


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/router.toml")
    assert "cannot read file" in str(info.value)
    assert info.value.errors[0].source == "/nonexistent/router.toml"


def test_load_config_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(config(), encoding="utf-8")
    assert load_config(path).source == str(path)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_bytes(b"# \xff\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(path)


# ------------------------------------------------------------ collected issues


def test_all_issues_are_collected_and_formatted() -> None:
    text = config(
        listener('serializers = ["xml"]\nmax_message_size = 1'),
        realms=realm_with_permission('uri = "com..x"\nallow = ["pub"]'),
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "realms/bad.toml")
    lines = str(info.value).splitlines()
    assert lines == [
        'realms/bad.toml: listeners[0].serializers[0]: unknown serializer "xml" (allowed: json, msgpack, cbor)',
        "realms/bad.toml: listeners[0].max_message_size: 1 is out of range (512..67108864)",
        'realms/bad.toml: realms[0].roles[0].permissions[0].uri: invalid URI pattern "com..x" for match "exact": empty component',
        'realms/bad.toml: realms[0].roles[0].permissions[0].allow[0]: unknown action "pub" (allowed: call, register, publish, subscribe)',
    ]
    assert info.value.errors[0] == ConfigIssue(
        "realms/bad.toml",
        "listeners[0].serializers[0]",
        'unknown serializer "xml" (allowed: json, msgpack, cbor)',
    )


def test_issue_path_matches_spec_example() -> None:
    permissions = "".join(
        f'[[realms.roles.permissions]]\nuri = "{uri}"\n' for uri in ("a", "b", "com..x")
    )
    realms = REALMS + '[[realms.roles]]\nname = "other"\n' + permissions
    with pytest.raises(ConfigError) as info:
        load_config_text(config(realms=realms), "realms/bad.toml")
    assert str(info.value) == (
        'realms/bad.toml: realms[1].roles[1].permissions[2].uri: invalid URI pattern "com..x" '
        'for match "exact": empty component'
    )


# ------------------------------------------------------------------ unknown keys


@pytest.mark.parametrize(
    ("text", "path", "allowed"),
    [
        ("bogus = 1\n" + config(), "bogus", "listeners, realms"),
        (config(listener("prot = 1")), "listeners[0].prot", "transport, endpoint, path"),
        (
            config(listener("heartbeat = { every = 1 }")),
            "listeners[0].heartbeat.every",
            "interval, timeout",
        ),
        (
            config(listener("[listeners.auth]\nkerberos = {}\nanonymous = {}")),
            "listeners[0].auth.kerberos",
            "anonymous, ticket, wampcra",
        ),
        (
            config(listener('[listeners.auth.anonymous]\nrole = "anonymous"\nx = 1')),
            "listeners[0].auth.anonymous.x",
            "role, realms",
        ),
        (
            config(
                listener(
                    '[[listeners.auth.ticket]]\nauthid = "a"\nticket = "t"\nrole = "user"\nx = 1'
                )
            ),
            "listeners[0].auth.ticket[0].x",
            "authid, ticket, ticket_hash, role, realm",
        ),
        (
            config(
                listener(
                    '[[listeners.auth.wampcra]]\nauthid = "a"\nsecret = "s"\nrole = "user"\nx = 1'
                )
            ),
            "listeners[0].auth.wampcra[0].x",
            "authid, secret, role, realm, salt, iterations, keylen",
        ),
        (config(realms=REALMS + "color = 1\n"), "realms[1].roles[0].color", "name, permissions"),
        (
            config(realms=REALMS.replace('name = "realm2"', 'name = "realm2"\nowner = 1')),
            "realms[1].owner",
            "name, uri_check, roles",
        ),
        (
            config(realms=realm_with_permission('uri = "a"\nregex = 1')),
            "realms[0].roles[0].permissions[0].regex",
            "uri, match, allow",
        ),
    ],
)
def test_unknown_keys(text: str, path: str, allowed: str) -> None:
    key = path.rsplit(".", 1)[-1]
    assert_issue(text, path, f'unknown key "{key}" (allowed: {allowed}')


# ------------------------------------------------------------------ wrong types


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        (
            config(listener('max_message_size = "8080"')),
            "listeners[0].max_message_size",
            'expected an integer, found a string "8080"',
        ),
        (
            config(listener("max_message_size = true")),
            "listeners[0].max_message_size",
            "expected an integer, found a boolean true",
        ),
        (
            config(listener("max_message_size = 1024.0")),
            "listeners[0].max_message_size",
            "expected an integer, found a float 1024.0",
        ),
        (
            '[[listeners]]\ntransport = 1\nendpoint = "127.0.0.1:1"\n' + REALMS,
            "listeners[0].transport",
            "expected a string, found an integer 1",
        ),
        (
            '[[listeners]]\ntransport = "websocket"\nendpoint = 8080\n' + REALMS,
            "listeners[0].endpoint",
            "expected a string, found an integer 8080",
        ),
        (
            'listeners = "x"\n' + REALMS,
            "listeners",
            'expected an array of tables, found a string "x"',
        ),
        ("listeners = [1]\n" + REALMS, "listeners[0]", "expected a table, found an integer 1"),
        (
            'realms = {name = "r"}\n' + listener(),
            "realms",
            "expected an array of tables, found a table",
        ),
        (
            config(listener('serializers = "json"')),
            "listeners[0].serializers",
            'expected an array of strings, found a string "json"',
        ),
        (
            config(listener("serializers = [1]")),
            "listeners[0].serializers[0]",
            "expected a string, found an integer 1",
        ),
        (
            config(listener("heartbeat = 5")),
            "listeners[0].heartbeat",
            "expected a table, found an integer 5",
        ),
        (
            config(listener("heartbeat = { interval = true }")),
            "listeners[0].heartbeat.interval",
            "expected a number of seconds, found a boolean true",
        ),
        (
            config(listener('path = ["/ws"]')),
            "listeners[0].path",
            "expected a string, found an array",
        ),
        (config(listener("auth = 1")), "listeners[0].auth", "expected a table, found an integer 1"),
        (
            config(listener('[listeners.auth]\nticket = "alice"')),
            "listeners[0].auth.ticket",
            "expected an array of tables, found a string",
        ),
        (
            config(
                listener(
                    '[[listeners.auth.wampcra]]\nauthid = "a"\nsecret = "s"\nrole = "user"\n'
                    'salt = "x"\niterations = "5"'
                )
            ),
            "listeners[0].auth.wampcra[0].iterations",
            'expected an integer, found a string "5"',
        ),
        (
            config(listener('[listeners.auth.anonymous]\nrealms = "realm1"')),
            "listeners[0].auth.anonymous.realms",
            'expected an array of strings, found a string "realm1"',
        ),
        (
            config(realms="[[realms]]\nname = 1979-05-27\n"),
            "realms[0].name",
            "expected a string, found a date/time 1979-05-27",
        ),
        (
            config(realms=realm_with_permission('uri = "a"\nallow = "call"')),
            "realms[0].roles[0].permissions[0].allow",
            'expected an array of strings, found a string "call"',
        ),
        (
            config(realms=realm_with_permission("uri = 5")),
            "realms[0].roles[0].permissions[0].uri",
            "expected a string, found an integer 5",
        ),
    ],
)
def test_wrong_types(text: str, path: str, fragment: str) -> None:
    assert_issue(text, path, fragment)


@pytest.mark.parametrize(
    ("method", "body", "key"),
    [
        ("ticket", 'authid = "a"\nticket = 12345\nrole = "user"', "ticket"),
        ("wampcra", 'authid = "a"\nsecret = 12345\nrole = "user"', "secret"),
        ("wampcra", 'authid = "a"\nsecret = "s"\nrole = "user"\nsalt = 12345', "salt"),
    ],
)
def test_secrets_are_not_echoed(method: str, body: str, key: str) -> None:
    found = issues(config(listener(f"[[listeners.auth.{method}]]\n{body}")))
    assert found == [
        (f"listeners[0].auth.{method}[0].{key}", "expected a string, found an integer")
    ]


# ----------------------------------------------------------- missing keys


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (REALMS, "listeners"),
        (listener(), "realms"),
        ('[[listeners]]\nendpoint = "127.0.0.1:1"\n' + REALMS, "listeners[0].transport"),
        ('[[listeners]]\ntransport = "websocket"\n' + REALMS, "listeners[0].endpoint"),
        (
            config(listener('[[listeners.auth.ticket]]\nticket = "t"\nrole = "user"')),
            "listeners[0].auth.ticket[0].authid",
        ),
        (
            config(listener('[[listeners.auth.ticket]]\nauthid = "a"\nrole = "user"')),
            "listeners[0].auth.ticket[0].ticket",
        ),
        (
            config(listener('[[listeners.auth.ticket]]\nauthid = "a"\nticket = "t"')),
            "listeners[0].auth.ticket[0].role",
        ),
        (
            config(listener('[[listeners.auth.wampcra]]\nauthid = "a"\nrole = "user"')),
            "listeners[0].auth.wampcra[0].secret",
        ),
        (config(realms="[[realms]]\nuri_check = 'loose'\n"), "realms[0].name"),
        (config(realms=REALMS + "[[realms.roles]]\n"), "realms[1].roles[1].name"),
        (
            config(realms=realm_with_permission('allow = ["call"]')),
            "realms[0].roles[0].permissions[0].uri",
        ),
    ],
)
def test_missing_required_keys(text: str, path: str) -> None:
    assert_issue(text, path, "missing required key")


def test_empty_listeners_and_realms() -> None:
    found = issues("listeners = []\nrealms = []\n")
    assert ("listeners", "at least one listener is required") in found
    assert ("realms", "at least one realm is required") in found


@pytest.mark.parametrize("key", ["authid", "ticket", "role", "realm"])
def test_empty_ticket_strings(key: str) -> None:
    values = {"authid": "a", "ticket": "t", "role": "user", "realm": "realm2", key: ""}
    body = "[[listeners.auth.ticket]]\n" + "\n".join(f'{k} = "{v}"' for k, v in values.items())
    assert_issue(config(listener(body)), f"listeners[0].auth.ticket[0].{key}", "must not be empty")


# ----------------------------------------------------------- ranges and values


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("127.0.0.1:65536", "port 65536 is out of range (0..65535)"),
        ("127.0.0.1:99999999", "port 99999999 is out of range (0..65535)"),
        ("127.0.0.1:http", 'port "http" is not a number'),
        ("127.0.0.1:", 'port "" is not a number'),
        ("127.0.0.1", 'expected "HOST:PORT"'),
        (":8080", 'expected "HOST:PORT"'),
        ("::1:8080", "write an IPv6 address in brackets"),
        ("[zz::1]:8080", '"zz::1" is not an IPv6 address'),
        ("local host:8080", 'invalid host "local host"'),
        ("unix:", "empty socket path"),
    ],
)
def test_invalid_endpoints(endpoint: str, fragment: str) -> None:
    assert_issue(config(listener(endpoint=endpoint)), "listeners[0].endpoint", fragment)


@pytest.mark.parametrize("size", [0, 511, 64 * MIB + 1])
def test_max_message_size_range(size: int) -> None:
    assert_issue(
        config(listener(f"max_message_size = {size}")),
        "listeners[0].max_message_size",
        f"{size} is out of range (512..67108864)",
    )


def test_rawsocket_max_message_size_cap() -> None:
    text = config(listener(f"max_message_size = {2**24 + 1}", transport="rawsocket"))
    assert issues(text) == [
        (
            "listeners[0].max_message_size",
            f"{2**24 + 1} exceeds the RawSocket limit of 16777216 (2**24)",
        )
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("-1", "found -1"), ("-0.5", "found -0.5"), ("inf", "found inf"), ("nan", "found nan")],
)
@pytest.mark.parametrize("key", ["interval", "timeout"])
def test_heartbeat_range(key: str, value: str, fragment: str) -> None:
    assert_issue(
        config(listener(f"heartbeat = {{ {key} = {value} }}")),
        f"listeners[0].heartbeat.{key}",
        f"must be a finite number >= 0, {fragment}",
    )


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("iterations", 0, "must be at least 1, found 0"),
        ("iterations", -5, "must be at least 1, found -5"),
        ("keylen", 15, "15 is out of range (16..128)"),
        ("keylen", 129, "129 is out of range (16..128)"),
    ],
)
def test_cra_ranges(key: str, value: int, fragment: str) -> None:
    body = f'[[listeners.auth.wampcra]]\nauthid = "a"\nsecret = "s"\nrole = "user"\nsalt = "x"\n{key} = {value}'
    assert_issue(config(listener(body)), f"listeners[0].auth.wampcra[0].{key}", fragment)


def test_cra_iterations_without_salt() -> None:
    body = '[[listeners.auth.wampcra]]\nauthid = "a"\nsecret = "s"\nrole = "user"\niterations = 10'
    assert issues(config(listener(body))) == [
        (
            "listeners[0].auth.wampcra[0].iterations",
            '"iterations" only applies to salted WAMP-CRA (set "salt")',
        )
    ]


def test_unknown_transport() -> None:
    assert_issue(
        config(listener(transport="http")),
        "listeners[0].transport",
        'unknown transport "http" (allowed: websocket, rawsocket)',
    )


def test_serializers() -> None:
    text = config(listener('serializers = ["json", "xml", "json"]'))
    assert issues(text) == [
        ("listeners[0].serializers[1]", 'unknown serializer "xml" (allowed: json, msgpack, cbor)'),
        ("listeners[0].serializers[2]", 'serializer "json" is listed twice'),
    ]


def test_no_serializers() -> None:
    assert_issue(
        config(listener("serializers = []")), "listeners[0].serializers", "at least one serializer"
    )


def test_path_must_start_with_slash() -> None:
    assert_issue(
        config(listener('path = "ws"')), "listeners[0].path", 'path "ws" must start with "/"'
    )


def test_path_on_rawsocket_listener() -> None:
    text = config(listener('path = "/ws"', transport="rawsocket"))
    assert_issue(text, "listeners[0].path", '"path" applies only to websocket listeners')


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("LocalHost:9000", "localhost:9000"),
        ("[::1]:8080", "[::1]:8080"),
        ("unix:/tmp/r.sock", "unix:/tmp/r.sock"),
    ],
)
def test_duplicate_endpoints(first: str, second: str) -> None:
    text = config(listener(endpoint=first), listener(endpoint=second, transport="rawsocket"))
    assert_issue(text, "listeners[1].endpoint", "is already used by listeners[0]")


def test_empty_auth_table() -> None:
    assert_issue(
        config(listener("[listeners.auth]")),
        "listeners[0].auth",
        "no authentication method (allowed: anonymous, ticket, wampcra, cryptosign, scram)",
    )


def test_auth_table_with_empty_method_lists() -> None:
    assert_issue(
        config(listener("auth = { ticket = [] }")), "listeners[0].auth", "no authentication method"
    )


def test_unknown_action_and_match() -> None:
    text = config(
        realms=realm_with_permission('uri = "a"\nmatch = "regex"\nallow = ["call", "pub"]')
    )
    assert issues(text) == [
        (
            "realms[0].roles[0].permissions[0].match",
            'unknown match policy "regex" (allowed: exact, prefix, wildcard)',
        ),
        (
            "realms[0].roles[0].permissions[0].allow[1]",
            'unknown action "pub" (allowed: call, register, publish, subscribe)',
        ),
    ]


def test_unknown_uri_check() -> None:
    text = config(realms=REALMS.replace('name = "realm2"', 'name = "realm2"\nuri_check = "tight"'))
    assert_issue(text, "realms[1].uri_check", 'unknown URI check "tight" (allowed: loose, strict)')


@pytest.mark.parametrize(
    ("uri", "match", "problem"),
    [
        ("com..x", "exact", "empty component"),
        ("", "exact", "empty URI"),
        ("com.example.", "exact", "empty component"),
        ("com.a b", "exact", 'component "a b" contains whitespace'),
        ("com.a#b", "prefix", 'component "a#b" contains "#"'),
        ("com..", "prefix", "empty component"),
        (".", "prefix", "empty component"),
        ("..", "wildcard", "a wildcard pattern needs at least one non-empty component"),
        ("com..a b", "wildcard", 'component "a b" contains whitespace'),
    ],
)
def test_invalid_permission_uris(uri: str, match: str, problem: str) -> None:
    text = config(realms=realm_with_permission(f'uri = "{uri}"\nmatch = "{match}"'))
    assert_issue(
        text,
        "realms[0].roles[0].permissions[0].uri",
        f'invalid URI pattern "{uri}" for match "{match}": {problem}',
    )


def test_strict_realm_rejects_loose_uris() -> None:
    text = config(realms=realm_with_permission('uri = "com.Example"', "strict"))
    assert_issue(
        text,
        "realms[0].roles[0].permissions[0].uri",
        'component "Example" has characters other than [0-9a-z_] (strict URI check)',
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a..b", "empty component"),
        ("", "empty URI"),
        ("realm 1", 'component "realm 1" contains whitespace'),
        ("realm#1", 'component "realm#1" contains "#"'),
        ("realm1.", "empty component"),
    ],
)
def test_invalid_realm_names(name: str, problem: str) -> None:
    text = config(realms=REALMS + f'[[realms]]\nname = "{name}"\n')
    assert_issue(text, "realms[2].name", f'invalid realm name "{name}": {problem}')


def test_duplicate_realm_names() -> None:
    text = config(realms=REALMS + '[[realms]]\nname = "realm1"\n')
    assert issues(text) == [("realms[2].name", 'duplicate realm name "realm1" (also at realms[0])')]


def test_duplicate_role_names() -> None:
    text = config(realms=REALMS + '[[realms.roles]]\nname = "user"\n')
    assert issues(text) == [
        (
            "realms[1].roles[1].name",
            'duplicate role name "user" in realm "realm2" (also at realms[1].roles[0])',
        )
    ]


def test_duplicate_authids() -> None:
    body = """
[[listeners.auth.wampcra]]
authid = "bob"
secret = "s"
role = "user"

[[listeners.auth.wampcra]]
authid = "bob"
secret = "t"
role = "user"
"""
    assert issues(config(listener(body))) == [
        (
            "listeners[0].auth.wampcra[1].authid",
            'duplicate authid "bob" (also at listeners[0].auth.wampcra[0])',
        )
    ]


# ------------------------------------------------------------ cross references


def ticket(role: str, realm: str | None = None) -> str:
    line = f'realm = "{realm}"' if realm is not None else ""
    return f'[[listeners.auth.ticket]]\nauthid = "a"\nticket = "t"\nrole = "{role}"\n{line}'


def test_principal_role_defined_nowhere() -> None:
    assert issues(config(listener(ticket("admin")))) == [
        ("listeners[0].auth.ticket[0].role", 'role "admin" is not defined in any realm')
    ]


def test_principal_role_not_in_its_realm() -> None:
    assert issues(config(listener(ticket("user", "realm1")))) == [
        ("listeners[0].auth.ticket[0].role", 'role "user" is not defined in realm "realm1"')
    ]


def test_principal_unknown_realm() -> None:
    body = '[[listeners.auth.wampcra]]\nauthid = "b"\nsecret = "s"\nrole = "user"\nrealm = "realm9"'
    assert issues(config(listener(body))) == [
        (
            "listeners[0].auth.wampcra[0].realm",
            'unknown realm "realm9" (defined realms: "realm1", "realm2")',
        )
    ]


def test_anonymous_unknown_realm() -> None:
    body = '[listeners.auth.anonymous]\nrealms = ["realm1", "realm9"]'
    assert issues(config(listener(body))) == [
        (
            "listeners[0].auth.anonymous.realms[1]",
            'unknown realm "realm9" (defined realms: "realm1", "realm2")',
        )
    ]


def test_anonymous_role_not_in_listed_realm() -> None:
    body = '[listeners.auth.anonymous]\nrealms = ["realm1", "realm2"]'
    assert issues(config(listener(body))) == [
        ("listeners[0].auth.anonymous.role", 'role "anonymous" is not defined in realm "realm2"')
    ]


def test_anonymous_role_defined_nowhere() -> None:
    body = '[listeners.auth.anonymous]\nrole = "guest"'
    assert issues(config(listener(body))) == [
        ("listeners[0].auth.anonymous.role", 'role "guest" is not defined in any realm')
    ]


def test_anonymous_empty_realm_list() -> None:
    assert_issue(
        config(listener("[listeners.auth.anonymous]\nrealms = []")),
        "listeners[0].auth.anonymous.realms",
        "must not be empty",
    )


def test_implicit_anonymous_needs_the_anonymous_role() -> None:
    realms = '[[realms]]\nname = "realm2"\n[[realms.roles]]\nname = "user"\n'
    assert issues(config(realms=realms)) == [
        (
            "listeners[0].auth",
            'without an auth table this listener allows anonymous access with role "anonymous", '
            "which no realm defines",
        )
    ]


def test_broken_realm_name_does_not_cascade() -> None:
    realms = REALMS + '[[realms]]\nname = 7\n[[realms.roles]]\nname = "admin"\n'
    text = config(listener(ticket("admin", "realm9")), realms=realms)
    assert issues(text) == [("realms[2].name", "expected a string, found an integer 7")]


def test_broken_role_name_does_not_cascade() -> None:
    realms = REALMS + "[[realms.roles]]\nname = 7\n"
    text = config(listener(ticket("admin", "realm2")), realms=realms)
    assert issues(text) == [("realms[1].roles[1].name", "expected a string, found an integer 7")]


def test_duplicate_realm_does_not_cascade() -> None:
    realms = REALMS + '[[realms]]\nname = "realm2"\n'
    text = config(listener(ticket("user", "realm2")), realms=realms)
    assert issues(text) == [("realms[2].name", 'duplicate realm name "realm2" (also at realms[1])')]


# --------------------------------------------------------------- check_pattern


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("com.example.add2", "exact"),
        ("a", "exact"),
        ("", "prefix"),
        ("com.example.", "prefix"),
        ("com.example", "prefix"),
        ("com..update", "wildcard"),
        (".example.", "wildcard"),
        ("com.example", "wildcard"),
        ("ℝ.café", "exact"),
    ],
)
def test_check_pattern_valid(uri: str, match: str) -> None:
    assert check_pattern(uri, match) is None


@pytest.mark.parametrize(
    ("uri", "match", "problem"),
    [
        ("", "exact", "empty URI"),
        ("a..b", "exact", "empty component"),
        (".a", "exact", "empty component"),
        ("a.", "exact", "empty component"),
        ("a.b c", "exact", "whitespace"),
        ("a.b#", "exact", '"#"'),
        ("a..", "prefix", "empty component"),
        ("", "wildcard", "at least one non-empty component"),
        ("...", "wildcard", "at least one non-empty component"),
        ("a", "regex", 'unknown match policy "regex"'),
    ],
)
def test_check_pattern_invalid(uri: str, match: str, problem: str) -> None:
    result = check_pattern(uri, match)
    assert result is not None and problem in result


def test_check_pattern_strict() -> None:
    assert check_pattern("com.Example", "exact") is None
    assert check_pattern("com.Example", "exact", strict=True) is not None
    assert check_pattern("com..x_1", "wildcard", strict=True) is None


COMPONENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
COMPONENTS = st.lists(COMPONENT, min_size=1, max_size=6)
BAD_CHARS = st.sampled_from([" ", "\t", "\n", "\u00a0", "\u3000", "#"])


@given(COMPONENTS)
def test_joined_components_are_valid_everywhere(parts: list[str]) -> None:
    uri = ".".join(parts)
    for strict in (False, True):
        assert check_pattern(uri, "exact", strict=strict) is None
        assert check_pattern(uri, "prefix", strict=strict) is None
        assert check_pattern(uri + ".", "prefix", strict=strict) is None
        assert check_pattern(uri, "wildcard", strict=strict) is None


@given(COMPONENTS, st.data())
def test_bad_char_in_component_is_invalid(parts: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(parts) - 1))
    position = data.draw(st.integers(0, len(parts[index])))
    bad = data.draw(BAD_CHARS)
    parts[index] = parts[index][:position] + bad + parts[index][position:]
    uri = ".".join(parts)
    for match in ("exact", "prefix", "wildcard"):
        assert check_pattern(uri, match) is not None


@given(COMPONENTS, st.data())
def test_empty_component_is_invalid_for_exact(parts: list[str], data: st.DataObject) -> None:
    parts.insert(data.draw(st.integers(0, len(parts))), "")
    assert check_pattern(".".join(parts), "exact") is not None


@given(st.lists(st.one_of(st.just(""), COMPONENT), min_size=1, max_size=8))
def test_wildcards_need_one_non_empty_component(parts: list[str]) -> None:
    result = check_pattern(".".join(parts), "wildcard")
    if any(parts):
        assert result is None
    else:
        assert result is not None


def test_rawsocket_heartbeat_is_off_unless_configured() -> None:
    base = (
        '[[listeners]]\ntransport = "rawsocket"\nendpoint = "127.0.0.1:0"\n'
        '[[listeners]]\ntransport = "websocket"\nendpoint = "127.0.0.1:0"\n'
        '[[listeners]]\ntransport = "rawsocket"\nendpoint = "127.0.0.1:0"\n'
        'heartbeat = { interval = 5.0 }\n'
        '[[realms]]\nname = "realm1"\n[[realms.roles]]\nname = "anonymous"\n'
    )
    config = load_config_text(base, "hb.toml")
    raw, web, raw_on = config.listeners
    assert raw.heartbeat.interval == 0
    assert web.heartbeat.interval == 30.0 and web.heartbeat.timeout == 10.0
    assert raw_on.heartbeat.interval == 5.0 and raw_on.heartbeat.timeout == 10.0


def test_role_disclose_settings() -> None:
    text = (
        '[[listeners]]\ntransport = "websocket"\nendpoint = "127.0.0.1:0"\n'
        '[[realms]]\nname = "realm1"\n[[realms.roles]]\nname = "anonymous"\n'
        'disclose = { caller = true, publisher = false }\n'
        '[[realms.roles]]\nname = "other"\n'
    )
    anonymous, other = load_config_text(text, "d.toml").realms[0].roles
    assert (anonymous.disclose_caller, anonymous.disclose_publisher) == (True, False)
    assert (other.disclose_caller, other.disclose_publisher) == (None, None)
    bad = text.replace("caller = true", 'caller = "yes", subscriber = true')
    with pytest.raises(ConfigError) as err:
        load_config_text(bad, "d.toml")
    text_err = str(err.value)
    assert "realms[0].roles[0].disclose.caller: expected true or false" in text_err
    assert "realms[0].roles[0].disclose" in text_err and "subscriber" in text_err


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "realms").glob("*.toml")))
def test_every_shipped_config_loads(name: str) -> None:
    assert load_config(ROOT / "realms" / name).listeners


def test_cluster_config_and_its_errors() -> None:
    from wamp_router.config.loader import load_config_text

    base = (ROOT / "realms" / "default.toml").read_text()
    cfg = load_config_text(base + '[cluster]\nbackplane = "redis://[::1]:7001/3"\n', "<t>")
    assert cfg.cluster is not None
    assert (cfg.cluster.host, cfg.cluster.port, cfg.cluster.db) == ("::1", 7001, 3)
    assert load_config_text(base + '[cluster]\nbackplane = "local"\n', "<t>").cluster is None
    with pytest.raises(ConfigError, match=r"cluster.backplane: no host; expected \"local\""):
        load_config_text(base + '[cluster]\nbackplane = "redis:/x"\n', "<t>")
    with pytest.raises(ConfigError, match="cluster.heartbeat: must be shorter than node_ttl"):
        load_config_text(base + '[cluster]\nbackplane = "redis://h"\nheartbeat = 5\n', "<t>")
    assert cfg.cluster.prefer_local_callees is False
    local = load_config_text(base + '[cluster]\nbackplane = "redis://h"\n'
                             'prefer_local_callees = true\n', "<t>")
    assert local.cluster is not None and local.cluster.prefer_local_callees is True
    with pytest.raises(ConfigError, match="cluster.prefer_local_callees: expected true or false"):
        load_config_text(base + '[cluster]\nbackplane = "redis://h"\n'
                         'prefer_local_callees = "yes"\n', "<t>")
    sync = base + '[realms.sync]\n[[realms.sync.domains]]\nprefix = "app."\n'
    with pytest.raises(ConfigError, match=r'realms\[0\]\.sync\.domains\[0\]\.store: domain '
                       r'"app\." uses store = "memory", .* store = "redis"'):
        load_config_text(sync + '[cluster]\nbackplane = "redis://h"\n', "<t>")
    shared = sync + 'store = "redis"\n'
    cfg = load_config_text(shared + '[cluster]\nbackplane = "redis://h"\n', "<t>")
    assert cfg.realms[0].sync is not None and cfg.realms[0].sync.domains[0].store == "redis"
    with pytest.raises(ConfigError, match=r'domains\[0\]\.store: domain "app\." uses store = '
                       r'"redis", which needs a \[cluster\] backplane'):
        load_config_text(shared, "<t>")


def test_redis_access_password_tls_and_unix_socket(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from wamp_router.config.loader import load_config_text

    base = (ROOT / "realms" / "default.toml").read_text() + "[cluster]\n"

    def cluster(text: str) -> Cluster:
        found = load_config_text(base + text, str(tmp_path / "c.toml")).cluster
        assert found is not None
        return found

    def error(text: str) -> str:
        with pytest.raises(ConfigError) as err:
            load_config_text(base + text, "c.toml")
        return str(err.value)

    c = cluster('backplane = "redis://app:p%40ss@redis.example:6380/2"\n')
    assert (c.username, c.password, c.host, c.port, c.db) == ("app", "p@ss", "redis.example",
                                                              6380, 2)
    assert c.backplane == "redis://app:***@redis.example:6380/2" and "p@ss" not in repr(c)
    monkeypatch.setenv("WR_REDIS_PW", "from-env")
    c = cluster('backplane = "redis://h"\nusername = "u"\npassword = { env = "WR_REDIS_PW" }\n')
    assert (c.username, c.password, c.tls) == ("u", "from-env", None)
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "c.toml").write_text("")  # (relative paths are relative to the config file)
    c = cluster('backplane = "rediss://redis.example"\ntls_ca = "ca.pem"\n')
    assert c.tls is not None and c.tls.ca == str(tmp_path / "ca.pem") and c.port == 6379
    assert cluster('backplane = "rediss://h"\n').tls is not None  # the system's trust store
    c = cluster('backplane = "unix:///run/redis/redis.sock?db=4"\n')
    assert (c.unix, c.db, c.address) == ("/run/redis/redis.sock", 4, "/run/redis/redis.sock")

    c = cluster('backplane = "redis+sentinel://:pw@s1,[::1]:26380/mymaster/1"\n'
                'sentinel_password = "sp"\n')
    assert (c.sentinels, c.service, c.db, c.password, c.sentinel_password) == (
        (("s1", 26379), ("::1", 26380)), "mymaster", 1, "pw", "sp")
    assert c.address == "the master of 'mymaster' (Sentinel s1:26379,[::1]:26380)"
    assert "names the service after the Sentinels" in error(
        'backplane = "redis+sentinel://s1"\n')
    assert 'cannot read the Sentinel address "s2:0"' in error(
        'backplane = "redis+sentinel://s1,s2:0/m"\n')
    assert "cluster.sentinel_password: needs a redis+sentinel:// backplane URL" in error(
        'backplane = "redis://h"\nsentinel_password = "sp"\n')
    for key, value in (("node_ttl", "0"), ("node_ttl", "1e308"), ("heartbeat", "0")):
        assert f"cluster.{key}: must be more than 0 and at most 3600 seconds" in error(
            f'backplane = "redis://h"\n{key} = {value}\n')


def test_redis_access_errors() -> None:
    from wamp_router.config.loader import load_config_text

    base = (ROOT / "realms" / "default.toml").read_text() + "[cluster]\n"

    def error(text: str) -> str:
        with pytest.raises(ConfigError) as err:
            load_config_text(base + text, "c.toml")
        return str(err.value)

    assert "cluster.password: the backplane URL has a password already" in error(
        'backplane = "redis://:a@h"\npassword = "b"\n')
    assert "cluster.tls_ca: TLS needs a rediss:// backplane URL" in error(
        'backplane = "redis://h"\ntls_ca = "ca.pem"\n')
    assert "a client certificate needs both tls_certificate and tls_key" in error(
        'backplane = "rediss://h"\ntls_certificate = "/etc/hostname"\n')
    assert 'cluster.tls_ca: cannot read "/no/such.pem"' in error(
        'backplane = "rediss://h"\ntls_ca = "/no/such.pem"\n')
    assert 'unknown URL parameter "x" (only db)' in error('backplane = "unix:///s?x=1"\n')
    assert "needs an absolute socket path" in error('backplane = "unix://host/s"\n')
    assert 'database "abc" is not a number' in error('backplane = "redis://h/abc"\n')
    assert 'unknown scheme "http"' in error('backplane = "http://h"\n')
    assert "cannot read the URL" in error('backplane = "redis://h:99999"\n')
    assert 'environment variable "WR_NO_SUCH" is not set' in error(
        'backplane = "redis://h"\npassword = { env = "WR_NO_SUCH" }\n')
    for url in ("redis://app:Xk9/2bQ+z@h", "redis://app:1234/s3cret@h", "unix://:12/s3@/sock"):
        shown = error(f'backplane = "{url}"\n')
        assert "percent-encode it" in shown and "s3" not in shown and "Xk9" not in shown
    assert "a Redis user needs a password" in error('backplane = "redis://app@h"\n')
    assert "a Redis user needs a password" in error('backplane = "redis://h"\nusername = "u"\n')
    empty = load_config_text(base + 'backplane = "redis://:@h"\n', "c.toml").cluster
    assert empty is not None and empty.password is None  # (an empty password: none)
    assert 'database "\u00b2" is not a number' in error('backplane = "redis://h/\u00b2"\n')
    shown = error('backplane = "redis://:hunter2@h/x"\n')
    assert "hunter2" not in shown  # a URL with a password is never echoed
