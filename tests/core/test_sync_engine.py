"""The data-sync engine through the pure core: record topics, writes by PUBLISH
and CALL, versions, conflicts, resync, tombstones, limits and authorization."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ROLES, Harness
from wamp_router.config.loader import load_config_text
from wamp_router.core.messages import (
    Call,
    Error,
    Event,
    Hello,
    Publish,
    Published,
    Register,
    Result,
    Subscribe,
    Subscribed,
    Welcome,
)
from wamp_router.core.sync.store import Write

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "anonymous"
[[listeners.auth.ticket]]
authid = "reader"
ticket = "r"
role = "reader"

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[[realms.roles]]
name = "reader"
[[realms.roles.permissions]]
uri = "app."
match = "prefix"
allow = ["subscribe"]
[realms.sync]
[[realms.sync.domains]]
prefix = "app.doc."
conflict = "rebase"
history = { max_versions = 5 }
checkpoint_every = 2
limits = { max_record_bytes = 200, max_ops = 3, max_depth = 4 }
[[realms.sync.domains]]
prefix = "app.strict."
conflict = "reject"
create = "explicit"
[[realms.sync.domains]]
prefix = "app.lww."
conflict = "lww"
disclose_author = true
"""

R = "app.doc.1"


@pytest.fixture
def h() -> Harness:
    return Harness(load_config_text(CONFIG, "<sync>"))


class Client:
    def __init__(self, h: Harness, authid: str | None = None) -> None:
        self.h = h
        self.conn = h.connect()
        details: dict[str, Any] = {"roles": ROLES}
        if authid is not None:
            details.update(authmethods=["ticket"], authid=authid)
        out = h.send(self.conn, Hello("realm1", details))
        if authid is not None:
            from wamp_router.core.messages import Authenticate
            out = h.send(self.conn, Authenticate("r", {}))
        assert isinstance(out[0], Welcome), out
        self.request = 0

    def req(self) -> int:
        self.request += 1
        return self.request

    def subscribe(self, topic: str, **options: Any) -> tuple[int, list[Any]]:
        out = self.h.send(self.conn, Subscribe(self.req(), options, topic))
        assert isinstance(out[0], Subscribed), out
        return out[0].subscription, out[1:]

    def publish(self, topic: str, options: dict[str, Any] | None = None,
                **kwargs: Any) -> list[Any]:
        return self.h.send(self.conn, Publish(self.req(), {"acknowledge": True, **(options or {})},
                                              topic, [], kwargs))

    def call(self, procedure: str, *args: Any, **kwargs: Any) -> list[Any]:
        return self.h.send(self.conn, Call(self.req(), {}, procedure, list(args), kwargs))

    def result(self, procedure: str, *args: Any, **kwargs: Any) -> Any:
        out = self.call(procedure, *args, **kwargs)
        assert isinstance(out[-1], Result), out
        return out[-1].args[0]

    def error(self, procedure: str, *args: Any, **kwargs: Any) -> Error:
        out = self.call(procedure, *args, **kwargs)
        assert isinstance(out[-1], Error), out
        return out[-1]

    def events(self) -> list[dict[str, Any]]:
        return [m.kwargs for m in self.h.take(self.conn) if isinstance(m, Event)]


def test_subscribing_to_a_record_that_does_not_exist_gives_version_0(h: Harness) -> None:
    c = Client(h)
    _, rest = c.subscribe(R, get_retained=True)
    [snap] = rest
    assert isinstance(snap, Event) and snap.details == {"retained": True} and snap.args == []
    assert snap.kwargs["v"] == 0 and snap.kwargs["exists"] is False
    assert snap.kwargs["value"] is None and isinstance(snap.kwargs["epoch"], str)


def test_publish_creates_then_patches_and_observers_follow(h: Harness) -> None:
    watcher, writer = Client(h), Client(h)
    watcher.subscribe(R, get_retained=True)
    watcher.events()
    out = writer.publish(R, ops=[{"op": "add", "path": "/title", "value": "a"}], cid="c1")
    assert isinstance(out[-1], Published), out
    out = writer.publish(R, ops=[{"op": "replace", "path": "/title", "value": "b"}])
    assert isinstance(out[-1], Published)
    first, second = watcher.events()
    assert first["v"] == 1 and first["value"] == {"title": "a"} and first["cid"] == "c1"
    assert second["v"] == 2 and second["ops"] == [
        {"op": "replace", "path": "/title", "value": "b"}]
    assert "by" not in second and second["ts"].endswith("Z")
    # a late subscriber gets the state
    late = Client(h)
    _, [snap] = late.subscribe(R, get_retained=True)
    assert snap.kwargs == {"v": 2, "epoch": first and snap.kwargs["epoch"],
                           "value": {"title": "b"}}


