// Adapter: the nexus Go client (github.com/gammazero/nexus/v3/client) for the interop
// scenarios (see ../scenarios.py, PROTOCOL).
//
//	go build -o nexus-adapter . && ./nexus-adapter
//
// nexus as used here: WebSocket and RawSocket (tcp://), JSON / msgpack / CBOR; Call with
// options and a progress callback; cancel = cancelling the Call's context after
// SetCallCancelMode(mode); callee handlers get a context that INTERRUPT cancels, and
// send progressive results with SendProgress. Call returns ctx.Err() for a canceled call
// once the router's ERROR has arrived (it waits up to ResponseTimeout for it) without
// exposing that ERROR; the adapter reports it as wamp.error.canceled. Byte strings over
// JSON: nexus sends serialize.BinaryData with the WAMP convention ("\x00" + base64);
// received ones stay such strings in untyped payloads and are decoded here with the same
// convention.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gammazero/nexus/v3/client"
	"github.com/gammazero/nexus/v3/transport/serialize"
	"github.com/gammazero/nexus/v3/wamp"
	"github.com/gammazero/nexus/v3/wamp/crsign"
)

type unsupported struct{ why string }

func (u unsupported) Error() string { return u.why }

type wampErr struct {
	uri    string
	args   []interface{}
	kwargs map[string]interface{}
}

func (w wampErr) Error() string { return w.uri }

var (
	outMu sync.Mutex
	out   = bufio.NewWriterSize(os.Stdout, 1<<20)
	mu    sync.Mutex
	conns = map[string]*conn{}
	subs  = map[string]*subState{}
	regs  = map[string]*regState{}
	calls = map[string]*callState{}
	lib   = "nexus " + nexusVersion()
)

type conn struct {
	c    *client.Client
	json bool
}

type subState struct {
	conn   string
	topic  string
	id     wamp.ID
	mu     sync.Mutex
	events []map[string]interface{}
}

type invocation struct {
	rec     map[string]interface{}
	release chan struct{}
}

type regState struct {
	conn      string
	procedure string
	id        wamp.ID
	mu        sync.Mutex
	invs      []*invocation
}

type callState struct {
	conn     string
	cancel   context.CancelFunc
	done     chan struct{}
	result   map[string]interface{}
	err      error
	progress *[]interface{}
}

func nexusVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/gammazero/nexus/v3" {
				return d.Version
			}
		}
	}
	return "?"
}

func send(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]interface{}{"exception": err.Error()})
	}
	outMu.Lock()
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
	outMu.Unlock()
}

func logf(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "adapter: "+format+"\n", a...)
}

// control protocol -> Go values
func decode(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		if b, ok := t["$bytes"]; ok && len(t) == 1 {
			data, _ := base64.StdEncoding.DecodeString(b.(string))
			return data
		}
		m := map[string]interface{}{}
		for k, x := range t {
			m[k] = decode(x)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(t))
		for i, x := range t {
			l[i] = decode(x)
		}
		return l
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// byte strings become serialize.BinaryData for the JSON serializer
func forJSON(v interface{}) interface{} {
	switch t := v.(type) {
	case []byte:
		return serialize.BinaryData(t)
	case map[string]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[k] = forJSON(x)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(t))
		for i, x := range t {
			l[i] = forJSON(x)
		}
		return l
	}
	return v
}

// Go values -> control protocol
func encode(v interface{}, isJSON bool) interface{} {
	switch t := v.(type) {
	case []byte:
		return map[string]interface{}{"$bytes": base64.StdEncoding.EncodeToString(t)}
	case serialize.BinaryData:
		return map[string]interface{}{"$bytes": base64.StdEncoding.EncodeToString(t)}
	case string:
		if isJSON && strings.HasPrefix(t, "\x00") {
			if data, err := base64.StdEncoding.DecodeString(t[1:]); err == nil {
				return map[string]interface{}{"$bytes": base64.StdEncoding.EncodeToString(data)}
			}
		}
		return t
	case wamp.Dict:
		return encode(map[string]interface{}(t), isJSON)
	case wamp.List:
		return encode([]interface{}(t), isJSON)
	case map[string]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[k] = encode(x, isJSON)
		}
		return m
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = encode(x, isJSON)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(t))
		for i, x := range t {
			l[i] = encode(x, isJSON)
		}
		return l
	case wamp.ID:
		return uint64(t)
	case wamp.URI:
		return string(t)
	}
	return v
}

