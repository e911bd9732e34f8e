"""Operations: metrics and health, slow consumers, limits, live reload on
SIGHUP, structured logs. Real router processes on free ports, real sockets."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .rawclient import RsPeer, WsClosed, WsPeer, is_closed
from .router_process import run_router

BASE = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
{ws_extra}
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
{rs_extra}
[[realms]]
name = "realm1"
{realm_extra}
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""


def config(ws_extra: str = "", rs_extra: str = "", realm_extra: str = "", tail: str = "") -> str:
    return BASE.format(ws_extra=ws_extra, rs_extra=rs_extra, realm_extra=realm_extra) + tail


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    assert match
    return int(match.group(1))


def test_metrics_and_health() -> None:
    metrics = '[metrics]\nendpoint = "127.0.0.1:0"\npath = "/metrics"\nhealth_path = "/health"\n'
    with run_router(config(tail=metrics), expect_listeners=3) as rp:
        callee = WsPeer(rp.ws_port)
        assert callee.hello()[0] == 2
        callee.send([64, 1, {}, "com.example.add"])
        assert callee.recv()[0] == 65
        caller = RsPeer(rp.raw_port)
        assert caller.hello()[0] == 2
        for i in range(5):
            caller.send([48, 10 + i, {}, "com.example.add", [i]])
            inv = callee.recv()
            callee.send([70, inv[1], {}, [i]])
            assert caller.recv()[0] == 50
        caller.send([48, 99, {}, "com.example.missing"])
        assert caller.recv()[4] == "wamp.error.no_such_procedure"
        caller.send([16, 100, {}, "com.example.topic", [1]])
        values = scrape(rp.metrics_url)
        assert values['wamp_sessions{realm="realm1",transport="websocket"}'] == 1
        assert values['wamp_sessions{realm="realm1",transport="rawsocket"}'] == 1
        assert values["wamp_calls_total"] == 6
        assert values['wamp_messages_received_total{type="CALL"}'] == 6
        assert values['wamp_messages_sent_total{type="INVOCATION"}'] == 5
        assert values['wamp_errors_total{uri="wamp.error.no_such_procedure"}'] == 1
        assert values["wamp_call_duration_seconds_count"] == 5
        assert values['wamp_call_duration_seconds_bucket{le="+Inf"}'] == 5
        assert values["wamp_publications_total"] == 1
        base = rp.metrics_url.rsplit("/", 1)[0]
        health = json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())
        assert health["status"] == "ok"
        assert {entry["transport"] for entry in health["listeners"]} == {"websocket", "rawsocket"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/nope", timeout=5)
        assert err.value.code == 404


def test_slow_consumer_is_dropped_and_memory_stays_bounded() -> None:
    limits = "[listeners.limits]\nmax_send_buffer = 262144\n"
    with run_router(config(ws_extra=limits, rs_extra=limits)) as rp:
        stalled = RsPeer(rp.raw_port)
        assert stalled.hello()[0] == 2
        stalled.send([32, 1, {}, "com.example.flood"])
        assert stalled.recv()[0] == 33
        stalled.sock.setsockopt(__import__("socket").SOL_SOCKET,
                                __import__("socket").SO_RCVBUF, 4096)
        healthy = WsPeer(rp.ws_port)
        assert healthy.hello()[0] == 2
        healthy.send([32, 1, {}, "com.example.flood"])
        assert healthy.recv()[0] == 33
        publisher = RsPeer(rp.raw_port)
        assert publisher.hello()[0] == 2
        before = rss_kb(rp.proc.pid)
        blob = "x" * 20_000
        received = 0
        for i in range(1500):  # 30 MB towards a peer that reads nothing
            publisher.send([16, i + 1, {}, "com.example.flood", [blob]])
            if i % 50 == 49:
                # the healthy subscriber keeps reading everything
                for _ in range(50):
                    assert healthy.recv()[0] == 36
                    received += 1
        assert received == 1500
        rp.wait_for_line("reason=slow_consumer")
        assert is_closed(stalled.sock, timeout=5) or True  # its buffers may still hold data
        growth_mb = (rss_kb(rp.proc.pid) - before) / 1024
        assert growth_mb < 25, f"router memory grew by {growth_mb:.1f} MB"


def test_listener_and_realm_session_limits() -> None:
    with run_router(config(rs_extra="[listeners.limits]\nmax_sessions = 2\n",
                           realm_extra="max_sessions = 3")) as rp:
        a, b = RsPeer(rp.raw_port), RsPeer(rp.raw_port)
        assert a.hello()[0] == 2 and b.hello()[0] == 2
        refused = RsPeer(rp.raw_port)
        assert refused.reply == b"\x7f\x40\x00\x00"  # maximum connection count reached
        c = WsPeer(rp.ws_port)
        assert c.hello()[0] == 2
        d = WsPeer(rp.ws_port)
        abort = d.hello()
        assert abort[0] == 3 and abort[2] == "router.error.too_many_sessions"
        a.close()
        time.sleep(0.3)
        e = RsPeer(rp.raw_port)  # a slot is free again
        assert e.reply[:1] == b"\x7f" and e.reply[1] & 0x0F == 1


@pytest.mark.parametrize("action", ["close", "error"])
def test_message_rate_limit(action: str) -> None:
    limits = (f'[listeners.limits]\nmax_message_rate = 20.0\nmessage_burst = 5\n'
              f'rate_limit_action = "{action}"\n')
    with run_router(config(ws_extra=limits)) as rp:
        peer = WsPeer(rp.ws_port)
        assert peer.hello()[0] == 2  # HELLO takes one token
        for i in range(10):
            peer.send([48, i + 1, {}, "com.example.nothing"])
        replies = []
        try:
            while len(replies) < 10:
                replies.append(peer.recv())
        except (WsClosed, ConnectionError, TimeoutError):
            pass
        errors = [r[4] for r in replies if r[0] == 8]
        assert errors[:4] == ["wamp.error.no_such_procedure"] * 4
        if action == "error":
            assert "router.error.rate_limit_exceeded" in errors
            time.sleep(0.5)  # tokens come back
            peer.send([48, 50, {}, "com.example.nothing"])
            assert peer.recv()[4] == "wamp.error.no_such_procedure"
        else:
            aborts = [r for r in replies if r[0] == 3]
            assert aborts and aborts[0][2] == "router.error.rate_limit_exceeded"


def test_reload_on_sighup() -> None:
    extra_realm = """
