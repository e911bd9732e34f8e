"""Worker-side workloads. One instance runs in each client process.

Life cycle, driven by runner.py:

    wl = WORKLOADS[name](ctx)        # ctx: WorkerCtx (index, spec, target, ...)
    info = await wl.setup()          # connect, register, subscribe; raise Skip to skip
    result = await wl.run(times)     # load from t_start, measure [t_meas, t_end)
    await wl.teardown()              # GOODBYE and close

`connect` has one more exchange with the main process (see ConnectWorkload).

To add a workload: subclass Workload, implement setup/run/teardown, put it in
WORKLOADS, and add a driver + parameters in runner.py / wampbench.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from metrics import Hist, rusage_cpu
from wampclient import (
    CALL,
    ERROR,
    EVENT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    RESULT,
    SUBSCRIBED,
    YIELD,
    ProtocolError,
    Serializer,
    Session,
    Target,
    connect,
)

now_ns = time.monotonic_ns  # CLOCK_MONOTONIC: the same clock in every process

RPC_PROC = "bench.echo"
FANOUT_TOPIC = "bench.fanout"


class Skip(Exception):
    """The router does not support what this workload needs (reported, not an error)."""


@dataclass
class Times:
    start: int  # ns, monotonic: begin load
    meas: int  # begin measured window
    end: int  # end of measured window


@dataclass
class WorkerCtx:
    index: int
    nworkers: int
    spec: dict[str, Any]
    target: Target
    ser: Serializer
    realm: str
    recv: Callable[[], Awaitable[Any]]  # next command from the main process
    send: Callable[[Any], None]  # message to the main process
    peer_read_fds: list[int] = field(default_factory=list)  # worker 0: from the others
    peer_write_fd: int | None = None  # workers > 0: to worker 0
    # cluster runs (bench/cluster_bench.py): one target per router node; sessions are
    # placed on nodes by the workloads (see node_of); empty = every session on `target`
    targets: list[Target] = field(default_factory=list)

    def node_target(self, node: int) -> Target:
        return self.targets[node % len(self.targets)] if self.targets else self.target


def node_of(ctx: WorkerCtx, role: str, g: int) -> int:
    """Node of the g-th session (global index over all workers) of `role` (callee, caller,
    publisher, subscriber): round robin over the nodes, starting at spec[role+"_node"]
    (default 0), so callers/subscribers land on different nodes than callee/publisher
    as soon as there are 2 nodes."""
    n = max(1, len(ctx.targets))
    return (int(ctx.spec.get(role + "_node", 0)) + g) % n


def global_base(n: int, index: int, nworkers: int) -> int:
    """Global index of the first of worker `index`'s share of n items (see share)."""
    return sum(share(n, j, nworkers) for j in range(index))


class State:
    """Per-process measurement state shared by all sessions of this worker."""

    __slots__ = ("phase", "count", "errors", "hist", "cpu0", "cpu1", "t0", "t1")

    def __init__(self) -> None:
        self.phase = 0  # 0 warm-up, 1 measuring, 2 stopped
        self.count = 0
        self.errors = 0
        self.hist = Hist()
        self.cpu0 = self.cpu1 = 0.0
        self.t0 = self.t1 = 0

    def begin(self) -> None:
        self.phase = 1
        self.t0 = now_ns()
        self.cpu0 = rusage_cpu()

    def finish(self) -> None:
        if self.phase == 1:
            self.t1 = now_ns()
            self.cpu1 = rusage_cpu()
        self.phase = 2

    def result(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "hist": self.hist.to_sparse(),
            "cpu_s": self.cpu1 - self.cpu0,
            "window_s": (self.t1 - self.t0) / 1e9,
        }


