//! A real `redis-server` per test: a free loopback port, a temporary directory, AOF on, stopped
//! by its PID. No mock: fleet tests run against the real thing.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` this test started.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Start one on a free port with an empty directory.
    pub async fn start() -> RedisServer {
        let mut server = RedisServer::not_started();
        server.restart().await;
        server
    }

    /// A free port and an empty directory, nothing running yet (start it with `restart`).
    pub fn not_started() -> RedisServer {
        let dir = std::env::temp_dir().join(format!(
            "sse-status-redis-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        RedisServer {
            port: free_port(),
            dir,
            child: None,
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Start (again) on the same port and directory: the AOF brings the data back.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(server_args(self.port, &self.dir))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start redis-server ({err}): the fleet tests need Debian's redis-server \
                     on PATH — run ./scripts/setup.sh (or apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let url = self.url();
        super::eventually("redis-server up", Duration::from_secs(10), || async {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
            pong.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Stop it gracefully (SIGTERM: the AOF is flushed) and wait until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    /// A command connection for the test itself.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("test connection to redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// How every test Redis starts: its own port on loopback, its own directory, no RDB snapshots,
/// the AOF on (the durability tests restart it).
pub fn server_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_str().expect("utf-8 temp dir");
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "yes",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}
