//! The local server's graceful shutdown loses no settlement. A `tollgate` process routes a
//! `least-busy` group of two deployments on a real redis-server, so every request it sends
//! upstream counts +1 in `router:inflight:<id>` and its settlement counts −1; each case checks
//! the count is 1 while a stream is open and back to 0 once the process has exited after
//! SIGTERM:
//! - a stream open at SIGTERM still completes (to `data: [DONE]`), new connections are
//!   refused meanwhile, and the process exits 0;
//! - a stream whose client left just before SIGTERM settles before the process exits;
//! - a stream longer than the grace bound is dropped at the bound, and still settles;
//! - a second signal ends the grace period at once, and the dropped stream still settles.
//!
//! The upstream is a small OpenAI-compatible server in this file that streams a chosen number
//! of events at a chosen pace (`drip-<ms>-x<count>` in the model name), so the cases control
//! how long a stream lasts. Where a settlement is quick enough to win a race against the
//! exit by luck, Redis holds writes (`CLIENT PAUSE ... WRITE`) for a moment so the settlement
//! is surely still running when the process would exit. Exiting at the signal fails every
//! case; skipping only the wait for after-response work fails the last two.

#[allow(dead_code)]
#[path = "../src/test_support.rs"]
mod test_support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use test_support::{free_port, start_redis};
use tollgate_core::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const KEY: &str = "sk-graceful";
/// The deployments of each group, by `model_info.id`.
const QUICK_IDS: [&str; 2] = ["quick-a", "quick-b"];
const LONG_IDS: [&str; 2] = ["long-a", "long-b"];

/// `quick`: 60 events 20 ms apart (about 1.2 s); `long`: 600 events 50 ms apart (30 s).
fn config(upstream: u16) -> String {
    let deployment = |group: &str, model: &str, id: &str| {
        format!(
            "  - model_name: {group}\n    litellm_params: {{model: openai/{model}, \
             api_base: \"http://127.0.0.1:{upstream}/v1\", api_key: sk-up}}\n    \
             model_info: {{id: {id}}}\n"
        )
    };
    let mut yaml = String::from("model_list:\n");
    for id in QUICK_IDS {
        yaml += &deployment("quick", "gpt-drip-20-x60", id);
    }
    for id in LONG_IDS {
        yaml += &deployment("long", "gpt-drip-50-x600", id);
    }
    yaml + "router_settings:\n  routing_strategy: least-busy\n\
            general_settings:\n  master_key: sk-graceful\n"
}

// ---------------------------------------------------------------- the gateway process

/// One `tollgate` process; killed on drop if it is still running.
struct Gateway {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Gateway {
    fn start(name: &str, upstream: u16, redis_port: u16, env: &[(&str, &str)]) -> Gateway {
        let dir = std::env::temp_dir().join(format!("tollgate-graceful-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join(format!("{name}.yaml"));
        std::fs::write(&config_path, config(upstream)).unwrap();
        let log = dir.join(format!("{name}.log"));
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&config_path).args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ]);
        for var in [
            "TOLLGATE_CONFIG",
            "TOLLGATE_CONFIG_YAML",
            "AWS_LAMBDA_RUNTIME_API",
            "TOLLGATE_SHUTDOWN_GRACE_SECS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("TOLLGATE_STORE", "redis")
            .env("REDIS_URL", format!("redis://127.0.0.1:{redis_port}"))
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("start tollgate");
        let gateway = Gateway { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tollgate did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status, once the process has exited within `bound`.
    fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tollgate still running {bound:?} after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- a streaming client

/// A streamed chat completion in progress, read raw (the test needs the socket itself).
struct OpenStream {
    socket: TcpStream,
    seen: String,
}

impl OpenStream {
    /// Sends a streaming request to `group` and reads until the first `data:` event.
    fn open(port: u16, group: &str) -> OpenStream {
        let body = format!(
            r#"{{"model":"{group}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            socket,
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut stream = OpenStream {
            socket,
            seen: String::new(),
        };
        while !stream.seen.contains("data: {") {
            assert!(
                stream.read_some(),
                "the stream ended before its first event"
            );
        }
        assert!(
            stream.seen.starts_with("HTTP/1.1 200"),
            "not a 200: {}",
            stream.seen
        );
        stream
    }

    /// Reads what arrived; false at the end of the connection.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.socket.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => false,
        }
    }

    /// Reads until the connection ends; returns everything received.
    fn read_to_end(mut self) -> String {
        while self.read_some() {}
        self.seen
    }
}

// ---------------------------------------------------------------- the Store's view

/// Sum of `router:inflight:<id>` over `ids`, read through the Redis Store backend.
fn in_flight(redis_port: u16, ids: &[&str]) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = tollgate_lambda::store::redis::RedisStore::connect(
            &format!("redis://127.0.0.1:{redis_port}"),
            Duration::from_secs(5),
        )
        .await
        .expect("connect to redis-server");
        let mut total = 0;
        for id in ids {
            total += store
                .counter_get(&format!("router:inflight:{id}"))
                .await
                .expect("read the counter");
        }
        total
    })
}