def schedule(times: Times, st: State, on_start: Callable[[], None]) -> asyncio.Future[bool]:
    """Arm the phase timers; the returned future resolves at t_end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()

    def later(t: int, cb: Callable[[], None]) -> None:
        loop.call_later(max(0.0, (t - now_ns()) / 1e9), cb)

    def end() -> None:
        st.finish()
        if not done.done():
            done.set_result(True)

    later(times.start, on_start)
    later(times.meas, st.begin)
    later(times.end, end)
    return done


async def wait_until(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def open_sessions(
    ctx: WorkerCtx,
    sessions: list[Session],
    concurrency: int = 200,
    nodes: list[int] | None = None,
) -> list[Session]:
    """Connect and join `sessions`; `nodes[i]`: the router node of session i (cluster)."""
    sem = asyncio.Semaphore(concurrency)
    zero = bool(ctx.spec.get("zero_mask"))

    async def one(s: Session, node: int | None) -> Session:
        t = ctx.target if node is None else ctx.node_target(node)
        async with sem:
            return await connect(t, ctx.ser, s, ctx.realm, zero_mask=zero)

    nodes_: list[int | None] = list(nodes) if nodes is not None else [None] * len(sessions)
    return list(await asyncio.gather(*(one(s, n) for s, n in zip(sessions, nodes_, strict=True))))


async def leave_all(sessions: list[Session], timeout: float = 5.0) -> None:
    if not sessions:
        return
    sem = asyncio.Semaphore(200)

    async def one(s: Session) -> None:
        async with sem:
            await s.leave(timeout=2.0)

    try:
        await asyncio.wait_for(asyncio.gather(*(one(s) for s in sessions)), timeout)
    except (TimeoutError, ProtocolError, ConnectionError):
        pass
    for s in sessions:
        s.close()


def share(n: int, index: int, nworkers: int) -> int:
    """How many of n items worker `index` gets when dealt round-robin."""
    return n // nworkers + (1 if index < n % nworkers else 0)


class Workload:
    def __init__(self, ctx: WorkerCtx) -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        self.st = State()
        self.sessions: list[Session] = []

    async def setup(self) -> dict[str, Any]:
        return {}

    async def run(self, times: Times) -> dict[str, Any]:
        raise NotImplementedError

    async def teardown(self) -> None:
        await leave_all(self.sessions)


# =============================================================================== rpc


class Callee(Session):
    def __init__(self) -> None:
        super().__init__()
        self.invocations = 0

    def on_message(self, msg: Any) -> None:
        if msg[0] == INVOCATION:
            assert self.conn is not None
            if len(msg) > 4:
                self.conn.send([YIELD, msg[1], {}, msg[4]])
            else:
                self.conn.send([YIELD, msg[1], {}])
            self.invocations += 1
        else:
            Session.on_message(self, msg)


class Caller(Session):
    def __init__(self, st: State, inflight: int, args: list[Any], proc: str = RPC_PROC) -> None:
        super().__init__()
        self.st = st
        self.inflight = inflight
        self.args = args
        self.proc = proc
        self.sent: dict[int, int] = {}

    def start(self) -> None:
        for _ in range(self.inflight):
            self._call()

    def _call(self) -> None:
        req = self.next_req
        self.next_req = req + 1
        self.sent[req] = now_ns()
        assert self.conn is not None
        self.conn.send([CALL, req, {}, self.proc, self.args])

    def on_message(self, msg: Any) -> None:
        code = msg[0]
        if code == RESULT or (code == ERROR and msg[1] == CALL):
            t = now_ns()
            t0 = self.sent.pop(msg[2] if code == ERROR else msg[1], t)
            st = self.st
            if st.phase == 1:
                if code == RESULT:
                    st.count += 1
                    st.hist.add_ns(t - t0)
                else:
                    st.errors += 1
            if st.phase < 2 and not self.lost:
                self._call()
        else:
            Session.on_message(self, msg)


def affine_proc(node: int) -> str:
    """The procedure of router node `node` in the `affine` rpc case."""
    return f"{RPC_PROC}.n{node}"


class RpcWorkload(Workload):
    """M callers, each with `inflight` calls outstanding, to 1 (or `shared`) callee(s).

    Worker 0 hosts the callee(s); callers are dealt to workers 1.. (or to worker 0
    when there is a single worker).

    spec `affine` (cluster): one callee per node, each registering its node's own
    procedure (`affine_proc`, no shared registration); every caller calls the procedure
    of the node it is connected to, so no call crosses nodes (`shared` is ignored).
    """

    async def setup(self) -> dict[str, Any]:
        ctx, spec = self.ctx, self.spec
        affine = bool(spec.get("affine"))
        if ctx.index == 0:
            if affine:
                await self._setup_callees(max(1, len(ctx.targets)), affine=True)
            else:
                await self._setup_callees(int(spec.get("shared", 1)))
        first = 1 if ctx.nworkers > 1 else 0
        n_local = base = 0
        if ctx.index >= first:
            n_local = share(int(spec["callers"]), ctx.index - first, ctx.nworkers - first)
            base = global_base(int(spec["callers"]), ctx.index - first, ctx.nworkers - first)
        args = [1, "x" * int(spec.get("payload", 32))]
        nodes = [node_of(ctx, "caller", base + k) for k in range(n_local)]
        inflight = int(spec.get("inflight", 1))
        self.callers = [
            Caller(self.st, inflight, args, affine_proc(nd) if affine else RPC_PROC) for nd in nodes
        ]
        await open_sessions(ctx, list(self.callers), nodes=nodes)
        self.sessions.extend(self.callers)
        return {"callers": n_local}

    async def _setup_callees(self, shared: int, affine: bool = False) -> None:
        callees = [Callee() for _ in range(shared)]
        nodes = [node_of(self.ctx, "callee", k) for k in range(shared)]
        await open_sessions(self.ctx, list(callees), nodes=nodes)
        self.sessions.extend(callees)
        opts = {"invoke": "roundrobin"} if shared > 1 or self.spec.get("roundrobin") else {}
        for c, nd in zip(callees, nodes, strict=True):
            try:
                if affine:
                    await asyncio.wait_for(c.register(affine_proc(nd), {}), 10)
                else:
                    await asyncio.wait_for(c.register(RPC_PROC, opts), 10)
            except ProtocolError as e:
                if shared > 1 and not affine:
                    raise Skip(
                        f"router rejected shared registration (invoke=roundrobin): {e}"
                    ) from e
                raise
        self.callees = callees

    async def run(self, times: Times) -> dict[str, Any]:
        def start() -> None:
            for c in self.callers:
                c.start()

        await schedule(times, self.st, start)
        await wait_until(lambda: all(not c.sent or c.lost for c in self.callers), 2.0)
        res = self.st.result()
        if self.ctx.index == 0 and len(getattr(self, "callees", [])) > 1:
            res["per_callee"] = [c.invocations for c in self.callees]
        res["role"] = (
            "callee+callers"
            if self.callers and self.ctx.index == 0
            else ("callee" if self.ctx.index == 0 else "callers")
        )
        return res


# =============================================================================== fanout

_REC = struct.Struct("<IQ")  # publication index, completion time (ns)


def listen_completions(fds: list[int], on_complete: Callable[[int, int], None]) -> None:
    """Read (publication key, time) records the other load-generator processes
    write to their pipes, and hand each to ``on_complete``."""
    loop = asyncio.get_running_loop()
    for fd in fds:
        buf = bytearray()

        def readable(fd: int = fd, buf: bytearray = buf) -> None:
            data = os.read(fd, 1 << 16)
            if not data:
                loop.remove_reader(fd)
                return
            buf += data
            k = len(buf) - len(buf) % _REC.size
            for key, t in _REC.iter_unpack(bytes(buf[:k])):
                on_complete(key, t)
            del buf[:k]

        loop.add_reader(fd, readable)



class Tracker:
    """Counts deliveries per publication among this process's subscribers."""

    def __init__(self, st: State, n_local: int, complete: Callable[[int, int], None]) -> None:
        self.st = st
        self.n_local = n_local
        self.counts: dict[int, int] = {}
        self.complete = complete

    def deliver(self, args: list[Any]) -> None:
        t = now_ns()
        st = self.st
        if st.phase == 1:
            st.count += 1
            st.hist.add_ns(t - args[0])
        idx = args[1]
        c = self.counts.get(idx, 0) + 1
        if c >= self.n_local:
            self.counts.pop(idx, None)
            self.complete(idx, t)
        else:
            self.counts[idx] = c


