//! Benchmark tool only (ssr feature): what the kernel says about a process — the server's
//! resident memory and CPU time from `/proc/<pid>`, our own CPU time from `getrusage`, and our
//! open-files limit.

use std::fs;
use std::io;
use std::time::Duration;

/// One look at the server process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// `VmRSS` of `/proc/<pid>/status`, in KiB.
    pub rss_kib: u64,
    /// `utime + stime` of `/proc/<pid>/stat`, converted from clock ticks.
    pub cpu_ticks: Duration,
    /// `utime` alone (userland), converted from clock ticks.
    pub user_ticks: Duration,
    /// Sum over the live threads of `/proc/<pid>/task/*/schedstat` (nanosecond resolution);
    /// `None` where the kernel does not keep scheduler statistics.
    pub cpu_sched: Option<Duration>,
}

impl Sample {
    /// Read all three for `pid`.
    pub fn read(pid: u32) -> io::Result<Self> {
        let (user_ticks, system_ticks) = stat_cpu(pid)?;
        Ok(Sample {
            rss_kib: vm_rss_kib(pid)?,
            cpu_ticks: user_ticks + system_ticks,
            user_ticks,
            cpu_sched: schedstat_cpu(pid).ok(),
        })
    }
}

impl Sample {
    /// The sum over several server processes (instances sharing one port).
    pub fn read_many(pids: &[u32]) -> io::Result<Self> {
        let mut total = Sample {
            cpu_sched: Some(Duration::ZERO),
            ..Sample::default()
        };
        for &pid in pids {
            let s = Sample::read(pid)?;
            total.rss_kib += s.rss_kib;
            total.cpu_ticks += s.cpu_ticks;
            total.user_ticks += s.user_ticks;
            total.cpu_sched = match (total.cpu_sched, s.cpu_sched) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        Ok(total)
    }
}

/// CPU time spent by the server between two samples: from schedstat when both have it.
pub fn cpu_between(a: &Sample, b: &Sample) -> Duration {
    match (a.cpu_sched, b.cpu_sched) {
        // schedstat counts live threads only: fall back to the tick count if it went backwards
        // (a thread exited between the samples).
        (Some(x), Some(y)) if y >= x => y - x,
        _ => b.cpu_ticks.saturating_sub(a.cpu_ticks),
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 if the call fails).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// `VmRSS` of a process, in KiB.
pub fn vm_rss_kib(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS line"))
}

/// Our own `VmRSS`, in KiB.
pub fn own_rss_kib() -> io::Result<u64> {
    vm_rss_kib(std::process::id())
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `(utime, stime)` of a whole process (all threads, also exited ones).
fn stat_cpu(pid: u32) -> io::Result<(Duration, Duration)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (user, system) = parse_stat_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/pid/stat"))?;
    let hz = clock_ticks_per_sec();
    let time = |ticks: u64| Duration::from_nanos(ticks * 1_000_000_000 / hz);
    Ok((time(user), time(system)))
}

fn parse_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Field 3 (state) is the first here; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Nanoseconds on CPU of every live thread of `pid` (bounded: at most 4096 threads).
fn schedstat_cpu(pid: u32) -> io::Result<Duration> {
    let mut total = 0u64;
    for entry in fs::read_dir(format!("/proc/{pid}/task"))?.take(4096) {
        let path = entry?.path().join("schedstat");
        let Ok(text) = fs::read_to_string(path) else {
            continue; // the thread just exited
        };
        let ns: u64 = text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad schedstat"))?;
        total += ns;
    }
    Ok(Duration::from_nanos(total))
}

/// CPU time of our own process.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnCpu {
    /// In userland (parsing, the runtime).
    pub user: Duration,
    /// In the kernel (socket reads, loopback TCP, epoll).
    pub system: Duration,
}

impl OwnCpu {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// Our own CPU time so far (`getrusage(RUSAGE_SELF)`, µs resolution).
pub fn own_cpu() -> OwnCpu {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return OwnCpu::default();
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    OwnCpu {
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
    }
}

/// Raise our soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> io::Result<u64> {
    // SAFETY: get/setrlimit only read and write the struct we pass.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tsse-status\nVmPeak:\t  9 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some((250, 75)));
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        let s = Sample::read(me).unwrap();
        assert!(s.rss_kib > 0);
        // Burn a little CPU so both clocks move.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let t = Sample::read(me).unwrap();
        assert!(cpu_between(&s, &t) > Duration::ZERO || s.cpu_sched.is_none());
        assert!(own_cpu().total() > Duration::ZERO);
    }
}
