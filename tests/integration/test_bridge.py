"""The HTTP bridge (publish, call, webhooks) on a websocket listener's port."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from .rawclient import WsPeer
from .router_process import RouterProcess, run_router

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
max_message_size = 4096
[listeners.bridge]
path = "/bridge"
realm = "realm1"
max_rate = 50.0
[[listeners.bridge.tokens]]
token = "backend-token"
authid = "backend"
role = "service"
[[listeners.bridge.tokens]]
token = "signed-token"
authid = "signer"
role = "service"
hmac_secret = "s3cret"
[[listeners.bridge.webhooks]]
name = "github"
topic = "com.example.github"
role = "service"
token = "hook-secret"

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[[realms.roles]]
name = "service"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["call", "publish"]
"""


@pytest.fixture(scope="module")
def router() -> Iterator[RouterProcess]:
    with run_router(CONFIG, expect_listeners=1) as rp:
        yield rp


def post(router: RouterProcess, path: str, body: Any, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{router.ws_port}/bridge/{path}",
                                     data=data, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


AUTH = {"Authorization": "Bearer backend-token"}


def test_publish_and_call_through_the_bridge(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    assert peer.hello()[0] == 2
    peer.send([32, 1, {}, "com.example.orders"])
    sub = peer.recv()
    peer.send([64, 2, {}, "com.example.add"])
    assert peer.recv()[0] == 65
    status, body = post(router, "publish", {"topic": "com.example.orders", "args": [1],
                                             "kwargs": {"id": "x"}}, AUTH)
    assert status == 200 and body["publication"] >= 1
    event = peer.recv()
    assert event[0] == 36 and event[1] == sub[2] and event[4:] == [[1], {"id": "x"}]

    import threading
    result: list[Any] = []
    caller = threading.Thread(target=lambda: result.append(
        post(router, "call", {"procedure": "com.example.add", "args": [2, 3]}, AUTH)))
    caller.start()
    invocation = peer.recv()
    assert invocation[0] == 68 and invocation[4] == [2, 3]
    peer.send([70, invocation[1], {}, [5], {"ok": True}])
    caller.join(10)
    assert result[0] == (200, {"args": [5], "kwargs": {"ok": True}})


def test_bridge_errors(router: RouterProcess) -> None:
    assert post(router, "call", {"procedure": "com.example.nothing"}, AUTH)[0] == 404
    status, body = post(router, "call", {"procedure": "com.example.nothing"}, AUTH)
    assert body["error"] == "wamp.error.no_such_procedure"
    status, body = post(router, "publish", {"topic": "org.other"}, AUTH)
    assert (status, body["error"]) == (403, "wamp.error.not_authorized")
    status, body = post(router, "publish", {"topic": "com..bad"}, AUTH)
    assert (status, body["error"]) == (400, "wamp.error.invalid_uri")
    assert post(router, "publish", {"topic": "com.example.x"})[0] == 401
    assert post(router, "publish", {"topic": "com.example.x"},
                {"Authorization": "Bearer wrong"})[0] == 401
    assert post(router, "publish", None, AUTH, raw=b"not json")[0] == 400
    assert post(router, "publish", {"args": []}, AUTH)[0] == 400
    assert post(router, "call", {"procedure": "com.example.x", "timeout": "soon"}, AUTH)[0] == 400
    status, body = post(router, "publish", None, AUTH, raw=b"x" * 5000)
    assert status == 413
    assert post(router, "nothing", {}, AUTH)[0] == 404


def test_call_timeout_through_the_bridge(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    assert peer.hello()[0] == 2
    peer.send([64, 1, {}, "com.example.slow"])
    assert peer.recv()[0] == 65
    start = time.monotonic()
    status, body = post(router, "call", {"procedure": "com.example.slow", "timeout": 300}, AUTH)
    assert (status, body["error"]) == (504, "wamp.error.timeout")
    assert time.monotonic() - start < 5


def sign(secret: str, stamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_signed_requests(router: RouterProcess) -> None:
    body = json.dumps({"topic": "com.example.signed"}).encode()
    stamp = str(time.time())
    headers = {"Authorization": "Bearer signed-token", "X-Timestamp": stamp,
               "X-Signature": sign("s3cret", stamp, body)}
    assert post(router, "publish", None, headers, raw=body)[0] == 200
    headers["X-Signature"] = sign("wrong", stamp, body)
    assert post(router, "publish", None, headers, raw=body)[0] == 401
    old = str(time.time() - 3600)
    headers.update({"X-Timestamp": old, "X-Signature": sign("s3cret", old, body)})
    status, reply = post(router, "publish", None, headers, raw=body)
    assert status == 401 and "replay" in reply["args"][0]


def test_webhook_becomes_an_event(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    assert peer.hello()[0] == 2
    peer.send([32, 1, {}, "com.example.github"])
    assert peer.recv()[0] == 33
    status, _ = post(router, "webhook/github", {"action": "opened"},
                     {"X-Webhook-Token": "hook-secret", "X-GitHub-Event": "pull_request"})
    assert status == 200
    event = peer.recv()
    assert event[4] == [{"action": "opened"}]
    assert event[5]["headers"]["x-github-event"] == "pull_request"
    assert post(router, "webhook/github", {}, {"X-Webhook-Token": "nope"})[0] == 401
    assert post(router, "webhook/unknown", {}, {})[0] == 404


def test_bridge_rate_limit(router: RouterProcess) -> None:
    statuses = [post(router, "publish", {"topic": "com.example.flood"}, AUTH)[0]
                for _ in range(120)]
    assert 429 in statuses and statuses[0] == 200
