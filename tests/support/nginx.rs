//! A real nginx per test, running the repository's own `deploy/nginx.conf` with its listen and
//! upstream lines pointed at this test's loopback ports. Stopped by its PID.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An nginx this test started.
pub struct Nginx {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

/// `deploy/nginx.conf` with `listen` on `addr` and one upstream line per instance.
pub fn config_for(addr: SocketAddr, upstreams: &[SocketAddr]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf");
    let template = std::fs::read_to_string(path).expect("deploy/nginx.conf");
    let mut out = String::new();
    let mut upstream_done = false;
    for line in template.lines() {
        let directive = !line.trim_start().starts_with('#');
        if directive && line.contains("# sse-status:listen") {
            out.push_str(&format!("        listen {addr}; # sse-status:listen\n"));
        } else if directive && line.contains("# sse-status:upstream") {
            if !upstream_done {
                for u in upstreams {
                    out.push_str(&format!(
                        "        server {u} max_fails=1 fail_timeout=2s; # sse-status:upstream\n"
                    ));
                }
                upstream_done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(upstream_done, "deploy/nginx.conf has marked upstream lines");
    out
}

/// `nginx` from PATH, else Debian's `/usr/sbin/nginx` (not on every user's PATH).
fn nginx_binary() -> &'static str {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("nginx").is_file()));
    if on_path {
        "nginx"
    } else {
        "/usr/sbin/nginx"
    }
}

impl Nginx {
    /// Start nginx in front of `upstreams` on a free loopback port.
    pub fn start(upstreams: &[SocketAddr]) -> Nginx {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let dir =
            std::env::temp_dir().join(format!("sse-status-nginx-{}-{port}", std::process::id()));
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("nginx temp dir");
        }
        // Workers run as an unprivileged user when started as root: let them use the temp dir.
        let _ = Command::new("chmod")
            .args(["-R", "0777"])
            .arg(&dir)
            .status();
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config_for(addr, upstreams)).expect("write nginx.conf");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start nginx ({err}): the fleet tests need Debian's nginx on PATH \
                     (/usr/sbin) — run ./scripts/setup.sh (or apt-get install nginx)"
                )
            });
        let mut nginx = Nginx {
            addr,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Some(Ok(Some(status))) = nginx.child.as_mut().map(Child::try_wait) {
                panic!("nginx exited at start ({status}); its message is above");
            }
            assert!(Instant::now() < deadline, "nginx did not listen in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
