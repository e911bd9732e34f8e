"""A real autobahn-python *Twisted* client, run as a script by the tests:
joins, subscribes, publishes, registers and calls; prints OK on success."""

from __future__ import annotations

import sys

from autobahn.twisted.wamp import ApplicationRunner, ApplicationSession
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor


class Session(ApplicationSession):
    @defer.inlineCallbacks
    def onJoin(self, details):  # type: ignore[no-untyped-def]
        got = defer.Deferred()
        yield self.subscribe(lambda *a: got.callback(a), "com.example.tw.topic")
        yield self.register(lambda a, b: a * b, "com.example.tw.mul")
        product = yield self.call("com.example.tw.mul", 6, 7)
        assert product == 42, product
        yield self.publish("com.example.tw.topic", "hi", b"\x00\x01",
                           options=types.PublishOptions(exclude_me=False))
        event = yield got
        assert list(event) == ["hi", b"\x00\x01"], event
        try:
            yield self.call("com.example.tw.none")
        except ApplicationError as exc:
            assert exc.error == "wamp.error.no_such_procedure"
        else:
            raise AssertionError("expected no_such_procedure")
        print("OK", details.authrole, flush=True)
        self.leave()

    def onDisconnect(self):  # type: ignore[no-untyped-def]
        if reactor.running:
            reactor.stop()


if __name__ == "__main__":
    from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

    sers = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
    url, serializer = sys.argv[1], sys.argv[2]
    reactor.callLater(20, reactor.stop)
    ApplicationRunner(url, "realm1", serializers=[sers[serializer]()]).run(Session)