func list(v interface{}) wamp.List {
	if l, ok := v.([]interface{}); ok {
		return wamp.List(l)
	}
	return wamp.List{}
}

func dict(v interface{}) wamp.Dict {
	if m, ok := v.(map[string]interface{}); ok {
		return wamp.Dict(m)
	}
	return wamp.Dict{}
}

func str(v interface{}) string {
	s, _ := v.(string)
	return s
}

func getConn(name string) (*conn, error) {
	mu.Lock()
	defer mu.Unlock()
	c, ok := conns[name]
	if !ok {
		return nil, fmt.Errorf("no connection %s", name)
	}
	return c, nil
}

func payload(c *conn, args wamp.List, kwargs wamp.Dict) (wamp.List, wamp.Dict) {
	if c.json {
		return wamp.List(forJSON([]interface{}(args)).([]interface{})),
			wamp.Dict(forJSON(map[string]interface{}(kwargs)).(map[string]interface{}))
	}
	return args, kwargs
}

var abortRe = regexp.MustCompile(`received unexpected ABORT message when expecting WELCOME: (\S+)`)

func opConnect(p map[string]interface{}) (interface{}, error) {
	cfg := client.Config{Realm: str(p["realm"]), ResponseTimeout: 5 * time.Second,
		RecvLimit: 16 * 1024 * 1024}
	switch str(p["serializer"]) {
	case "json":
		cfg.Serialization = client.JSON
	case "msgpack":
		cfg.Serialization = client.MSGPACK
	case "cbor":
		cfg.Serialization = client.CBOR
	}
	secret := str(p["secret"])
	switch str(p["authmethod"]) {
	case "ticket":
		cfg.HelloDetails = wamp.Dict{"authid": str(p["authid"])}
		cfg.AuthHandlers = map[string]client.AuthFunc{"ticket": func(*wamp.Challenge) (string, wamp.Dict) {
			return secret, wamp.Dict{}
		}}
	case "wampcra":
		cfg.HelloDetails = wamp.Dict{"authid": str(p["authid"])}
		cfg.AuthHandlers = map[string]client.AuthFunc{"wampcra": func(ch *wamp.Challenge) (string, wamp.Dict) {
			return crsign.RespondChallenge(secret, ch, nil), wamp.Dict{}
		}}
	}
	url := str(p["url"])
	if str(p["transport"]) == "rawsocket" {
		url = "tcp://" + strings.SplitN(url, "://", 2)[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.ConnectNet(ctx, url, cfg)
	if err != nil {
		if m := abortRe.FindStringSubmatch(err.Error()); m != nil {
			return nil, wampErr{uri: m[1], args: []interface{}{err.Error()}}
		}
		if len(cfg.AuthHandlers) > 0 && !strings.Contains(err.Error(), "dial") {
			// an ABORT after AUTHENTICATE comes back as errors.New(ABORT.Details.message):
			// the join was refused, the reason URI is not exposed
			return nil, wampErr{uri: "", args: []interface{}{err.Error()}}
		}
		return nil, err
	}
	mu.Lock()
	conns[str(p["conn"])] = &conn{c: c, json: str(p["serializer"]) == "json"}
	mu.Unlock()
	d := c.RealmDetails()
	return map[string]interface{}{"session": uint64(c.ID()), "authid": d["authid"],
		"authrole": d["authrole"], "authmethod": d["authmethod"], "realm": p["realm"]}, nil
}

func opDisconnect(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	c, ok := conns[str(p["conn"])]
	delete(conns, str(p["conn"]))
	mu.Unlock()
	if ok {
		c.c.Close()
	}
	return nil, nil
}

func opSubscribe(p map[string]interface{}) (interface{}, error) {
	c, err := getConn(str(p["conn"]))
	if err != nil {
		return nil, err
	}
	s := &subState{conn: str(p["conn"]), topic: str(p["topic"])}
	handler := func(ev *wamp.Event) {
		rec := map[string]interface{}{
			"args": encode([]interface{}(ev.Arguments), c.json), "kwargs": encode(map[string]interface{}(ev.ArgumentsKw), c.json),
			"publisher": encode(ev.Details["publisher"], c.json), "publisher_authrole": ev.Details["publisher_authrole"],
			"topic": encode(ev.Details["topic"], c.json), "retained": ev.Details["retained"],
		}
		if rec["args"] == nil {
			rec["args"] = []interface{}{}
		}
		s.mu.Lock()
		s.events = append(s.events, rec)
		s.mu.Unlock()
	}
	if v, _ := dict(p["options"])["get_retained"].(bool); v {
		return nil, unsupported{"Subscribe() stores the event handler only after the goroutine " +
			"waiting for SUBSCRIBED got it, while the receive loop goes on: the retained EVENT that " +
			"follows SUBSCRIBED at once is dropped (\"No handler registered for subscription\")"}
	}
	if err := c.c.Subscribe(s.topic, handler, dict(p["options"])); err != nil {
		return nil, asWampErr(err)
	}
	s.id, _ = c.c.SubscriptionID(s.topic)
	mu.Lock()
	subs[str(p["sub"])] = s
	mu.Unlock()
	return map[string]interface{}{"id": uint64(s.id)}, nil
}

func opEvents(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	s, ok := subs[str(p["sub"])]
	mu.Unlock()
	if !ok {
		return []interface{}{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := make([]interface{}, len(s.events))
	for i, e := range s.events {
		evs[i] = e
	}
	return evs, nil
}

func opPublish(p map[string]interface{}) (interface{}, error) {
	c, err := getConn(str(p["conn"]))
	if err != nil {
		return nil, err
	}
	args, kwargs := payload(c, list(p["args"]), dict(p["kwargs"]))
	if err := c.c.Publish(str(p["topic"]), dict(p["options"]), args, kwargs); err != nil {
		return nil, asWampErr(err)
	}
	// Publish() waits for PUBLISHED when acknowledge is set, but does not return its id
	return map[string]interface{}{"id": nil}, nil
}

func opRegister(p map[string]interface{}) (interface{}, error) {
	c, err := getConn(str(p["conn"]))
	if err != nil {
		return nil, err
	}
	r := &regState{conn: str(p["conn"]), procedure: str(p["procedure"])}
	behavior := str(p["behavior"])
	value := p["value"]
	handler := func(ctx context.Context, inv *wamp.Invocation) client.InvokeResult {
		recv, _ := inv.Details["receive_progress"].(bool)
		in := &invocation{rec: map[string]interface{}{
			"args": encode([]interface{}(inv.Arguments), c.json), "kwargs": encode(map[string]interface{}(inv.ArgumentsKw), c.json),
			"procedure": encode(inv.Details["procedure"], c.json), "caller": encode(inv.Details["caller"], c.json),
			"caller_authrole": inv.Details["caller_authrole"], "progress": recv, "status": "running",
		}, release: make(chan struct{})}
		if in.rec["args"] == nil {
			in.rec["args"] = []interface{}{}
		}
		r.mu.Lock()
		r.invs = append(r.invs, in)
		r.mu.Unlock()
		switch behavior {
		case "echo":
			return client.InvokeResult{Args: inv.Arguments, Kwargs: inv.ArgumentsKw}
		case "echo1":
			if len(inv.Arguments) == 0 {
				return client.InvokeResult{}
			}
			return client.InvokeResult{Args: wamp.List{inv.Arguments[0]}}
		case "value":
			return client.InvokeResult{Args: wamp.List{value}}
		case "details":
			return client.InvokeResult{Args: wamp.List{map[string]interface{}{
				"procedure": inv.Details["procedure"], "caller": inv.Details["caller"],
				"caller_authrole": inv.Details["caller_authrole"], "args": inv.Arguments}}}
		case "error":
			v := dict(value)
			return client.InvokeResult{Err: wamp.URI(str(v["uri"])), Args: list(v["args"]), Kwargs: dict(v["kwargs"])}
		case "progress":
			n, _ := value.(int64)
			if recv {
				for i := int64(1); i <= n; i++ {
					if err := c.c.SendProgress(ctx, wamp.List{i, "p"}, nil); err != nil {
						logf("SendProgress: %v", err)
					}
				}
			}
			return client.InvokeResult{Args: wamp.List{"done"}}
		case "held":
			select {
			case <-in.release:
				return client.InvokeResult{Args: wamp.List{"released"}}
			case <-ctx.Done():
				r.mu.Lock()
				in.rec["status"] = "interrupted"
				r.mu.Unlock()
				return client.InvokeResult{Err: wamp.ErrCanceled}
			}
		}
		return client.InvokeResult{Err: "com.interop.unknown_behavior"}
	}
	if err := c.c.Register(r.procedure, handler, dict(p["options"])); err != nil {
		return nil, asWampErr(err)
	}
	r.id, _ = c.c.RegistrationID(r.procedure)
	mu.Lock()
	regs[str(p["reg"])] = r
	mu.Unlock()
	return map[string]interface{}{"id": uint64(r.id)}, nil
}

func opInvocations(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	r, ok := regs[str(p["reg"])]
	mu.Unlock()
	if !ok {
		return []interface{}{}, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := make([]interface{}, len(r.invs))
	for i, in := range r.invs {
		cp := map[string]interface{}{}
		for k, v := range in.rec {
			cp[k] = v
		}
		res[i] = cp
	}
	return res, nil
}

func opRelease(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	r := regs[str(p["reg"])]
	mu.Unlock()
	n := 0
	r.mu.Lock()
	for _, in := range r.invs {
		if in.rec["status"] == "running" {
			in.rec["status"] = "released"
			close(in.release)
			n++
		}
	}
	r.mu.Unlock()
	return n, nil
}

func startCall(p map[string]interface{}) (*callState, error) {
	c, err := getConn(str(p["conn"]))
	if err != nil {
		return nil, err
	}
	opts := dict(p["options"])
	var progcb client.ProgressHandler
	progress := []interface{}{}
	st := &callState{conn: str(p["conn"]), done: make(chan struct{}), progress: &progress}
	if v, _ := opts["receive_progress"].(bool); v {
		delete(opts, "receive_progress")
		progcb = func(r *wamp.Result) {
			progress = append(progress, encode([]interface{}(r.Arguments), c.json))
		}
	}
	args, kwargs := payload(c, list(p["args"]), dict(p["kwargs"]))
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	go func() {
		defer close(st.done)
		res, err := c.c.Call(ctx, str(p["procedure"]), opts, args, kwargs, progcb)
		if err != nil {
			st.err = err
			return
		}
		a := encode([]interface{}(res.Arguments), c.json)
		if a == nil {
			a = []interface{}{}
		}
		st.result = map[string]interface{}{"args": a, "kwargs": encode(map[string]interface{}(res.ArgumentsKw), c.json)}
	}()
	return st, nil
}

func callOutcome(st *callState) (interface{}, error) {
	if st.err != nil {
		if errors.Is(st.err, context.Canceled) {
			return nil, wampErr{uri: "wamp.error.canceled", args: []interface{}{
				"nexus Call() returned context.Canceled after the router's ERROR (its URI is not exposed)"}}
		}
		return nil, asWampErr(st.err)
	}
	st.result["progress"] = *st.progress
	return st.result, nil
}

func opCall(p map[string]interface{}) (interface{}, error) {
	st, err := startCall(p)
	if err != nil {
		return nil, err
	}
	<-st.done
	return callOutcome(st)
}

func opCallStart(p map[string]interface{}) (interface{}, error) {
	st, err := startCall(p)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	calls[str(p["call"])] = st
	mu.Unlock()
	return map[string]interface{}{}, nil
}

func opCallCancel(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	st := calls[str(p["call"])]
	mu.Unlock()
	c, err := getConn(st.conn)
	if err != nil {
		return nil, err
	}
	if err := c.c.SetCallCancelMode(str(p["mode"])); err != nil {
		return nil, err
	}
	st.cancel()
	return nil, nil
}

func opCallWait(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	st := calls[str(p["call"])]
	mu.Unlock()
	t, _ := p["timeout"].(float64)
	if i, ok := p["timeout"].(int64); ok {
		t = float64(i)
	}
	select {
	case <-st.done:
		return callOutcome(st)
	case <-time.After(time.Duration(t * float64(time.Second))):
		return map[string]interface{}{"pending": true}, nil
	}
}

func opDrop(p map[string]interface{}) (interface{}, error) {
	return nil, unsupported{"the client has no way to close its transport without GOODBYE " +
		"(Close() says GOODBYE first)"}
}

func opUnsubscribe(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	s := subs[str(p["sub"])]
	mu.Unlock()
	c, err := getConn(s.conn)
	if err != nil {
		return nil, err
	}
	return nil, asWampErr(c.c.Unsubscribe(s.topic))
}

func opUnregister(p map[string]interface{}) (interface{}, error) {
	mu.Lock()
	r := regs[str(p["reg"])]
	mu.Unlock()
	c, err := getConn(r.conn)
	if err != nil {
		return nil, err
	}
	return nil, asWampErr(c.c.Unregister(r.procedure))
}

func asWampErr(err error) error {
	if err == nil {
		return nil
	}
	var rpc client.RPCError
	if errors.As(err, &rpc) {
		return wampErr{uri: string(rpc.Err.Error), args: rpc.Err.Arguments, kwargs: rpc.Err.ArgumentsKw}
	}
	// Subscribe/Register/Publish errors are plain errors carrying the ERROR's URI text
	if m := regexp.MustCompile(`(wamp\.error\.[a-z_.]+)`).FindStringSubmatch(err.Error()); m != nil {
		return wampErr{uri: m[1], args: []interface{}{err.Error()}}
	}
	return err
}

var ops = map[string]func(map[string]interface{}) (interface{}, error){
	"connect": opConnect, "disconnect": opDisconnect, "drop": opDrop,
	"subscribe": opSubscribe, "events": opEvents, "unsubscribe": opUnsubscribe,
	"publish": opPublish, "register": opRegister, "invocations": opInvocations,
	"release": opRelease, "unregister": opUnregister, "call": opCall,
	"call_start": opCallStart, "call_cancel": opCallCancel, "call_wait": opCallWait,
}

func handle(req map[string]interface{}) {
	id := req["id"]
	op := str(req["op"])
	defer func() {
		if r := recover(); r != nil {
			send(map[string]interface{}{"id": id, "ok": false, "exception": fmt.Sprint("panic: ", r)})
		}
	}()
	fn, ok := ops[op]
	if !ok {
		send(map[string]interface{}{"id": id, "ok": false, "unsupported": "op " + op})
		return
	}
	params := decode(req).(map[string]interface{})
	res, err := fn(params)
	if err == nil {
		isJSON := false
		send(map[string]interface{}{"id": id, "ok": true, "result": encode(res, isJSON)})
		return
	}
	var u unsupported
	var w wampErr
	switch {
	case errors.As(err, &u):
		send(map[string]interface{}{"id": id, "ok": false, "unsupported": u.why})
	case errors.As(err, &w):
		send(map[string]interface{}{"id": id, "ok": false, "error": w.uri,
			"args": encode(w.args, false), "kwargs": encode(w.kwargs, false)})
	default:
		send(map[string]interface{}{"id": id, "ok": false, "exception": err.Error()})
	}
}

func main() {
	send(map[string]interface{}{"hello": map[string]interface{}{
		"client": "nexus", "version": nexusVersion(), "library": lib,
		"websocket": []string{"json", "msgpack", "cbor"}, "rawsocket": []string{"json", "msgpack", "cbor"},
		"features": map[string]interface{}{"callee_call_canceling": true, "publication_id": false},
	}})
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			dec := json.NewDecoder(strings.NewReader(string(line)))
			dec.UseNumber()
			var req map[string]interface{}
			if dec.Decode(&req) == nil {
				if str(req["op"]) == "quit" {
					break
				}
				go handle(req)
			}
		}
		if err != nil {
			break
		}
	}
	mu.Lock()
	for _, c := range conns {
		c.c.Close()
	}
	mu.Unlock()
}
