"""The interop scenarios, written once, run through every client stack's adapter.

Each client stack (autobahn-python on Twisted, swampyer, wampy.js, nexus, autobahn-java,
wamp_async, ...) has a small *adapter*: a program that drives that client library and
obeys a line-JSON control protocol on stdin/stdout (see PROTOCOL below). The scenarios
here tell the adapter what to do (connect, subscribe, publish, register, call, cancel,
...) and check what its client saw. So every stack runs exactly the same scenarios, and
what differs between stacks is only what each client library can express: an option or
operation the library has no way to send makes the adapter answer ``unsupported`` with
the reason, and that scenario is a SKIP with that reason, never a silent PASS.

The scenario names are those of the autobahn-js driver (``interop/js/driver.js``); its
``..._js`` scenarios (a second session of the same client on the other side) are the
ones here without the suffix, its ``..._py`` ones (the autobahn-python peer on the other
side) exist for autobahn-js only. The basic scenarios talk to the autobahn-python peer
(``interop/python_peer.py``), so every stack is also checked against autobahn-python.

PROTOCOL (adapter side)
-----------------------
The adapter writes one line first:

    {"hello": {"client": NAME, "version": V, "library": "pkg@version",
               "websocket": [serializers], "rawsocket": [serializers],
               "unsupported": {"websocket/cbor": "why", "rawsocket": "why", ...},
               "features": {"callee_call_canceling": bool,
                            "publication_id": bool (false: the client API does not give
                                                    the PUBLISHED id),
                            "welcome_details": bool (false: no WELCOME authid/authrole),
                            "invocation_procedure": bool (false: no INVOCATION
                                                          Details.procedure),
                            "session_id": bool (false: the client does not tell its own
                                                session id; connect gives session null),
                            "error_args": bool (false: a call's ERROR comes without its
                                                args/kwargs)}}}

then reads requests, one JSON object per line: ``{"id": N, "op": OP, ...}`` and answers
each with one line, in any order: ``{"id": N, "ok": true, "result": ...}``, or
``{"id": N, "ok": false, "error": URI, "args": [...], "kwargs": {...}}`` (a WAMP error;
for ``connect`` the ABORT reason), ``{"id": N, "ok": false, "unsupported": WHY}``, or
``{"id": N, "ok": false, "exception": TEXT}`` (anything else). Byte strings travel in
this protocol as ``{"$bytes": BASE64}``. Logs go to stderr.

ops: connect {conn, url, transport, serializer, realm, authmethod?, authid?, secret?}
       -> {session, authid, authrole, authmethod, realm}; a refused join is an error whose
       URI is the ABORT reason, or "" when the client does not expose it
     disconnect {conn} (GOODBYE)           drop {conn} (close the transport, no GOODBYE)
     subscribe {conn, sub, topic, options} -> {id}   unsubscribe {sub}
     events {sub} -> [{args, kwargs, publisher, publisher_authrole, topic, retained}]
     publish {conn, topic, args, kwargs, options} -> {id} (acknowledged)
     register {conn, reg, procedure, options, behavior, value?} -> {id}   unregister {reg}
       behaviors: "echo" (YIELD the same args/kwargs), "echo1" (YIELD [args[0]]: for
       clients whose callee API returns one value), "value" (YIELD [value]),
       "details" (YIELD [{procedure, caller, caller_authrole, args}]), "error" (ERROR
       value.uri with value.args/value.kwargs), "progress" (value progressive results
       [i, "p"], i = 1..value, when the caller asked for them, then YIELD ["done"]),
       "held" (answers ["released"] on release; when interrupted it records that and
       answers ERROR wamp.error.canceled)
     invocations {reg} -> [{args, kwargs, procedure, caller, caller_authrole,
                            progress: bool, status: running|released|interrupted}]
     release {reg} -> number released
     call {conn, procedure, args, kwargs, options} -> {args, kwargs, progress: [[...]...]}
     call_start {conn, call, procedure, args, kwargs, options} -> {} (at once)
     call_cancel {call, mode}
     call_wait {call, timeout} -> like call, or {pending: true} when no answer came in time
     quit
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALL_SERIALIZERS = ("json", "msgpack", "cbor")
TRANSPORTS = ("websocket", "rawsocket")
MIB = 1024 * 1024


class Fail(Exception):
    """A scenario's check failed."""


class Skip(Exception):
    """The client cannot express this scenario."""


