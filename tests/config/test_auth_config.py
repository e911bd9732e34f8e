"""Config: WAMP-Cryptosign / WAMP-SCRAM principals, hashed tickets, secrets from
the environment or files, dynamic authenticators and authorizers, failed
authentication limits, permission disclosure, TLS files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wamp_router.config.loader import ConfigError, load_config, load_config_text
from wamp_router.config.model import AuthLimits, DynamicAuth

KEY = "545efb0a2192db8d43f118e9bf9aee081466e1ef36c708b96ee6f62dddad9122"
B64_32 = "ZLAXNr6xwQ940DdT6Qp5eOxosnBUWQl8AwcBSgC9eic="

REALMS = """
[[realms]]
name = "realm1"
[[realms.roles]]
name = "user"
"""


def cfg(auth: str, listener_extra: str = "", realms: str = REALMS) -> str:
    return (f'[[listeners]]\ntransport = "websocket"\nendpoint = "127.0.0.1:0"\n'
            f"{listener_extra}\n{auth}\n{realms}")


def issues(text: str, source: str = "<test>") -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        load_config_text(text, source)
    return [(i.path, i.message) for i in err.value.errors]


def one_issue(text: str, path: str, fragment: str) -> None:
    found = issues(text)
    assert any(p == path and fragment in m for p, m in found), found


def test_cryptosign_and_scram_principals() -> None:
    text = cfg(f"""
[[listeners.auth.cryptosign]]
authid = "carol"
pubkeys = ["{KEY.upper()}"]
role = "user"
[[listeners.auth.scram]]
authid = "dave"
kdf = "argon2id13"
iterations = 3
memory = 65536
salt = "c2FsdHNhbHRzYWx0"
stored_key = "{B64_32}"
server_key = "{B64_32}"
role = "user"
realm = "realm1"
""")
    auth = load_config_text(text, "<t>").listeners[0].auth
    assert auth.cryptosign[0].pubkeys == (KEY,)
    scram = auth.scram[0]
    assert (scram.kdf, scram.iterations, scram.memory, scram.realm) == ("argon2id13", 3, 65536,
                                                                        "realm1")


@pytest.mark.parametrize(("body", "path", "fragment"), [
    ('authid = "c"\npubkeys = ["abc"]\nrole = "user"', "listeners[0].auth.cryptosign[0].pubkeys[0]",
     "64 hex digits"),
    ('authid = "c"\nrole = "user"', "listeners[0].auth.cryptosign[0].pubkeys", "missing"),
    ('authid = "c"\npubkeys = []\nrole = "user"', "listeners[0].auth.cryptosign[0].pubkeys",
     "at least one"),
    (f'authid = "c"\npubkeys = ["{KEY}"]\nrole = "nope"', "listeners[0].auth.cryptosign[0].role",
     "not defined"),
])
def test_cryptosign_errors(body: str, path: str, fragment: str) -> None:
    one_issue(cfg(f"[[listeners.auth.cryptosign]]\n{body}"), path, fragment)


def scram(**overrides: object) -> str:
    values: dict[str, object] = {"authid": "d", "kdf": "pbkdf2", "iterations": 4096,
                                 "salt": "c2FsdHNhbHRzYWx0", "stored_key": B64_32,
                                 "server_key": B64_32, "role": "user"}
    values.update(overrides)
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in values.items() if v is not None]
    return cfg("[[listeners.auth.scram]]\n" + "\n".join(lines))


@pytest.mark.parametrize(("overrides", "key", "fragment"), [
    ({"kdf": "scrypt"}, "kdf", "unknown SCRAM KDF"),
    ({"kdf": "argon2id13"}, "memory", "missing required key"),
    ({"memory": 1024}, "memory", "only to kdf"),
    ({"salt": "!!"}, "salt", "base64"),
    ({"stored_key": "c2FsdA=="}, "stored_key", "expected 32 bytes"),
    ({"iterations": None}, "iterations", "missing"),
    ({"server_key": None}, "server_key", "missing"),
])
def test_scram_errors(overrides: dict[str, object], key: str, fragment: str) -> None:
    one_issue(scram(**overrides), f"listeners[0].auth.scram[0].{key}", fragment)


def test_ticket_hash() -> None:
    good = "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$wUsiOCD46dEeuIHviolrs2K71zdJhPOlw4/y1jkVoow="
    text = cfg(f'[[listeners.auth.ticket]]\nauthid = "a"\nticket_hash = "{good}"\nrole = "user"')
    principal = load_config_text(text, "<t>").listeners[0].auth.ticket[0]
    assert principal.ticket == "" and principal.ticket_hash == good
    bad = cfg('[[listeners.auth.ticket]]\nauthid = "a"\nticket_hash = "md5$x"\nrole = "user"')
    one_issue(bad, "listeners[0].auth.ticket[0].ticket_hash", "invalid ticket hash")
    both = cfg(f'[[listeners.auth.ticket]]\nauthid = "a"\nticket = "t"\nticket_hash = "{good}"\n'
               'role = "user"')
    one_issue(both, "listeners[0].auth.ticket[0].ticket", "only one")


def test_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_TICKET", "from-env")
    (tmp_path / "bob.secret").write_text("from-file\n")
    (tmp_path / "router.toml").write_text(cfg("""
