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
import sys
from typing import Any

import txaio

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import CallResult, PublishOptions  # noqa: E402

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
    }

    async def onJoin(self, details: Any) -> None:
        log(f"joined realm={details.realm} session={details.session}")
        try:
            for uri, name in self.PROCEDURES.items():
                await self.register(getattr(self, name), uri)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="ws://HOST:PORT/PATH or rs://HOST:PORT")
    p.add_argument("--realm", default="realm1")
    p.add_argument("--serializer", choices=sorted(SERIALIZERS), default="json")
    args = p.parse_args(argv)
    runner = ApplicationRunner(args.url, args.realm,
                               serializers=[SERIALIZERS[args.serializer]()])
    runner.run(InteropPeer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