class Subscriber(Session):
    def __init__(self, tracker: Tracker) -> None:
        super().__init__()
        self.deliver = tracker.deliver

    def on_message(self, msg: Any) -> None:
        if msg[0] == EVENT:
            self.deliver(msg[4])
        else:
            Session.on_message(self, msg)


class Publisher(Session):
    """Publisher `k` of `npubs` keeping `window` publications in flight; its publications
    have keys k, k + npubs, k + 2 npubs, ... (one publisher: 0, 1, 2, ...); one completes
    when all `nprocs` client processes with subscribers reported it. `st` (publication-level
    stats) may be shared by several publishers. (`outstanding`, not `pending`:
    Session.pending holds the futures of requests.)"""

    def __init__(self, window: int, nprocs: int, payload: str, k: int = 0, npubs: int = 1,
                 st: State | None = None) -> None:
        super().__init__()
        self.window = window
        self.nprocs = nprocs
        self.payload = payload
        self.k = k
        self.npubs = npubs
        self.outstanding: dict[int, list[int]] = {}  # key -> [processes left, last t, ts]
        self.seq = 0
        self.st = st if st is not None else State()
        self.last_progress = time.monotonic()

    def start(self) -> None:
        for _ in range(self.window):
            self.publish()

    def publish(self) -> None:
        key = self.seq * self.npubs + self.k
        self.seq += 1
        req = self.next_req
        self.next_req = req + 1
        ts = now_ns()
        self.outstanding[key] = [self.nprocs, 0, ts]
        assert self.conn is not None
        self.conn.send([PUBLISH, req, {}, FANOUT_TOPIC, [ts, key, self.payload]])

    def on_complete(self, key: int, t: int) -> None:
        p = self.outstanding.get(key)
        if p is None:
            return
        p[0] -= 1
        if t > p[1]:
            p[1] = t
        if p[0]:
            return
        del self.outstanding[key]
        self.last_progress = time.monotonic()
        st = self.st
        if st.phase == 1:
            st.count += 1
            st.hist.add_ns(p[1] - p[2])
        if st.phase < 2 and not self.lost:
            self.publish()


class FanoutWorkload(Workload):
    """1 publisher (worker 0), N subscribers dealt round-robin over all workers."""

    async def setup(self) -> dict[str, Any]:
        ctx, spec = self.ctx, self.spec
        n = int(spec["subscribers"])
        n_local = share(n, ctx.index, ctx.nworkers)
        nprocs = min(n, ctx.nworkers)
        self.publisher: Publisher | None = None
        self.outq: list[bytes] = []
        if ctx.index == 0:
            pub = Publisher(int(spec.get("window", 32)), nprocs, "x" * int(spec.get("payload", 64)))
            self.publisher = pub
            await open_sessions(ctx, [pub], nodes=[node_of(ctx, "publisher", 0)])
            self.sessions.append(pub)
            self._listen_peers()
            complete = pub.on_complete
        else:
            complete = self._complete_remote
        self.tracker = Tracker(self.st, n_local, complete)
        subs = [Subscriber(self.tracker) for _ in range(n_local)]
        base = global_base(n, ctx.index, ctx.nworkers)
        await open_sessions(
            ctx, list(subs), nodes=[node_of(ctx, "subscriber", base + k) for k in range(n_local)]
        )
        self.sessions.extend(subs)
        await asyncio.gather(*(asyncio.wait_for(s.subscribe(FANOUT_TOPIC), 30) for s in subs))
        return {"subscribers": n_local}

    # -- cross-process completion notices (workers > 0 -> worker 0)
    def _complete_remote(self, idx: int, t: int) -> None:
        if not self.outq:
            asyncio.get_running_loop().call_soon(self._flush)
        self.outq.append(_REC.pack(idx, t))

    def _flush(self) -> None:
        data, self.outq = b"".join(self.outq), []
        fd = self.ctx.peer_write_fd
        assert fd is not None
        view = memoryview(data)
        try:
            while view:
                k = os.write(fd, view)
                view = view[k:]
        except OSError:  # worker 0 already gone (end of run)
            self.outq = []

    def _listen_peers(self) -> None:
        assert self.publisher is not None
        listen_completions(self.ctx.peer_read_fds, self.publisher.on_complete)

    async def run(self, times: Times) -> dict[str, Any]:
        pub = self.publisher
        if pub is None:
            await schedule(times, self.st, lambda: None)
            return self.st.result()
        done = schedule(times, self.st, pub.start)
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, (times.meas - now_ns()) / 1e9), pub.st.begin)
        while not done.done():
            await asyncio.sleep(0.1)
            if pub.outstanding and time.monotonic() - pub.last_progress > float(
                self.spec.get("stall_timeout", 10.0)
            ):
                raise ProtocolError(
                    f"fanout stalled: no publication completed for "
                    f"{self.spec.get('stall_timeout', 10.0)} s ({len(pub.outstanding)} in flight)"
                )
        pub.st.finish()
        await wait_until(lambda: not pub.outstanding, 2.0)
        res = self.st.result()
        res["pub"] = pub.st.result()
        res["published"] = pub.seq
        return res


# ----------------------------------------------------------------- fanout, several publishers


class SpreadTracker:
    """Like Tracker, for several publishers; counts a publication toward completion only
    at its first receipt by each subscriber (SpreadSubscriber filters duplicates), and
    remembers when a publication first reached this process (stall diagnosis)."""

    def __init__(self, st: State, n_local: int, complete: Callable[[int, int], None]) -> None:
        self.st = st
        self.n_local = n_local
        self.counts: dict[int, list[int]] = {}  # key -> [local receipts, first receipt ns]
        self.complete = complete

    def deliver(self, args: list[Any], key: int) -> None:
        t = now_ns()
        st = self.st
        if st.phase == 1:
            st.count += 1
            st.hist.add_ns(t - args[0])
        c = self.counts.get(key)
        if c is None:
            if self.n_local <= 1:
                self.complete(key, t)
                return
            self.counts[key] = [1, t]
        elif c[0] + 1 >= self.n_local:
            del self.counts[key]
            self.complete(key, t)
        else:
            c[0] += 1