[[listeners.auth.ticket]]
authid = "alice"
ticket = { env = "ALICE_TICKET" }
role = "user"
[[listeners.auth.wampcra]]
authid = "bob"
secret = { file = "bob.secret" }
role = "user"
"""))
    auth = load_config(tmp_path / "router.toml").listeners[0].auth
    assert auth.ticket[0].ticket == "from-env"
    assert auth.wampcra[0].secret == "from-file"  # relative to the config file, newline dropped


def test_missing_secrets_name_the_variable_and_the_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VARIABLE", raising=False)
    text = cfg(f"""
[[listeners.auth.ticket]]
authid = "alice"
ticket = {{ env = "NO_SUCH_VARIABLE" }}
role = "user"
[[listeners.auth.wampcra]]
authid = "bob"
secret = {{ file = "{tmp_path}/missing" }}
role = "user"
[[listeners.auth.wampcra]]
authid = "carl"
secret = {{ env = "X", file = "y" }}
role = "user"
""")
    found = issues(text)
    assert ("listeners[0].auth.ticket[0].ticket.env",
            'environment variable "NO_SUCH_VARIABLE" is not set') in found
    assert any(p == "listeners[0].auth.wampcra[0].secret.file" and str(tmp_path / "missing") in m
               and "cannot read secret file" in m for p, m in found), found
    assert any(p == "listeners[0].auth.wampcra[1].secret" and "exactly one" in m
               for p, m in found), found


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_VALUE", "hunter2-but-not-a-key")
    text = cfg("""
[[listeners.auth.scram]]
authid = "d"
kdf = "pbkdf2"
iterations = 1
salt = "c2FsdHNhbHRzYWx0"
stored_key = { env = "SECRET_VALUE" }
server_key = "topsecret"
role = "user"
""")
    with pytest.raises(ConfigError) as err:
        load_config_text(text, "<t>")
    assert "hunter2" not in str(err.value) and "topsecret" not in str(err.value)


def test_dynamic_authenticators() -> None:
    text = cfg("""
[listeners.auth.ticket]
authenticator = "com.example.authenticate"
authenticator_realm = "realm1"
authenticator_timeout = 2.5
[listeners.auth.scram]
authenticator = "com.example.authenticate"
""")
    auth = load_config_text(text, "<t>").listeners[0].auth
    assert auth.ticket == () and auth.scram == ()
    assert auth.dynamic == (
        DynamicAuth("ticket", "com.example.authenticate", "realm1", 2.5),
        DynamicAuth("wamp-scram", "com.example.authenticate", None, 5.0))


@pytest.mark.parametrize(("body", "key", "fragment"), [
    ('authenticator = "com..x"', "authenticator", "invalid procedure URI"),
    ("", "authenticator", "missing required key"),
    ('authenticator = "a.b"\nauthenticator_realm = "nowhere"', "authenticator_realm",
     "unknown realm"),
    ('authenticator = "a.b"\nauthenticator_timeout = 0', "authenticator_timeout", "more than 0"),
    ('authenticator = "a.b"\nauthid = "x"', "authid", "unknown key"),
])
def test_dynamic_errors(body: str, key: str, fragment: str) -> None:
    one_issue(cfg(f"[listeners.auth.wampcra]\n{body}"), f"listeners[0].auth.wampcra.{key}",
              fragment)


def test_limits() -> None:
    text = cfg('[listeners.auth.anonymous]\nrole = "user"\n[listeners.auth.limits]\n'
               "max_failures = 3\ndelay = 0")
    assert load_config_text(text, "<t>").listeners[0].auth.limits == AuthLimits(3, 60.0, 0.0)
    one_issue(cfg('[listeners.auth.anonymous]\nrole = "user"\n[listeners.auth.limits]\n'
                  "delay = 100"), "listeners[0].auth.limits.delay", "at most 60")
    one_issue(cfg('[listeners.auth.anonymous]\nrole = "user"\n[listeners.auth.limits]\n'
                  "max_failures = 0"), "listeners[0].auth.limits.max_failures", "at least 1")


def test_realm_authorizer_and_permission_disclosure() -> None:
    realms = """
[[realms]]
name = "realm1"
authorizer = "com.example.authorize"
authorizer_timeout = 1.5
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com."
match = "prefix"
allow = ["call", "publish"]
disclose = { caller = true, publisher = false }
"""
    config = load_config_text(cfg('[listeners.auth.anonymous]\nrole = "user"', realms=realms),
                              "<t>")
    realm = config.realms[0]
    assert (realm.authorizer, realm.authorizer_timeout) == ("com.example.authorize", 1.5)
    perm = realm.roles[0].permissions[0]
    assert (perm.disclose_caller, perm.disclose_publisher) == (True, False)
    bad = realms.replace('"com.example.authorize"', '"not a uri"')
    one_issue(cfg('[listeners.auth.anonymous]\nrole = "user"', realms=bad),
              "realms[0].authorizer", "invalid procedure URI")


def test_tls_files(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    text = cfg('[listeners.auth.anonymous]\nrole = "user"',
               listener_extra='tls = { certificate = "cert.pem", key = "key.pem" }')
    (tmp_path / "r.toml").write_text(text)
    tls = load_config(tmp_path / "r.toml").listeners[0].tls
    assert tls is not None and tls.certificate == str(tmp_path / "cert.pem")
    (tmp_path / "r2.toml").write_text(text.replace("key.pem", "missing.pem"))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "r2.toml")
    assert [(i.path, "missing.pem" in i.message) for i in err.value.errors] == [
        ("listeners[0].tls.key", True)]
