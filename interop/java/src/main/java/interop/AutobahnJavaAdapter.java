// Adapter: autobahn-java for the interop scenarios (see ../../../../../scenarios.py, PROTOCOL).
//
// autobahn-java as used here (20.6.1, the newest on Maven Central): WebSocket (Netty) with
// json / msgpack / cbor, RawSocket with JSON only. Its typed options are narrow:
// PublishOptions(acknowledge, excludeMe, retain), SubscribeOptions(match, details,
// getRetained), RegisterOptions(match, invoke), CallOptions(timeout); there is no
// eligible/exclude, disclose_me, progressive results or call cancel in its API, and a
// callee is an IInvocationHandler returning one InvocationResult.
package interop;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.crossbar.autobahn.wamp.Client;
import io.crossbar.autobahn.wamp.Session;
import io.crossbar.autobahn.wamp.auth.ChallengeResponseAuth;
import io.crossbar.autobahn.wamp.auth.TicketAuth;
import io.crossbar.autobahn.wamp.exceptions.ApplicationError;
import io.crossbar.autobahn.wamp.interfaces.IAuthenticator;
import io.crossbar.autobahn.wamp.interfaces.ITransport;
import io.crossbar.autobahn.wamp.transports.NettyWebSocket;
import io.crossbar.autobahn.wamp.types.CallOptions;
import io.crossbar.autobahn.wamp.types.CallResult;
import io.crossbar.autobahn.wamp.types.InvocationDetails;
import io.crossbar.autobahn.wamp.types.InvocationResult;
import io.crossbar.autobahn.wamp.types.Publication;
import io.crossbar.autobahn.wamp.types.PublishOptions;
import io.crossbar.autobahn.wamp.types.RegisterOptions;
import io.crossbar.autobahn.wamp.types.Registration;
import io.crossbar.autobahn.wamp.types.SessionDetails;
import io.crossbar.autobahn.wamp.types.SubscribeOptions;
import io.crossbar.autobahn.wamp.types.Subscription;
import io.crossbar.autobahn.wamp.types.TransportOptions;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

public final class AutobahnJavaAdapter {
    static final String VERSION = "20.6.1";
    static final String LIB = "autobahn-java " + VERSION;
    static final ObjectMapper M = new ObjectMapper();
    static final PrintStream OUT = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
    static final ExecutorService POOL = Executors.newCachedThreadPool();

    static final class Unsupported extends Exception {
        Unsupported(String why) { super(why); }
    }

    static final class Abort extends Exception {
        final String reason;
        Abort(String reason, String message) { super(message); this.reason = reason; }
    }

    static final class Conn {
        Session session;
        Client client;
        boolean json;
        CompletableFuture<Boolean> closed = new CompletableFuture<>();
    }

    static final class Inv {
        final Map<String, Object> rec = new ConcurrentHashMap<>();
        final CountDownLatch release = new CountDownLatch(1);
    }

    static final Map<String, Conn> conns = new ConcurrentHashMap<>();
    static final Map<String, List<Map<String, Object>>> events = new ConcurrentHashMap<>();
    static final Map<String, Subscription> subs = new ConcurrentHashMap<>();
    static final Map<String, Registration> regs = new ConcurrentHashMap<>();
    static final Map<String, List<Inv>> invocations = new ConcurrentHashMap<>();
    static final Map<String, CompletableFuture<CallResult>> calls = new ConcurrentHashMap<>();

    static synchronized void send(Map<String, Object> obj) {
        try {
            OUT.println(M.writeValueAsString(obj));
        } catch (Exception e) {
            OUT.println("{\"exception\": \"cannot encode an answer\"}");
        }
    }

