"""The autobahn-python side of the interop tests (asyncio).

It joins realm1 (anonymously) and offers the JS driver everything it needs to test
each direction of RPC and PubSub against a second, independent WAMP implementation:

  procedures it registers (called by JS)
    com.interop.ping                -> "pong" (the driver waits for this one to exist)
    com.interop.add(a, b)           -> a + b
    com.interop.echo(*a, **kw)      -> the same args and kwargs, unchanged (CallResult)
    com.interop.oops()              -> raises ApplicationError("com.example.oops", "bad", 42)
    com.interop.describe(*a, **kw)  -> what Python received: type names, bytes as hex
    com.interop.make_bytes(n)       -> bytes(range(n % 256)) produced on the Python side
    com.interop.publish_to_js(*a, **kw)
                                    -> publishes (acknowledged) the same args/kwargs on
                                       com.interop.to_js; returns the publication id
    com.interop.call_js(proc, *a, **kw)
                                    -> calls proc (e.g. com.interop.js.mul, registered by
                                       the JS driver) with *a, **kw; returns its result
    com.interop.call_js_error(proc, *a, **kw)
                                    -> calls proc, expects an ApplicationError, returns
                                       {"error": uri, "args": [...], "kwargs": {...}}

  Advanced Profile helpers (the driver steers the peer through these)
    com.interop.whoami()            -> this session's id
    com.interop.sub(topic, options) -> subscribes (options: match, get_retained) and
                                       records every event with its details; returns
                                       the subscription id
    com.interop.events(topic)       -> the events recorded for that subscription:
                                       [{args, kwargs, publisher, publisher_authrole,
                                         topic, retained}, ...]
    com.interop.unsub(topic)        -> unsubscribes, forgets the events
    com.interop.pub(topic, args, kwargs, options)
                                    -> publishes, acknowledged, with options (exclude_me,
                                       eligible, exclude, retain, ...); returns the id
    com.interop.progress(n)         -> n progressive results [i] (i = 0..n-1) when the
                                       caller asked for them, then "done"
    com.interop.call_js_progress(proc, *a, **kw)
                                    -> calls proc with on_progress; returns
                                       {"progress": [[args...], ...], "result": ...}
    com.interop.slow(key, seconds)  -> waits until released (or seconds pass); when the
                                       router interrupts it, records "interrupted" and
                                       answers ERROR wamp.error.canceled
    com.interop.slow_status(key)    -> "running" | "interrupted" | "finished" | None
    com.interop.release(key)        -> lets slow(key) return and waits until it has
                                       answered; returns its status
    com.interop.register(proc, options)
                                    -> registers proc (options: match, invoke); the
                                       endpoint answers {"by": "python", "procedure",
                                       "caller", "caller_authrole", "args"}
    com.interop.unregister(proc)    -> drops that registration
    com.interop.whocalled()         -> {"caller", "caller_authid", "caller_authrole"}
                                       from the INVOCATION details
    com.interop.meta(proc, *a, **kw)-> calls a wamp.* meta procedure, returns its result
    com.interop.digest(*a)          -> [{"type", "len", "sha256"}] per argument (str as UTF-8)

  topics
    com.interop.to_python           every event is re-published unchanged (args, kwargs)
                                    on com.interop.from_python

Once everything is registered/subscribed it prints a single line ``READY`` to stdout
(run.py waits for it). It exits when the router closes the session.

    python interop/python_peer.py --url ws://127.0.0.1:PORT/ws [--serializer json]
    python interop/python_peer.py --url rs://127.0.0.1:PORT --serializer msgpack
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from typing import Any

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.rawsocket.util import parse_url as parse_rs_url  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import (  # noqa: E402
    CallDetails,
    CallOptions,
    CallResult,
    ComponentConfig,
    EventDetails,
    PublishOptions,
    RegisterOptions,
    SubscribeOptions,
)
from autobahn.websocket.util import parse_url as parse_ws_url  # noqa: E402

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


def log(*parts: Any) -> None:
    print("python_peer:", *parts, file=sys.stderr, flush=True)


def describe(value: Any) -> Any:
    """A serializer-neutral description of a value as Python decoded it."""
    if isinstance(value, bytes | bytearray):
        return {"type": "bytes", "len": len(value), "hex": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return {"type": "list", "items": [describe(v) for v in value]}
    if isinstance(value, dict):
        return {"type": "dict", "items": {str(k): describe(v) for k, v in value.items()}}
    return {"type": type(value).__name__, "value": value}


class InteropPeer(ApplicationSession):
    # procedure URI -> method name
    PROCEDURES = {
        "com.interop.ping": "ping",
        "com.interop.add": "add",
        "com.interop.echo": "echo",
        "com.interop.oops": "oops",
        "com.interop.describe": "describe_call",
        "com.interop.make_bytes": "make_bytes",
        "com.interop.publish_to_js": "publish_to_js",
        "com.interop.call_js": "call_js",
        "com.interop.call_js_error": "call_js_error",
        "com.interop.whoami": "whoami",
        "com.interop.sub": "sub",
        "com.interop.events": "events",
        "com.interop.unsub": "unsub",
        "com.interop.pub": "pub",
        "com.interop.call_js_progress": "call_js_progress",
        "com.interop.slow_status": "slow_status",
        "com.interop.release": "release",
        "com.interop.register": "register_proc",
        "com.interop.unregister": "unregister_proc",
        "com.interop.meta": "meta",
        "com.interop.digest": "digest",
    }
    # these get the call details as keyword argument "details"
    PROCEDURES_WITH_DETAILS = {
        "com.interop.progress": "progress",
        "com.interop.slow": "slow",
        "com.interop.whocalled": "whocalled",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subs: dict[str, Any] = {}  # topic/pattern -> Subscription
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._regs: dict[str, Any] = {}  # procedure/pattern -> Registration
        self._slow: dict[str, dict[str, Any]] = {}  # key -> status, release/finished events

    async def onJoin(self, details: Any) -> None:
        log(f"joined realm={details.realm} session={details.session}")
        try:
            for uri, name in self.PROCEDURES.items():
                await self.register(getattr(self, name), uri)
            for uri, name in self.PROCEDURES_WITH_DETAILS.items():
                await self.register(getattr(self, name), uri,
                                    options=RegisterOptions(details_arg="details"))
            await self.subscribe(self.to_python, "com.interop.to_python")
        except Exception as exc:
            log(f"setup failed: {exc!r}")
            self.leave("wamp.close.normal", "setup failed")
            return
        print("READY", flush=True)

    # -- procedures -----------------------------------------------------------------

    def ping(self) -> str:
        return "pong"

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def echo(self, *args: Any, **kwargs: Any) -> CallResult:
        return CallResult(*args, **kwargs)

    def oops(self, *args: Any, **kwargs: Any) -> None:
        raise ApplicationError("com.example.oops", "bad", 42)

    def describe_call(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"args": [describe(a) for a in args],
                "kwargs": {k: describe(v) for k, v in kwargs.items()}}

    def make_bytes(self, n: int) -> bytes:
        return bytes(i % 256 for i in range(n))

    async def publish_to_js(self, *args: Any, **kwargs: Any) -> int:
        pub = await self.publish("com.interop.to_js", *args,
                                 options=PublishOptions(acknowledge=True), **kwargs)
        return int(pub.id)

    async def call_js(self, procedure: str, *args: Any, **kwargs: Any) -> Any:
        return await self.call(procedure, *args, **kwargs)

    async def call_js_error(self, procedure: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            res = await self.call(procedure, *args, **kwargs)
        except ApplicationError as exc:
            return {"error": exc.error, "args": list(exc.args), "kwargs": exc.kwargs or {}}
        return {"error": None, "result": res}

    # -- Advanced Profile helpers ---------------------------------------------------

    def whoami(self) -> int:
        return int(self.session_id)

    async def sub(self, topic: str, options: dict[str, Any] | None = None) -> int:
        options = dict(options or {})
        if topic in self._subs:  # left over from a scenario that could not clean up
            await self.unsub(topic)
        records: list[dict[str, Any]] = []

        def on_event(*args: Any, details: EventDetails, **kwargs: Any) -> None:
            records.append({
                "args": list(args), "kwargs": kwargs, "publisher": details.publisher,
                "publisher_authrole": details.publisher_authrole, "topic": details.topic,
                "retained": details.retained,
            })

        self._events[topic] = records
        sub = await self.subscribe(on_event, topic, options=SubscribeOptions(
            match=options.get("match"), get_retained=options.get("get_retained"),
            details_arg="details"))
        self._subs[topic] = sub
        return int(sub.id)

    def events(self, topic: str) -> list[dict[str, Any]]:
        return self._events.get(topic, [])

    async def unsub(self, topic: str) -> bool:
        sub = self._subs.pop(topic, None)
        self._events.pop(topic, None)
        if sub is None:
            return False
        await sub.unsubscribe()
        return True

    async def pub(self, topic: str, args: list[Any] | None = None,
                  kwargs: dict[str, Any] | None = None,
                  options: dict[str, Any] | None = None) -> int:
        opts = PublishOptions(acknowledge=True, **(options or {}))
        publication = await self.publish(topic, *(args or []), options=opts, **(kwargs or {}))
        return int(publication.id)

    def progress(self, n: int, details: CallDetails) -> str:
        if details.progress is not None:
            for i in range(n):
                details.progress(i)
        return "done"

    async def call_js_progress(self, procedure: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seen: list[Any] = []

        def on_progress(*p_args: Any, **p_kwargs: Any) -> None:
            seen.append(list(p_args))

        res = await self.call(procedure, *args, options=CallOptions(on_progress=on_progress),
                              **kwargs)
        return {"progress": seen, "result": res}

    async def slow(self, key: str, seconds: float, details: CallDetails) -> str:
        state = {"status": "running", "release": asyncio.Event(), "finished": asyncio.Event()}
        self._slow[key] = state
        try:
            try:
                await asyncio.wait_for(state["release"].wait(), seconds)
            except TimeoutError:
                pass
        except asyncio.CancelledError:
            # the router sent INTERRUPT: autobahn-python cancels this task
            state["status"] = "interrupted"
            log(f"slow({key}) interrupted")
            raise ApplicationError("wamp.error.canceled", f"slow({key}) interrupted") from None
        finally:
            state["finished"].set()
        state["status"] = "finished"
        return "slow done"

    def slow_status(self, key: str) -> str | None:
        state = self._slow.get(key)
        return None if state is None else state["status"]

    async def release(self, key: str) -> str | None:
        state = self._slow.get(key)
        if state is None:
            return None
        state["release"].set()
        await asyncio.wait_for(state["finished"].wait(), 5)
        await asyncio.sleep(0)  # let autobahn-python send the YIELD/ERROR of slow() first
        return str(state["status"])

    async def register_proc(self, procedure: str, options: dict[str, Any] | None = None) -> int:
        options = dict(options or {})
        if procedure in self._regs:  # left over from a scenario that could not clean up
            await self.unregister_proc(procedure)

        def endpoint(*args: Any, details: CallDetails, **kwargs: Any) -> dict[str, Any]:
            return {"by": "python", "procedure": details.procedure, "caller": details.caller,
                    "caller_authrole": details.caller_authrole, "args": list(args)}

        reg = await self.register(endpoint, procedure, options=RegisterOptions(
            match=options.get("match"), invoke=options.get("invoke"), details_arg="details"))
        self._regs[procedure] = reg
        return int(reg.id)

    async def unregister_proc(self, procedure: str) -> bool:
        reg = self._regs.pop(procedure, None)
        if reg is None:
            return False
        await reg.unregister()
        return True

    def whocalled(self, details: CallDetails) -> dict[str, Any]:
        return {"caller": details.caller, "caller_authid": details.caller_authid,
                "caller_authrole": details.caller_authrole}

    async def meta(self, procedure: str, *args: Any, **kwargs: Any) -> Any:
        return await self.call(procedure, *args, **kwargs)

    def digest(self, *args: Any) -> list[dict[str, Any]]:
        out = []
        for a in args:
            data = a.encode("utf-8") if isinstance(a, str) else bytes(a)
            out.append({"type": type(a).__name__, "len": len(a),
                        "sha256": hashlib.sha256(data).hexdigest()})
        return out

    # -- subscription ---------------------------------------------------------------

    async def to_python(self, *args: Any, **kwargs: Any) -> None:
        # re-publish unchanged; acknowledged so that a router error is logged, not lost
        try:
            await self.publish("com.interop.from_python", *args,
                               options=PublishOptions(acknowledge=True), **kwargs)
        except Exception as exc:
            log(f"re-publish failed: {exc!r}")

    # -- session end ----------------------------------------------------------------

    def onLeave(self, details: Any) -> None:
        log(f"left: {details.reason} {details.message or ''}")
        self.disconnect()

    def onDisconnect(self) -> None:
        log("disconnected")
        loop = asyncio.get_event_loop()
        if loop.is_running():
            loop.stop()


# ApplicationRunner caps WebSocket messages at 1 MiB (asyncio/wamp.py), too small for the
# 1 MiB payload scenarios; the peer sets up the same transport itself with the router's
# 16 MiB limit (RawSocket clients already accept 16 MiB).
MAX_MESSAGE = 16 * 1024 * 1024


def run(url: str, realm: str, serializer: Any) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    txaio.config.loop = loop

    def make() -> InteropPeer:
        return InteropPeer(ComponentConfig(realm, {}))

    factory: Any
    if url.startswith("rs"):
        _, host, port = parse_rs_url(url)
        factory = WampRawSocketClientFactory(make, serializer=serializer)
    else:
        _, host, port, _, _, _ = parse_ws_url(url)
        factory = WampWebSocketClientFactory(make, url=url, serializers=[serializer])
        factory.setProtocolOptions(maxFramePayloadSize=MAX_MESSAGE,
                                   maxMessagePayloadSize=MAX_MESSAGE,
                                   autoFragmentSize=65536, tcpNoDelay=True)
    loop.run_until_complete(loop.create_connection(factory, host, port))
    txaio.start_logging(level="info")
    try:
        loop.run_forever()
    finally:
        loop.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="ws://HOST:PORT/PATH or rs://HOST:PORT")
    p.add_argument("--realm", default="realm1")
    p.add_argument("--serializer", choices=sorted(SERIALIZERS), default="json")
    args = p.parse_args(argv)
    run(args.url, args.realm, SERIALIZERS[args.serializer]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
