//! Real servers for tests (Redis, moto's DynamoDB): started on a free 127.0.0.1 port, stopped
//! when the handle drops. Nothing here is mocked; a missing server binary is a test failure
//! that says how to install it (`tests/tools.sh` installs everything). The one stand-in is
//! [`UpstashShim`]: Upstash's REST API (which cannot be reached from tests) in front of a real
//! redis-server.

use std::convert::Infallible;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// A free port on 127.0.0.1 (the OS picks it; there is a small race until the server binds).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The repository root (for `.tools/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A server process that is killed when this drops.
pub struct ChildServer {
    child: Child,
    pub port: u16,
}

impl ChildServer {
    /// Starts `command` (which must listen on `port`) and waits until the port accepts.
    pub fn start(mut command: Command, port: u16, what: &str) -> ChildServer {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start {what} ({e}); run tests/tools.sh to install it")
        });
        let server = ChildServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{what} did not start listening on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on a free port, without persistence, with `extra` arguments.
pub fn start_redis(extra: &[&str]) -> ChildServer {
    start_redis_on(free_port(), extra)
}

/// Starts `redis-server` on `port` (e.g. again on the port of one that was stopped).
pub fn start_redis_on(port: u16, extra: &[&str]) -> ChildServer {
    let port_arg = port.to_string();
    let mut command = Command::new("redis-server");
    command.args([
        "--bind",
        "127.0.0.1",
        "--port",
        &port_arg,
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    command.args(extra);
    ChildServer::start(command, port, "redis-server")
}

/// moto's DynamoDB server on a free port, answering one request at a time
/// (`tests/store/moto_serial.py` says why); returns the server and its endpoint URL.
pub fn start_moto() -> (ChildServer, String) {
    let python = repo_root().join(".tools/venv/bin/python");
    assert!(
        repo_root().join(".tools/venv/bin/moto_server").exists(),
        "moto is missing from {}: run tests/tools.sh to install it",
        python.display()
    );
    let port = free_port();
    let mut command = Command::new(python);
    command
        .arg(repo_root().join("tests/store/moto_serial.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let server = ChildServer::start(command, port, "moto_server");
    (server, format!("http://127.0.0.1:{port}"))
}

/// Upstash's REST API in front of a real redis-server, for the Upstash store's tests: the
/// same requests and replies as Upstash documents. `POST /` with a JSON array command
/// (`["SET", "k", "v"]`; strings or numbers) runs it; `POST /pipeline` with an array of
/// commands runs them in order. Replies are `{"result": ..}` (bulk and simple strings as JSON
/// strings, integers as numbers, arrays as arrays, nil as null) or `{"error": ".."}` with 400
/// when Redis refuses the command (e.g. `NOSCRIPT ..`), 401 without the right
/// `Authorization: Bearer {token}`; a pipeline answers 200 with one of those objects per
/// command. Stops (with its connections) when dropped.
pub struct UpstashShim {
    /// The REST URL, `http://127.0.0.1:{port}`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UpstashShim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl UpstashShim {
    /// Starts the shim for the redis-server on `redis_port`, accepting `token`. Must run inside
    /// a Tokio runtime.
    pub async fn start(redis_port: u16, token: &str) -> UpstashShim {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).expect("a Redis URL");
        let redis = client
            .get_multiplexed_async_connection()
            .await
            .expect("the shim connects to redis-server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the shim");
        let url = format!("http://{}", listener.local_addr().expect("shim address"));
        let expected = Arc::new(format!("Bearer {token}"));
        let task = tokio::spawn(async move {
            // Connections live in the set, so aborting this task closes them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (redis, expected) = (redis.clone(), expected.clone());
                let service = service_fn(move |request| {
                    shim_handle(request, redis.clone(), expected.clone())
                });
                connections.spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        UpstashShim { url, task }
    }
}

async fn shim_handle(
    request: Request<Incoming>,
    mut redis: redis::aio::MultiplexedConnection,
    expected: Arc<String>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Value| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    };
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "Unauthorized"}));
    }
    if request.method() != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "Method not allowed"}),
        );
    }
    let pipeline = match request.uri().path() {
        "/" => false,
        "/pipeline" => true,
        _ => return reply(StatusCode::NOT_FOUND, json!({"error": "Not found"})),
    };
    let body = match Limited::new(request.into_body(), 64 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, json!({"error": "ERR body"})),
    };
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "ERR failed to parse command"}),
        );
    };
    if pipeline {
        let Value::Array(commands) = parsed else {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "ERR failed to parse pipeline request"}),
            );
        };
        let mut results = Vec::with_capacity(commands.len());
        for command in &commands {
            results.push(match shim_run(&mut redis, command).await {
                Ok(result) => json!({ "result": result }),
                Err((_, error)) => json!({ "error": error }),
            });
        }
        return reply(StatusCode::OK, Value::Array(results));
    }
    match shim_run(&mut redis, &parsed).await {
        Ok(result) => reply(StatusCode::OK, json!({ "result": result })),
        Err((status, error)) => reply(status, json!({ "error": error })),
    }
}

/// Runs one JSON command on Redis: the result as Upstash shows it, or the status and error.
async fn shim_run(
    redis: &mut redis::aio::MultiplexedConnection,
    command: &Value,
) -> Result<Value, (StatusCode, String)> {
    let bad = || {
        (
            StatusCode::BAD_REQUEST,
            "ERR failed to parse command".to_string(),
        )
    };
    let Value::Array(parts) = command else {
        return Err(bad());
    };
    let mut words = Vec::with_capacity(parts.len());
    for part in parts {
        words.push(match part {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(bad()),
        });
    }
    let Some((name, args)) = words.split_first() else {
        return Err(bad());
    };
    let mut cmd = redis::cmd(name);
    for arg in args {
        cmd.arg(arg);
    }
    match cmd.query_async::<redis::Value>(redis).await {
        Ok(value) => Ok(shim_json(value)),
        Err(e) => match e.code() {
            // A Redis error reply, as Redis wrote it ("NOSCRIPT No matching script...").
            Some(code) => Err((
                StatusCode::BAD_REQUEST,
                match e.detail() {
                    Some(detail) => format!("{code} {detail}"),
                    None => code.to_string(),
                },
            )),
            None => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("ERR {e}"))),
        },
    }
}

/// A Redis reply as Upstash renders it in JSON.
fn shim_json(value: redis::Value) -> Value {
    use redis::Value as R;
    match value {
        R::Nil => Value::Null,
        R::Int(i) => Value::from(i),
        R::BulkString(bytes) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        R::SimpleString(s) => Value::String(s),
        R::Okay => Value::String("OK".into()),
        R::Array(items) | R::Set(items) => Value::Array(items.into_iter().map(shim_json).collect()),
        R::Map(pairs) => Value::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [shim_json(k), shim_json(v)])
                .collect(),
        ),
        R::Double(d) => Value::from(d),
        R::Boolean(b) => Value::from(i64::from(b)),
        R::VerbatimString { text, .. } => Value::String(text),
        other => Value::String(format!("{other:?}")),
    }
}