def test_exclude_me_false_echoes_before_published(h: Harness) -> None:
    c = Client(h)
    c.subscribe(R)
    out = c.publish(R, {"exclude_me": False}, value={"n": 1})
    assert isinstance(out[0], Event) and out[0].kwargs["v"] == 1
    assert isinstance(out[1], Published)
    out = c.publish(R, value={"n": 2})  # default exclude_me: no echo
    assert [type(m) for m in out] == [Published]


def test_call_write_echo_reaches_caller_before_result(h: Harness) -> None:
    c = Client(h)
    c.subscribe(R)
    out = c.call("sync.set", R, {"a": 1}, cid="x")
    assert isinstance(out[0], Event) and out[0].kwargs["v"] == 1 and out[0].kwargs["cid"] == "x"
    assert isinstance(out[1], Result) and out[1].args == [{"v": 1, "rebased": False}]
    assert c.result("sync.patch", R, [{"op": "x-inc", "path": "/a", "by": 2}]) == {
        "v": 2, "rebased": False}
    assert c.result("sync.get", R)["value"] == {"a": 3}


def test_rebase_applies_disjoint_stale_writes_and_refuses_overlaps(h: Harness) -> None:
    c = Client(h)
    c.result("sync.set", R, {"a": 1, "b": 1, "list": []})
    c.result("sync.patch", R, [{"op": "replace", "path": "/a", "value": 2}])  # v2
    assert c.result("sync.patch", R, [{"op": "replace", "path": "/b", "value": 5}], base=1) == {
        "v": 3, "rebased": True}
    err = c.error("sync.patch", R, [{"op": "replace", "path": "/a", "value": 9}], base=1)
    assert err.error == "sync.error.conflict"
    assert err.kwargs["conflicts"] == ["/a"] and err.kwargs["v"] == 3
    assert [p["v"] for p in err.kwargs["patches"]] == [2, 3]
    # appends commute with appends
    c.result("sync.patch", R, [{"op": "add", "path": "/list/-", "value": "x"}])  # v4
    assert c.result("sync.patch", R, [{"op": "x-append-unique", "path": "/list",
                                       "value": "y"}], base=3)["rebased"] is True
    assert c.result("sync.get", R)["value"]["list"] == ["x", "y"]


def test_reject_policy_and_explicit_create(h: Harness) -> None:
    c = Client(h)
    uri = "app.strict.1"
    assert c.error("sync.patch", uri, [{"op": "add", "path": "/a", "value": 1}]).error == (
        "sync.error.not_found")
    assert c.result("sync.create", uri, {"a": 1}) == {"v": 1, "rebased": False}
    assert c.error("sync.create", uri, {"a": 2}).error == "sync.error.exists"
    c.result("sync.patch", uri, [{"op": "add", "path": "/b", "value": 1}])
    err = c.error("sync.patch", uri, [{"op": "add", "path": "/c", "value": 1}], base=1)
    assert err.error == "sync.error.conflict" and err.kwargs["v"] == 2


def test_lww_applies_stale_writes_and_discloses_author(h: Harness) -> None:
    c = Client(h)
    uri = "app.lww.1"
    c.subscribe(uri)
    c.result("sync.set", uri, {"a": 1})
    c.result("sync.set", uri, {"a": 2})
    assert c.result("sync.set", uri, {"a": 3}, base=1)["v"] == 3
    assert all(e["by"] == "anonymous" or e["by"] for e in c.events())


def test_resync_by_delta_and_by_snapshot(h: Harness) -> None:
    c = Client(h)
    for i in range(8):
        c.result("sync.set", R, {"i": i})
    epoch = c.result("sync.head", R)["epoch"]
    delta = c.result("sync.get", R, 6, epoch)
    assert delta["v"] == 8 and [p["v"] for p in delta["patches"]] == [7, 8]
    assert c.result("sync.get", R, since=8)["patches"] == []
    # history keeps 5 versions: version 1 is too old for a delta
    assert c.result("sync.get", R, since=1) == {"v": 8, "epoch": epoch, "value": {"i": 7}}
    assert "value" in c.result("sync.get", R, since=6, epoch="other")


