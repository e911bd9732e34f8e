"""Adapter: autobahn-python on Twisted (see interop/scenarios.py, PROTOCOL).

    python interop/python/autobahn_twisted_adapter.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import txaio

txaio.use_twisted()

import autobahn  # noqa: E402
from adapter_common import decode, encode  # noqa: E402
from autobahn.twisted.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.twisted.wamp import ApplicationSession  # noqa: E402
from autobahn.twisted.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import auth, message  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import (  # noqa: E402
    CallOptions,
    CallResult,
    ComponentConfig,
    PublishOptions,
    RegisterOptions,
    SubscribeOptions,
)
from twisted.internet import defer, reactor, stdio  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
MAX = 16 * 1024 * 1024
LIB = f"autobahn-python {autobahn.__version__} (Twisted)"


class Unsupported(Exception):
    pass


class Abort(Exception):
    def __init__(self, reason: str, message: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


def log(*parts: Any) -> None:
    print("adapter:", *parts, file=sys.stderr, flush=True)


def result_of(res: Any) -> dict[str, Any]:
    if isinstance(res, CallResult):
        return {"args": list(res.results), "kwargs": dict(res.kwresults)}
    if res is None:
        return {"args": [], "kwargs": {}}
    return {"args": [res], "kwargs": {}}


def answer(behavior: str, value: Any, args: list[Any], kwargs: dict[str, Any],
           details: Any) -> Any:
    """What a registered endpoint answers (see the behaviors in scenarios.py)."""
    if behavior == "echo":
        return CallResult(*args, **kwargs)
    if behavior == "echo1":
        return args[0] if args else None
    if behavior == "value":
        return value
    if behavior == "details":
        return {"procedure": details.procedure, "caller": details.caller,
                "caller_authrole": details.caller_authrole, "args": args}
    if behavior == "error":
        raise ApplicationError(value["uri"], *value.get("args", []), **value.get("kwargs", {}))
    if behavior == "progress":
        if details.progress is not None:
            for i in range(1, int(value) + 1):
                details.progress(i, "p")
        return "done"
    raise ApplicationError("com.interop.unknown_behavior", behavior)


def held_answer(inv: dict[str, Any], held: list[defer.Deferred[Any]]) -> defer.Deferred[Any]:
    """A Deferred answered by op_release; cancelled (INTERRUPT) it answers
    ERROR wamp.error.canceled."""
    def cancel(d: defer.Deferred[Any]) -> None:
        inv["status"] = "interrupted"
        d.errback(ApplicationError("wamp.error.canceled", "interrupted"))

    d: defer.Deferred[Any] = defer.Deferred(cancel)
    d.inv = inv  # type: ignore[attr-defined]
    held.append(d)
    return d


class Session(ApplicationSession):
    def __init__(self, config: ComponentConfig, params: dict[str, Any]) -> None:
        super().__init__(config)
        self.params = params
        self.joined: defer.Deferred[Any] = defer.Deferred()
        self.closed: defer.Deferred[Any] = defer.Deferred()
        self.call_errors: dict[int, Any] = {}  # request id -> ERROR seen on the wire

    def onConnect(self) -> None:
        p = self.params
        if p.get("authmethod"):
            self.join(self.config.realm, authmethods=[p["authmethod"]], authid=p.get("authid"))
        else:
            self.join(self.config.realm)

    def onChallenge(self, challenge: Any) -> str:
        secret = self.params.get("secret") or ""
        if challenge.method == "ticket":
            return secret
        if challenge.method == "wampcra":
            key = secret
            if "salt" in challenge.extra:
                key = auth.derive_key(secret, challenge.extra["salt"],
                                      challenge.extra.get("iterations"),
                                      challenge.extra.get("keylen"))
            return auth.compute_wcs(key, challenge.extra["challenge"])
        raise Exception(f"unexpected challenge {challenge.method}")

    def onJoin(self, details: Any) -> None:
        if not self.joined.called:
            self.joined.callback(details)

    def onMessage(self, msg: Any) -> None:
        if isinstance(msg, message.Error) and msg.request_type == message.Call.MESSAGE_TYPE:
            self.call_errors[msg.request] = msg
        super().onMessage(msg)

    def onLeave(self, details: Any) -> None:
        if not self.joined.called:
            self.joined.errback(Abort(details.reason, details.message))
        self.disconnect()

    def onDisconnect(self) -> None:
        if not self.joined.called:
            self.joined.errback(Abort("connection lost", None))
        if not self.closed.called:
            self.closed.callback(None)


class Adapter:
    def __init__(self, out: LineReceiver) -> None:
        self.out = out
        self.conns: dict[str, Session] = {}
        self.subs: dict[str, Any] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.regs: dict[str, Any] = {}
        self.invocations: dict[str, list[dict[str, Any]]] = {}
        self.held: dict[str, list[defer.Deferred[Any]]] = {}
        self.calls: dict[str, dict[str, Any]] = {}

    def send(self, obj: dict[str, Any]) -> None:
        self.out.sendLine(json.dumps(obj).encode("utf-8"))

    async def handle(self, req: dict[str, Any]) -> None:
        rid = req.get("id")
        op = req.get("op")
        try:
            if op == "quit":
                reactor.stop()
                return
            fn = getattr(self, f"op_{op}", None)
            if fn is None:
                raise Unsupported(f"op {op}")
            res = await fn(**{k: decode(v) for k, v in req.items() if k not in ("id", "op")})
            self.send({"id": rid, "ok": True, "result": encode(res)})
        except Unsupported as e:
            self.send({"id": rid, "ok": False, "unsupported": str(e)})
        except Abort as e:
            self.send({"id": rid, "ok": False, "error": e.reason, "args": [e.message]})
        except ApplicationError as e:
            self.send({"id": rid, "ok": False, "error": e.error, "args": encode(list(e.args)),
                       "kwargs": encode(e.kwargs or {})})
        except Exception as e:
            log(f"{op} failed: {e!r}")
            self.send({"id": rid, "ok": False, "exception": f"{type(e).__name__}: {e}"})

    # -- sessions -----------------------------------------------------------------------

    async def op_connect(self, conn: str, url: str, transport: str, serializer: str, realm: str,
                         **auth_params: Any) -> dict[str, Any]:
        session = Session(ComponentConfig(realm, {}), auth_params)
        ser = SERIALIZERS[serializer]()
        host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        factory: Any
        if transport == "websocket":
            factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[ser])
            factory.setProtocolOptions(maxFramePayloadSize=MAX, maxMessagePayloadSize=MAX,
                                       autoFragmentSize=65536)
        else:
            factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        await TCP4ClientEndpoint(reactor, host, int(port)).connect(factory)
        details = await session.joined
        self.conns[conn] = session
        return {"session": details.session, "authid": details.authid,
                "authrole": details.authrole, "authmethod": details.authmethod,
                "realm": details.realm}

    async def op_disconnect(self, conn: str) -> None:
        s = self.conns.pop(conn, None)
        if s is None or not s.is_attached():
            return None
        s.leave()
        try:
            await defer.DeferredList([s.closed], fireOnOneErrback=False).addTimeout(5, reactor)
        except defer.TimeoutError:
            pass
        return None

    async def op_drop(self, conn: str) -> None:
        s = self.conns.pop(conn)
        s._transport.transport.loseConnection()
        return None

    # -- pub/sub --------------------------------------------------------------------------

    async def op_subscribe(self, conn: str, sub: str, topic: str,
                           options: dict[str, Any]) -> dict[str, Any]:
        records: list[dict[str, Any]] = []
        self.events[sub] = records

        def on_event(*args: Any, details: Any, **kwargs: Any) -> None:
            records.append({"args": list(args), "kwargs": kwargs, "publisher": details.publisher,
                            "publisher_authrole": details.publisher_authrole,
                            "topic": details.topic, "retained": details.retained})

        s = await self.conns[conn].subscribe(on_event, topic, options=SubscribeOptions(
            match=options.get("match"), get_retained=options.get("get_retained"),
            details_arg="details"))
        self.subs[sub] = s
        return {"id": s.id}

    async def op_events(self, sub: str) -> list[dict[str, Any]]:
        return self.events.get(sub, [])

    async def op_unsubscribe(self, sub: str) -> None:
        await self.subs.pop(sub).unsubscribe()

    async def op_publish(self, conn: str, topic: str, args: list[Any], kwargs: dict[str, Any],
                         options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        if options.pop("disclose_me", None):
            raise Unsupported("PublishOptions has no disclose_me (no way to ask for publisher "
                              "disclosure)")
        pub = await self.conns[conn].publish(topic, *args, options=PublishOptions(**options),
                                             **kwargs)
        return {"id": pub.id if pub else None}

    # -- RPC ------------------------------------------------------------------------------

    async def op_register(self, conn: str, reg: str, procedure: str, options: dict[str, Any],
                          behavior: str, value: Any = None) -> dict[str, Any]:
        invs: list[dict[str, Any]] = []
        self.invocations[reg] = invs
        held = self.held.setdefault(reg, [])

        def endpoint(*args: Any, details: Any, **kwargs: Any) -> Any:
            inv = {"args": list(args), "kwargs": kwargs, "procedure": details.procedure,
                   "caller": details.caller, "caller_authrole": details.caller_authrole,
                   "progress": details.progress is not None, "status": "running"}
            invs.append(inv)
            if behavior == "held":
                return held_answer(inv, held)
            return answer(behavior, value, list(args), kwargs, details)

        r = await self.conns[conn].register(endpoint, procedure, options=RegisterOptions(
            match=options.get("match"), invoke=options.get("invoke"), details_arg="details"))
        self.regs[reg] = r
        return {"id": r.id}

    async def op_invocations(self, reg: str) -> list[dict[str, Any]]:
        return self.invocations.get(reg, [])

    async def op_release(self, reg: str) -> int:
        n = 0
        for d in self.held.get(reg, []):
            if not d.called:
                d.inv["status"] = "released"  # type: ignore[attr-defined]
                d.callback("released")
                n += 1
        return n

    async def op_unregister(self, reg: str) -> None:
        await self.regs.pop(reg).unregister()

    async def op_call(self, conn: str, procedure: str, args: list[Any], kwargs: dict[str, Any],
                      options: dict[str, Any]) -> dict[str, Any]:
        d, progress, _ = self._start(conn, procedure, args, kwargs, options)
        res = await d
        return {**result_of(res), "progress": progress}

    def _start(self, conn: str, procedure: str, args: list[Any], kwargs: dict[str, Any],
               options: dict[str, Any]) -> tuple[defer.Deferred[Any], list[Any], int | None]:
        options = dict(options)
        if options.pop("disclose_me", None):
            raise Unsupported("CallOptions has no disclose_me (no way to ask for caller "
                              "disclosure)")
        progress: list[Any] = []
        on_progress = (lambda *a, **kw: progress.append(list(a))) \
            if options.get("receive_progress") else None
        opts = CallOptions(timeout=options.get("timeout"), on_progress=on_progress)
        s = self.conns[conn]
        before = set(s._call_reqs)
        d = s.call(procedure, *args, options=opts, **kwargs)
        new = set(s._call_reqs) - before
        return d, progress, (new.pop() if new else None)

    async def op_call_start(self, conn: str, call: str, procedure: str, args: list[Any],
                            kwargs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        d, progress, request = self._start(conn, procedure, args, kwargs, options)
        state: dict[str, Any] = {"d": d, "progress": progress, "request": request, "conn": conn,
                                 "outcome": None, "done": defer.Deferred()}

        def ok(res: Any) -> None:
            state["outcome"] = ("ok", res)
            state["done"].callback(None)

        def err(f: Any) -> None:
            state["outcome"] = ("err", f.value)
            state["done"].callback(None)

        d.addCallbacks(ok, err)
        self.calls[call] = state
        return {}

    async def op_call_cancel(self, call: str, mode: str) -> None:
        if mode != "killnowait":
            raise Unsupported("Deferred.cancel() sends CANCEL without options, i.e. the "
                              "default mode killnowait; no way to ask for skip or kill")
        self.calls[call]["cancelled"] = True
        self.calls[call]["d"].cancel()

    async def op_call_wait(self, call: str, timeout: float) -> dict[str, Any]:
        st = self.calls[call]
        if st.get("cancelled"):
            # the Deferred failed locally at cancel(); what counts is the router's ERROR
            s = self.conns[st["conn"]]
            for _ in range(int(timeout * 50)):
                if st["request"] in s.call_errors:
                    break
                await sleep(0.02)
            msg = s.call_errors.get(st["request"])
            if msg is None:
                return {"pending": True}
            raise ApplicationError(msg.error, *(msg.args or []), **(msg.kwargs or {}))
        try:
            await defer.DeferredList([st["done"]]).addTimeout(timeout, reactor)
        except defer.TimeoutError:
            return {"pending": True}
        if st["outcome"] is None:
            return {"pending": True}
        kind, val = st["outcome"]
        if kind == "err":
            raise val
        return {**result_of(val), "progress": st["progress"]}


def sleep(seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class Control(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 256 * 1024 * 1024

    def connectionMade(self) -> None:
        self.adapter = Adapter(self)
        self.adapter.send({"hello": {
            "client": "autobahn-python-twisted", "version": autobahn.__version__,
            "library": LIB, "websocket": ["json", "msgpack", "cbor"],
            "rawsocket": ["json", "msgpack", "cbor"],
            "features": {"callee_call_canceling": True}}})

    def lineReceived(self, line: bytes) -> None:
        defer.ensureDeferred(self.adapter.handle(json.loads(line)))

    def connectionLost(self, reason: Any = None) -> None:
        if reactor.running:
            reactor.stop()


def main() -> None:
    stdio.StandardIO(Control())
    reactor.run()


if __name__ == "__main__":
    main()
