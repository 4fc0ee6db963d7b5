//! Benchmark tool only (ssr feature): one plain HTTP/1.1 request and its whole answer on a
//! connection that stays open — how the reused-connection mode warms a connection up the way a
//! browser's page load does before its `/events` request. Content-Length and chunked bodies.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer read (the dashboard is ~10 KB; a wasm bundle ~400 KB).
const MAX_ANSWER: usize = 4 << 20;

/// Send `request`, read its whole answer; an error if it is not a 200 that keeps the connection.
pub async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Result<(), String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("warm-up write: {}", e.kind()))?;
    let mut buf = Vec::with_capacity(4096);
    let (head_len, status, length, chunked, close) = loop {
        read_more(stream, &mut buf).await?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let has = |name: &str, token: &str| {
                    res.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case(name)
                            && String::from_utf8_lossy(h.value)
                                .to_ascii_lowercase()
                                .contains(token)
                    })
                };
                let length = res
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
                break (
                    n,
                    res.code.unwrap_or(0),
                    length,
                    has("transfer-encoding", "chunked"),
                    has("connection", "close"),
                );
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(format!("warm-up answer unparsable: {e}")),
        }
    };
    if status != 200 {
        return Err(format!("warm-up answered HTTP {status}"));
    }
    if close {
        return Err("warm-up answer closes the connection (no keep-alive)".into());
    }
    let mut body = buf.split_off(head_len);
    match (length, chunked) {
        (Some(n), false) => {
            while body.len() < n {
                read_more(stream, &mut body).await?;
            }
            if body.len() > n {
                return Err("bytes after the warm-up answer".into());
            }
        }
        (None, true) => read_chunked(stream, body).await?,
        _ => return Err("warm-up answer has no length (cannot reuse the connection)".into()),
    }
    Ok(())
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    if buf.len() > MAX_ANSWER {
        return Err("warm-up answer too large".into());
    }
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) => Err("closed during the warm-up answer".into()),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(format!("warm-up read: {}", e.kind())),
    }
}

/// Read chunks until the last one (and the trailer's blank line); nothing may follow.
async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> Result<(), String> {
    let mut pos = 0;
    loop {
        let line_end = loop {
            if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            read_more(stream, &mut buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[pos..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailer fields (none expected), then the final CRLF.
            loop {
                if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    if i == 0 {
                        pos += 2;
                        break;
                    }
                    pos += i + 2;
                } else {
                    read_more(stream, &mut buf).await?;
                }
            }
            if pos != buf.len() {
                return Err("bytes after the warm-up answer".into());
            }
            return Ok(());
        }
        while buf.len() < pos + size + 2 {
            read_more(stream, &mut buf).await?;
        }
        pos += size + 2;
    }
}
