//! Benchmark tool only (ssr feature): the kernel's floor under the server's CPU per delivered
//! event. One thread writes the same small SSE frame to N held loopback TCP connections, with
//! nothing else in the way (no runtime, no HTTP, blocking `write`), while a reader thread waits
//! on all N in epoll as a real client would. It reports the writer thread's CPU per write: what
//! any server pays on this machine for one event to one loopback client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

/// Measure the CPU cost of one loopback TCP write to a waiting reader.
#[derive(Parser)]
struct Args {
    /// Held connections.
    #[arg(long, default_value_t = 5_000)]
    connections: usize,
    /// Writes to every connection (one "broadcast" each).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

/// This thread's CPU time (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(u.ru_utime), tv(u.ru_stime))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut servers = Vec::with_capacity(args.connections);
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let c = TcpStream::connect(addr)?;
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        c.set_nonblocking(true)?;
        servers.push(s);
        clients.push(c);
    }

    // The reader: one epoll over every client socket, draining what arrives.
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || {
            // SAFETY: plain epoll calls on fds this thread owns for its whole life.
            let ep = unsafe { libc::epoll_create1(0) };
            for (i, c) in clients.iter().enumerate() {
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                    u64: i as u64,
                };
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c.as_raw_fd(), &mut ev) };
            }
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 1024, 50) };
                for ev in events.iter().take(n.max(0) as usize) {
                    let mut c = &clients[ev.u64 as usize];
                    while let Ok(k) = c.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        received.fetch_add(k as u64, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let frame = b"event: bench\ndata: {\"t\":1795495698404000000,\"i\":1}\n\n";
    let total = (args.connections * args.rounds) as u64 * frame.len() as u64;
    let (u0, s0) = thread_cpu();
    let started = Instant::now();
    for _ in 0..args.rounds {
        for s in &mut servers {
            s.write_all(frame)?;
        }
        std::thread::sleep(Duration::from_millis(20)); // let the reader catch up, as between broadcasts
    }
    let (u1, s1) = thread_cpu();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let writes = (args.connections * args.rounds) as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / writes;
    println!(
        "{} connections x {} writes of {} bytes: writer CPU {:.2} us/write ({:.2} user + {:.2} sys); received {} of {} bytes; wall {:.2} s",
        args.connections,
        args.rounds,
        frame.len(),
        us(u1 - u0 + (s1 - s0)),
        us(u1 - u0),
        us(s1 - s0),
        received.load(Ordering::Relaxed),
        total,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
