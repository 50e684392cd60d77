//! The `tollgate` binary's start-up contract: a bad config stops it with the field path and a
//! non-zero exit; a good one (from a file, `TOLLGATE_CONFIG` or `TOLLGATE_CONFIG_YAML`) serves.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn temp_config(name: &str, yaml: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

fn clean_command() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "TOLLGATE_CONFIG",
        "TOLLGATE_CONFIG_YAML",
        "LITELLM_MASTER_KEY",
        "AWS_LAMBDA_RUNTIME_API",
        "PORT",
    ] {
        c.env_remove(var);
    }
    c
}

fn refused(yaml: &str) -> String {
    let path = temp_config("bad.yaml", yaml);
    let out = clean_command()
        .arg("--config")
        .arg(&path)
        .arg("--port")
        .arg("0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad config must stop start-up");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configs_stop_startup_naming_the_field() {
    let err = refused("model_list:\n  - model_name: x\n    litellm_params: {model: nosuch/m}\n");
    assert!(err.contains("model_list[0].litellm_params.model"), "{err}");
    let err = refused("model_list:\n  - model_name: x\n    litellm_params: {model: openai/m, api_key: os.environ/TOLLGATE_TEST_UNSET}\n");
    assert!(err.contains("TOLLGATE_TEST_UNSET"), "{err}");
    let err = refused("model_list: [oops\n");
    assert!(err.contains("invalid YAML"), "{err}");
    let err = refused(
        "model_list:\n  - model_name: x\n    litellm_params: {model: openai/m, rpm: many}\n",
    );
    assert!(err.contains("model_list[0]"), "{err}");
}

#[test]
fn missing_config_file_is_an_error() {
    let out = clean_command()
        .args(["--config", "/nonexistent/tollgate.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tollgate.yaml"));
}

/// Starts the server with `configure`, asks for `/v1/models`, and returns the body.
fn models_listed(configure: impl FnOnce(&mut Command)) -> String {
    let mut cmd = clean_command();
    cmd.args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    configure(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(stream, "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-start\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    response
}

const GOOD: &str = "model_list:\n  - model_name: from-yaml\n    litellm_params: {model: mock/x}\ngeneral_settings: {master_key: sk-start}\n";

#[test]
fn config_from_each_source_serves() {
    let path = temp_config("good.yaml", GOOD);
    let by_flag = models_listed(|c| {
        c.arg("--config").arg(&path);
    });
    assert!(
        by_flag.starts_with("HTTP/1.1 200") && by_flag.contains("from-yaml"),
        "{by_flag}"
    );
    let by_path_env = models_listed(|c| {
        c.env("TOLLGATE_CONFIG", &path);
    });
    assert!(by_path_env.contains("from-yaml"), "{by_path_env}");
    let by_yaml_env = models_listed(|c| {
        c.env("TOLLGATE_CONFIG_YAML", GOOD);
    });
    assert!(by_yaml_env.contains("from-yaml"), "{by_yaml_env}");
}
