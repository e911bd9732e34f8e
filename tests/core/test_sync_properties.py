"""Convergence of data-sync replicas (a property test on the pure core).

N writers make random conditional and unconditional writes (by PUBLISH and by
CALL, with plain ops, intent ops, merges, whole values and deletes), with
group commits at random points and random disconnects and reconnects (resync
by ``sync.get(since, epoch)`` or by a ``get_retained`` subscription). Every
replica follows the client rules and applies what it receives with an
independent RFC 6902 applier. At the end every replica equals the router's
state, and each replica saw contiguous versions (a gap fails the test).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ROLES, Harness
from tests.sync_client import RecordState
from wamp_router.config.loader import load_config_text
from wamp_router.core.messages import Call, Error, Event, Hello, Publish, Result, Subscribe

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "anonymous"
[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "publish", "subscribe"]
[realms.sync]
[[realms.sync.domains]]
prefix = "app.doc."
conflict = "%s"
history = { max_versions = 6 }
"""
URI = "app.doc.x"
FIELDS = ["a", "b", "c"]


class Replica(RecordState):
    """A client following the rules of the protocol (6.3.3), over the pure core."""

    def __init__(self, h: Harness) -> None:
        super().__init__()
        self.h = h
        self.conn = 0
        self.request = 0
        self.connect(retained=True)

    def connect(self, retained: bool) -> None:
        self.conn = self.h.connect()
        self.h.send(self.conn, Hello("realm1", {"roles": ROLES}))
        self.request += 1
        self.feed(self.h.send(self.conn, Subscribe(
            self.request, {"get_retained": retained} if retained else {}, URI)))
        if not retained:  # buffer-then-get (the wampy way), or a delta after a reconnect
            self.request += 1
            self.feed(self.h.send(self.conn, Call(self.request, {}, "sync.get", [URI], {
                "since": max(self.v, 0), "epoch": self.epoch})))

    def drain(self) -> None:
        self.feed(self.h.take(self.conn))

    def feed(self, msgs: list[Any]) -> None:
        for msg in msgs:
            if isinstance(msg, Event):
                if msg.details.get("retained"):
                    self.snapshot(msg.kwargs)
                else:
                    self.patch(msg.kwargs)
            elif isinstance(msg, Result) and msg.args and isinstance(msg.args[0], dict):
                got = msg.args[0]
                if "patches" in got or ("epoch" in got and "value" in got):
                    self.resync(got)

    def write(self, body: dict[str, Any], by_call: bool, conditional: bool) -> None:
        if conditional:
            body = {**body, "base": max(self.v, 0)}
        self.request += 1
        if by_call:
            if "ops" in body:
                msg: Any = Call(self.request, {}, "sync.patch", [URI, body.pop("ops")], body)
            elif "merge" in body:
                msg = Call(self.request, {}, "sync.merge", [URI, body.pop("merge")], body)
            elif "value" in body:
                msg = Call(self.request, {}, "sync.set", [URI, body.pop("value")], body)
            else:
                body.pop("delete")
                msg = Call(self.request, {}, "sync.delete", [URI], body)
        else:
            msg = Publish(self.request, {"acknowledge": True, "exclude_me": False}, URI, [],
                          body)
        self.feed(self.h.send(self.conn, msg))


def _body(kind: str, field: str, value: int) -> dict[str, Any]:
    path = f"/{field}"
    return {
        "replace": {"ops": [{"op": "x-set", "path": path, "value": value}]},
        "remove": {"ops": [{"op": "test", "path": "/items", "value": []},
                           {"op": "remove", "path": path}]},
        "append": {"ops": [{"op": "x-append-unique", "path": "/items", "value": value}]},
        "append_raw": {"ops": [{"op": "x-set", "path": "/items", "value": []}]}
        if value % 2 else {"ops": [{"op": "add", "path": "/tail", "value": [value]}]},
        "pop": {"ops": [{"op": "x-remove-value", "path": "/items", "value": value}]},
        "inc": {"ops": [{"op": "x-inc", "path": "/n", "by": value}]},
        "merge": {"merge": {field: value, "items": None if value % 3 == 0 else [value]}},
        "value": {"value": {field: value, "items": []}},
        "delete": {"delete": True},
    }[kind]


write = st.tuples(st.just("write"), st.integers(0, 2),
                  st.sampled_from(["replace", "replace", "remove", "append", "append", "append_raw",
                                   "pop", "inc", "inc", "merge", "value", "delete"]),
                  st.sampled_from(FIELDS), st.integers(0, 5), st.booleans(), st.booleans())
action = st.one_of(
    write, write, write, write, write,
    st.tuples(st.just("commit")), st.tuples(st.just("commit")),
    st.tuples(st.just("drop"), st.integers(0, 2)),
    st.tuples(st.just("rejoin"), st.integers(0, 2), st.booleans()),
)


def _step(h: Harness, replicas: list[Replica], online: list[bool], step: Any) -> None:
    if step[0] == "write":
        _, i, kind, field, value, by_call, conditional = step
        if online[i]:
            replicas[i].write(_body(kind, field, value), by_call, conditional)
    elif step[0] == "commit":
        h.commit()
        for i, r in enumerate(replicas):
            if online[i]:
                r.drain()
    elif step[0] == "drop" and online[step[1]]:
        h.lose(replicas[step[1]].conn)
        h.commit()
        online[step[1]] = False
    elif step[0] == "rejoin" and not online[step[1]]:
        replicas[step[1]].connect(retained=step[2])
        online[step[1]] = True


@settings(max_examples=150, deadline=None)
@given(policy=st.sampled_from(["rebase", "reject", "lww"]),
       actions=st.lists(action, min_size=15, max_size=80))
def test_replicas_converge_to_the_router_state(policy: str, actions: list[Any]) -> None:
    h = Harness(load_config_text(CONFIG % policy, "<sync>"))
    h.auto_commit = False
    replicas = [Replica(h) for _ in range(3)]
    online = [True, True, True]
    for step in actions:
        _step(h, replicas, online, step)
    h.commit()
    for i, r in enumerate(replicas):
        if not online[i]:
            r.connect(retained=False)
        r.drain()
    probe = h.connect()
    h.send(probe, Hello("realm1", {"roles": ROLES}))
    [res] = h.send(probe, Call(1, {}, "sync.get", [URI], {}))
    assert isinstance(res, Result), res
    state = res.args[0]
    for r in replicas:
        assert (r.v, r.value, r.deleted) == (state["v"], state["value"],
                                             bool(state.get("deleted"))), (r.v, state)
        assert r.epoch == state["epoch"]


def test_errors_do_not_advance_versions() -> None:
    """A conflicting conditional write leaves no trace in the version line."""
    h = Harness(load_config_text(CONFIG % "reject", "<sync>"))
    a, b = Replica(h), Replica(h)
    a.write({"value": {"a": 1}}, True, False)
    b.drain()
    b.write({"ops": [{"op": "x-set", "path": "/a", "value": 2}]}, True, True)
    a.request += 1
    out = h.send(a.conn, Call(a.request, {}, "sync.patch",
                              [URI, [{"op": "x-set", "path": "/a", "value": 3}]], {"base": 1}))
    assert isinstance(out[-1], Error) and out[-1].error == "sync.error.conflict"
    a.feed(out)
    a.drain()
    b.drain()
    assert a.v == b.v == 2 and a.value == b.value == {"a": 2}