    // control protocol -> Java values
    @SuppressWarnings("unchecked")
    static Object decode(Object v) {
        if (v instanceof Map) {
            Map<String, Object> m = (Map<String, Object>) v;
            if (m.size() == 1 && m.containsKey("$bytes")) return Base64.getDecoder().decode((String) m.get("$bytes"));
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : m.entrySet()) out.put(e.getKey(), decode(e.getValue()));
            return out;
        }
        if (v instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object x : (List<Object>) v) out.add(decode(x));
            return out;
        }
        return v;
    }

    @SuppressWarnings("unchecked")
    static Object encode(Object v) {
        if (v instanceof byte[]) {
            Map<String, Object> m = new HashMap<>();
            m.put("$bytes", Base64.getEncoder().encodeToString((byte[]) v));
            return m;
        }
        if (v instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<Object, Object> e : ((Map<Object, Object>) v).entrySet()) out.put(String.valueOf(e.getKey()), encode(e.getValue()));
            return out;
        }
        if (v instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object x : (List<Object>) v) out.add(encode(x));
            return out;
        }
        return v;
    }

    static boolean hasBytes(Object v) {
        if (v instanceof byte[]) return true;
        if (v instanceof Map) return ((Map<?, ?>) v).values().stream().anyMatch(AutobahnJavaAdapter::hasBytes);
        if (v instanceof List) return ((List<?>) v).stream().anyMatch(AutobahnJavaAdapter::hasBytes);
        return false;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> dict(Object v) {
        return v instanceof Map ? (Map<String, Object>) v : new LinkedHashMap<>();
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object v) {
        return v instanceof List ? (List<Object>) v : new ArrayList<>();
    }

    static Conn conn(Map<String, Object> p) {
        return conns.get((String) p.get("conn"));
    }

    static void noJsonBytes(Conn c, Object... values) throws Unsupported {
        for (Object v : values) {
            if (c.json && hasBytes(v)) {
                throw new Unsupported("its JSON serializer (Jackson) writes byte[] as plain base64 text, not with the WAMP binary convention");
            }
        }
    }

    static void allowOnly(Map<String, Object> options, String what, String... allowed) throws Unsupported {
        List<String> ok = List.of(allowed);
        for (Map.Entry<String, Object> e : options.entrySet()) {
            if (!ok.contains(e.getKey()) && e.getValue() != null && !Boolean.FALSE.equals(e.getValue())) {
                throw new Unsupported(what + " has no option '" + e.getKey() + "' (it supports " + String.join(", ", allowed) + ")");
            }
        }
    }

    static Object opConnect(Map<String, Object> p) throws Exception {
        // now and then (about 1 in 500 here) the Netty transport never opens its TCP
        // connection (the router sees none): one retry
        try {
            return connectOnce(p, 5000);
        } catch (TimeoutException e) {
            System.err.println("adapter: no connection/WELCOME within 5 s, retrying once");
            return connectOnce(p, 10000);
        }
    }

    static Object connectOnce(Map<String, Object> p, long waitMs) throws Exception {
        String serializer = (String) p.get("serializer");
        String url = (String) p.get("url");
        ITransport transport;
        if ("rawsocket".equals(p.get("transport"))) {
            throw new Unsupported("its RawSocket transport is a stub (connect() throws IllegalStateException: NOT IMPLEMENTED YET)");
        } else {
            transport = new NettyWebSocket(url, List.of("wamp.2." + serializer));
        }
        Conn c = new Conn();
        c.json = "json".equals(serializer);
        // one thread per session: events and invocations are handled in the order they
        // arrived (with a pool, two events of one publisher can be delivered out of order)
        c.session = new Session(Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "session");
            t.setDaemon(true);
            return t;
        }));
        CompletableFuture<SessionDetails> joined = new CompletableFuture<>();
        c.session.addOnJoinListener((s, d) -> joined.complete(d));
        c.session.addOnLeaveListener((s, cd) -> {
            // messages are handled on the executor, the WebSocket close on Netty's thread: the
            // close of the connection after an ABORT may be reported first, as
            // wamp.close.normal, and the ABORT reason is then lost ("" = not exposed)
            String reason = "wamp.close.normal".equals(cd.reason) ? "" : cd.reason;
            if (!joined.isDone()) joined.completeExceptionally(new Abort(reason, cd.message));
        });
        c.session.addOnDisconnectListener((s, clean) -> {
            if (!joined.isDone()) joined.completeExceptionally(new Abort("", "disconnected before WELCOME"));
            c.closed.complete(clean);
        });
        List<IAuthenticator> auths = new ArrayList<>();
        String method = (String) p.get("authmethod");
        if ("ticket".equals(method)) auths.add(new TicketAuth((String) p.get("authid"), (String) p.get("secret")));
        if ("wampcra".equals(method)) auths.add(new ChallengeResponseAuth((String) p.get("authid"), (String) p.get("secret")));
        c.client = new Client(transport, POOL);
        c.client.add(c.session, (String) p.get("realm"), auths);
        TransportOptions opts = new TransportOptions();
        opts.setMaxFramePayloadSize(16 * 1024 * 1024);
        c.client.connect(opts);
        // the OnJoin listener is sometimes not called although the Client logs JOINED: also
        // poll the session id
        long deadline = System.currentTimeMillis() + waitMs;
        SessionDetails d = null;
        while (System.currentTimeMillis() < deadline) {
            try {
                d = joined.get(20, TimeUnit.MILLISECONDS);
                break;
            } catch (ExecutionException e) {
                throw (Exception) e.getCause();
            } catch (TimeoutException e) {
                if (c.session.getID() != 0) break;
            }
        }
        if (d == null && c.session.getID() == 0) throw new TimeoutException("no WELCOME within " + waitMs / 1000 + " s");
        conns.put((String) p.get("conn"), c);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("session", c.session.getID());
        r.put("authid", d == null ? null : d.authid);
        r.put("authrole", d == null ? null : d.authrole);
        r.put("authmethod", null);
        r.put("realm", p.get("realm"));
        return r;
    }

    static Object opDisconnect(Map<String, Object> p) throws Exception {
        Conn c = conns.remove((String) p.get("conn"));
        if (c != null && c.session.isConnected()) {
            c.session.leave();
            try {
                // the GOODBYE reply is handled at once, the transport is closed about 2 s later
                c.closed.get(20, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                // closing
            }
        }
        return null;
    }

    static Object opSubscribe(Map<String, Object> p) throws Exception {
        Conn c = conn(p);
        Map<String, Object> o = dict(p.get("options"));
        allowOnly(o, "SubscribeOptions", "match", "get_retained");
        List<Map<String, Object>> recs = Collections.synchronizedList(new ArrayList<>());
        String sub = (String) p.get("sub");
        events.put(sub, recs);
        SubscribeOptions so = new SubscribeOptions((String) o.getOrDefault("match", "exact"), true, Boolean.TRUE.equals(o.get("get_retained")));
        Subscription s = await(c.session.subscribe((String) p.get("topic"), (List<Object> args, Map<String, Object> kwargs, io.crossbar.autobahn.wamp.types.EventDetails d) -> {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("args", encode(args == null ? new ArrayList<>() : args));
            r.put("kwargs", encode(kwargs == null ? new LinkedHashMap<>() : kwargs));
            r.put("publisher", d.publisherSessionID == 0 ? null : d.publisherSessionID);
            r.put("publisher_authrole", d.publisherAuthRole);
            r.put("topic", d.topic);
            r.put("retained", d.retained);
            recs.add(r);
        }, so));
        subs.put(sub, s);
        return Map.of("id", s.subscription);
    }

    static Object opEvents(Map<String, Object> p) {
        List<Map<String, Object>> recs = events.get((String) p.get("sub"));
        if (recs == null) return new ArrayList<>();
        synchronized (recs) {
            return new ArrayList<>(recs);
        }
    }

    static Object opPublish(Map<String, Object> p) throws Exception {
        Conn c = conn(p);
        Map<String, Object> o = dict(p.get("options"));
        allowOnly(o, "PublishOptions", "acknowledge", "exclude_me", "retain");
        noJsonBytes(c, p.get("args"), p.get("kwargs"));
        boolean excludeMe = !Boolean.FALSE.equals(o.get("exclude_me"));
        PublishOptions po = new PublishOptions(true, excludeMe, Boolean.TRUE.equals(o.get("retain")));
        Publication pub = await(c.session.publish((String) p.get("topic"), list(p.get("args")), dict(p.get("kwargs")), po));
        Map<String, Object> r = new HashMap<>();
        r.put("id", pub == null ? null : pub.publication);
        return r;
    }

    static Object opRegister(Map<String, Object> p) throws Exception {
        Conn c = conn(p);
        Map<String, Object> o = dict(p.get("options"));
        String behavior = (String) p.get("behavior");
        Object value = p.get("value");
        if ("progress".equals(behavior)) throw new Unsupported("a callee cannot send progressive results (no API for it)");
        if ("error".equals(behavior)) throw new Unsupported("an ApplicationError thrown by a callee is sent as ERROR wamp.error.runtime_error with the exception text: no error URI/args/kwargs of the callee's choice");
        String reg = (String) p.get("reg");
        List<Inv> invs = Collections.synchronizedList(new ArrayList<>());
        invocations.put(reg, invs);
        RegisterOptions ro = new RegisterOptions((String) o.get("match"), (String) o.get("invoke"));
        Registration r = await(c.session.register((String) p.get("procedure"), (List<Object> args, Map<String, Object> kwargs, InvocationDetails d) -> {
            Inv inv = new Inv();
            inv.rec.put("args", encode(args == null ? new ArrayList<>() : args));
            inv.rec.put("kwargs", encode(kwargs == null ? new LinkedHashMap<>() : kwargs));
            putNullable(inv.rec, "procedure", d.procedure);
            putNullable(inv.rec, "caller", d.callerSessionID == 0 ? null : d.callerSessionID);
            putNullable(inv.rec, "caller_authrole", d.callerAuthRole);
            inv.rec.put("progress", false);
            inv.rec.put("status", "running");
            invs.add(inv);
            List<Object> a = args == null ? new ArrayList<>() : args;
            switch (behavior) {
                case "echo": return new InvocationResult(a, kwargs == null ? new LinkedHashMap<>() : kwargs);
                case "echo1": return new InvocationResult(Collections.singletonList(a.isEmpty() ? null : a.get(0)));
                case "value": return new InvocationResult(Collections.singletonList(value));
                case "details": {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("procedure", d.procedure);
                    m.put("caller", d.callerSessionID == 0 ? null : d.callerSessionID);
                    m.put("caller_authrole", d.callerAuthRole);
                    m.put("args", a);
                    return new InvocationResult(Collections.singletonList(m));
                }
                case "error": {
                    Map<String, Object> v = dict(value);
                    throw new ApplicationError((String) v.get("uri"), list(v.get("args")), dict(v.get("kwargs")));
                }
                case "held":
                    try {
                        inv.release.await(60, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        inv.rec.put("status", "interrupted");
                    }
                    return new InvocationResult(Collections.singletonList("released"));
                default:
                    throw new ApplicationError("com.interop.unknown_behavior");
            }
        }, ro));
        regs.put(reg, r);
        return Map.of("id", r.registration);
    }

    static void putNullable(Map<String, Object> m, String k, Object v) {
        if (v != null) m.put(k, v);
    }

    static Object opInvocations(Map<String, Object> p) {
        List<Inv> invs = invocations.get((String) p.get("reg"));
        List<Object> out = new ArrayList<>();
        if (invs == null) return out;
        synchronized (invs) {
            for (Inv i : invs) {
                Map<String, Object> m = new LinkedHashMap<>(i.rec);
                for (String k : List.of("procedure", "caller", "caller_authrole")) m.putIfAbsent(k, null);
                out.add(m);
            }
        }
        return out;
    }

    static Object opRelease(Map<String, Object> p) {
        int n = 0;
        List<Inv> invs = invocations.getOrDefault((String) p.get("reg"), new ArrayList<>());
        synchronized (invs) {
            for (Inv i : invs) {
                if ("running".equals(i.rec.get("status"))) {
                    i.rec.put("status", "released");
                    i.release.countDown();
                    n++;
                }
            }
        }
        return n;
    }

    static CompletableFuture<CallResult> startCall(Map<String, Object> p) throws Exception {
        Conn c = conn(p);
        Map<String, Object> o = dict(p.get("options"));
        if (Boolean.TRUE.equals(o.get("receive_progress"))) throw new Unsupported("no progressive call results (CallOptions has only a timeout)");
        allowOnly(o, "CallOptions", "timeout");
        noJsonBytes(c, p.get("args"), p.get("kwargs"));
        if ("wamp.session.add_testament".equals(p.get("procedure"))) {
            throw new Unsupported("its Result.parse accepts only RESULT messages of 4 to 6 elements "
                    + "(MessageUtil.validateMessage(..., 4, 6)): the RESULT [50, id, {}] without arguments that "
                    + "add_testament answers (valid per the spec) is dropped and the call never completes");
        }
        CallOptions co = o.get("timeout") == null ? null : new CallOptions(((Number) o.get("timeout")).intValue());
        return c.session.call((String) p.get("procedure"), list(p.get("args")), dict(p.get("kwargs")), co);
    }

    static Object result(CallResult r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("args", encode(r == null || r.results == null ? new ArrayList<>() : r.results));
        m.put("kwargs", encode(r == null || r.kwresults == null ? new LinkedHashMap<>() : r.kwresults));
        m.put("progress", new ArrayList<>());
        return m;
    }

    static Object opCall(Map<String, Object> p) throws Exception {
        return result(await(startCall(p)));
    }

    static Object opCallStart(Map<String, Object> p) throws Exception {
        calls.put((String) p.get("call"), startCall(p));
        return new HashMap<>();
    }

    static Object opCallWait(Map<String, Object> p) throws Exception {
        CompletableFuture<CallResult> f = calls.get((String) p.get("call"));
        double t = ((Number) p.get("timeout")).doubleValue();
        try {
            return result(unwrap(() -> f.get((long) (t * 1000), TimeUnit.MILLISECONDS)));
        } catch (TimeoutException e) {
            return Map.of("pending", true);
        }
    }

    interface Getter<T> { T get() throws Exception; }

    static <T> T unwrap(Getter<T> g) throws Exception {
        try {
            return g.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            while ((cause instanceof java.util.concurrent.CompletionException || cause instanceof ExecutionException) && cause.getCause() != null) cause = cause.getCause();
            if (cause instanceof Exception) throw (Exception) cause;
            throw e;
        }
    }

    static <T> T await(CompletableFuture<T> f) throws Exception {
        return unwrap(() -> f.get(30, TimeUnit.SECONDS));
    }

    static void handle(String line) {
        Object id = null;
        String op = null;
        try {
            @SuppressWarnings("unchecked")
            Map<String, Object> req = (Map<String, Object>) decode(M.readValue(line, Map.class));
            id = req.get("id");
            op = (String) req.get("op");
            Object res;
            switch (op) {
                case "connect": res = opConnect(req); break;
                case "disconnect": res = opDisconnect(req); break;
                case "subscribe": res = opSubscribe(req); break;
                case "events": res = opEvents(req); break;
                case "publish": res = opPublish(req); break;
                case "register": res = opRegister(req); break;
                case "invocations": res = opInvocations(req); break;
                case "release": res = opRelease(req); break;
                case "call": res = opCall(req); break;
                case "call_start": res = opCallStart(req); break;
                case "call_wait": res = opCallWait(req); break;
                case "call_cancel": throw new Unsupported("no way to cancel a call (no CANCEL in its API)");
                case "drop": throw new Unsupported("no way to close the transport without GOODBYE from its API");
                default: throw new Unsupported("op " + op);
            }
            Map<String, Object> ans = new LinkedHashMap<>();
            ans.put("id", id);
            ans.put("ok", true);
            ans.put("result", res);
            send(ans);
        } catch (Unsupported e) {
            Map<String, Object> ans = new LinkedHashMap<>();
            ans.put("id", id);
            ans.put("ok", false);
            ans.put("unsupported", e.getMessage());
            send(ans);
        } catch (Abort e) {
            Map<String, Object> ans = new LinkedHashMap<>();
            ans.put("id", id);
            ans.put("ok", false);
            ans.put("error", e.reason == null ? "" : e.reason);
            ans.put("args", e.getMessage() == null ? List.of() : List.of(e.getMessage()));
            send(ans);
        } catch (ApplicationError e) {
            Map<String, Object> ans = new LinkedHashMap<>();
            ans.put("id", id);
            ans.put("ok", false);
            ans.put("error", e.getMessage());
            ans.put("args", encode(e.args == null ? List.of() : e.args));
            ans.put("kwargs", encode(e.kwargs == null ? Map.of() : e.kwargs));
            send(ans);
        } catch (Exception e) {
            System.err.println("adapter: " + op + " failed: " + e);
            Map<String, Object> ans = new LinkedHashMap<>();
            ans.put("id", id);
            ans.put("ok", false);
            ans.put("exception", e.toString());
            send(ans);
        }
    }

    public static void main(String[] argv) throws Exception {
        Map<String, Object> hello = new LinkedHashMap<>();
        hello.put("client", "autobahn-java");
        hello.put("version", VERSION);
        hello.put("library", LIB + " (Java " + System.getProperty("java.version") + ")");
        hello.put("websocket", List.of("json", "msgpack", "cbor"));
        hello.put("rawsocket", List.of());
        hello.put("unsupported", Map.of("rawsocket", LIB + ": its RawSocket transport is a stub (connect() throws IllegalStateException: NOT IMPLEMENTED YET)"));
        hello.put("features", Map.of("callee_call_canceling", false, "welcome_details", false, "invocation_procedure", false));
        send(Map.of("hello", hello));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 20);
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) continue;
            if (line.contains("\"op\": \"quit\"") || line.contains("\"op\":\"quit\"")) break;
            final String l = line;
            POOL.submit(() -> handle(l));
        }
        for (Conn c : conns.values()) {
            try {
                c.session.leave();
            } catch (Exception e) {
                // closing anyway
            }
        }
        System.exit(0);
    }
}
