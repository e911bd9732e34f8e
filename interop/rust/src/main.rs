//! Adapter: wamp_async (Rust) for the interop scenarios (see ../scenarios.py, PROTOCOL).
//!
//! wamp_async 0.3.1 as used here: WebSocket and RawSocket (tcp://), JSON and msgpack.
//! Its API has no options at all: subscribe(topic), publish(topic, args, kwargs,
//! acknowledge), register(uri, fn(args, kwargs)), call(uri, args, kwargs); events and
//! invocations come without details, call errors without their args (only the URI),
//! a callee error is always ERROR wamp.async.rs.rpc.failed, it does not expose its own
//! session id, and payloads are serde_json::Value (no byte strings). WAMP-CRA is not
//! built in: the adapter signs the challenge in the challenge handler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Notify, RwLock};
use wamp_async::{
    AuthenticationChallengeResponse, AuthenticationMethod, Client, ClientConfig, SerializerType,
    WampError, WampKwArgs,
};

const VERSION: &str = "0.3.1";

enum Failure {
    Unsupported(String),
    Wamp(String, Value),
    Other(String),
}

type Res = Result<Value, Failure>;

struct Conn {
    client: RwLock<Option<Client<'static>>>,
}

struct Inv {
    rec: Value,
    status: String,
    release: Arc<Notify>,
}

#[derive(Default)]
struct State {
    conns: HashMap<String, Arc<Conn>>,
    events: HashMap<String, Arc<Mutex<Vec<Value>>>>,
    invs: HashMap<String, Arc<Mutex<Vec<Inv>>>>,
    calls: HashMap<String, Arc<CallState>>,
}

struct CallState {
    done: Notify,
    outcome: Mutex<Option<Res>>,
}

fn state() -> &'static Mutex<State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(State::default()))
}

fn unsupported<T>(why: &str) -> Result<T, Failure> {
    Err(Failure::Unsupported(why.to_string()))
}

