//! Real Redis with failover per test: one primary, two replicas and three Sentinels
//! (Debian's `redis-server` and `redis-sentinel`) on free loopback ports with temporary
//! directories, Sentinel's failure detection set low; every process is stopped by its PID.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the Sentinels monitor the primary by.
pub const MASTER: &str = "mymaster";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn temp_dir(kind: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        std::env::temp_dir().join(format!("sse-status-{kind}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn spawn(program: &str, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot start {program} ({err}): the failover tests need Debian's redis-server and \
                 redis-sentinel on PATH — run ./scripts/setup.sh"
            )
        })
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// One `redis-server` of the set.
pub struct Node {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self, replica_of: Option<u16>) {
        assert!(self.child.is_none(), "already running");
        let mut args = super::redis_server::server_args(self.port, &self.dir);
        args.extend(["--repl-ping-replica-period".into(), "1".into()]);
        if let Some(primary) = replica_of {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.to_string(),
            ]);
        }
        self.child = Some(spawn("redis-server", &args));
    }

    /// `kill -9`: the process dies at once, without flushing or saying goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERM, and SIGKILL if it has not exited 5 s later: a node that was paused
    /// (`CLIENT PAUSE WRITE`) and then demoted once went on running after SIGTERM, and an
    /// unbounded wait here (in a destructor, where no timeout can fire) hung the test run.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// `ROLE`'s first word (`master`, `slave`), or `None` while it does not answer.
    pub async fn role(&self) -> Option<String> {
        let mut conn = connect(self.port).await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.ok()?;
        redis::from_redis_value_ref(role.first()?).ok()
    }
}

/// A connection for polling (short timeouts: a node that does not answer is not ready).
async fn connect(port: u16) -> Option<redis::aio::MultiplexedConnection> {
    connect_within(port, Duration::from_millis(500)).await
}

async fn connect_within(port: u16, within: Duration) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(within))
        .set_response_timeout(Some(within));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()
}

/// Three `redis-server`s (node 0 starts as the primary) and three Sentinels watching them.
pub struct RedisHa {
    pub nodes: Vec<Node>,
    sentinels: Vec<Node>,
}

