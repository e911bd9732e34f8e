"""Writing to a socket without a round through the reactor: when Twisted has
nothing buffered for it, bytes go to the socket at once (saving the epoll
register / writable / unregister round of a buffered write); the rest, if the
socket takes only part, goes through the transport's buffer as usual."""

from __future__ import annotations

from typing import Any

from twisted.internet.abstract import FileDescriptor


def is_socket(transport: Any) -> bool:
    """Only a socket itself: a wrapper (TLS) forwards these attributes to the raw
    socket underneath, and writing there would bypass the encryption."""
    return isinstance(transport, FileDescriptor) and all(
        hasattr(transport, name) for name in (
            "writeSomeData", "_tempDataBuffer", "dataBuffer", "connected"))


def write_now(t: Any, data: bytes, direct: bool) -> None:
    """Send ``data`` on transport ``t`` (``direct``: ``is_socket(t)``)."""
    if direct and not t._tempDataBuffer and not t.dataBuffer and t.connected:
        sent = t.writeSomeData(data)
        if not isinstance(sent, int):
            return  # connection lost: Twisted notices it on its own
        if sent == len(data):
            return
        data = data[sent:]
    t.write(data)