fn s(p: &Value, k: &str) -> String {
    p.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn has_bytes(v: &Value) -> bool {
    match v {
        Value::Object(m) => (m.len() == 1 && m.contains_key("$bytes")) || m.values().any(has_bytes),
        Value::Array(a) => a.iter().any(has_bytes),
        _ => false,
    }
}

fn no_options(p: &Value, what: &str) -> Result<(), Failure> {
    if let Some(Value::Object(m)) = p.get("options") {
        for (k, v) in m {
            if k == "acknowledge" || v.is_null() {
                continue;
            }
            return unsupported(&format!("{} takes no options (asked for '{}')", what, k));
        }
    }
    Ok(())
}

fn payload(p: &Value) -> Result<(Vec<Value>, Map<String, Value>), Failure> {
    let args = p.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
    let kwargs = p.get("kwargs").and_then(Value::as_object).cloned().unwrap_or_default();
    if has_bytes(&Value::Array(args.clone())) || has_bytes(&Value::Object(kwargs.clone())) {
        return unsupported("payloads are serde_json::Value: no byte strings");
    }
    Ok((args, kwargs))
}

fn werr(e: WampError) -> Failure {
    match e {
        WampError::ServerError(uri, details) => Failure::Wamp(
            uri,
            json!([format!("(wamp_async gives no ERROR args; details: {:?})", details)]),
        ),
        other => {
            // publish/subscribe/register errors come as text: "... returned an error: URI {...}"
            let text = format!("{}", other);
            match text.find("wamp.error.") {
                Some(i) => {
                    let uri: String = text[i..].chars().take_while(|c| !c.is_whitespace()).collect();
                    Failure::Wamp(uri, json!([text]))
                }
                None => Failure::Other(text),
            }
        }
    }
}

fn conn(p: &Value) -> Result<Arc<Conn>, Failure> {
    state()
        .lock()
        .unwrap()
        .conns
        .get(&s(p, "conn"))
        .cloned()
        .ok_or_else(|| Failure::Other("no such connection".into()))
}

fn wampcra_sign(secret: &str, challenge: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(challenge.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn op_connect(p: Value) -> Res {
    let ser = s(&p, "serializer");
    let serializer = match ser.as_str() {
        "json" => SerializerType::Json,
        "msgpack" => SerializerType::MsgPack,
        _ => return unsupported("no CBOR serializer (JSON and msgpack only)"),
    };
    let mut url = s(&p, "url");
    if s(&p, "transport") == "rawsocket" {
        url = format!("tcp://{}", url.splitn(2, "://").nth(1).unwrap_or(""));
    }
    let cfg = ClientConfig::default()
        .set_serializers(vec![serializer])
        .set_max_msg_size(16 * 1024 * 1024);
    let (mut client, (evt_loop, rpc_queue)) =
        Client::connect(&url, Some(cfg)).await.map_err(werr)?;
    tokio::spawn(evt_loop);
    if let Some(mut q) = rpc_queue {
        tokio::spawn(async move {
            while let Some(f) = q.recv().await {
                tokio::spawn(f);
            }
        });
    }
    let realm = s(&p, "realm");
    let secret = s(&p, "secret");
    let joined = match s(&p, "authmethod").as_str() {
        "ticket" => {
            client
                .join_realm_with_authentication(
                    realm.clone(),
                    vec![AuthenticationMethod::Ticket],
                    s(&p, "authid"),
                    move |_, _| {
                        let secret = secret.clone();
                        async move { Ok(AuthenticationChallengeResponse::with_signature(secret)) }
                    },
                )
                .await
        }
        "wampcra" => {
            client
                .join_realm_with_authentication(
                    realm.clone(),
                    vec![AuthenticationMethod::WampCra],
                    s(&p, "authid"),
                    move |_, extra| {
                        let challenge = match extra.get("challenge") {
                            Some(wamp_async::Arg::String(c)) => c.clone(),
                            Some(wamp_async::Arg::Uri(c)) => c.clone(),
                            _ => String::new(),
                        };
                        let sig = wampcra_sign(&secret, &challenge);
                        async move { Ok(AuthenticationChallengeResponse::with_signature(sig)) }
                    },
                )
                .await
        }
        _ => client.join_realm(realm.clone()).await,
    };
    if let Err(e) = joined {
        return Err(match e {
            WampError::ServerError(uri, d) => Failure::Wamp(uri, json!([format!("{:?}", d)])),
            // an ABORT is reported as another error: the join was refused, reason not exposed
            other => Failure::Wamp(String::new(), json!([format!("{}", other)])),
        });
    }
    let c = Arc::new(Conn { client: RwLock::new(Some(client)) });
    state().lock().unwrap().conns.insert(s(&p, "conn"), c);
    Ok(json!({"session": null, "authid": null, "authrole": null, "authmethod": null, "realm": realm}))
}

async fn op_disconnect(p: Value) -> Res {
    let c = state().lock().unwrap().conns.remove(&s(&p, "conn"));
    if let Some(c) = c {
        let client = c.client.write().await.take();
        if let Some(mut client) = client {
            let _ = tokio::time::timeout(Duration::from_secs(3), client.leave_realm()).await;
            let _ = tokio::time::timeout(Duration::from_secs(3), client.disconnect()).await;
        }
    }
    Ok(Value::Null)
}

async fn op_subscribe(p: Value) -> Res {
    no_options(&p, "subscribe()")?;
    let c = conn(&p)?;
    let guard = c.client.read().await;
    let client = guard.as_ref().ok_or_else(|| Failure::Other("closed".into()))?;
    let (id, mut queue) = client.subscribe(s(&p, "topic")).await.map_err(werr)?;
    let recs = Arc::new(Mutex::new(Vec::new()));
    state().lock().unwrap().events.insert(s(&p, "sub"), recs.clone());
    tokio::spawn(async move {
        while let Some((_pub_id, args, kwargs)) = queue.recv().await {
            recs.lock().unwrap().push(json!({
                "args": args.unwrap_or_default(), "kwargs": kwargs.unwrap_or_default(),
                "publisher": null, "publisher_authrole": null, "topic": null, "retained": null,
            }));
        }
    });
    Ok(json!({ "id": u64::from(std::num::NonZeroU64::from(id)) }))
}

async fn op_events(p: Value) -> Res {
    let recs = state().lock().unwrap().events.get(&s(&p, "sub")).cloned();
    Ok(match recs {
        Some(r) => Value::Array(r.lock().unwrap().clone()),
        None => json!([]),
    })
}

async fn op_publish(p: Value) -> Res {
    no_options(&p, "publish()")?;
    let (args, kwargs) = payload(&p)?;
    let c = conn(&p)?;
    let guard = c.client.read().await;
    let client = guard.as_ref().ok_or_else(|| Failure::Other("closed".into()))?;
    let id = client.publish(s(&p, "topic"), Some(args), Some(kwargs), true).await.map_err(werr)?;
    Ok(json!({ "id": id.map(|i| u64::from(std::num::NonZeroU64::from(i))) }))
}

async fn op_register(p: Value) -> Res {
    no_options(&p, "register()")?;
    let behavior = s(&p, "behavior");
    match behavior.as_str() {
        "echo" | "echo1" | "value" | "held" => {}
        "details" => return unsupported("an endpoint gets no INVOCATION details"),
        "error" => return unsupported("an endpoint's error is always sent as ERROR wamp.async.rs.rpc.failed"),
        _ => return unsupported("an endpoint cannot send progressive results"),
    }
    let value = p.get("value").cloned().unwrap_or(Value::Null);
    let invs: Arc<Mutex<Vec<Inv>>> = Arc::new(Mutex::new(Vec::new()));
    state().lock().unwrap().invs.insert(s(&p, "reg"), invs.clone());
    let c = conn(&p)?;
    let guard = c.client.read().await;
    let client = guard.as_ref().ok_or_else(|| Failure::Other("closed".into()))?;
    let id = client
        .register(s(&p, "procedure"), move |args: Option<Vec<Value>>, kwargs: Option<WampKwArgs>| {
            let invs = invs.clone();
            let behavior = behavior.clone();
            let value = value.clone();
            async move {
                let args = args.unwrap_or_default();
                let kwargs = kwargs.unwrap_or_default();
                let release = Arc::new(Notify::new());
                invs.lock().unwrap().push(Inv {
                    rec: json!({"args": args.clone(), "kwargs": kwargs.clone(), "procedure": null,
                                "caller": null, "caller_authrole": null, "progress": false}),
                    status: "running".into(),
                    release: release.clone(),
                });
                match behavior.as_str() {
                    "echo" => Ok((Some(args), Some(kwargs))),
                    "echo1" => Ok((Some(vec![args.first().cloned().unwrap_or(Value::Null)]), None)),
                    "value" => Ok((Some(vec![value]), None)),
                    _ => {
                        let _ = tokio::time::timeout(Duration::from_secs(60), release.notified()).await;
                        Ok((Some(vec![json!("released")]), None))
                    }
                }
            }
        })
        .await
        .map_err(werr)?;
    Ok(json!({ "id": u64::from(std::num::NonZeroU64::from(id)) }))
}

async fn op_invocations(p: Value) -> Res {
    let invs = state().lock().unwrap().invs.get(&s(&p, "reg")).cloned();
    let mut out = Vec::new();
    if let Some(invs) = invs {
        for i in invs.lock().unwrap().iter() {
            let mut rec = i.rec.clone();
            rec["status"] = json!(i.status);
            out.push(rec);
        }
    }
    Ok(Value::Array(out))
}

async fn op_release(p: Value) -> Res {
    let invs = state().lock().unwrap().invs.get(&s(&p, "reg")).cloned();
    let mut n = 0;
    if let Some(invs) = invs {
        for i in invs.lock().unwrap().iter_mut() {
            if i.status == "running" {
                i.status = "released".into();
                i.release.notify_one();
                n += 1;
            }
        }
    }
    Ok(json!(n))
}

async fn do_call(p: Value) -> Res {
    no_options(&p, "call()")?;
    let (args, kwargs) = payload(&p)?;
    let c = conn(&p)?;
    let guard = c.client.read().await;
    let client = guard.as_ref().ok_or_else(|| Failure::Other("closed".into()))?;
    let (a, k) = client.call(s(&p, "procedure"), Some(args), Some(kwargs)).await.map_err(werr)?;
    Ok(json!({"args": a.unwrap_or_default(), "kwargs": k.unwrap_or_default(), "progress": []}))
}

async fn op_call_start(p: Value) -> Res {
    no_options(&p, "call()")?;
    payload(&p)?;
    let st = Arc::new(CallState { done: Notify::new(), outcome: Mutex::new(None) });
    state().lock().unwrap().calls.insert(s(&p, "call"), st.clone());
    tokio::spawn(async move {
        let r = do_call(p).await;
        *st.outcome.lock().unwrap() = Some(r);
        st.done.notify_waiters();
    });
    Ok(json!({}))
}

async fn op_call_wait(p: Value) -> Res {
    let st = state().lock().unwrap().calls.get(&s(&p, "call")).cloned();
    let st = st.ok_or_else(|| Failure::Other("no such call".into()))?;
    let secs = p.get("timeout").and_then(Value::as_f64).unwrap_or(1.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(r) = st.outcome.lock().unwrap().take() {
            return r;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(json!({"pending": true}));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn handle(req: Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let op = s(&req, "op");
    let res = match op.as_str() {
        "connect" => op_connect(req).await,
        "disconnect" => op_disconnect(req).await,
        "subscribe" => op_subscribe(req).await,
        "events" => op_events(req).await,
        "publish" => op_publish(req).await,
        "register" => op_register(req).await,
        "invocations" => op_invocations(req).await,
        "release" => op_release(req).await,
        "call" => do_call(req).await,
        "call_start" => op_call_start(req).await,
        "call_wait" => op_call_wait(req).await,
        "call_cancel" => unsupported("no way to cancel a call (no CANCEL in its API)"),
        "drop" => unsupported("no way to close the transport without GOODBYE from its API"),
        other => unsupported(&format!("op {}", other)),
    };
    match res {
        Ok(v) => json!({"id": id, "ok": true, "result": v}),
        Err(Failure::Unsupported(why)) => json!({"id": id, "ok": false, "unsupported": why}),
        Err(Failure::Wamp(uri, args)) => json!({"id": id, "ok": false, "error": uri, "args": args}),
        Err(Failure::Other(text)) => {
            eprintln!("adapter: {} failed: {}", op, text);
            json!({"id": id, "ok": false, "exception": text})
        }
    }
}

async fn emit(out: &Arc<tokio::sync::Mutex<tokio::io::Stdout>>, v: Value) {
    let mut line = v.to_string();
    line.push('\n');
    let mut o = out.lock().await;
    let _ = o.write_all(line.as_bytes()).await;
    let _ = o.flush().await;
}

#[tokio::main]
async fn main() {
    let out = Arc::new(tokio::sync::Mutex::new(tokio::io::stdout()));
    let lib = format!("wamp_async {}", VERSION);
    emit(&out, json!({"hello": {
        "client": "wamp_async", "version": VERSION, "library": lib,
        "websocket": ["json", "msgpack"], "rawsocket": ["json", "msgpack"],
        "unsupported": {"websocket/cbor": format!("{}: no CBOR serializer", lib),
                        "rawsocket/cbor": format!("{}: no CBOR serializer", lib)},
        "features": {"callee_call_canceling": false, "session_id": false, "error_args": false,
                     "welcome_details": false, "invocation_procedure": false}
    }}))
    .await;
    let mut lines = BufReader::with_capacity(1 << 20, tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let req: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if s(&req, "op") == "quit" {
            break;
        }
        let out = out.clone();
        tokio::spawn(async move {
            let ans = handle(req).await;
            emit(&out, ans).await;
        });
    }
    std::process::exit(0);
}
