"""Adapter: swampyer (a threaded, synchronous Python WAMP client; see interop/scenarios.py,
PROTOCOL).

    python interop/python/swampyer_adapter.py

swampyer's API and what the adapter does with it:
- ``call(uri, *args, **kwargs)`` always sends ``disclose_me: true`` and returns only
  ``args[0]``; the adapter sends the CALL through the library's own
  ``send_and_await_response(CALL(...))`` instead, which returns the whole RESULT/ERROR
  message and lets the CALL options through. It waits for one answer, so progressive
  results cannot be received; there is no cancel.
- a callee handler's return value is sent as ``YIELD [value]``: one value, no kwargs; an
  exception is sent as ``ERROR error.invoke.failure`` (no URI of the callee's choice); no
  INTERRUPT handling, ``call_canceling`` is not announced.
- ``register``/``subscribe``/``publish`` return the ERROR message or raise with its args
  only; the adapter keeps the last ERROR seen to report its URI.
- ABORT: ``hello()`` raises with the ABORT message text; ``handle_abort`` keeps the URI.
- WAMP-CRA is not built in: the adapter signs the challenge in ``handle_challenge``.
- JSON: bytes are encoded as UTF-8 text, not with the WAMP binary convention.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import swampyer
from adapter_common import decode, encode, has_bytes, wampcra_signature
from swampyer.messages import (
    AUTHENTICATE,
    CALL,
    WAMP_ERROR,
)

VERSION = version("swampyer")
LIB = f"swampyer {VERSION}"
_out = threading.Lock()


class Unsupported(Exception):
    pass


class WampErr(Exception):
    def __init__(self, uri: str, args: Any = None, kwargs: Any = None) -> None:
        super().__init__(uri)
        self.uri, self.args_, self.kwargs = uri, list(args or []), dict(kwargs or {})


def log(*parts: Any) -> None:
    print("adapter:", *parts, file=sys.stderr, flush=True)


def send(obj: dict[str, Any]) -> None:
    line = json.dumps(obj)
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Client(swampyer.WAMPClient):
    secret: str = ""
    abort_reason: str | None = None
    last_error: Any = None

    def handle_challenge(self, data: Any) -> None:
        if data.auth_method == "ticket":
            sig = self.secret
        elif data.auth_method == "wampcra":
            sig = wampcra_signature(self.secret, data.extra)
        else:
            raise Exception(f"unexpected challenge {data.auth_method}")
        self.send_message(AUTHENTICATE(signature=sig, extra={}))

    def handle_abort(self, reason: Any) -> None:
        self.abort_reason = getattr(reason, "reason", None)
        super().handle_abort(reason)

    def handle_error(self, error: Any) -> None:
        self.last_error = error
        super().handle_error(error)


def raise_if_error(msg: Any, client: Client | None = None) -> Any:
    if msg == WAMP_ERROR:
        raise WampErr(msg.error, msg.args, msg.kwargs)
    return msg


class Adapter:
    def __init__(self) -> None:
        self.conns: dict[str, tuple[Client, str]] = {}
        self.subs: dict[str, tuple[Client, int]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.regs: dict[str, tuple[Client, int]] = {}
        self.invocations: dict[str, list[dict[str, Any]]] = {}
        self.held: dict[str, list[threading.Event]] = {}
        self.calls: dict[str, dict[str, Any]] = {}

    def handle(self, req: dict[str, Any]) -> None:
        rid, op = req.get("id"), req.get("op")
        try:
            fn = getattr(self, f"op_{op}", None)
            if fn is None:
                raise Unsupported(f"op {op}")
            res = fn(**{k: decode(v) for k, v in req.items() if k not in ("id", "op")})
            send({"id": rid, "ok": True, "result": encode(res)})
        except Unsupported as e:
            send({"id": rid, "ok": False, "unsupported": str(e)})
        except WampErr as e:
            send({"id": rid, "ok": False, "error": e.uri, "args": encode(e.args_),
                  "kwargs": encode(e.kwargs)})
        except Exception as e:
            log(f"{op} failed: {e!r}")
            send({"id": rid, "ok": False, "exception": f"{type(e).__name__}: {e}"})

    def client(self, conn: str) -> Client:
        return self.conns[conn][0]

    def no_json_bytes(self, conn: str, *values: Any) -> None:
        if self.conns[conn][1] == "json" and has_bytes(values):
            raise Unsupported("its JSON serializer has no WAMP binary convention (bytes are "
                              "sent as UTF-8 text)")

    # -- sessions -----------------------------------------------------------------------

    def op_connect(self, conn: str, url: str, transport: str, serializer: str, realm: str,
                   authmethod: str | None = None, authid: str | None = None,
                   secret: str | None = None) -> dict[str, Any]:
        if transport == "rawsocket":
            url = "tcpip://" + url.split("://", 1)[1]
        c = Client(url=url, realm=realm, serializers=[serializer], auto_reconnect=0,
                   authmethods=[authmethod] if authmethod else None, authid=authid,
                   timeout=30)
        c.secret = secret or ""
        try:
            c.start()
        except swampyer.ExAbort as e:
            raise WampErr(c.abort_reason or "wamp.error.abort", [str(e)]) from None
        self.conns[conn] = (c, serializer)
        d = c.peer.details
        return {"session": c.session_id, "authid": d.get("authid"), "authrole": d.get("authrole"),
                "authmethod": d.get("authmethod"), "realm": realm}

    def op_disconnect(self, conn: str) -> None:
        c = self.conns.pop(conn, (None, ""))[0]
        if c is not None:
            c.disconnect()
            c.shutdown()

    def op_drop(self, conn: str) -> None:
        c = self.conns.pop(conn)[0]
        sock = getattr(c.transport, "socket", None)
        if isinstance(sock, socket.socket):  # RawSocket: wake the reader thread too
            sock.shutdown(socket.SHUT_RDWR)
        c.transport.close()  # no GOODBYE
        threading.Thread(target=c.shutdown, daemon=True).start()

    # -- pub/sub --------------------------------------------------------------------------

    def op_subscribe(self, conn: str, sub: str, topic: str,
                     options: dict[str, Any]) -> dict[str, Any]:
        if options.get("get_retained"):
            raise Unsupported("its reader thread drops an EVENT that arrives before "
                              "subscribe() has stored the handler, which it does only after "
                              "SUBSCRIBED reached the calling thread; the retained event comes "
                              "right after SUBSCRIBED, so it is lost (a race in the client)")
        records: list[dict[str, Any]] = []
        self.events[sub] = records

        def on_event(event: Any, *args: Any, **kwargs: Any) -> None:
            d = event.details or {}
            records.append({"args": list(args), "kwargs": kwargs, "publisher": d.get("publisher"),
                            "publisher_authrole": d.get("publisher_authrole"),
                            "topic": d.get("topic"), "retained": d.get("retained")})

        c = self.client(conn)
        res = raise_if_error(c.subscribe(topic, on_event, options=options or None))
        self.subs[sub] = (c, res.subscription_id)
        return {"id": res.subscription_id}

    def op_events(self, sub: str) -> list[dict[str, Any]]:
        return list(self.events.get(sub, []))

    def op_unsubscribe(self, sub: str) -> None:
        c, sid = self.subs.pop(sub)
        raise_if_error(c.unsubscribe(sid))

    def op_publish(self, conn: str, topic: str, args: list[Any], kwargs: dict[str, Any],
                   options: dict[str, Any]) -> dict[str, Any]:
        self.no_json_bytes(conn, args, kwargs)
        res = raise_if_error(self.client(conn).publish(topic, options=options, args=args,
                                                       kwargs=kwargs))
        return {"id": getattr(res, "publication_id", None)}

    # -- RPC ------------------------------------------------------------------------------

    def op_register(self, conn: str, reg: str, procedure: str, options: dict[str, Any],
                    behavior: str, value: Any = None) -> dict[str, Any]:
        if behavior == "echo":
            raise Unsupported("a callee returns one value (YIELD [value]); it cannot yield "
                              "several args or kwargs")
        if behavior == "error":
            raise Unsupported("a callee's exception becomes ERROR error.invoke.failure with "
                              "the text as args; no error URI/args/kwargs of its choice")
        if behavior == "progress":
            raise Unsupported("a callee cannot send progressive results")
        invs: list[dict[str, Any]] = []
        self.invocations[reg] = invs
        held = self.held.setdefault(reg, [])

        def endpoint(message: Any, *args: Any, **kwargs: Any) -> Any:
            d = message.details or {}
            inv = {"args": list(args), "kwargs": kwargs, "procedure": d.get("procedure"),
                   "caller": d.get("caller"), "caller_authrole": d.get("caller_authrole"),
                   "progress": bool(d.get("receive_progress")), "status": "running"}
            invs.append(inv)
            if behavior == "echo1":
                return args[0] if args else None
            if behavior == "value":
                return value
            if behavior == "details":
                return {"procedure": d.get("procedure"), "caller": d.get("caller"),
                        "caller_authrole": d.get("caller_authrole"), "args": list(args)}
            if behavior == "held":
                ev = threading.Event()
                ev.inv = inv  # type: ignore[attr-defined]
                held.append(ev)
                ev.wait(60)
                return "released"
            raise Exception(f"unknown behavior {behavior}")

        c = self.client(conn)
        c.last_error = None
        try:
            res = c.register(procedure, endpoint, details=options or None)
        except swampyer.ExInvocationError:
            e = c.last_error
            raise WampErr(e.error, e.args, e.kwargs) from None
        self.regs[reg] = (c, res.registration_id)
        return {"id": res.registration_id}

    def op_invocations(self, reg: str) -> list[dict[str, Any]]:
        return list(self.invocations.get(reg, []))

    def op_release(self, reg: str) -> int:
        n = 0
        for ev in self.held.get(reg, []):
            if not ev.is_set():
                ev.inv["status"] = "released"  # type: ignore[attr-defined]
                ev.set()
                n += 1
        return n

    def op_unregister(self, reg: str) -> None:
        c, rid = self.regs.pop(reg)
        c.unregister(rid)

    def _call(self, conn: str, procedure: str, args: list[Any], kwargs: dict[str, Any],
              options: dict[str, Any]) -> dict[str, Any]:
        if options.get("receive_progress"):
            raise Unsupported("it waits for one answer to a CALL: no progressive results")
        self.no_json_bytes(conn, args, kwargs)
        msg = self.client(conn).send_and_await_response(CALL(
            options=options, procedure=procedure, args=args, kwargs=kwargs))
        raise_if_error(msg)
        return {"args": list(msg.args or []), "kwargs": dict(msg.kwargs or {}), "progress": []}

    def op_call(self, conn: str, procedure: str, args: list[Any], kwargs: dict[str, Any],
                options: dict[str, Any]) -> dict[str, Any]:
        return self._call(conn, procedure, args, kwargs, options)

    def op_call_start(self, conn: str, call: str, procedure: str, args: list[Any],
                      kwargs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        st: dict[str, Any] = {"done": threading.Event(), "outcome": None}

        def run() -> None:
            try:
                st["outcome"] = ("ok", self._call(conn, procedure, args, kwargs, options))
            except Exception as e:
                st["outcome"] = ("err", e)
            st["done"].set()

        threading.Thread(target=run, daemon=True).start()
        self.calls[call] = st
        return {}

    def op_call_cancel(self, call: str, mode: str) -> None:
        raise Unsupported("no way to cancel a call (no CANCEL in its API)")

    def op_call_wait(self, call: str, timeout: float) -> dict[str, Any]:
        st = self.calls[call]
        if not st["done"].wait(timeout):
            return {"pending": True}
        kind, val = st["outcome"]
        if kind == "err":
            raise val
        return dict(val)


def main() -> None:
    send({"hello": {"client": "swampyer", "version": VERSION, "library": LIB,
                    "websocket": ["json", "msgpack", "cbor"],
                    "rawsocket": ["json", "msgpack", "cbor"],
                    "features": {"callee_call_canceling": False}}})
    adapter = Adapter()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        threading.Thread(target=adapter.handle, args=(req,), daemon=True).start()
    for c, _ in list(adapter.conns.values()):
        try:
            c.disconnect()
        except Exception:
            pass


if __name__ == "__main__":
    main()