def test_delete_is_a_tombstone_and_recreate_continues_the_version_line(h: Harness) -> None:
    c, w = Client(h), Client(h)
    w.subscribe(R)
    c.result("sync.set", R, {"a": 1})
    assert c.result("sync.delete", R) == {"v": 2, "rebased": False}
    assert c.result("sync.head", R) == {"v": 2, "epoch": c.result("sync.head", R)["epoch"],
                                        "exists": False, "deleted": True}
    _, [snap] = Client(h).subscribe(R, get_retained=True)
    assert snap.kwargs["deleted"] is True and snap.kwargs["v"] == 2
    assert c.error("sync.delete", R).error == "sync.error.not_found"
    out = c.publish(R, ops=[{"op": "add", "path": "/b", "value": 2}])
    assert isinstance(out[-1], Published)
    events = w.events()
    assert [e["v"] for e in events] == [1, 2, 3]
    assert events[1]["deleted"] is True and events[2]["value"] == {"b": 2}


def test_limits_and_hygiene_have_their_own_errors(h: Harness) -> None:
    c = Client(h)

    def publish_error(options: dict[str, Any] | None = None, **kwargs: Any) -> str:
        [err] = c.publish(R, options, **kwargs)
        assert isinstance(err, Error), err
        return err.error

    assert publish_error(value={"x": "y" * 300}) == "sync.error.too_large"
    assert publish_error(ops=[{"op": "add", "path": f"/k{i}", "value": i}
                              for i in range(4)]) == "sync.error.too_many_ops"
    assert publish_error(value={"a": {"b": {"c": {"d": {"e": 1}}}}}) == "sync.error.too_deep"
    assert publish_error(value={"__proto__": 1}) == "sync.error.invalid_key"
    assert publish_error({"eligible": [1]}, value={}) == "sync.error.invalid_options"
    assert publish_error({"ppt_scheme": "x"}, value={}) == "sync.error.invalid_options"
    assert publish_error(ops=[{"op": "test", "path": "/zz", "value": 1}]) in (
        "sync.error.test_failed", "sync.error.invalid_patch")
    assert publish_error(value=1, ops=[]) == "sync.error.invalid_patch"
    assert publish_error(frob=1) == "sync.error.invalid_patch"
    # nothing above created a version
    assert c.result("sync.head", R)["v"] == 0
    # without acknowledge, errors are silent (standard WAMP)
    assert c.h.send(c.conn, Publish(99, {}, R, [], {"frob": 1})) == []
    assert c.error("sync.get", "app.other.1").error == "sync.error.not_managed"
    assert c.error("sync.patch", R).error == "wamp.error.invalid_argument"


def test_authorization_is_derived_from_subscribe_and_publish(h: Harness) -> None:
    reader = Client(h, authid="reader")
    assert reader.result("sync.get", R)["v"] == 0
    assert reader.error("sync.set", R, {"a": 1}).error == "wamp.error.not_authorized"
    [err] = reader.publish(R, value={"a": 1})
    assert isinstance(err, Error) and err.error == "wamp.error.not_authorized"
    assert reader.result("sync.get_many", [R, "app.nope.1"]) == [
        {"uri": R, "v": 0, "epoch": reader.result("sync.head", R)["epoch"], "value": None,
         "exists": False},
        {"uri": "app.nope.1", "error": "sync.error.not_managed",
         "message": reader.result("sync.get_many", ["app.nope.1"])[0]["message"]}]


def test_the_api_prefix_is_reserved_for_registrations(h: Harness) -> None:
    c = Client(h)
    [err] = h.send(c.conn, Register(1, {}, "sync.get"))
    assert isinstance(err, Error) and err.error == "wamp.error.invalid_uri"


def test_subscribers_see_only_committed_versions_in_order(h: Harness) -> None:
    h.auto_commit = False
    writer, early = Client(h), Client(h)
    early.subscribe(R, get_retained=True)
    early.events()
    writer.call("sync.set", R, {"a": 1})  # accepted, not yet committed
    assert early.events() == [] and writer.h.inbox[writer.conn] == []
    # a subscriber arriving now gets the committed state (v0), then the patch
    late = Client(h)
    _, [snap] = late.subscribe(R, get_retained=True)
    assert snap.kwargs["v"] == 0
    assert late.result("sync.get", R)["v"] == 0
    h.commit()
    assert [e["v"] for e in early.events()] == [1]
    assert [e["v"] for e in late.events()] == [1]
    assert isinstance(h.take(writer.conn)[-1], Result)


def test_a_failing_store_answers_unavailable_and_keeps_the_old_state(h: Harness) -> None:
    c, w = Client(h), Client(h)
    w.subscribe(R)
    c.result("sync.set", R, {"a": 1})
    store = h.router.realms["realm1"].sync.domains[0].store  # type: ignore[union-attr]

    def broken(writes: list[Write]) -> None:
        raise OSError("disk full")

    store.commit = broken  # type: ignore[method-assign]
    err = c.error("sync.set", R, {"a": 2})
    assert err.error == "sync.error.unavailable" and "disk full" in err.args[0]
    assert [e["v"] for e in w.events()] == [1]
    del store.commit
    assert c.result("sync.set", R, {"a": 3})["v"] == 2


