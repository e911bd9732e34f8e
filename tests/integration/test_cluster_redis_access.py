"""How nodes reach a production Redis: a password (also from an environment
variable) or an ACL user limited to the cluster's prefix, TLS with a client
certificate (``rediss://``), a Unix socket (``unix://``), Redis Sentinel
(``redis+sentinel://``: the nodes follow a failover); and what an operator
sees when Redis refuses the node: a log line and ``/health`` naming the reason,
the password never shown, local traffic served, and the node joins as soon as
Redis accepts it."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from autobahn.wamp.types import PublishOptions

from .clients import close, join
from .redis_server import RedisServer, free_port, redis_server
from .router_process import RouterProcess, run_router
from .test_cluster import CONFIG, health, run
from .tls_certs import self_signed

BASE = CONFIG.split("[cluster]")[0]  # listeners, realm1, metrics


SHARED = '[realms.sync]\n[[realms.sync.domains]]\nprefix = "app.doc."\nstore = "redis"\n'


def node(stack: ExitStack, cluster: str, *, joined: bool = True,
         node_ttl: float = 1.5) -> RouterProcess:
    rp = stack.enter_context(run_router(BASE + SHARED + f"[cluster]\nnode_ttl = {node_ttl}\n"
                                        "heartbeat = 0.3\n" + cluster, expect_listeners=3))
    if joined:
        rp.wait_for_line("cluster backplane: connected", timeout=15)
    return rp


def crosses(a: RouterProcess, b: RouterProcess, record: str = "") -> None:
    """A call, a publication and a data-sync write from a client on ``b`` reach a
    client on ``a``."""

    async def main() -> None:
        callee, caller = await join(a.ws_url), await join(b.ws_url)
        got: list[str] = []
        await callee.register(lambda x: x * 2, "com.access.double")
        await callee.subscribe(got.append, "com.access.news")
        assert await caller.call("com.access.double", 21) == 42
        name = record or f"app.doc.{a.ws_port}"  # a shared data-sync record, written on both
        assert (await callee.call("sync.create", name, {"n": 1}))["v"] == 1
        patch = [{"op": "x-inc", "path": "/n", "by": 1}]
        assert (await caller.call("sync.patch", name, patch))["v"] == 2
        assert (await callee.call("sync.get", name))["value"] == {"n": 2}
        await caller.publish("com.access.news", "hello", options=PublishOptions(acknowledge=True))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert got == ["hello"]
        await close(callee, caller)

    run(main())


def test_password_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WR_TEST_REDIS_PASSWORD", "s3cret-pw")
    with redis_server(password="s3cret-pw") as redis, ExitStack() as stack:
        cluster = (f'backplane = "redis://127.0.0.1:{redis.port}"\n'
                   'password = { env = "WR_TEST_REDIS_PASSWORD" }\n')
        a, b = node(stack, cluster), node(stack, cluster)
        crosses(a, b)
        assert "s3cret-pw" not in a.output() + b.output()


def test_an_acl_user_limited_to_the_cluster_prefix() -> None:
    # what README "Redis access" recommends: the cluster's keys and channels only
    acl = ("user", "wamp", "on", ">wamp-pw", "~wr:*", "&wr:*", "+@all", "-@dangerous")
    with redis_server(password="admin-pw") as redis, ExitStack() as stack:
        assert redis.command("ACL", "SETUSER", *acl[1:]).startswith(b"+OK")
        cluster = f'backplane = "redis://wamp:wamp-pw@127.0.0.1:{redis.port}/0"\n'
        a, b = node(stack, cluster), node(stack, cluster)
        crosses(a, b)
        assert redis.command("ACL", "LOG") == b"*0\r\n"  # Redis refused the user nothing
        assert "wamp-pw" not in a.output()


def test_refused_credentials_are_reported_and_retried() -> None:
    with redis_server(password="admin-pw") as redis, ExitStack() as stack:
        cluster = f'backplane = "redis://late:late-pw@127.0.0.1:{redis.port}"\n'
        nopass = f'backplane = "redis://127.0.0.1:{redis.port}"\n'
        late, anonymous = node(stack, cluster, joined=False), node(stack, nopass, joined=False)
        line = late.wait_for_line("refused the credentials of user 'late'", timeout=15)
        assert "WRONGPASS" in line and "late-pw" not in late.output()
        anonymous.wait_for_line("wants a password ([cluster] password): NOAUTH", timeout=15)
        status = health(late)
        assert status["status"] == "degraded" and not status["backplane"]["up"]
        assert "refused the credentials" in status["backplane"]["error"]

        async def local_traffic() -> None:  # the node serves its own clients meanwhile
            callee, caller = await join(late.ws_url), await join(late.ws_url)
            await callee.register(lambda: "local", "com.access.local")
            assert await caller.call("com.access.local") == "local"
            await close(callee, caller)

        run(local_traffic())
        # the operator creates the user: the node joins on its next try
        assert redis.command("ACL", "SETUSER", "late", "on", ">late-pw", "~*", "&*",
                             "+@all").startswith(b"+OK")
        late.wait_for_line("cluster backplane: connected", timeout=15)
        assert health(late)["status"] == "ok"
        assert "error" not in health(late)["backplane"]
        other = node(stack, cluster)
        crosses(late, other)


def tls_redis(tmp: Path, server_cert: Path, server_key: Path) -> tuple[tuple[str, ...], int]:
    port = free_port()
    return ("--tls-port", str(port), "--tls-cert-file", str(server_cert),
            "--tls-key-file", str(server_key), "--tls-ca-cert-file", str(server_cert),
            "--tls-auth-clients", "yes"), port


def test_tls_with_a_client_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)  # Redis's certificate, also the CA of clients
    other_ca, _ = self_signed(tmp_path, "other-")
    extra, tls_port = tls_redis(tmp_path, cert, key)
    with redis_server(extra=extra) as redis, ExitStack() as stack:
        assert redis.port != tls_port
        cluster = (f'backplane = "rediss://127.0.0.1:{tls_port}"\ntls_ca = "{cert}"\n'
                   f'tls_certificate = "{cert}"\ntls_key = "{key}"\n')
        a, b = node(stack, cluster), node(stack, cluster)
        crosses(a, b)
        # a Redis whose certificate the node does not trust: refused, said so
        wrong = cluster.replace(f'tls_ca = "{cert}"', f'tls_ca = "{other_ca}"')
        doubtful = node(stack, wrong, joined=False)
        line = doubtful.wait_for_line("closed while opening", timeout=15)
        assert "certificate verify failed" in line
        assert "closed while opening" in health(doubtful)["backplane"]["error"]


def test_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    with redis_server(extra=("--unixsocket", str(sock), "--unixsocketperm", "700")), \
            ExitStack() as stack:
        cluster = f'backplane = "unix://{sock}?db=3"\n'
        a, b = node(stack, cluster), node(stack, cluster)
        crosses(a, b)
        assert f"redis={sock}" in a.output()


def test_a_bad_client_certificate_stops_the_start(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    text = (BASE + '[cluster]\nbackplane = "rediss://127.0.0.1:1"\n'
            f'tls_certificate = "{junk}"\ntls_key = "{junk}"\n')
    with pytest.raises(RuntimeError) as err, run_router(text, expect_listeners=3):
        pass
    assert "cannot start: cannot use Redis client certificate" in str(err.value)


@contextmanager
def sentinel(tmp: Path, master: RedisServer, service: str = "wr-test") -> Iterator[int]:
    """A Redis Sentinel watching ``master`` (quorum 1, down after 0.5 s); its port."""
    port = free_port()
    conf = tmp / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                    f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
                    f"sentinel down-after-milliseconds {service} 500\n"
                    f"sentinel failover-timeout {service} 2000\n")
    binary = shutil.which("redis-server")
    assert binary is not None
    proc = subprocess.Popen([binary, str(conf), "--sentinel", "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = RedisServer(port)
        deadline = time.monotonic() + 10
        while b"127.0.0.1" not in _try(probe, "SENTINEL", "get-master-addr-by-name", service):
            assert time.monotonic() < deadline, "the Sentinel did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung host)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        yield silent.getsockname()[1]
    finally:
        silent.close()


def caught_up(master: RedisServer) -> bool:
    """The replica is online and has everything the master wrote."""
    info = _try(master, "INFO", "replication").decode()
    fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
    replica = dict(kv.split("=", 1) for kv in fields.get("slave0", "").split(",") if "=" in kv)
    return replica.get("state") == "online" and \
        replica.get("offset") == fields.get("master_repl_offset")


def _try(server: RedisServer, *args: str) -> bytes:
    try:
        return server.command(*args)
    except OSError:
        return b""


def test_behind_sentinel_the_nodes_follow_a_failover(tmp_path: Path) -> None:
    """The first Sentinel listed accepts connections and never answers (a hung
    host): it costs a short wait once, not a node declared dead; the sessions,
    registrations and subscriptions of before the failover carry on after it."""
    with redis_server() as master, ExitStack() as stack:
        hung = stack.enter_context(silent_port())
        replica = stack.enter_context(redis_server(
            extra=("--replicaof", "127.0.0.1", str(master.port))))
        s = stack.enter_context(sentinel(tmp_path, master))
        cluster = f'backplane = "redis+sentinel://127.0.0.1:{hung},127.0.0.1:{s}/wr-test"\n'
        a, b = node(stack, cluster, node_ttl=3.0), node(stack, cluster, node_ttl=3.0)
        name = f"the master of 'wr-test' (Sentinel 127.0.0.1:{hung},127.0.0.1:{s})"
        assert f"{name}: 127.0.0.1:{master.port}" in a.wait_for_line("backplane: connected")
        crosses(a, b)
        deadline = time.monotonic() + 10
        while not caught_up(master):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)

        async def main() -> None:
            callee, caller = await join(a.ws_url), await join(b.ws_url)
            got: list[int] = []
            await callee.register(lambda x: x + 1, "com.failover.inc")
            await callee.subscribe(got.append, "com.failover.news")
            assert await caller.call("com.failover.inc", 1) == 2
            master.proc.kill()  # type: ignore[union-attr]  # the master dies: Sentinel promotes
            for rp in (a, b):
                deadline = time.monotonic() + 30
                while f"{name}: 127.0.0.1:{replica.port}" not in rp.output():
                    assert time.monotonic() < deadline, rp.output()
                    await asyncio.sleep(0.1)
            assert await caller.call("com.failover.inc", 2) == 3  # the same sessions
            # the record written before the failover is there (the replica had it)
            assert (await caller.call("sync.get", f"app.doc.{a.ws_port}"))["value"] == {"n": 2}
            await caller.publish("com.failover.news", 7, options=PublishOptions(acknowledge=True))
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert got == [7]
            await close(callee, caller)

        run(main())
        assert health(a)["backplane"]["master"] == f"127.0.0.1:{replica.port}"
        for rp in (a, b):
            assert "declared this node dead" not in rp.output()
        crosses(a, b, "app.doc.after")  # data-sync writes go on too, through the new master


def test_a_key_of_another_certificate_stops_the_start_naming_both(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    _, other_key = self_signed(tmp_path, "other-")
    text = (BASE + '[cluster]\nbackplane = "rediss://127.0.0.1:1"\n'
            f'tls_certificate = "{cert}"\ntls_key = "{other_key}"\n')
    with pytest.raises(RuntimeError) as err, run_router(text, expect_listeners=3):
        pass
    assert f"cannot use Redis client certificate {cert} with key {other_key}" in str(err.value)


def test_an_unreachable_redis_is_named_with_the_reason() -> None:
    with ExitStack() as stack:
        rp = node(stack, 'backplane = "redis://127.0.0.1:1"\n', joined=False)
        line = rp.wait_for_line("cannot reach Redis at 127.0.0.1:1", timeout=15)
        assert "refused" in line
        status = health(rp)
        assert status["status"] == "degraded"
        assert status["backplane"]["error"].startswith("cannot reach Redis at 127.0.0.1:1")