class SpreadSubscriber(Session):
    """Checks each publisher's events (WAMP: the events of one publisher to one topic reach
    a subscriber in publication order): a second copy is counted (`dups`) and not delivered
    again; an event arriving after a later one of its publisher is counted (`reordered`);
    a missing event stays missing (its publication never completes: SpreadFanoutWorkload
    reports the stall). Publication key = seq * npubs + publisher, so a publisher's next
    key is key + npubs."""

    def __init__(self, tracker: SpreadTracker, npubs: int, g: int, node: int) -> None:
        super().__init__()
        self.tracker = tracker
        self.npubs = npubs
        self.g = g  # global subscriber index
        self.node = node
        self.exp = list(range(npubs))  # next expected key of each publisher
        self.early: set[int] = set()  # keys received while an earlier one is missing
        self.top = [k - npubs for k in range(npubs)]  # highest key received (when early)
        self.dups = 0
        self.reordered = 0
        self.examples: list[str] = []

    def on_message(self, msg: Any) -> None:
        if msg[0] == EVENT:
            args = msg[4]
            key = args[1]
            k = key % self.npubs
            if key == self.exp[k] and not self.early:  # the usual case: in order
                self.exp[k] = key + self.npubs
                self.tracker.deliver(args, key)
            else:
                self._slow(args, key, k)
        else:
            Session.on_message(self, msg)

    def _slow(self, args: list[Any], key: int, k: int) -> None:
        n, exp, early = self.npubs, self.exp, self.early
        if key < exp[k] or key in early:
            self.dups += 1
            self._example(f"second copy of publisher {k} seq {key // n}")
            return
        top = max(self.top[k], exp[k] - n)
        if key < top:
            self.reordered += 1
            self._example(f"publisher {k} seq {key // n} after seq {top // n}")
        self.top[k] = max(top, key)
        if key == exp[k]:
            exp[k] = key + n
            while exp[k] in early:  # a gap before keys received early is closed
                early.discard(exp[k])
                exp[k] += n
        else:
            early.add(key)
        self.tracker.deliver(args, key)

    def _example(self, what: str) -> None:
        if len(self.examples) < 3:
            self.examples.append(f"subscriber {self.g} (node {self.node}): {what}")

    def has(self, key: int) -> bool:
        return key < self.exp[key % self.npubs] or key in self.early

    def missing(self) -> int:
        """Events not received although a later one of the same publisher was."""
        n, miss = self.npubs, 0
        for k in range(n):
            if self.top[k] > self.exp[k]:  # then top[k] is the highest early key of k
                got = sum(1 for e in self.early if e % n == k)
                miss += (self.top[k] - self.exp[k]) // n + 1 - got
        return miss