def test_history_get_at_list_and_describe(h: Harness) -> None:
    c = Client(h)
    for i in range(6):
        c.result("sync.set", R, {"i": i})
    c.result("sync.set", "app.doc.2", {"x": 1})
    history = c.result("sync.history", R, 4)
    assert [p["v"] for p in history["patches"]] == [4, 5, 6] and history["v"] == 6
    assert c.result("sync.get_at", R, 5) == {"v": 5, "value": {"i": 4}, "deleted": False}
    assert c.result("sync.get_at", R, 3) == {"v": 3, "value": {"i": 2}, "deleted": False}
    assert c.error("sync.get_at", R, 9).error == "sync.error.not_found"
    assert c.result("sync.list", "app.doc.") == {"uris": ["app.doc.1", "app.doc.2"],
                                                 "next": None}
    assert c.result("sync.list", "app.doc.", limit=1) == {"uris": ["app.doc.1"],
                                                          "next": "app.doc.1"}
    assert c.result("sync.list", "app.doc.", after="app.doc.1")["uris"] == ["app.doc.2"]
    described = c.result("sync.describe")
    assert described["api_prefix"] == "sync."
    assert [d["prefix"] for d in described["domains"]] == ["app.doc.", "app.strict.",
                                                           "app.lww."]


def test_a_testament_on_a_record_is_an_on_disconnect_write(h: Harness) -> None:
    c, w = Client(h), Client(h)
    c.result("sync.set", R, {"editors": {"alice": True}})
    w.subscribe(R)
    out = c.call("wamp.session.add_testament", R, [],
                 {"ops": [{"op": "remove", "path": "/editors/alice"}]})
    assert isinstance(out[-1], Result), out
    h.lose(c.conn)
    [event] = w.events()
    assert event["v"] == 2 and event["ops"] == [{"op": "remove", "path": "/editors/alice"}]


def test_rebase_sees_versions_that_are_not_committed_yet(h: Harness) -> None:
    c = Client(h)
    c.result("sync.set", R, {"a": 1, "b": 1})
    h.auto_commit = False
    c.call("sync.patch", R, [{"op": "replace", "path": "/a", "value": 2}])  # v2, pending
    out = c.call("sync.patch", R, [{"op": "replace", "path": "/a", "value": 3}], base=1)
    assert isinstance(out[-1], Error) and out[-1].error == "sync.error.conflict"
    assert out[-1].kwargs["v"] == 1  # described from the committed state
    c.call("sync.patch", R, [{"op": "replace", "path": "/b", "value": 3}], base=1)
    h.commit()
    answers = [m for m in h.take(c.conn) if isinstance(m, Result)]
    assert [a.args[0] for a in answers] == [{"v": 2, "rebased": False},
                                            {"v": 3, "rebased": True}]
    assert c.result("sync.get", R)["value"] == {"a": 2, "b": 3}


def test_welcome_announces_data_sync_only_in_realms_that_have_it(h: Harness) -> None:
    conn = h.connect()
    [welcome] = h.send(conn, Hello("realm1", {"roles": ROLES}))
    assert isinstance(welcome, Welcome)
    assert welcome.details["roles"]["broker"]["features"]["x_data_sync"] is True
    plain = Harness()
    conn = plain.connect()
    [welcome] = plain.send(conn, Hello("realm1", {"roles": ROLES}))
    assert isinstance(welcome, Welcome)
    assert "x_data_sync" not in welcome.details["roles"]["broker"]["features"]


def test_a_stale_write_that_no_longer_applies_is_a_conflict(h: Harness) -> None:
    c = Client(h)
    c.result("sync.set", R, {"a": 1, "b": 2})
    c.result("sync.patch", R, [{"op": "remove", "path": "/a"}])
    err = c.error("sync.patch", R, [{"op": "replace", "path": "/a", "value": 5}], base=1)
    assert err.error == "sync.error.conflict" and err.kwargs["conflicts"] == ["/a"]
    assert [p["v"] for p in err.kwargs["patches"]] == [2]
    # without base it is just an invalid patch
    err = c.error("sync.patch", R, [{"op": "replace", "path": "/a", "value": 5}])
    assert err.error == "sync.error.invalid_patch" and err.kwargs["index"] == 0


def test_published_carries_the_id_of_the_writers_own_event(h: Harness) -> None:
    c = Client(h)
    c.subscribe(R)
    event, published = c.publish(R, {"exclude_me": False}, value={"a": 1})
    assert isinstance(event, Event) and isinstance(published, Published)
    assert event.publication == published.publication
