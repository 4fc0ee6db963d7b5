//! Benchmark tool only (ssr feature): `POST /api/publish` over one kept-alive HTTP/1.1
//! connection, written by hand (no HTTP client stack sharing the CPU with the measurement).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response we read.
const MAX_RESPONSE: usize = 64 * 1024;

/// A publishing client.
pub struct Publisher {
    target: SocketAddr,
    token: String,
    stream: Option<TcpStream>,
}

/// The server's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Publisher {
    /// A client for `target` with bearer `token`; connects on first use.
    pub fn new(target: SocketAddr, token: String) -> Self {
        Publisher {
            target,
            token,
            stream: None,
        }
    }

    /// Publish `body` (JSON). Retries once on a fresh connection if the kept-alive one was
    /// closed by the server.
    pub async fn publish(&mut self, body: &str) -> io::Result<Answer> {
        let request = format!(
            "POST /api/publish HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.target,
            self.token,
            body.len()
        );
        let reused = self.stream.is_some();
        match self.exchange(request.as_bytes()).await {
            Err(_) if reused => {
                self.stream = None;
                self.exchange(request.as_bytes()).await
            }
            other => other,
        }
    }

    /// Open the connection now (if none is open), so that the next publish does not pay for
    /// the TCP handshake: a publish stamped with its send time is then written at once.
    pub async fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.target).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        Ok(())
    }

    async fn exchange(&mut self, request: &[u8]) -> io::Result<Answer> {
        self.connect().await?;
        let Some(stream) = self.stream.as_mut() else {
            unreachable!("connected above");
        };
        let result = async {
            stream.write_all(request).await?;
            read_response(stream).await
        }
        .await;
        match result {
            Ok((answer, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(answer)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Read one response with a `Content-Length` body; also says whether the connection stays open.
async fn read_response(stream: &mut TcpStream) -> io::Result<(Answer, bool)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_RESPONSE {
            return Err(invalid("response head too long"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut length = None;
    let mut keep_alive = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            keep_alive = false;
        }
    }
    let length = length.ok_or_else(|| invalid("no Content-Length in the answer"))?;
    if length > MAX_RESPONSE {
        return Err(invalid("response body too long"));
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Ok((Answer { status, body }, keep_alive))
}
