"""autobahn-js authenticating against the router: the auth_* scenarios of
interop/js/driver.js (autobahn-js 22.11.1 from npm) with WAMP-Ticket, WAMP-CRA
(unsalted and salted, ``autobahn.auth_cra``) and WAMP-Cryptosign
(``autobahn.auth_cryptosign`` on a tweetnacl key pair), right and wrong credentials,
over WebSocket (json, msgpack, cbor) and RawSocket (json).

The principals are made here: random tickets and secrets, a fresh Ed25519 key, in a
config and a credentials file (``--auth-file``) written by the test; nothing comes
from the shipped configs. No python peer is needed (``--wait-peer 0``).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .router_process import ROOT, run_router

JS_DIR = ROOT / "interop" / "js"
AUTH_REALM = "authjs"
OPEN_REALM = "lobby"

RIGHT = ["auth_ticket_join", "auth_wampcra_join", "auth_wampcra_salted_join",
         "auth_cryptosign_join"]
WRONG = ["auth_wrong_ticket", "auth_wrong_wampcra", "auth_wrong_wampcra_salted",
         "auth_wrong_cryptosign_key", "auth_unknown_cryptosign_key",
         "auth_anonymous_realm2_rejected"]
CELLS = [("websocket", "json"), ("websocket", "msgpack"), ("websocket", "cbor"),
         ("rawsocket", "json")]  # autobahn-js' RawSocket speaks JSON only (SKIP otherwise)


def principals() -> dict[str, dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    pubkey = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return {
        "ticket": {"authid": "tina", "ticket": secrets.token_urlsafe(24), "authrole": "ticketer"},
        "wampcra": {"authid": "craig", "secret": secrets.token_urlsafe(24), "authrole": "crauser"},
        "wampcra_salted": {"authid": "sally", "secret": secrets.token_urlsafe(24),
                           "authrole": "salted", "salt": secrets.token_hex(8)},
        "cryptosign": {"authid": "sig", "seed": seed, "authrole": "signer", "pubkey": pubkey},
    }


def config(p: dict[str, dict[str, Any]]) -> str:
    auth = f"""
[listeners.auth.anonymous]
role = "anonymous"
realms = ["{OPEN_REALM}"]
[[listeners.auth.ticket]]
authid = "{p['ticket']['authid']}"
ticket = "{p['ticket']['ticket']}"
role = "{p['ticket']['authrole']}"
realm = "{AUTH_REALM}"
[[listeners.auth.wampcra]]
authid = "{p['wampcra']['authid']}"
secret = "{p['wampcra']['secret']}"
role = "{p['wampcra']['authrole']}"
[[listeners.auth.wampcra]]
authid = "{p['wampcra_salted']['authid']}"
secret = "{p['wampcra_salted']['secret']}"
salt = "{p['wampcra_salted']['salt']}"
iterations = 1000
keylen = 32
role = "{p['wampcra_salted']['authrole']}"
[[listeners.auth.cryptosign]]
authid = "{p['cryptosign']['authid']}"
pubkeys = ["{p['cryptosign']['pubkey']}"]
role = "{p['cryptosign']['authrole']}"
realm = "{AUTH_REALM}"
"""
    roles = "".join(f"""
[[realms.roles]]
name = "{p[m]['authrole']}"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["call"]
""" for m in p)
    return f"""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
{auth}
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
{auth}
[[realms]]
name = "{OPEN_REALM}"
[[realms.roles]]
name = "anonymous"

[[realms]]
name = "{AUTH_REALM}"
{roles}"""


def ensure_node_modules() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"autobahn-js interop needs Node.js: {' and '.join(missing)} not on PATH")
    if all((JS_DIR / "node_modules" / name / "package.json").exists()
           for name in ("autobahn", "tweetnacl")):
        return
    res = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"npm ci failed:\n{res.stdout}\n{res.stderr}"


@pytest.mark.timeout(150)
def test_autobahn_js_authentication(tmp_path: Path) -> None:
    ensure_node_modules()
    p = principals()
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({m: {k: v for k, v in e.items() if k in (
        "authid", "ticket", "secret", "seed", "authrole")} for m, e in p.items()}))
    with run_router(config(p)) as rp:
        res = subprocess.run(
            ["node", str(JS_DIR / "driver.js"), "--url", rp.ws_url,
             "--rawsocket-url", rp.raw_url, "--wait-peer", "0", "--realm", OPEN_REALM,
             "--auth-realm", AUTH_REALM, "--auth-file", str(creds),
             "--scenarios", ",".join(RIGHT + WRONG), "--timeout", "10"],
            cwd=JS_DIR, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        router_log = rp.output()
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    got = {(r["scenario"], r["transport"], r["serializer"]): r for r in lines}
    report = "\n".join(f"{r['scenario']} {r['transport']}/{r['serializer']}: {r['result']} "
                       f"{r['detail']}" for r in lines)
    context = f"{report}\n--- driver stderr ---\n{res.stderr[-3000:]}\n--- router ---\n" \
              f"{router_log[-3000:]}"
    assert res.returncode == 0, context
    for scenario in RIGHT + WRONG:
        for transport, serializer in CELLS:
            r = got.get((scenario, transport, serializer))
            assert r is not None and r["result"] == "PASS", \
                f"{scenario} {transport}/{serializer}\n{context}"
    for transport, serializer in CELLS:
        detail = got[("auth_cryptosign_join", transport, serializer)]["detail"]
        assert "authid=sig authrole=signer authmethod=cryptosign" in detail, detail
        for wrong in WRONG[:-1]:
            detail = got[(wrong, transport, serializer)]["detail"]
            assert detail.startswith("ABORT wamp.error.authentication_failed"), detail
    # the secrets stayed out of what the router logged
    for method in ("ticket", "wampcra", "wampcra_salted"):
        secret = p[method].get("ticket") or p[method]["secret"]
        assert secret not in router_log
