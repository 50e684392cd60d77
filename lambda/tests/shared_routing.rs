//! Two gateway processes sharing one Store see the same routing state: a deployment one
//! process cooled down gets no traffic from the other, and `rpm` limits hold for the sum of
//! both processes' requests. Run on a real redis-server and on moto's DynamoDB.
//!
//! The deployments are the built-in `mock/` provider (no network): `litellm.RateLimitError`
//! makes one answer 429 every time.

#[allow(dead_code)]
#[path = "../src/test_support.rs"]
mod test_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use test_support::{free_port, start_moto, start_redis, ChildServer};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const KEY: &str = "sk-shared-routing";

const CONFIG: &str = r#"
model_list:
  - model_name: cooling
    litellm_params: {model: mock/bad, mock_response: "litellm.RateLimitError"}
    model_info: {id: shared-bad}
  - model_name: cooling
    litellm_params: {model: mock/good, mock_response: "fine"}
    model_info: {id: shared-good}
  - model_name: limited
    litellm_params: {model: mock/one, mock_response: "fine", rpm: 5}
    model_info: {id: shared-one}
  - model_name: limited
    litellm_params: {model: mock/two, mock_response: "fine", rpm: 5}
    model_info: {id: shared-two}
router_settings:
  routing_strategy: usage-based-routing-v2
  cooldown_time: 120
general_settings:
  master_key: sk-shared-routing
"#;

/// One gateway process on a free port, with the Store chosen by `env`.
fn gateway(env: &[(&str, String)]) -> ChildServer {
    let dir = std::env::temp_dir().join(format!("tollgate-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .args(["--port", &port.to_string()]);
    for var in [
        "TOLLGATE_CONFIG",
        "TOLLGATE_CONFIG_YAML",
        "AWS_LAMBDA_RUNTIME_API",
        "REDIS_URL",
        "TOLLGATE_STORE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    ChildServer::start(cmd, port, "tollgate")
}

/// The answer's status and `x-litellm-model-id` / `x-litellm-attempted-retries` headers.
struct Answer {
    status: u16,
    model_id: String,
    retries: String,
}

fn chat(port: u16, group: &str, num_retries: u32) -> Answer {
    let body = format!(
        r#"{{"model":"{group}","messages":[{{"role":"user","content":"hi"}}],"num_retries":{num_retries}}}"#
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Answer {
        status,
        model_id: header("x-litellm-model-id"),
        retries: header("x-litellm-attempted-retries"),
    }
}

/// Waits out the end of the current minute when less than 15 s of it is left, so the
/// per-minute counters cannot roll over mid-test.
fn away_from_a_minute_boundary() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let into_minute = ms % 60_000;
    if into_minute > 45_000 {
        std::thread::sleep(Duration::from_millis(60_000 - into_minute + 500));
    }
}

fn both_processes_share_routing_state(env: &[(&str, String)]) {
    let a = gateway(env);
    let b = gateway(env);

    // Process A meets the failing deployment (usage-based routing tries it first while
    // it has used the fewest tokens) and benches it; its retry goes to the good one.
    let benched = (0..20).any(|_| {
        let answer = chat(a.port, "cooling", 1);
        assert_eq!(answer.status, 200);
        answer.retries == "1"
    });
    assert!(benched, "process A never met the failing deployment");
    // Process B never sends it a request: the cooldown is in the shared Store. Without
    // sharing, B would try it first (fewest tokens) and answer 429 with no retries.
    for _ in 0..10 {
        let answer = chat(b.port, "cooling", 0);
        assert_eq!(
            answer.status, 200,
            "B sent a request to the benched deployment"
        );
        assert_eq!(answer.model_id, "shared-good");
    }

    // rpm 5 on each of two deployments: 10 requests a minute in all, whichever process
    // takes them.
    away_from_a_minute_boundary();
    for port in [
        a.port, a.port, a.port, a.port, a.port, a.port, b.port, b.port, b.port, b.port,
    ] {
        assert_eq!(chat(port, "limited", 0).status, 200);
    }
    for port in [a.port, b.port] {
        let answer = chat(port, "limited", 0);
        assert_eq!(
            answer.status, 429,
            "the limit counts both processes' requests"
        );
    }
}

#[test]
fn two_processes_share_cooldowns_and_usage_on_redis() {
    let redis = start_redis(&[]);
    let url = format!("redis://127.0.0.1:{}", redis.port);
    both_processes_share_routing_state(&[("TOLLGATE_STORE", "redis".into()), ("REDIS_URL", url)]);
}

#[test]
fn two_processes_share_cooldowns_and_usage_on_dynamodb() {
    let (_moto, endpoint) = start_moto();
    let table = "tollgate-shared-routing";
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    for (k, v) in &env {
        std::env::set_var(k, v);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = tollgate_lambda::store::dynamodb::sdk_client(
            Some("us-east-1".into()),
            Some(endpoint.clone()),
            None,
        )
        .await;
        tollgate_lambda::store::dynamodb::DynamoStore::new(
            client,
            table.into(),
            Arc::new(tollgate_lambda::clock::SystemClock),
            Duration::from_secs(5),
        )
        .create_table_if_missing()
        .await
        .expect("the table is created in moto");
    });
    let mut env = env.to_vec();
    env.extend([
        ("TOLLGATE_STORE", "dynamodb".to_string()),
        ("TOLLGATE_DYNAMODB_TABLE", table.to_string()),
        ("TOLLGATE_DYNAMODB_ENDPOINT", endpoint),
    ]);
    both_processes_share_routing_state(&env);
}