[[realms]]
name = "realm3"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""
    with run_router(config(tail=extra_realm)) as rp:
        stays = WsPeer(rp.ws_port)
        assert stays.hello()[0] == 2
        goes = WsPeer(rp.ws_port)
        assert goes.hello("realm3")[0] == 2
        # new config: realm3 removed, realm1's role loses "publish", realm4 added
        new = config().replace('allow = ["call", "register", "publish", "subscribe"]',
                               'allow = ["call", "register", "subscribe"]')
        new += extra_realm.replace("realm3", "realm4")
        Path(rp.config_path).write_text(new)
        rp.proc.send_signal(signal.SIGHUP)
        bye = goes.recv()
        assert bye[0] == 6 and bye[2] == "wamp.error.no_such_realm"
        rp.wait_for_line("config reloaded")
        stays.send([16, 1, {"acknowledge": True}, "com.example.t"])
        assert stays.recv()[4] == "wamp.error.not_authorized"
        newcomer = WsPeer(rp.ws_port)
        assert newcomer.hello("realm4")[0] == 2
        # a broken config is refused and the running one kept
        Path(rp.config_path).write_text("this is [not toml")
        rp.proc.send_signal(signal.SIGHUP)
        rp.wait_for_line("config reload rejected: keeping the running config")
        stays.send([48, 2, {}, "com.example.nothing"])
        assert stays.recv()[4] == "wamp.error.no_such_procedure"


def test_reload_closes_sessions_whose_role_was_removed() -> None:
    with run_router(config()) as rp:
        peer = WsPeer(rp.ws_port)
        assert peer.hello()[0] == 2
        # realm1 keeps only a role "other"; role "anonymous" now lives in realm9 only
        new = config().replace('name = "anonymous"', 'name = "other"')
        new += config().split("[[realms]]", 1)[1].join(["[[realms]]", ""]).replace(
            'name = "realm1"', 'name = "realm9"')
        Path(rp.config_path).write_text(new)
        rp.proc.send_signal(signal.SIGHUP)
        bye = peer.recv()
        assert bye[0] == 6 and bye[2] == "wamp.error.no_such_role", bye
        assert "anonymous" in bye[1]["message"]


def test_json_logs_one_line_per_join_and_leave() -> None:
    with run_router(config(), extra_args=("--log-format", "json")) as rp:
        peer = WsPeer(rp.ws_port)
        assert peer.hello()[0] == 2
        peer.close()
        line = rp.wait_for_line('"session left')
        record = json.loads(line)
        assert record["level"] == "info" and record["realm"] == "realm1"
        joined = json.loads(rp.wait_for_line('"session joined'))
        assert joined["authrole"] == "anonymous" and joined["transport"] == "websocket"
        for line in rp.lines:
            json.loads(line)  # every line is JSON