class SpreadFanoutWorkload(FanoutWorkload):
    """spec `publishers` P: P publishers (all in worker 0, publisher k on node k mod nodes)
    publish to one topic, each keeping ceil(window / P) publications in flight, so about
    `window` in all; N subscribers dealt round robin over workers and nodes, as in fanout.

    A publication completes when every subscriber got it once: each client process counts
    first receipts per publication (duplicates and order are checked per subscriber and
    publisher; anomalies are counted in `errors` and printed) and tells worker 0 when all
    its subscribers have it. A publication not complete after stall_timeout (default 10 s)
    fails the run with the publication, how many processes still miss it and which of worker
    0's subscribers do; so does one still pending after the drain. Throughput = events
    delivered/s, latency = publish -> event per delivery, as in fanout."""

    async def setup(self) -> dict[str, Any]:
        ctx, spec = self.ctx, self.spec
        n = int(spec["subscribers"])
        npubs = int(spec["publishers"])
        n_local = share(n, ctx.index, ctx.nworkers)
        nprocs = min(n, ctx.nworkers)
        self.outq = []
        self.publisher = None
        self.pubs: list[Publisher] = []
        self.pub_st = State()
        if ctx.index == 0:
            window = -(-int(spec.get("window", 32)) // npubs)
            payload = "x" * int(spec.get("payload", 64))
            self.pubs = [
                Publisher(window, nprocs, payload, k, npubs, self.pub_st)
                for k in range(npubs)
            ]
            await open_sessions(
                ctx, list(self.pubs), nodes=[node_of(ctx, "publisher", k) for k in range(npubs)]
            )
            self.sessions.extend(self.pubs)
            self._listen_peers()
            complete = self._complete_local
        else:
            complete = self._complete_remote
        self.stracker = SpreadTracker(self.st, n_local, complete)
        base = global_base(n, ctx.index, ctx.nworkers)
        nodes = [node_of(ctx, "subscriber", base + k) for k in range(n_local)]
        self.subs = [
            SpreadSubscriber(self.stracker, npubs, base + k, nd) for k, nd in enumerate(nodes)
        ]
        await open_sessions(ctx, list(self.subs), nodes=nodes)
        self.sessions.extend(self.subs)
        await asyncio.gather(*(asyncio.wait_for(s.subscribe(FANOUT_TOPIC), 30) for s in self.subs))
        return {"subscribers": n_local, "publishers": len(self.pubs)}

    def _complete_local(self, key: int, t: int) -> None:
        self.pubs[key % len(self.pubs)].on_complete(key, t)

    def _listen_peers(self) -> None:
        listen_completions(self.ctx.peer_read_fds, self._complete_local)

    def _check(self, stall_ns: int) -> None:
        """Raise if a publication has been incomplete for longer than stall_ns."""
        t = now_ns()
        for p in self.pubs:
            if not p.outstanding:
                continue
            key, (left, _, ts) = next(iter(p.outstanding.items()))
            if t - ts > stall_ns:
                n = p.npubs
                missing = [f"{s.g} (node {s.node})" for s in self.subs if not s.has(key)]
                raise ProtocolError(
                    f"fanout-spread: publication {key // n} of publisher {key % n} not "
                    f"delivered to every subscriber after {(t - ts) / 1e9:.1f} s: {left} of "
                    f"{p.nprocs} client processes miss it; worker 0's subscribers missing "
                    f"it: {', '.join(missing[:10]) or 'none'}"
                    f"{' ...' if len(missing) > 10 else ''} ({len(p.outstanding)} of this "
                    f"publisher's publications in flight)"
                )
        for key, (got, t0) in self.stracker.counts.items():  # partly delivered here
            if t - t0 > stall_ns:
                n = self.subs[0].npubs
                missing = [f"{s.g} (node {s.node})" for s in self.subs if not s.has(key)]
                raise ProtocolError(
                    f"fanout-spread: publication {key // n} of publisher {key % n} reached "
                    f"{got} of worker {self.ctx.index}'s {len(self.subs)} subscribers in "
                    f"{(t - t0) / 1e9:.1f} s; missing: {', '.join(missing[:10])}"
                )

    async def run(self, times: Times) -> dict[str, Any]:
        stall_ns = int(float(self.spec.get("stall_timeout", 10.0)) * 1e9)

        def start() -> None:
            for p in self.pubs:
                p.start()

        done = schedule(times, self.st, start)
        if self.pubs:
            loop = asyncio.get_running_loop()
            loop.call_later(max(0.0, (times.meas - now_ns()) / 1e9), self.pub_st.begin)
        while not done.done():
            await asyncio.sleep(0.1)
            self._check(stall_ns)
        self.pub_st.finish()
        while any(p.outstanding for p in self.pubs):  # drain: every publication must complete
            await asyncio.sleep(0.05)
            self._check(stall_ns)
        res = self.st.result()
        dups = sum(s.dups for s in self.subs)
        reordered = sum(s.reordered for s in self.subs)
        missing = sum(s.missing() for s in self.subs)  # so far (worker 0: none, drained)
        res["errors"] += dups + reordered
        res["dups"], res["reordered"], res["missing"] = dups, reordered, missing
        if dups or reordered or missing:
            ex = [e for s in self.subs for e in s.examples][:5]
            ex += [
                f"subscriber {s.g} (node {s.node}): {s.missing()} missing"
                for s in self.subs
                if s.missing()
            ][:3]
            print(
                f"*** fanout-spread worker {self.ctx.index}: {dups} duplicate, {reordered} "
                f"out-of-order events, {missing} missing before a later one of their "
                f"publisher at the end of the run: {'; '.join(ex)}",
                file=sys.stderr,
                flush=True,
            )
        if self.pubs:
            res["pub"] = self.pub_st.result()
            res["published"] = sum(p.seq for p in self.pubs)
            res["per_publisher"] = [p.seq for p in self.pubs]
        return res


# =============================================================================== connect


class ConnectWorkload(Workload):
    """Session storm: open this worker's share of S sessions (HELLO -> WELCOME).

    Extra exchange with the main process after `run`:
      worker -> ("opened", stats) ; main -> ("close",) ; worker closes, returns result.
    """

    async def setup(self) -> dict[str, Any]:
        ctx = self.ctx
        warm = int(self.spec.get("warm_sessions", 50)) if ctx.index == 0 else 0
        if warm:  # warm the router's code paths; not measured
            ws = [Session() for _ in range(warm)]
            await open_sessions(ctx, ws, 50)
            await leave_all(ws)
        return {"warm": warm}

    async def run(self, times: Times) -> dict[str, Any]:
        ctx = self.ctx
        n_local = share(int(self.spec["sessions"]), ctx.index, ctx.nworkers)
        conc = int(self.spec.get("concurrency", 100))
        zero = bool(self.spec.get("zero_mask"))
        sem = asyncio.Semaphore(conc)
        hist, failures = Hist(), []
        opened: list[Session] = []
        t_last = [0]

        async def one() -> None:
            async with sem:
                s = Session()
                t0 = now_ns()
                try:
                    await connect(ctx.target, ctx.ser, s, ctx.realm, zero_mask=zero, timeout=30)
                except (TimeoutError, ProtocolError, OSError) as e:
                    failures.append(repr(e))
                    return
                t = now_ns()
                hist.add_ns(t - t0)
                t_last[0] = max(t_last[0], t)
                opened.append(s)

        await asyncio.sleep(max(0.0, (times.start - now_ns()) / 1e9))
        cpu0, t_begin = rusage_cpu(), now_ns()
        await asyncio.gather(*(one() for _ in range(n_local)))
        cpu1 = rusage_cpu()
        self.sessions = opened
        ctx.send(
            (
                "opened",
                {
                    "ok": len(opened),
                    "failed": len(failures),
                    "first_errors": failures[:3],
                    "t_begin": t_begin,
                    "t_last": t_last[0] or now_ns(),
                    "hist": hist.to_sparse(),
                    "cpu_s": cpu1 - cpu0,
                },
            )
        )
        await ctx.recv()  # ("close",)
        t0 = now_ns()
        await leave_all(self.sessions, timeout=60.0)
        lost = sum(1 for s in opened if s.lost)
        self.sessions = []
        return {"close_s": (now_ns() - t0) / 1e9, "lost_before_close": lost}


# =============================================================================== echo


class EchoConn(Session):
    """Not WAMP: raw payload ping-pong against bench/ceiling.py (identity serializer)."""

    def __init__(self, st: State, inflight: int, payload: bytes) -> None:
        super().__init__()
        self.st = st
        self.inflight = inflight
        self.payload = payload
        self.sent: deque[int] = deque()

    def start(self) -> None:
        for _ in range(self.inflight):
            self.sent.append(now_ns())
            assert self.conn is not None
            self.conn.send(self.payload)

    def on_message(self, msg: Any) -> None:
        t = now_ns()
        t0 = self.sent.popleft()
        st = self.st
        if st.phase == 1:
            st.count += 1
            st.hist.add_ns(t - t0)
        if st.phase < 2:
            self.sent.append(t)
            assert self.conn is not None
            self.conn.send(self.payload)


class EchoWorkload(Workload):
    """M connections x `inflight` 100-byte messages to an echo server (stack ceiling)."""

    async def setup(self) -> dict[str, Any]:
        ctx = self.ctx
        n_local = share(int(self.spec["callers"]), ctx.index, ctx.nworkers)
        payload = (
            b'[36, 5512315355, 4429313566, {}, [1700000000000, 42, "'
            + b"x" * 31
            + b'"], {"k": "v"}]'
        )
        self.conns = [
            EchoConn(self.st, int(self.spec.get("inflight", 1)), payload) for _ in range(n_local)
        ]
        for c in self.conns:
            await self._open(c)
        return {"conns": n_local}

    async def _open(self, c: EchoConn) -> None:
        from wampclient import RawConn, WsConn

        loop = asyncio.get_running_loop()
        t, ser = self.ctx.target, self.ctx.ser

        def factory() -> Any:
            if t.kind == "ws":
                return WsConn(ser, c.on_message, t, bool(self.spec.get("zero_mask")))
            return RawConn(ser, c.on_message)

        _, conn = await loop.create_connection(factory, t.host, t.port)
        c.conn = conn
        await conn.opened

    async def run(self, times: Times) -> dict[str, Any]:
        await schedule(times, self.st, lambda: [c.start() for c in self.conns] and None)
        return self.st.result()

    async def teardown(self) -> None:
        for c in self.conns:
            c.close()


# =============================================================================== sync

SYNC_TOPIC_PREFIX = "bench.rec."  # record topics: bench.rec.0 .. bench.rec.<K-1>
SYNC_SEED = {"n": 0, "f": ""}  # the value records are seeded with before the run
SYNC_WRITES = ("patch", "publish", "publish-retain")


def sync_ops(op: str, payload: int) -> list[dict[str, Any]]:
    """The ops of one write: `inc` = an x-inc of a number, `replace` = a string field."""
    if op == "inc":
        return [{"op": "x-inc", "path": "/n", "by": 1}]
    if op == "replace":
        return [{"op": "replace", "path": "/f", "value": "x" * payload}]
    raise ValueError(f"unknown sync op {op!r} (inc, replace)")


def watches(observer: int, k: int, n_obs: int, per_record: int) -> bool:
    """Record k is observed by observers k, k+1, ..., k+per_record-1 (mod n_obs)."""
    return (observer - k) % n_obs < per_record


class SyncWriter(Session):
    """A closed-loop writer: `inflight` writes outstanding, each to a random record.

    Every write carries `cid` = "<send time ns>.<writer>.<seq>", seq counting this
    writer's writes to that record (1, 2, ...): the router echoes cid in the patch
    event (data-sync) or passes it through in kwargs (plain publish), so observers
    measure delivery latency and check that no write of any writer went missing.
    """

    def __init__(self, wl: SyncWorkload, g: int) -> None:
        super().__init__()
        self.wl = wl
        self.g = g
        self.st = wl.st
        self.rng = random.Random(g)  # reproducible record choice per writer
        self.nrec = wl.nrec
        # own_records: writer g writes only records g, g+W, g+2W, ... (no contention)
        self.mine = list(range(g, wl.nrec, wl.n_writers)) if wl.own_records else None
        self.uris = wl.uris
        self.ops = wl.ops
        self.patch = wl.mode == "patch"
        self.proc = wl.api + "patch"
        self.opts: dict[str, Any] = {"acknowledge": True}
        if wl.mode == "publish-retain":
            self.opts["retain"] = True
        self.sent: dict[int, tuple[int, int]] = {}  # request -> (send ns, record)
        self.seq = [0] * wl.nrec
        self.acked_v: dict[int, int] = {}  # record -> highest version a RESULT gave
        self.acked_total = 0  # writes acknowledged without ERROR, in every phase
        self.failed = 0  # writes answered with ERROR, in every phase
        self.waiters: dict[int, asyncio.Future[Any]] = {}  # setup-time requests

    def start(self) -> None:
        for _ in range(self.wl.inflight):
            self.write()

    def write(self) -> None:
        k = self.rng.choice(self.mine) if self.mine else self.rng.randrange(self.nrec)
        seq = self.seq[k] + 1
        self.seq[k] = seq
        req = self.next_req
        self.next_req = req + 1
        t = now_ns()
        self.sent[req] = (t, k)
        cid = f"{t}.{self.g}.{seq}"
        assert self.conn is not None
        if self.patch:
            self.conn.send([CALL, req, {}, self.proc, [self.uris[k], self.ops], {"cid": cid}])
        else:
            self.conn.send(
                [PUBLISH, req, self.opts, self.uris[k], [], {"ops": self.ops, "cid": cid}]
            )

    def request(self, msg: list[Any]) -> asyncio.Future[Any]:
        """Send a CALL/PUBLISH outside the measured loop; resolves to the reply message."""
        req = self.next_req
        self.next_req = req + 1
        msg[1] = req
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[req] = fut
        self.send(msg)
        return fut

    def on_message(self, msg: Any) -> None:
        code = msg[0]
        if code == RESULT or code == PUBLISHED:
            req = msg[1]
        elif code == ERROR and (msg[1] == CALL or msg[1] == PUBLISH):
            req = msg[2]
        else:
            Session.on_message(self, msg)
            return
        fut = self.waiters.pop(req, None)
        if fut is not None:
            if not fut.done():
                fut.set_result(msg)
            return
        t = now_ns()
        sent = self.sent.pop(req, None)
        if sent is not None:
            self.answered(msg, t - sent[0], sent[1])

    def answered(self, msg: Any, dt: int, k: int) -> None:
        st = self.st
        if msg[0] != ERROR:
            self.acked_total += 1
            if msg[0] == RESULT:
                try:
                    v = msg[3][0]["v"]
                except (IndexError, KeyError, TypeError):
                    v = 0
                    self.wl.note("bad_result", f"RESULT without v: {msg!r}")
                if v > self.acked_v.get(k, 0):
                    self.acked_v[k] = v
            if st.phase == 1:
                st.count += 1
                st.hist.add_ns(dt)
        else:
            if st.phase == 1:
                st.errors += 1
            self.failed += 1
            self.wl.note("write_errors", f"writer {self.g}: {msg[4]} {msg[5:]}")
        if st.phase < 2 and not self.lost:
            self.write()


class SyncObserver(Session):
    """Subscribed with get_retained to its records; checks versions and writer sequences."""

    def __init__(self, wl: SyncWorkload, j: int) -> None:
        super().__init__()
        self.wl = wl
        self.j = j
        self.ost = wl.ost
        self.chk = wl.chk
        self.sub_req: dict[int, int] = {}  # SUBSCRIBE request -> record
        self.subs: dict[int, int] = {}  # subscription id -> record
        self.last_v: dict[int, int] = {}  # record -> last version seen (data-sync)
        self.epoch: dict[int, Any] = {}
        self.last_seq: dict[tuple[int, int], int] = {}  # (writer, record) -> last seq seen

    def subscribe_record(self, k: int) -> asyncio.Future[Any]:
        fut = self.subscribe(self.wl.uris[k], {"get_retained": True})
        self.sub_req[self.next_req - 1] = k
        return fut

    def on_message(self, msg: Any) -> None:
        code = msg[0]
        if code == EVENT:
            self.event(msg)
            return
        if code == SUBSCRIBED:  # map it now: the retained event may follow in the same read
            k = self.sub_req.pop(msg[1], None)
            if k is not None:
                self.subs[msg[2]] = k
        Session.on_message(self, msg)

    def event(self, msg: Any) -> None:
        t = now_ns()
        wl = self.wl
        wl.last_event = t
        k = self.subs.get(msg[1])
        kw = msg[5] if len(msg) > 5 else None
        if k is None or not kw:
            wl.note("unknown_events", f"event of no known subscription or without kwargs: {msg!r}")
            return
        v = kw.get("v")
        if msg[3].get("retained"):
            self.chk["retained"] += 1
            if v is not None:  # a record's state {v, epoch, value}
                self.snapshot(k, v, kw.get("epoch"))
            return
        if v is not None:
            self.version(k, v)
        elif wl.versioned:
            wl.note("no_v", f"{wl.uris[k]}: change without v: {kw!r}"[:200])
        cid = kw.get("cid")
        if cid is None:  # the seed write
            return
        ts, g, seq = cid.split(".")
        self.sequence(k, int(g), int(seq))
        ost = self.ost
        if ost.phase == 1:
            ost.count += 1
            ost.hist.add_ns(t - int(ts))

    def snapshot(self, k: int, v: int, epoch: Any) -> None:
        wl = self.wl
        if k in self.epoch and self.epoch[k] != epoch:
            wl.note("epoch_changes", f"{wl.uris[k]}: epoch {self.epoch[k]} -> {epoch}")
        self.epoch[k] = epoch
        last = self.last_v.get(k)
        if last is None or v > last:
            self.last_v[k] = v
        elif v < last:
            wl.note("stale_snapshots", f"{wl.uris[k]}: snapshot v{v} after v{last}")

    def version(self, k: int, v: int) -> None:
        """A data-sync change: versions must be contiguous."""
        last = self.last_v.get(k)
        if last is not None and v == last + 1:
            self.last_v[k] = v
            return
        wl = self.wl
        if last is None:
            wl.note("change_before_snapshot", f"{wl.uris[k]}: change v{v} before its snapshot")
            self.last_v[k] = v
        elif v <= last:
            wl.note("dups", f"observer {self.j} {wl.uris[k]}: v{v} again after v{last}")
        else:
            self.chk["missing_versions"] += v - last - 1
            wl.note("gaps", f"observer {self.j} {wl.uris[k]}: v{v} after v{last}")
            self.last_v[k] = v

    def sequence(self, k: int, g: int, seq: int) -> None:
        """Writer g's writes to record k arrive in order, none missing."""
        key = (g, k)
        last = self.last_seq.get(key, 0)
        if seq == last + 1:
            self.last_seq[key] = seq
            return
        wl = self.wl
        if seq <= last:
            wl.note(
                "seq_dups", f"observer {self.j} {wl.uris[k]}: writer {g} seq {seq} after {last}"
            )
        else:
            self.chk["seq_missing"] += seq - last - 1
            wl.note(
                "seq_gaps", f"observer {self.j} {wl.uris[k]}: writer {g} seq {seq} after {last}"
            )
            self.last_seq[key] = seq


class SyncWorkload(Workload):
    """Data-sync: W writers in a closed loop on K records, O observers (get_retained).

    spec: writers, observers, records (100), per_record (observers per record; 0 = all),
    op (inc | replace), payload (replace: string length), inflight (per writer),
    own_records (writer g writes only records g, g+W, ...: no two writers share a record),
    writer_node / observer_node (cluster: round-robin start node of writers / observers),
    write: `patch` = CALL <api>patch(uri, ops) (result {v, rebased}); `publish` =
    PUBLISH uri kwargs {ops, cid} with acknowledge; `publish-retain` = the same with
    retain: true (the baselines without data-sync: the same topics, payload, observers).
    Writers and observers are dealt round-robin over the client processes; worker 0
    seeds every record first (sync.set, or a publication of {value} with the run's
    publish options) so records exist and observers start from a snapshot. Throughput = acknowledged writes/s, latency = write round
    trip (CALL -> RESULT, PUBLISH -> PUBLISHED); `obs` = deliveries (write sent ->
    event received at each observer). Checks: contiguous versions per observer and
    record (data-sync), contiguous per-writer sequences per observer and record (all
    modes), and after the drain every observer at the last acknowledged version.
    """

    async def setup(self) -> dict[str, Any]:
        ctx, spec = self.ctx, self.spec
        self.mode = str(spec.get("write", "patch"))
        if self.mode not in SYNC_WRITES:
            raise ValueError(f"unknown write mode {self.mode!r} ({', '.join(SYNC_WRITES)})")
        self.nrec = int(spec.get("records", 100))
        prefix = str(spec.get("topic_prefix") or SYNC_TOPIC_PREFIX)
        self.uris = [f"{prefix}{k}" for k in range(self.nrec)]
        self.api = str(spec.get("api_prefix") or "sync.")
        self.ops = sync_ops(str(spec.get("op", "inc")), int(spec.get("payload") or 32))
        self.inflight = int(spec.get("inflight", 1))
        self.versioned = self.mode == "patch"
        n_w, n_o = int(spec["writers"]), int(spec["observers"])
        per = int(spec.get("per_record") or n_o)
        self.n_writers = n_w
        self.own_records = bool(spec.get("own_records"))
        if self.own_records and self.nrec < n_w:
            raise ValueError(f"own_records needs records ({self.nrec}) >= writers ({n_w})")
        self.ost = State()
        self.chk: dict[str, int] = {"retained": 0, "missing_versions": 0, "seq_missing": 0}
        self.examples: dict[str, list[str]] = {}
        self.last_event = now_ns()
        self.writers = [SyncWriter(self, g) for g in range(n_w) if g % ctx.nworkers == ctx.index]
        self.observers = [
            SyncObserver(self, j) for j in range(n_o) if j % ctx.nworkers == ctx.index
        ]
        nodes = [node_of(ctx, "writer", w.g) for w in self.writers]
        nodes += [node_of(ctx, "observer", o.j) for o in self.observers]
        await open_sessions(ctx, [*self.writers, *self.observers], nodes=nodes)
        self.sessions.extend([*self.writers, *self.observers])
        if ctx.index == 0 and self.writers:
            await self._seed(self.writers[0])
        futs = [
            o.subscribe_record(k)
            for o in self.observers
            for k in range(self.nrec)
            if watches(o.j, k, n_o, per)
        ]
        await asyncio.gather(*(asyncio.wait_for(f, 30) for f in futs))
        return {
            "writers": len(self.writers),
            "observers": len(self.observers),
            "subscriptions": len(futs),
        }

    async def _seed(self, w: SyncWriter) -> None:
        if self.mode == "patch":
            msgs = [[CALL, 0, {}, self.api + "set", [u, SYNC_SEED]] for u in self.uris]
        else:  # a whole-value write on a record topic, a plain (retained) event elsewhere
            opts: dict[str, Any] = {"acknowledge": True}
            if self.mode == "publish-retain":
                opts["retain"] = True
            msgs = [[PUBLISH, 0, opts, u, [], {"value": SYNC_SEED}] for u in self.uris]
        replies = await asyncio.wait_for(asyncio.gather(*(w.request(m) for m in msgs)), 30)
        for r in replies:
            if r[0] == ERROR:
                err = f"{r[4]} {r[5:] if len(r) > 5 else ''}"
                if self.mode == "patch" and r[4] in (
                    "wamp.error.no_such_procedure",
                    f"{self.api}error.not_managed",
                ):
                    raise Skip(f"the router has no data-sync domain for {self.uris[0]}: {err}")
                raise ProtocolError(f"seeding the records failed: {err}")

    def note(self, what: str, example: str) -> None:
        """Count an anomaly (a check failure) and keep the first few examples."""
        self.chk[what] = self.chk.get(what, 0) + 1
        ex = self.examples.setdefault(what, [])
        if len(ex) < 3:
            ex.append(example)

    async def run(self, times: Times) -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def start() -> None:
            for w in self.writers:
                w.start()

        loop.call_later(max(0.0, (times.meas - now_ns()) / 1e9), self.ost.begin)
        loop.call_later(max(0.0, (times.end - now_ns()) / 1e9), self.ost.finish)
        await schedule(times, self.st, start)
        self.ost.finish()
        # drain: the writers' last answers, then the observers' last events (quiet for 0.3 s)
        await wait_until(lambda: all(not w.sent or w.lost for w in self.writers), 3.0)
        await wait_until(
            lambda: now_ns() - max(self.last_event, times.end + 200_000_000) > 300_000_000, 5.0
        )
        res = self.st.result()
        res["obs"] = self.ost.result()
        acked_v: dict[int, int] = {}
        for w in self.writers:
            for k, v in w.acked_v.items():
                acked_v[k] = max(v, acked_v.get(k, 0))
        res["check"] = {
            "counts": dict(self.chk),
            "examples": self.examples,
            "unacked": sum(len(w.sent) for w in self.writers),
            "acked_total": sum(w.acked_total for w in self.writers),
            "errors_by_writer": {w.g: w.failed for w in self.writers if w.failed},
            "lost_sessions": sum(1 for s in self.sessions if s.lost),
            "acked_v": acked_v,
            # per (writer, record): the last seq sent, when every write of the writer was answered
            "sent_seq": {
                (w.g, k): s for w in self.writers if not w.sent for k, s in enumerate(w.seq) if s
            },
            "obs": [{"j": o.j, "last_v": o.last_v, "last_seq": o.last_seq} for o in self.observers],
        }
        return res


def fanout_workload(ctx: WorkerCtx) -> Workload:
    """fanout; with spec `publishers` (cluster_bench's fanout-spread) several publishers."""
    return SpreadFanoutWorkload(ctx) if ctx.spec.get("publishers") else FanoutWorkload(ctx)


WORKLOADS: dict[str, Callable[[WorkerCtx], Workload]] = {
    "rpc": RpcWorkload,
    "fanout": fanout_workload,
    "connect": ConnectWorkload,
    "echo": EchoWorkload,
    "sync": SyncWorkload,
}
