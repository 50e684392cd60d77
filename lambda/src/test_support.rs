//! Real servers for tests (Redis, moto's DynamoDB): started on a free 127.0.0.1 port, stopped
//! when the handle drops. Nothing here is mocked; a missing server binary is a test failure
//! that says how to install it (`tests/tools.sh` installs everything).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