class WampError(Exception):
    def __init__(self, uri: str, args: list[Any] | None = None,
                 kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(f"{uri} args={show(args)} kwargs={show(kwargs)}")
        self.uri = uri
        self.args_ = list(args or [])
        self.kwargs = dict(kwargs or {})


class AdapterError(Exception):
    """The adapter failed (exception, timeout, died)."""


def show(v: Any, limit: int = 300) -> str:
    def conv(x: Any) -> Any:
        if isinstance(x, bytes | bytearray):
            return f"<bytes:{len(x)} {bytes(x[:16]).hex()}{'...' if len(x) > 16 else ''}>"
        if isinstance(x, list | tuple):
            return [conv(i) for i in x]
        if isinstance(x, dict):
            return {str(k): conv(i) for k, i in x.items()}
        if isinstance(x, str) and len(x) > 80:
            return x[:40] + f"...<{len(x)} chars>"
        return x

    s = json.dumps(conv(v), default=str)
    return s if len(s) <= limit else s[:limit] + "..."


# -- the control protocol ---------------------------------------------------------------


def encode(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, list | tuple):
        return [encode(x) for x in v]
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    return v


def decode(v: Any) -> Any:
    if isinstance(v, dict):
        if len(v) == 1 and "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v


class Adapter:
    """One adapter process; request() sends an op and waits for its answer."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None, start_timeout: float = 60.0) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=dict(os.environ, **(env or {})), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, encoding="utf-8",
            bufsize=1,
        )
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._eof = False
        self._hello: dict[str, Any] | None = None
        self._next = 0
        self._noise: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + start_timeout
        with self._cond:
            while self._hello is None:
                if self._eof:
                    raise AdapterError(f"{name}: adapter exited (code {self.proc.poll()}) "
                                       f"before its hello line; {self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AdapterError(f"{name}: no hello line after {start_timeout:.0f}s")
                self._cond.wait(min(left, 0.5))
        self.hello: dict[str, Any] = self._hello

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            try:
                msg = json.loads(line) if line.startswith("{") else None
            except ValueError:
                msg = None
            with self._cond:
                if not isinstance(msg, dict):
                    self._noise.append(line)
                    self._log.write(f"[stdout] {line}\n")
                elif "hello" in msg:
                    self._hello = msg["hello"]
                elif "id" in msg:
                    self._answers[msg["id"]] = msg
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def request(self, op: str, wait: float = 15.0, /, **params: Any) -> Any:
        with self._cond:
            self._next += 1
            rid = self._next
        line = json.dumps({"id": rid, "op": op, **encode(params)})
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise AdapterError(f"{self.name}: cannot send {op}: {exc}") from None
        deadline = time.monotonic() + wait
        with self._cond:
            while rid not in self._answers:
                if self._eof:
                    raise AdapterError(f"{self.name}: adapter died during {op}; {self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AdapterError(f"{self.name}: no answer to {op} within {wait:.0f}s")
                self._cond.wait(min(left, 0.5))
            ans = self._answers.pop(rid)
        if ans.get("ok"):
            return decode(ans.get("result"))
        if "unsupported" in ans:
            raise Skip(f"{self.hello.get('library', self.name)}: {ans['unsupported']}")
        if "error" in ans:
            raise WampError(ans["error"], decode(ans.get("args")), decode(ans.get("kwargs")))
        raise AdapterError(f"{op}: {ans.get('exception', ans)}")

    def tail(self, n: int = 15) -> str:
        try:
            self._log.flush()
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "adapter log: " + " | ".join(lines[-n:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"id": 0, "op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self._log.close()


# -- scenario context -------------------------------------------------------------------


def nonce() -> str:
    return secrets.token_hex(6)


@dataclass
class Target:
    transport: str
    serializer: str
    url: str


@dataclass
class Result:
    args: list[Any]
    kwargs: dict[str, Any]
    progress: list[list[Any]]


class Conn:
    def __init__(self, ctx: Ctx, handle: str, info: dict[str, Any]) -> None:
        self.ctx = ctx
        self.a = ctx.adapter
        self.handle = handle
        self.info = info

    @property
    def session(self) -> int:
        sid = self.info.get("session")
        if sid is None and not self.ctx.features.get("session_id", True):
            raise Skip(f"{self.a.hello.get('library')}: the client does not expose its own "
                       "session id")
        return int(sid) if isinstance(sid, int | float) else sid

    def call(self, proc: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None,
             options: dict[str, Any] | None = None, timeout: float | None = None) -> Result:
        r = self.a.request("call", timeout or self.ctx.timeout, conn=self.handle, procedure=proc,
                           args=args or [], kwargs=kwargs or {}, options=options or {})
        return Result(r.get("args") or [], r.get("kwargs") or {}, r.get("progress") or [])

    def call1(self, proc: str, *args: Any, **kwargs: Any) -> Any:
        r = self.call(proc, list(args), kwargs)
        return r.args[0] if r.args else None

    def call_start(self, proc: str, args: list[Any] | None = None,
                   kwargs: dict[str, Any] | None = None,
                   options: dict[str, Any] | None = None) -> Call:
        handle = f"call{nonce()}"
        self.a.request("call_start", self.ctx.timeout, conn=self.handle, call=handle,
                       procedure=proc, args=args or [], kwargs=kwargs or {},
                       options=options or {})
        return Call(self.ctx, handle)

    def publish(self, topic: str, args: list[Any] | None = None,
                kwargs: dict[str, Any] | None = None, **options: Any) -> Any:
        r = self.a.request("publish", self.ctx.timeout, conn=self.handle, topic=topic,
                           args=args or [], kwargs=kwargs or {},
                           options={"acknowledge": True, **options})
        return r.get("id")

    def subscribe(self, topic: str, **options: Any) -> Sub:
        handle = f"sub{nonce()}"
        r = self.a.request("subscribe", self.ctx.timeout, conn=self.handle, sub=handle,
                           topic=topic, options=options)
        return Sub(self.ctx, handle, r.get("id"))

    def register(self, proc: str, behavior: str = "echo", value: Any = None,
                 **options: Any) -> Reg:
        handle = f"reg{nonce()}"
        r = self.a.request("register", self.ctx.timeout, conn=self.handle, reg=handle,
                           procedure=proc, behavior=behavior, value=value, options=options)
        reg = Reg(self.ctx, handle, r.get("id"))
        self.ctx.regs.append(reg)
        return reg

    def disconnect(self) -> None:
        self.a.request("disconnect", self.ctx.timeout, conn=self.handle)

    def drop(self) -> None:
        self.a.request("drop", self.ctx.timeout, conn=self.handle)


class Call:
    def __init__(self, ctx: Ctx, handle: str) -> None:
        self.ctx = ctx
        self.handle = handle

    def cancel(self, mode: str) -> None:
        self.ctx.adapter.request("call_cancel", self.ctx.timeout, call=self.handle, mode=mode)

    def outcome(self, seconds: float) -> tuple[str, Any]:
        """("result", Result) | ("error", WampError) | ("none", reason)."""
        try:
            r = self.ctx.adapter.request("call_wait", seconds + 5, call=self.handle,
                                         timeout=seconds)
        except WampError as e:
            return "error", e
        if r.get("pending"):
            return "none", f"no answer within {seconds}s"
        return "result", Result(r.get("args") or [], r.get("kwargs") or {}, r.get("progress") or [])


class Sub:
    def __init__(self, ctx: Ctx, handle: str, sid: Any) -> None:
        self.ctx = ctx
        self.handle = handle
        self.id = sid

    def events(self) -> list[dict[str, Any]]:
        return list(self.ctx.adapter.request("events", self.ctx.timeout, sub=self.handle))

    def labels(self) -> list[Any]:
        return [e["args"][0] if e.get("args") else None for e in self.events()]

    def wait(self, pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.ctx.timeout
        while True:
            evs = self.events()
            for e in evs:
                if pred(e):
                    return e
            if time.monotonic() > deadline:
                raise Fail(f"timeout after {self.ctx.timeout}s waiting for {what}; events so far: "
                           f"{show([(e.get('args'), e.get('kwargs')) for e in evs])}")
            time.sleep(0.02)

    def wait_label(self, label: str, what: str) -> dict[str, Any]:
        return self.wait(lambda e: bool(e.get("args")) and e["args"][0] == label, what)

    def unsubscribe(self) -> None:
        self.ctx.adapter.request("unsubscribe", self.ctx.timeout, sub=self.handle)


class Reg:
    def __init__(self, ctx: Ctx, handle: str, rid: Any) -> None:
        self.ctx = ctx
        self.handle = handle
        self.id = rid

    def invocations(self) -> list[dict[str, Any]]:
        return list(self.ctx.adapter.request("invocations", self.ctx.timeout, reg=self.handle))

    def release(self) -> int:
        return int(self.ctx.adapter.request("release", self.ctx.timeout, reg=self.handle))

    def unregister(self) -> None:
        self.ctx.adapter.request("unregister", self.ctx.timeout, reg=self.handle)


@dataclass
class Ctx:
    adapter: Adapter
    target: Target
    realm: str = "realm1"
    auth_realm: str = "realm2"
    timeout: float = 10.0
    quick: float = 1.5
    conns: list[Conn] = field(default_factory=list)
    regs: list[Reg] = field(default_factory=list)

    @property
    def features(self) -> dict[str, Any]:
        return dict(self.adapter.hello.get("features") or {})

    def connect(self, realm: str | None = None, authmethod: str | None = None,
                authid: str | None = None, secret: str | None = None) -> Conn:
        handle = f"c{nonce()}"
        params: dict[str, Any] = {"conn": handle, "url": self.target.url,
                                  "transport": self.target.transport,
                                  "serializer": self.target.serializer,
                                  "realm": realm or self.realm}
        if authmethod:
            params.update(authmethod=authmethod, authid=authid, secret=secret)
        info = self.adapter.request("connect", self.timeout + 5, **params)
        c = Conn(self, handle, info)
        self.conns.append(c)
        return c

    def join(self, n: int = 1) -> list[Conn]:
        return [self.connect() for _ in range(n)]

    def close_all(self) -> None:
        for r in self.regs:  # let "held" endpoints answer, so that nothing waits on them
            try:
                r.release()
            except Exception:
                pass
        for c in self.conns:
            try:
                c.disconnect()
            except Exception:
                pass


def expect(cond: Any, message: str) -> None:
    if not cond:
        raise Fail(message)


def same(actual: Any, expected: Any) -> bool:
    def norm(v: Any) -> Any:
        if isinstance(v, bytearray):
            return bytes(v)
        if isinstance(v, tuple | list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    return norm(actual) == norm(expected)


def expect_same(what: str, actual: Any, expected: Any) -> None:
    if not same(actual, expected):
        raise Fail(f"{what}: expected {show(expected)}, got {show(actual)}")


def expect_error(fn: Callable[[], Any], uri: str | None, what: str) -> WampError:
    try:
        res = fn()
    except WampError as e:
        if e.uri == "":  # the client tells that the join was refused, not the reason
            return f"join refused (the client does not expose the ABORT reason: {show(e.args_)})"
        if uri is not None and e.uri != uri:
            raise Fail(f"{what}: expected error {uri}, got {e.uri} args={show(e.args_)}") from None
        return e
    raise Fail(f"{what}: expected error {uri}, but it succeeded with {show(res)}")


def poll(fn: Callable[[], Any], pred: Callable[[Any], bool], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        last = fn()
        if pred(last):
            return last
        if time.monotonic() > deadline:
            raise Fail(f"timeout after {seconds}s: {what}; last: {show(last)}")
        time.sleep(0.02)


def unique(what: str) -> str:
    return f"com.interop.{what}.{nonce()}"


def sample_payload() -> bytes:
    b = bytearray(i % 256 for i in range(512))
    b[1] = 0xFF
    return bytes(b)


# -- scenarios --------------------------------------------------------------------------

SCENARIOS: list[tuple[str, Callable[[Ctx], str]]] = []


def scenario(fn: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
    SCENARIOS.append((fn.__name__.removeprefix("sc_"), fn))
    return fn


@scenario
def sc_join_anonymous(ctx: Ctx) -> str:
    c = ctx.connect()
    if c.info.get("session") is None and not ctx.features.get("session_id", True):
        return "joined (the client does not expose its session id or WELCOME details)"
    expect(isinstance(c.session, int) and 0 < c.session <= 2**53,
           f"session id is not a WAMP id: {c.session!r}")
    if c.info.get("authrole") is not None:
        expect_same("WELCOME.authrole", c.info["authrole"], "anonymous")
    return f"session={c.session} authrole={c.info.get('authrole')} authmethod={c.info.get('authmethod')}"


@scenario
def sc_subscribe_event_from_python(ctx: Ctx) -> str:
    c = ctx.connect()
    n = nonce()
    args = [1, "two", {"three": 3}, [True, None, 1.5]]
    kwargs = {"n": n, "k": "v", "list": [1, 2, 3], "nested": {"a": "b"}}
    sub = c.subscribe("com.interop.to_js")
    c.call("com.interop.publish_to_js", args, kwargs)
    ev = sub.wait(lambda e: (e.get("kwargs") or {}).get("n") == n, "the event from python")
    expect_same("event args", ev["args"], args)
    expect_same("event kwargs", ev["kwargs"], kwargs)
    return f"received args={show(ev['args'])} kwargs={show(ev['kwargs'])}"


@scenario
def sc_publish_event_to_python(ctx: Ctx) -> str:
    c = ctx.connect()
    n = nonce()
    args = ["hello", 42, {"x": [1, 2]}, -7, 0.25]
    kwargs = {"n": n, "flag": False, "empty": {}, "none": None, "text": "h\u00e9llo \u2603"}
    sub = c.subscribe("com.interop.from_python")
    pub = c.publish("com.interop.to_python", args, kwargs)
    if ctx.features.get("publication_id", True):
        expect(pub, f"no publication id in PUBLISHED: {pub!r}")
    ev = sub.wait(lambda e: (e.get("kwargs") or {}).get("n") == n,
                  "python re-publishing on com.interop.from_python")
    expect_same("args seen by python (re-published)", ev["args"], args)
    expect_same("kwargs seen by python (re-published)", ev["kwargs"], kwargs)
    return f"publication={pub}; python got args and kwargs unchanged"


@scenario
def sc_call_python_args_kwargs(ctx: Ctx) -> str:
    c = ctx.connect()
    expect_same("com.interop.add(2, 3)", c.call("com.interop.add", [2, 3]).args, [5])
    args = [1, "x", [True, None], {"a": 1.5}, ""]
    kwargs = {"k": "v", "n": -12345678901, "deep": {"list": [{}, []]}}
    r = c.call("com.interop.echo", args, kwargs)
    expect_same("echo args", r.args, args)
    expect_same("echo kwargs", r.kwargs, kwargs)
    expect_same("echo single arg", c.call("com.interop.echo", ["only"]).args, ["only"])
    return f"add=5; echo args={show(r.args)} kwargs={show(r.kwargs)}"


@scenario
def sc_call_python_error_args(ctx: Ctx) -> str:
    c = ctx.connect()
    e = expect_error(lambda: c.call("com.interop.oops", [1], {"a": 2}), "com.example.oops",
                     "com.interop.oops")
    if not ctx.features.get("error_args", True):
        return f"error={e.uri} (the client does not expose an ERROR's args and kwargs)"
    expect_same("error args", e.args_, ["bad", 42])
    expect(not e.kwargs, f"error kwargs not empty: {show(e.kwargs)}")
    return f"error={e.uri} args={show(e.args_)}"


@scenario
def sc_register_called_by_python(ctx: Ctx) -> str:
    c = ctx.connect()
    mul = unique("client.value")
    echo = unique("client.echo")
    reg = c.register(mul, "value", 42)
    c.register(echo, "echo")
    r = c.call("com.interop.call_js", [mul, 6, 7])
    expect_same("python calling the client's procedure", r.args, [42])
    expect_same("args the client received from python", reg.invocations()[0]["args"], [6, 7])
    args = ["a", 1, [2, {"b": None}]]
    kwargs = {"k": "v", "num": 3.5}
    r = c.call("com.interop.call_js", [echo, *args], kwargs)
    expect_same("python -> client echo args", r.args, args)
    expect_same("python -> client echo kwargs", r.kwargs, kwargs)
    return f"echo via python: args={show(r.args)} kwargs={show(r.kwargs)}"


@scenario
def sc_register_error_to_python(ctx: Ctx) -> str:
    c = ctx.connect()
    proc = unique("client.fail")
    c.register(proc, "error", {"uri": "com.example.js_oops", "args": ["nope", 7],
                               "kwargs": {"why": "test"}})
    seen = c.call("com.interop.call_js_error", [proc]).args
    expect_same("error python saw", seen, [{"error": "com.example.js_oops", "args": ["nope", 7],
                                            "kwargs": {"why": "test"}}])
    return f"python saw {show(seen[0])}"


@scenario
def sc_call_missing_procedure(ctx: Ctx) -> str:
    c = ctx.connect()
    e = expect_error(lambda: c.call(f"com.interop.does_not_exist.{nonce()}"),
                     "wamp.error.no_such_procedure", "calling an unregistered procedure")
    return f"error={e.uri}"


@scenario
def sc_binary_call_roundtrip(ctx: Ctx) -> str:
    c = ctx.connect()
    payload = sample_payload()
    r = c.call("com.interop.echo", [payload, "text"], {"blob": payload})
    expect(isinstance(r.args[0] if r.args else None, bytes),
           f"echoed args[0] is not a byte string: {show(r.args)}")
    expect_same("echoed args", r.args, [payload, "text"])
    expect_same("echoed kwargs", r.kwargs, {"blob": payload})
    d = c.call("com.interop.describe", [payload]).args[0]
    expect_same("what python received", d["args"][0],
                {"type": "bytes", "len": len(payload), "hex": payload.hex()})
    made = c.call("com.interop.make_bytes", [300]).args[0]
    expect_same("bytes made by python", made, bytes(i % 256 for i in range(300)))
    return f"echo of {len(payload)} bytes ok; python saw bytes; got 300 bytes from python"


@scenario
def sc_binary_pubsub_roundtrip(ctx: Ctx) -> str:
    c = ctx.connect()
    n = nonce()
    payload = sample_payload()
    sub = c.subscribe("com.interop.from_python")
    c.publish("com.interop.to_python", [payload], {"n": n, "blob": payload})
    ev = sub.wait(lambda e: (e.get("kwargs") or {}).get("n") == n, "the re-published binary event")
    expect_same("binary event args", ev["args"], [payload])
    expect_same("binary event kwargs", ev["kwargs"], {"n": n, "blob": payload})
    return f"{len(payload)} bytes out and back through python"


def joined_as(c: Conn, authid: str, authmethod: str) -> str:
    if c.info.get("authid") is None and not c.ctx.features.get("welcome_details", True):
        return f"session={c.info.get('session')} (the client does not expose WELCOME's " \
               "authid/authrole)"
    expect_same("WELCOME.authid", c.info.get("authid"), authid)
    expect_same("WELCOME.authrole", c.info.get("authrole"), "user")
    if c.info.get("authmethod") is not None:
        expect_same("WELCOME.authmethod", c.info["authmethod"], authmethod)
    return f"session={c.session} authid={authid} authrole=user authmethod={c.info.get('authmethod')}"


def alice(ctx: Ctx, ticket: str = "secret123") -> Conn:
    return ctx.connect(ctx.auth_realm, "ticket", "alice", ticket)


@scenario
def sc_auth_ticket_join(ctx: Ctx) -> str:
    return joined_as(alice(ctx), "alice", "ticket")


@scenario
def sc_auth_wampcra_join(ctx: Ctx) -> str:
    return joined_as(ctx.connect(ctx.auth_realm, "wampcra", "bob", "bobsecret"), "bob", "wampcra")


def expect_rejected(fn: Callable[[], Conn], uri: str | None, what: str) -> str:
    try:
        c = fn()
    except WampError as e:
        if e.uri == "":  # the client tells that the join was refused, not the reason
            return f"join refused (the client does not expose the ABORT reason: {show(e.args_)})"
        if uri is not None and e.uri != uri:
            raise Fail(f"{what}: expected ABORT {uri}, got {e.uri} {show(e.args_)}") from None
        return f"ABORT {e.uri}"
    raise Fail(f"{what}: joined (session {c.info.get('session')}) but must be rejected with {uri}")


@scenario
def sc_auth_wrong_ticket(ctx: Ctx) -> str:
    return expect_rejected(lambda: alice(ctx, "not-the-ticket"), "wamp.error.authentication_failed",
                           "wrong ticket")


@scenario
def sc_auth_wrong_wampcra(ctx: Ctx) -> str:
    return expect_rejected(lambda: ctx.connect(ctx.auth_realm, "wampcra", "bob", "not-the-secret"),
                           "wamp.error.authentication_failed", "wrong WAMP-CRA secret")


@scenario
def sc_auth_anonymous_realm2_rejected(ctx: Ctx) -> str:
    return expect_rejected(lambda: ctx.connect(ctx.auth_realm), None, "anonymous join of realm2")


@scenario
def sc_realm2_authorized_ok(ctx: Ctx) -> str:
    c = alice(ctx)
    proc = f"com.example.interop.{nonce()}"
    c.register(proc, "echo1")
    expect_same(f"call {proc}", c.call(proc, ["pong"]).args, ["pong"])
    n = nonce()
    topic = f"com.example.interop.topic.{n}"
    sub = c.subscribe(topic)
    alice(ctx).publish(topic, ["hi"], {"n": n})
    sub.wait_label("hi", f"event on {topic} from a second alice session")
    return "register/call/subscribe/publish under com.example. allowed"


@scenario
def sc_realm2_not_authorized(ctx: Ctx) -> str:
    c = alice(ctx)
    na = "wamp.error.not_authorized"
    expect_error(lambda: c.call("com.other.proc", [1]), na, "call com.other.proc")
    expect_error(lambda: c.publish("com.other.topic", [1]), na, "publish com.other.topic")
    expect_error(lambda: c.register("com.other.proc", "echo"), na, "register com.other.proc")
    expect_error(lambda: c.subscribe("com.other.topic"), na, "subscribe com.other.topic")
    return f"call/publish/register/subscribe outside com.example. -> {na}"


# -- pub/sub ----------------------------------------------------------------------------


@scenario
def sc_pubsub_exclude_me_false(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    topic = unique("excl")
    ra = a.subscribe(topic)
    rb = b.subscribe(topic)
    a.publish(topic, ["self"], exclude_me=False)
    a.publish(topic, ["default"])
    a.publish(topic, ["marker"], exclude_me=False)
    ra.wait_label("marker", "A: own marker event")
    rb.wait_label("marker", "B: marker event")
    expect_same("events the publisher A got (exclude_me false, default, false)", ra.labels(),
                ["self", "marker"])
    expect_same("events B got", rb.labels(), ["self", "default", "marker"])
    return "publisher got its own events only with exclude_me: false; the other session got all"


@scenario
def sc_pubsub_eligible_exclude(ctx: Ctx) -> str:
    a, b, c = ctx.join(3)
    topic = unique("elig")
    rb = b.subscribe(topic)
    rc = c.subscribe(topic)
    a.publish(topic, ["eligible-b"], eligible=[b.session])
    a.publish(topic, ["exclude-b"], exclude=[b.session])
    a.publish(topic, ["eligible-b-c-exclude-c"], eligible=[b.session, c.session],
              exclude=[c.session])
    a.publish(topic, ["marker"])
    rb.wait_label("marker", "B: marker")
    rc.wait_label("marker", "C: marker")
    expect_same("events B got", rb.labels(), ["eligible-b", "eligible-b-c-exclude-c", "marker"])
    expect_same("events C got", rc.labels(), ["exclude-b", "marker"])
    return f"eligible/exclude by session id (B={b.session}, C={c.session}) honoured"


@scenario
def sc_pubsub_disclose_me(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    topic = unique("disclose")
    rb = b.subscribe(topic)
    a.publish(topic, ["hidden"])
    a.publish(topic, ["shown"], disclose_me=True)
    shown = rb.wait_label("shown", "the disclosed event")
    hidden = [e for e in rb.events() if e["args"] and e["args"][0] == "hidden"]
    expect(hidden, "the undisclosed event did not arrive before the disclosed one")
    expect_same("details.publisher without disclose_me", hidden[0].get("publisher"), None)
    expect_same("details.publisher with disclose_me", shown.get("publisher"), a.session)
    expect_same("details.publisher_authrole", shown.get("publisher_authrole"), "anonymous")
    return f"publisher={shown.get('publisher')} authrole={shown.get('publisher_authrole')}; " \
           "nothing without disclose_me"


@scenario
def sc_pubsub_pattern(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    n = nonce()
    prefix = f"com.interop.pfx.{n}"
    wildcard = f"com.interop.wc.{n}..leaf"
    rp = b.subscribe(prefix, match="prefix")
    rw = b.subscribe(wildcard, match="wildcard")
    a.publish(f"com.interop.other.{n}.a", ["no-match"])
    a.publish(f"com.interop.wc.{n}.x.other", ["no-match-wc"])
    a.publish(f"{prefix}.a.b", ["p1"])
    a.publish(f"com.interop.wc.{n}.x.leaf", ["w1"])
    p1 = rp.wait_label("p1", "prefix event")
    w1 = rw.wait_label("w1", "wildcard event")
    expect_same("prefix subscription: details.topic", p1.get("topic"), f"{prefix}.a.b")
    expect_same("wildcard subscription: details.topic", w1.get("topic"),
                f"com.interop.wc.{n}.x.leaf")
    expect_same("events on the prefix subscription", rp.labels(), ["p1"])
    expect_same("events on the wildcard subscription", rw.labels(), ["w1"])
    return f"prefix -> {p1.get('topic')}; wildcard -> {w1.get('topic')}"


@scenario
def sc_pubsub_retained(ctx: Ctx) -> str:
    a = ctx.connect()
    topic = unique("retained")
    a.publish(topic, ["first"], retain=True)
    a.publish(topic, ["last"], {"k": "v"}, retain=True)
    a.publish(topic, ["not-retained"])
    c, d = ctx.join(2)
    rc = c.subscribe(topic, get_retained=True)
    ev = rc.wait(lambda e: True, "the retained event")
    rd = d.subscribe(topic)
    a.publish(topic, ["live"])
    rc.wait_label("live", "C: live event")
    rd.wait_label("live", "D: live event")
    expect_same("retained event args/kwargs", [ev["args"], ev["kwargs"]], [["last"], {"k": "v"}])
    expect_same("retained event details.retained", ev.get("retained"), True)
    expect_same("events C got (get_retained)", rc.labels(), ["last", "live"])
    expect(not rc.events()[1].get("retained"),
           f"details.retained of the live event: {rc.events()[1].get('retained')!r}")
    expect_same("events D got (no get_retained)", rd.labels(), ["live"])
    return "a later subscriber with get_retained got the last retained event, retained=true"


# -- RPC --------------------------------------------------------------------------------


@scenario
def sc_rpc_progressive_results(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    proc = unique("progress")
    reg = b.register(proc, "progress", 3)
    r = a.call(proc, options={"receive_progress": True})
    expect_same("progressive results", r.progress, [[1, "p"], [2, "p"], [3, "p"]])
    expect_same("final result", r.args, ["done"])
    plain = a.call(proc)
    expect_same("without receive_progress: progress", plain.progress, [])
    expect_same("final result without receive_progress", plain.args, ["done"])
    expect_same("callee could send progress", [i.get("progress") for i in reg.invocations()],
                [True, False])
    return f"progress {show(r.progress)} then {show(r.args)}; none without receive_progress"


CANCEL_SPEC = ('WAMP spec, Call Canceling: "skip": ERROR to the caller at once, no INTERRUPT; '
               '"kill": INTERRUPT, the callee\'s answer ends the call; "killnowait": ERROR at '
               'once and INTERRUPT; a callee without call_canceling is treated as "skip"')


def cancel_scenario(mode: str) -> None:
    def run(ctx: Ctx) -> str:
        a, b = ctx.join(2)
        proc = unique("held")
        reg = b.register(proc, "held")
        b.register(f"{proc}.ping", "value", "pong")
        call = a.call_start(proc)
        poll(reg.invocations, lambda inv: len(inv) == 1, ctx.timeout, "callee invoked")
        call.cancel(mode)
        interrupts = bool(ctx.features.get("callee_call_canceling"))
        wait = ctx.timeout if (mode == "kill" and interrupts) else ctx.quick + 0.5
        kind, val = call.outcome(wait)
        if kind != "error":
            raise Fail(f"cancel({mode}): the caller got {kind} {show(val)} instead of ERROR "
                       f"wamp.error.canceled within {wait}s. {CANCEL_SPEC}")
        expect_same(f"cancel({mode}): error URI", val.uri, "wamp.error.canceled")
        if mode == "skip" or not interrupts:
            time.sleep(0.1)
            status = [i["status"] for i in reg.invocations()]
            expect_same(f"callee after cancel({mode}) (no INTERRUPT)", status, ["running"])
            expect_same("released late", reg.release(), 1)
        else:
            st = poll(reg.invocations, lambda inv: inv[0]["status"] != "running", ctx.quick,
                      f"callee interrupted after cancel({mode})")
            expect_same(f"callee after cancel({mode})", [i["status"] for i in st],
                        ["interrupted"])
        expect_same(f"call after cancel({mode})", a.call(f"{proc}.ping").args, ["pong"])
        who = "interrupted" if (mode != "skip" and interrupts) else \
            "not interrupted, its late answer dropped"
        note = "" if interrupts else " (the callee does not announce call_canceling)"
        return f"caller got wamp.error.canceled; callee {who}{note}"

    run.__name__ = f"sc_rpc_cancel_{mode}"
    scenario(run)


for _mode in ("skip", "kill", "killnowait"):
    cancel_scenario(_mode)


@scenario
def sc_rpc_call_timeout(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    proc = unique("held")
    reg = b.register(proc, "held")
    b.register(f"{proc}.quick", "value", "quick")
    t0 = time.monotonic()
    call = a.call_start(proc, options={"timeout": 300})
    kind, val = call.outcome(0.3 + ctx.quick + 1)
    elapsed = int((time.monotonic() - t0) * 1000)
    if kind != "error":
        raise Fail(f"CALL with timeout 300 ms: {kind} {show(val)}; expected ERROR "
                   "wamp.error.timeout (WAMP spec, Call Timeouts)")
    expect_same("error URI", val.uri, "wamp.error.timeout")
    expect(elapsed >= 250, f"wamp.error.timeout after {elapsed} ms, before the 300 ms timeout")
    if ctx.features.get("callee_call_canceling"):
        poll(reg.invocations, lambda inv: inv and inv[0]["status"] == "interrupted", ctx.quick,
             "callee interrupted after the timeout")
        who = "callee interrupted"
    else:
        reg.release()
        who = "callee (no call_canceling) not interrupted, late answer dropped"
    r = a.call(f"{proc}.quick", options={"timeout": 2000})
    expect_same("a call that finishes within its timeout", r.args, ["quick"])
    return f"wamp.error.timeout after {elapsed} ms (timeout 300 ms); {who}"


@scenario
def sc_rpc_shared_roundrobin(ctx: Ctx) -> str:
    a, b, c = ctx.join(3)
    proc = unique("rr")
    b.register(proc, "value", "b", invoke="roundrobin")
    c.register(proc, "value", "c", invoke="roundrobin")
    results = [a.call(proc).args[0] for _ in range(6)]
    expect(set(results) == {"b", "c"} and all(x != y for x, y in zip(results, results[1:], strict=False)),
           f"round robin over b, c gave {results}")
    expect_error(lambda: a.register(proc, "value", "a", invoke="single"),
                 "wamp.error.procedure_already_exists",
                 "registering a roundrobin procedure with invoke single")
    return f"6 calls -> {','.join(results)}"


@scenario
def sc_rpc_pattern_registration(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    n = nonce()
    b.register(f"com.interop.pp.{n}", "details", match="prefix")
    b.register(f"com.interop.pw.{n}..end", "details", match="wildcard")
    b.register(f"com.interop.pp.{n}.exact", "value", "exact")
    p = a.call(f"com.interop.pp.{n}.x.y", [1]).args[0]
    w = a.call(f"com.interop.pw.{n}.mid.end", [2]).args[0]
    e = a.call(f"com.interop.pp.{n}.exact").args[0]
    note = ""
    if ctx.features.get("invocation_procedure", True):
        expect_same("prefix registration: details.procedure", p.get("procedure"),
                    f"com.interop.pp.{n}.x.y")
        expect_same("wildcard registration: details.procedure", w.get("procedure"),
                    f"com.interop.pw.{n}.mid.end")
    else:
        expect_same("prefix registration got the call", p.get("args"), [1])
        expect_same("wildcard registration got the call", w.get("args"), [2])
        note = " (the client does not expose INVOCATION.Details.procedure)"
    expect_same("exact registration wins over the prefix", e, "exact")
    expect_error(lambda: a.call(f"com.interop.pw.{n}.mid.other"), "wamp.error.no_such_procedure",
                 "a URI the wildcard does not match")
    return f"prefix -> {p.get('procedure')}; wildcard -> {w.get('procedure')}; exact beats " \
           f"prefix{note}"


@scenario
def sc_rpc_caller_disclosure(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    proc = unique("who")
    b.register(proc, "details")
    shown = a.call(proc, options={"disclose_me": True}).args[0]
    hidden = a.call(proc).args[0]
    expect_same("callee details with disclose_me", [shown.get("caller"), shown.get("caller_authrole")],
                [a.session, "anonymous"])
    expect_same("callee details without disclose_me",
                [hidden.get("caller"), hidden.get("caller_authrole")], [None, None])
    return f"callee saw caller={shown.get('caller')}; nothing without disclose_me"


# -- meta API ---------------------------------------------------------------------------

UNKNOWN_ID = 2**53 - 7


def session_info(what: str, info: Any, sid: int) -> None:
    expect(isinstance(info, dict), f"{what}: not a dict: {show(info)}")
    expect_same(f"{what}.session", info.get("session"), sid)
    expect_same(f"{what}.authrole", info.get("authrole"), "anonymous")


@scenario
def sc_meta_session(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    for _ in range(3):
        count = a.call("wamp.session.count").args[0]
        lst = a.call("wamp.session.list").args[0]
        if count == len(lst):
            break
        time.sleep(0.05)
    expect(count == len(lst), f"wamp.session.count={count} but wamp.session.list has {len(lst)}")
    expect(a.session in lst and b.session in lst, f"wamp.session.list {show(lst)} lacks A or B")
    for _ in range(5):  # other scenarios' sessions come and go on the shared router
        count = a.call("wamp.session.count").args[0]
        anonymous = a.call("wamp.session.count", [["anonymous"]]).args[0]
        if anonymous == count:
            break
        time.sleep(0.05)
    expect_same('wamp.session.count(["anonymous"])', anonymous, count)
    expect_same('wamp.session.count(["no-such-role"])',
                a.call("wamp.session.count", [["no-such-role"]]).args[0], 0)
    info = a.call("wamp.session.get", [b.session]).args[0]
    session_info("wamp.session.get(B)", info, b.session)
    expect_error(lambda: a.call("wamp.session.get", [UNKNOWN_ID]), "wamp.error.no_such_session",
                 "wamp.session.get of an unknown session")
    return f"count={count}, list has A and B, get(B) ok, no_such_session"


@scenario
def sc_meta_session_events(ctx: Ctx) -> str:
    a = ctx.connect()
    joins = a.subscribe("wamp.session.on_join")
    leaves = a.subscribe("wamp.session.on_leave")
    b = ctx.connect()
    j = joins.wait(lambda e: isinstance((e.get("args") or [None])[0], dict)
                   and e["args"][0].get("session") == b.session, "on_join of B")
    session_info("on_join details", j["args"][0], b.session)
    b.disconnect()
    lv = leaves.wait(lambda e: (e.get("args") or [None])[0] == b.session, "on_leave of B")
    expect_same("on_leave args", lv["args"], [b.session, lv["args"][1], "anonymous"])
    return f"on_join and on_leave {show(lv['args'])}"


def created(what: str, ev: dict[str, Any], sid: int, uri: str, match: str) -> dict[str, Any]:
    args = ev.get("args") or []
    expect(len(args) >= 2, f"{what}: args {show(args)}")
    expect_same(f"{what}: session", args[0], sid)
    d = args[1]
    expect_same(f"{what}: details uri/match", [d.get("uri"), d.get("match")], [uri, match])
    expect(isinstance(d.get("id"), int) and isinstance(d.get("created"), str),
           f"{what}: details {show(d)}")
    return dict(d)


def meta_arg_uri(uri: str) -> Callable[[dict[str, Any]], bool]:
    def pred(e: dict[str, Any]) -> bool:
        args = e.get("args") or []
        return len(args) >= 2 and isinstance(args[1], dict) and args[1].get("uri") == uri
    return pred


@scenario
def sc_meta_subscription(ctx: Ctx) -> str:
    a, b, c = ctx.join(3)
    creates = a.subscribe("wamp.subscription.on_create")
    subs = a.subscribe("wamp.subscription.on_subscribe")
    topic = unique("meta.sub")
    sb = b.subscribe(topic)
    d = created("on_create", creates.wait(meta_arg_uri(topic), "on_create"), b.session, topic,
                "exact")
    expect_same("on_create details.id = the subscription id", d["id"], sb.id)
    subs.wait(lambda e: e.get("args", [])[:2] == [b.session, sb.id], "on_subscribe of B")
    sc = c.subscribe(topic)
    expect_same("second subscriber: same subscription id", sc.id, sb.id)
    subs.wait(lambda e: e.get("args", [])[:2] == [c.session, sb.id], "on_subscribe of C")
    expect_same("on_create events for the topic",
                len([e for e in creates.events() if meta_arg_uri(topic)(e)]), 1)
    expect_same("wamp.subscription.lookup", a.call("wamp.subscription.lookup", [topic]).args,
                [sb.id])
    none = a.call("wamp.subscription.lookup", [topic, {"match": "prefix"}]).args
    expect(none in ([None], []), f"wamp.subscription.lookup (prefix): expected null, got {show(none)}")
    subscribers = a.call("wamp.subscription.list_subscribers", [sb.id]).args[0]
    expect_same("wamp.subscription.list_subscribers", sorted(subscribers),
                sorted([b.session, c.session]))
    return f"on_create/on_subscribe, lookup={sb.id}, list_subscribers={show(subscribers)}"


@scenario
def sc_meta_registration(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    creates = a.subscribe("wamp.registration.on_create")
    regs = a.subscribe("wamp.registration.on_register")
    proc = unique("meta.reg")
    rb = b.register(proc, "value", 1)
    d = created("on_create", creates.wait(meta_arg_uri(proc), "on_create"), b.session, proc,
                "exact")
    expect_same("on_create details.id", d["id"], rb.id)
    regs.wait(lambda e: e.get("args", [])[:2] == [b.session, rb.id], "on_register")
    expect_same("wamp.registration.lookup", a.call("wamp.registration.lookup", [proc]).args,
                [rb.id])
    got = a.call("wamp.registration.get", [rb.id]).args[0]
    expect_same("wamp.registration.get",
                [got.get("id"), got.get("uri"), got.get("match"), got.get("invoke")],
                [rb.id, proc, "exact", "single"])
    expect_error(lambda: a.call("wamp.registration.get", [UNKNOWN_ID]),
                 "wamp.error.no_such_registration", "wamp.registration.get of an unknown id")
    return f"on_create/on_register, lookup, get={show(got, 160)}"


@scenario
def sc_meta_testament(ctx: Ctx) -> str:
    a, b, c = ctx.join(3)
    topic = unique("testament")
    r = a.subscribe(topic)
    b.call("wamp.session.add_testament", [topic, ["b-left", b.session], {"k": "v"}])
    c.call("wamp.session.add_testament", [topic, ["c-lost", c.session], {}])
    b.disconnect()
    eb = r.wait_label("b-left", "testament of B (GOODBYE)")
    expect_same("testament of B", [eb["args"], eb["kwargs"]], [["b-left", b.session], {"k": "v"}])
    try:
        c.drop()
    except Skip as e:
        return f"testament published after GOODBYE; the transport-loss case not expressible: {e}"
    ec = r.wait_label("c-lost", "testament of C (transport closed)")
    expect_same("testament of C", ec["args"], ["c-lost", c.session])
    expect_same("events", r.labels(), ["b-left", "c-lost"])
    return "testaments published after a GOODBYE and after a transport close"


# -- large payloads ---------------------------------------------------------------------


@scenario
def sc_large_string_call(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    proc = unique("echo")
    b.register(proc, "echo1")
    s = secrets.token_hex(MIB // 2)
    t0 = time.monotonic()
    back = a.call(proc, [s], timeout=ctx.timeout * 3).args
    ms = int((time.monotonic() - t0) * 1000)
    expect(len(back) == 1 and back[0] == s,
           f"1 MiB string changed on the way: {show(back, 100)}")
    d = a.call("com.interop.digest", [s]).args[0]
    expect_same("what python received", d, [{"type": "str", "len": MIB,
                                              "sha256": hashlib.sha256(s.encode()).hexdigest()}])
    return f"1 MiB string echoed client -> client in {ms} ms; python's sha256 matches"


@scenario
def sc_large_binary_call(ctx: Ctx) -> str:
    a, b = ctx.join(2)
    proc = unique("echo")
    reg = b.register(proc, "echo1")
    buf = b"\x00" + secrets.token_bytes(MIB - 1)
    t0 = time.monotonic()
    back = a.call(proc, [buf], timeout=ctx.timeout * 3).args
    ms = int((time.monotonic() - t0) * 1000)
    expect(len(back) == 1 and isinstance(back[0], bytes) and back[0] == buf,
           f"1 MiB bytes changed on the way: {show(back, 100)}")
    expect(reg.invocations()[0]["args"][0] == buf, "the callee did not receive the same bytes")
    d = a.call("com.interop.digest", [buf]).args[0]
    expect_same("what python received", d, [{"type": "bytes", "len": MIB,
                                              "sha256": hashlib.sha256(buf).hexdigest()}])
    return f"1 MiB bytes echoed client -> client in {ms} ms; python got the same bytes"


SCENARIO_NAMES = [name for name, _ in SCENARIOS]


# -- running ----------------------------------------------------------------------------


def run_one(adapter: Adapter, name: str, fn: Callable[[Ctx], str], target: Target,
            timeout: float) -> dict[str, Any]:
    ctx = Ctx(adapter, target, timeout=timeout, quick=min(timeout, 1.5))
    t0 = time.monotonic()
    try:
        detail = fn(ctx)
        result = "PASS"
    except Skip as e:
        result, detail = "SKIP", str(e)
    except Fail as e:
        result, detail = "FAIL", str(e)
    except WampError as e:
        result, detail = "FAIL", f"unexpected WAMP error {e.uri} args={show(e.args_)} " \
                                 f"kwargs={show(e.kwargs)}"
    except AdapterError as e:
        result, detail = "FAIL", f"adapter: {e}"
    except Exception as e:
        result, detail = "FAIL", f"{type(e).__name__}: {e}"
    ctx.close_all()
    return {"client": adapter.hello.get("client", adapter.name), "transport": target.transport,
            "serializer": target.serializer, "scenario": name, "result": result,
            "detail": detail, "ms": int((time.monotonic() - t0) * 1000)}


def targets_of(hello: dict[str, Any], urls: dict[str, str],
               serializers: list[str]) -> list[tuple[Target, str | None]]:
    """Every (transport, serializer) cell, with the reason the client cannot do it or None."""
    out: list[tuple[Target, str | None]] = []
    unsupported = hello.get("unsupported") or {}
    for t in TRANSPORTS:
        if t not in urls:
            continue
        for s in serializers:
            why = None
            if s not in (hello.get(t) or []):
                why = unsupported.get(f"{t}/{s}") or unsupported.get(t) or \
                    f"{hello.get('library')}: no {t} transport with {s}"
            out.append((Target(t, s, urls[t]), why))
    return out


def run_all(adapter: Adapter, urls: dict[str, str], serializers: list[str] | None = None,
            only: list[str] | None = None, timeout: float = 10.0,
            emit: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    results = []
    client = adapter.hello.get("client", adapter.name)
    for target, why in targets_of(adapter.hello, urls, serializers or list(ALL_SERIALIZERS)):
        for name, fn in SCENARIOS:
            if only and name not in only:
                continue
            if why:
                r = {"client": client, "transport": target.transport,
                     "serializer": target.serializer, "scenario": name, "result": "SKIP",
                     "detail": why}
            else:
                r = run_one(adapter, name, fn, target, timeout)
            results.append(r)
            if emit:
                emit(r)
    return results