impl RedisHa {
    /// Start everything and wait until the replicas are in sync and every Sentinel knows the
    /// two replicas and the two other Sentinels (so a failover can be agreed on).
    pub async fn start() -> RedisHa {
        let mut nodes: Vec<Node> = (0..3)
            .map(|_| Node {
                port: free_port(),
                dir: temp_dir("redis-ha"),
                child: None,
            })
            .collect();
        let primary = nodes[0].port;
        for (i, node) in nodes.iter_mut().enumerate() {
            node.start((i > 0).then_some(primary));
        }
        let mut sentinels: Vec<Node> = (0..3)
            .map(|_| Node {
                port: free_port(),
                dir: temp_dir("sentinel"),
                child: None,
            })
            .collect();
        for s in &mut sentinels {
            let conf = s.dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 2000\n\
                     sentinel parallel-syncs {MASTER} 2\n",
                    port = s.port,
                    dir = s.dir.display(),
                ),
            )
            .expect("sentinel.conf");
            s.child = Some(spawn(
                "redis-sentinel",
                &[conf.to_str().expect("utf-8 path").to_owned()],
            ));
        }
        let ha = RedisHa { nodes, sentinels };
        super::eventually("Redis + Sentinel settled", Duration::from_secs(20), || {
            ha.settled()
        })
        .await;
        ha
    }

    async fn settled(&self) -> bool {
        for s in &self.sentinels {
            let Some(mut conn) = connect(s.port).await else {
                return false;
            };
            let master: Result<HashMap<String, String>, _> = redis::cmd("SENTINEL")
                .arg("MASTER")
                .arg(MASTER)
                .query_async(&mut conn)
                .await;
            let Ok(master) = master else { return false };
            let num = |k: &str| master.get(k).and_then(|v| v.parse::<u32>().ok());
            if num("num-slaves") != Some(2) || num("num-other-sentinels") != Some(2) {
                return false;
            }
        }
        let Some(mut conn) = connect(self.nodes[0].port).await else {
            return false;
        };
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        info.contains("connected_slaves:2")
    }

    /// The Sentinels' addresses, `host:port` each.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The port of the primary the Sentinels name now; fails if no Sentinel names one within
    /// 10 s (each is asked with a 2 s bound, again and again: the tests run on a busy machine).
    pub async fn primary_port(&self) -> u16 {
        super::eventually(
            "a Sentinel names a primary",
            Duration::from_secs(10),
            || async {
                let mut last = Err("no Sentinel answered".to_owned());
                for s in &self.sentinels {
                    let Some(mut conn) = connect_within(s.port, Duration::from_secs(2)).await
                    else {
                        continue;
                    };
                    let addr: Result<Option<(String, u16)>, _> = redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(MASTER)
                        .query_async(&mut conn)
                        .await;
                    match addr {
                        Ok(Some((_, port))) => return Ok(port),
                        other => last = Err(format!("{other:?}")),
                    }
                }
                last
            },
        )
        .await
    }

    /// The index of node on `port`.
    pub fn node_at(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .expect("one of ours")
    }

    /// Start node `i` again (as it was configured at first; Sentinel turns an old primary into
    /// a replica of the new one).
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].start(None);
    }

    /// Cut replica `i` off its primary: it drops the link and cannot come back (it offers a
    /// password the primary refuses), as behind a broken network. Undone by
    /// [`mend_replication`](Self::mend_replication).
    pub async fn cut_replication(&self, i: usize) {
        self.command_on(i, "CONFIG SET masterauth", || {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("SET").arg("masterauth").arg("not-the-password");
            cmd
        })
        .await;
        self.command_on(i, "CLIENT KILL TYPE master", || {
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("KILL").arg("TYPE").arg("master");
            cmd
        })
        .await;
    }

    /// Run a command on node `i`, a few tries on fresh connections (2 s bound each): the
    /// failover tests run it while 1,000 streams and a publish storm load the machine.
    async fn command_on(&self, i: usize, what: &str, cmd: impl Fn() -> redis::Cmd) {
        let mut last = None;
        for _ in 0..10 {
            if let Some(mut conn) = connect_within(self.nodes[i].port, Duration::from_secs(2)).await
            {
                match cmd().query_async::<redis::Value>(&mut conn).await {
                    Ok(_) => return,
                    Err(err) => last = Some(err.to_string()),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what} on node {i}: {last:?}");
    }

    /// Let replica `i` connect to its primary again (this runs right after the primary was
    /// killed, on a busy machine).
    pub async fn mend_replication(&self, i: usize) {
        self.command_on(i, "CONFIG SET masterauth", || {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("SET").arg("masterauth").arg("");
            cmd
        })
        .await;
    }

    /// `CLIENT PAUSE <ms> WRITE` on node `i`: it takes no writes for that long (replication
    /// and reads go on), the first step of a safe planned failover.
    pub async fn pause_writes(&self, i: usize, ms: u64) {
        self.command_on(i, "CLIENT PAUSE WRITE", || {
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("PAUSE").arg(ms).arg("WRITE");
            cmd
        })
        .await;
    }

    /// A planned failover (`SENTINEL FAILOVER`): a replica is promoted while the old primary
    /// still runs, and is then turned into a replica.
    pub async fn sentinel_failover(&self) {
        let mut conn = connect_within(self.sentinels[0].port, Duration::from_secs(5))
            .await
            .expect("sentinel answers");
        let _: () = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(MASTER)
            .query_async(&mut conn)
            .await
            .expect("SENTINEL FAILOVER");
    }

    /// A command connection to node `i`.
    pub async fn conn(&self, i: usize) -> redis::aio::MultiplexedConnection {
        connect_within(self.nodes[i].port, Duration::from_secs(5))
            .await
            .expect("node answers")
    }
}

impl Drop for RedisHa {
    fn drop(&mut self) {
        for s in &mut self.sentinels {
            s.stop();
            let _ = std::fs::remove_dir_all(&s.dir);
        }
        for n in &mut self.nodes {
            n.stop();
            let _ = std::fs::remove_dir_all(&n.dir);
        }
    }
}
