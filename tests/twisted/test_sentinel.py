"""The Sentinel endpoint against silent Sentinels (a listening socket that
never answers, on a private reactor): a stop of the backplane's service
cancels the lookup at once and closes its connection."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from twisted.internet.defer import CancelledError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.selectreactor import SelectReactor

from wamp_router.cluster.sentinel import SentinelEndpoint


def test_cancelling_a_lookup_stops_it_and_closes_its_connection() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    reactor = SelectReactor()
    endpoint = SentinelEndpoint(reactor, (("127.0.0.1", port), ("127.0.0.1", port)), "svc",
                                None, 5.0, lambda host, port: None)
    outcome: list[Any] = []
    d = endpoint.connect(Factory.forProtocol(Protocol))
    d.addBoth(outcome.append)
    for _ in range(20):
        reactor.iterate(0.01)
    silent.settimeout(5)
    peer, _ = silent.accept()  # the endpoint asked the first Sentinel
    try:
        for _ in range(20):
            reactor.iterate(0.01)
        d.cancel()
        deadline = time.monotonic() + 3
        while not outcome and time.monotonic() < deadline:
            reactor.iterate(0.01)
        assert outcome and outcome[0].check(CancelledError)  # not "the next Sentinel"
        peer.settimeout(2)
        for _ in range(20):
            reactor.iterate(0.01)
        with pytest.raises(TimeoutError):  # no second connection was made
            silent.settimeout(0.3)
            silent.accept()
        data = b""
        while chunk := peer.recv(1024):  # the lookup's connection is closed (EOF)
            data += chunk
    finally:
        peer.close()
        silent.close()