/// How long [`pause_writes`] holds the settlement in the client-left case.
const SETTLEMENT_HELD: Duration = Duration::from_millis(300);

/// `CLIENT PAUSE <ms> WRITE`: Redis holds every client's writes (the gateway's settlement
/// among them) for `hold`, reads go on.
fn pause_writes(redis_port: u16, hold: Duration) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).unwrap();
    let mut connection = client.get_connection().expect("connect to redis-server");
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(hold.as_millis() as u64)
        .arg("WRITE")
        .query::<()>(&mut connection)
        .expect("CLIENT PAUSE");
}

// ---------------------------------------------------------------- the upstream

/// An OpenAI-compatible upstream that streams `x<count>` content events, `drip-<ms>` apart,
/// for each chat request (model `...drip-<ms>-x<count>`), then the finish chunk, usage and
/// `[DONE]`. Stops sending when the gateway hangs up. Runs until the test process ends.
fn start_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = drip(socket);
            });
        }
    });
    port
}

fn number_after(s: &str, marker: &str) -> Option<u64> {
    let rest = &s[s.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn drip(socket: TcpStream) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut reader = BufReader::new(socket.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body);
    let pause = Duration::from_millis(number_after(&body, "drip-").unwrap_or(10));
    let count = number_after(&body, "-x").unwrap_or(10);
    let mut out = socket;
    out.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    let mut send = |event: String| -> std::io::Result<()> {
        write!(out, "{:x}\r\n{event}\r\n", event.len())?;
        out.flush()
    };
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\
             \"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    send(chunk(r#"{"role":"assistant","content":""}"#, "null"))?;
    for i in 0..count {
        std::thread::sleep(pause);
        send(chunk(&format!(r#"{{"content":"w{i} "}}"#), "null"))?;
    }
    send(chunk("{}", "\"stop\""))?;
    send(format!(
        "data: {{\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":{count},\"total_tokens\":{}}}}}\n\n",
        count + 1
    ))?;
    send("data: [DONE]\n\n".into())?;
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

// ---------------------------------------------------------------- the cases

fn refuses_connections_within(port: u16, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn sigterm_lets_an_open_stream_finish_then_exits_settled() {
    let redis = start_redis(&[]);
    let upstream = start_upstream();
    let mut gateway = Gateway::start("finish", upstream, redis.port, &[]);
    let stream = OpenStream::open(gateway.port, "quick");
    assert_eq!(in_flight(redis.port, &QUICK_IDS), 1, "the request counts");

    gateway.terminate();
    assert!(
        refuses_connections_within(gateway.port, Duration::from_secs(2)),
        "still accepting connections after SIGTERM"
    );
    let text = stream.read_to_end();
    assert!(
        text.contains("data: [DONE]"),
        "the open stream was cut at SIGTERM: {}",
        &text[text.len().saturating_sub(300)..]
    );
    let status = gateway.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        in_flight(redis.port, &QUICK_IDS),
        0,
        "not settled; log:\n{}",
        gateway.log_text()
    );
}

#[test]
fn a_client_that_left_just_before_sigterm_is_settled_before_exit() {
    let redis = start_redis(&[]);
    let upstream = start_upstream();
    let mut gateway = Gateway::start("left", upstream, redis.port, &[]);
    let stream = OpenStream::open(gateway.port, "long");
    assert_eq!(in_flight(redis.port, &LONG_IDS), 1, "the request counts");

    // Redis holds writes for a moment (shorter than the gateway's 500 ms Store timeout), so
    // the settlement of the client that leaves now is surely still running at SIGTERM: it
    // must be waited for, or it is lost with the process.
    pause_writes(redis.port, SETTLEMENT_HELD);
    let _ = stream.socket.shutdown(std::net::Shutdown::Both);
    drop(stream);
    std::thread::sleep(Duration::from_millis(50));
    gateway.terminate();
    let status = gateway.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        in_flight(redis.port, &LONG_IDS),
        0,
        "the abandoned stream was not settled before exit; log:\n{}",
        gateway.log_text()
    );
}

#[test]
fn a_stream_past_the_grace_bound_is_dropped_and_still_settled() {
    let redis = start_redis(&[]);
    let upstream = start_upstream();
    let grace = Duration::from_secs(1);
    let mut gateway = Gateway::start(
        "bound",
        upstream,
        redis.port,
        &[("TOLLGATE_SHUTDOWN_GRACE_SECS", "1")],
    );
    let stream = OpenStream::open(gateway.port, "long");
    assert_eq!(in_flight(redis.port, &LONG_IDS), 1, "the request counts");

    let signalled = Instant::now();
    gateway.terminate();
    // Hold Redis writes across the end of the grace period, so the settlement of the stream
    // dropped then is still running when the connections are gone: the exit must wait for it.
    let redis_port = redis.port;
    let holder = std::thread::spawn(move || {
        std::thread::sleep(grace - Duration::from_millis(200));
        pause_writes(redis_port, Duration::from_millis(400));
    });
    let text = stream.read_to_end();
    let cut_after = signalled.elapsed();
    assert!(!text.contains("[DONE]"), "a 30 s stream cannot have ended");
    assert!(
        cut_after >= grace - Duration::from_millis(100),
        "the stream was cut after {cut_after:?}, before the grace period ended"
    );
    let status = gateway.wait_exit(Duration::from_secs(4));
    let exited_after = signalled.elapsed();
    holder.join().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        exited_after < grace + Duration::from_secs(3),
        "exited {exited_after:?} after SIGTERM"
    );
    assert_eq!(
        in_flight(redis.port, &LONG_IDS),
        0,
        "the dropped stream was not settled; log:\n{}",
        gateway.log_text()
    );
}

#[test]
fn a_second_signal_ends_the_grace_period_and_still_settles() {
    let redis = start_redis(&[]);
    let upstream = start_upstream();
    let mut gateway = Gateway::start("twice", upstream, redis.port, &[]);
    let stream = OpenStream::open(gateway.port, "long");
    assert_eq!(in_flight(redis.port, &LONG_IDS), 1, "the request counts");

    let signalled = Instant::now();
    gateway.terminate();
    std::thread::sleep(Duration::from_millis(300));
    gateway.terminate();
    let text = stream.read_to_end();
    assert!(!text.contains("[DONE]"), "a 30 s stream cannot have ended");
    let status = gateway.wait_exit(Duration::from_secs(4));
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "the second signal did not cut the 20 s grace short"
    );
    assert_eq!(
        in_flight(redis.port, &LONG_IDS),
        0,
        "the dropped stream was not settled; log:\n{}",
        gateway.log_text()
    );
}
