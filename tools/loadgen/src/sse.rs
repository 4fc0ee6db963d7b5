//! Benchmark tool only (ssr feature): an incremental, sans-IO parser of one `GET /events` HTTP/1.1
//! response — status line, headers, chunked or plain body, then SSE frames split on blank lines.
//! It keeps only small fixed buffers (the current `event:` name and `data:`), so it can sit in
//! every one of ~20,000 held connections; bytes may arrive split anywhere.

/// Longest `event:` name kept (the server allows 64).
pub const NAME_CAP: usize = 64;
/// Longest `data:` kept per frame; longer data is cut and flagged (the benchmark's own events
/// are ~50 bytes). During the head the same buffer holds the current header line.
pub const DATA_CAP: usize = 256;
/// Longest event id kept (longer ones are cut: they are not ours).
pub const ID_CAP: usize = 48;
/// A response head longer than this is refused.
const HEAD_LIMIT: usize = 16 * 1024;

/// Something the parser found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// The head is complete.
    Head { status: u16 },
    /// One SSE event (a frame with at least one `data:` line).
    Event(Event<'a>),
    /// The body ended (last chunk, or `Content-Length` reached).
    End,
}

/// A dispatched SSE event; borrowed from the parser until the next call.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, or `message`.
    pub name: &'a [u8],
    /// The `data:` lines joined by `\n`, at most [`DATA_CAP`] bytes.
    pub data: &'a [u8],
    /// The name or data were longer than their buffer.
    pub truncated: bool,
    /// The stream's last event id when this event was dispatched (the WHATWG "last event ID
    /// buffer": set by `id:` lines, kept across events without one, such as pings).
    pub id: &'a [u8],
}

/// The response cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

/// A fixed-capacity byte buffer that remembers whether it had to cut.
#[derive(Clone, Copy)]
struct Buf<const N: usize> {
    bytes: [u8; N],
    len: u16,
    truncated: bool,
}

impl<const N: usize> Buf<N> {
    const fn new() -> Self {
        Buf {
            bytes: [0; N],
            len: 0,
            truncated: false,
        }
    }

    fn push(&mut self, more: &[u8]) {
        let len = self.len as usize;
        let take = more.len().min(N - len);
        self.bytes[len..len + take].copy_from_slice(&more[..take]);
        self.len += take as u16;
        self.truncated |= take < more.len();
    }

    fn get(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    StatusLine,
    Headers,
    Body,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// Until the peer closes.
    Eof,
    Length(u64),
    Chunked(Chunk),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of the size (`digits` seen so far).
    Size {
        size: u64,
        digits: u8,
    },
    /// After `;` (an extension) or trailing white space: skip to the end of the line.
    SizeRest {
        size: u64,
    },
    Data {
        left: u64,
    },
    /// The CRLF after the chunk data.
    DataEnd {
        cr: bool,
    },
    /// Trailer lines after the last chunk; `empty` while the current line has no bytes.
    Trailer {
        empty: bool,
    },
}

/// Which SSE field the current line sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Event,
    Data,
    Id,
    /// `retry`, comments and unknown fields: not needed here.
    Ignored,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Reading the field name (`len` bytes so far, kept in `fname`).
    Name,
    /// Just after the colon: one space is skipped.
    ValueStart(Field),
    Value(Field),
}

/// The incremental parser; one per connection (~350 bytes).
pub struct Parser {
    phase: Phase,
    body: Body,
    status: u16,
    chunked: bool,
    content_length: Option<u64>,
    head_bytes: usize,
    /// The previous byte was CR (so a following LF ends nothing).
    after_cr: bool,
    line: Line,
    fname: [u8; 5],
    fname_len: u8,
    name: Buf<NAME_CAP>,
    data: Buf<DATA_CAP>,
    data_seen: bool,
    /// The `id:` value being read.
    pending_id: Buf<ID_CAP>,
    last_id: Buf<ID_CAP>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser waiting for the status line.
    pub const fn new() -> Self {
        Parser {
            phase: Phase::StatusLine,
            body: Body::Eof,
            status: 0,
            chunked: false,
            content_length: None,
            head_bytes: 0,
            after_cr: false,
            line: Line::Name,
            fname: [0; 5],
            fname_len: 0,
            name: Buf::new(),
            data: Buf::new(),
            data_seen: false,
            pending_id: Buf::new(),
            last_id: Buf::new(),
        }
    }

    /// Feed the next bytes of the response; `sink` gets every item they complete, in order.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        sink: &mut impl FnMut(Item<'_>),
    ) -> Result<(), ParseError> {
        while !input.is_empty() {
            match self.phase {
                Phase::StatusLine | Phase::Headers => {
                    let used = self.head(input, sink)?;
                    input = &input[used..];
                }
                Phase::Body => {
                    let used = self.body(input, sink)?;
                    input = &input[used..];
                }
                // Anything after the end of the body is not ours to read.
                Phase::Done => return Ok(()),
            }
        }
        Ok(())
    }

    /// Head bytes up to and including the end of one line; returns how many were used.
    fn head(&mut self, input: &[u8], sink: &mut impl FnMut(Item<'_>)) -> Result<usize, ParseError> {
        let (line_part, used, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], i + 1, true),
            None => (input, input.len(), false),
        };
        self.head_bytes += used;
        if self.head_bytes > HEAD_LIMIT {
            return Err(ParseError("response head too long"));
        }
        self.data.push(line_part);
        if !complete {
            return Ok(used);
        }
        let mut line = self.data.get();
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        match self.phase {
            Phase::StatusLine => {
                self.status = parse_status(line)?;
                self.phase = Phase::Headers;
            }
            _ if line.is_empty() => {
                self.body = if self.chunked {
                    Body::Chunked(Chunk::Size { size: 0, digits: 0 })
                } else if let Some(n) = self.content_length {
                    Body::Length(n)
                } else {
                    Body::Eof
                };
                self.phase = Phase::Body;
                self.data.clear();
                sink(Item::Head {
                    status: self.status,
                });
                if self.body == Body::Length(0) {
                    self.phase = Phase::Done;
                    sink(Item::End);
                }
                return Ok(used);
            }
            _ => {
                let colon = line.iter().position(|&b| b == b':');
                if let Some(c) = colon {
                    let (name, value) = (&line[..c], trim(&line[c + 1..]));
                    if name.eq_ignore_ascii_case(b"transfer-encoding") {
                        self.chunked = value
                            .split(|&b| b == b',')
                            .any(|t| trim(t).eq_ignore_ascii_case(b"chunked"));
                    } else if name.eq_ignore_ascii_case(b"content-length") {
                        self.content_length = Some(
                            parse_decimal(value).ok_or(ParseError("bad Content-Length header"))?,
                        );
                    }
                }
            }
        }
        self.data.clear();
        Ok(used)
    }

    /// Body bytes (de-chunked when needed) into the SSE layer; returns how many were used.
    fn body(&mut self, input: &[u8], sink: &mut impl FnMut(Item<'_>)) -> Result<usize, ParseError> {
        match self.body {
            Body::Eof => {
                self.sse(input, sink);
                Ok(input.len())
            }
            Body::Length(left) => {
                let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.sse(&input[..take], sink);
                let left = left - take as u64;
                self.body = Body::Length(left);
                if left == 0 {
                    self.phase = Phase::Done;
                    sink(Item::End);
                }
                Ok(take)
            }
            Body::Chunked(state) => self.chunk(state, input, sink),
        }
    }

    fn chunk(
        &mut self,
        state: Chunk,
        input: &[u8],
        sink: &mut impl FnMut(Item<'_>),
    ) -> Result<usize, ParseError> {
        let b = input[0];
        let next = match state {
            Chunk::Data { left } => {
                let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.sse(&input[..take], sink);
                let left = left - take as u64;
                self.body = Body::Chunked(if left == 0 {
                    Chunk::DataEnd { cr: false }
                } else {
                    Chunk::Data { left }
                });
                return Ok(take);
            }
            Chunk::Size { size, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= 15 {
                        return Err(ParseError("chunk size too large"));
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    Chunk::Size {
                        size: size * 16 + d,
                        digits: digits + 1,
                    }
                }
                b'\n' if digits > 0 => self.chunk_started(size),
                b';' | b' ' | b'\t' | b'\r' if digits > 0 => Chunk::SizeRest { size },
                _ => return Err(ParseError("bad chunk size")),
            },
            Chunk::SizeRest { size } => {
                if b == b'\n' {
                    self.chunk_started(size)
                } else {
                    state
                }
            }
            Chunk::DataEnd { cr } => match b {
                b'\r' if !cr => Chunk::DataEnd { cr: true },
                b'\n' => Chunk::Size { size: 0, digits: 0 },
                _ => return Err(ParseError("chunk data longer than its size")),
            },
            Chunk::Trailer { empty } => match b {
                b'\n' if empty => {
                    self.phase = Phase::Done;
                    sink(Item::End);
                    return Ok(1);
                }
                b'\n' => Chunk::Trailer { empty: true },
                b'\r' => state,
                _ => Chunk::Trailer { empty: false },
            },
        };
        self.body = Body::Chunked(next);
        Ok(1)
    }

    fn chunk_started(&self, size: u64) -> Chunk {
        if size == 0 {
            Chunk::Trailer { empty: true }
        } else {
            Chunk::Data { left: size }
        }
    }

    /// SSE body bytes: lines end with CRLF, LF or CR; a blank line dispatches the frame.
    fn sse(&mut self, mut input: &[u8], sink: &mut impl FnMut(Item<'_>)) {
        while let Some((&b, rest)) = input.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    input = rest;
                    continue;
                }
            }
            if b == b'\n' || b == b'\r' {
                self.after_cr = b == b'\r';
                self.end_line(sink);
                input = rest;
                continue;
            }
            match self.line {
                Line::Value(field) => {
                    // Fast path: the rest of the line in one copy (at least `b`).
                    let end = input
                        .iter()
                        .position(|&c| c == b'\n' || c == b'\r')
                        .unwrap_or(input.len());
                    self.value(field, &input[..end]);
                    input = &input[end..];
                    continue;
                }
                Line::Name if b == b':' => {
                    let field = match &self.fname[..self.fname_len as usize] {
                        b"event" => Field::Event,
                        b"data" => Field::Data,
                        b"id" => Field::Id,
                        _ => Field::Ignored,
                    };
                    self.start_value(field);
                    self.line = Line::ValueStart(field);
                }
                Line::Name => {
                    // Names longer than 5 bytes are none of ours: park them as `Ignored`.
                    if (self.fname_len as usize) < self.fname.len() {
                        self.fname[self.fname_len as usize] = b;
                        self.fname_len += 1;
                    } else {
                        self.fname = *b"#####";
                    }
                }
                Line::ValueStart(field) => {
                    self.line = Line::Value(field);
                    if b != b' ' {
                        self.value(field, &input[..1]);
                    }
                }
            }
            input = rest;
        }
    }

    fn start_value(&mut self, field: Field) {
        match field {
            Field::Event => self.name.clear(),
            Field::Data => {
                if self.data_seen {
                    self.data.push(b"\n");
                }
                self.data_seen = true;
            }
            Field::Id => self.pending_id.clear(),
            Field::Ignored => {}
        }
    }

    fn value(&mut self, field: Field, bytes: &[u8]) {
        match field {
            Field::Event => self.name.push(bytes),
            Field::Data => self.data.push(bytes),
            Field::Id => self.pending_id.push(bytes),
            Field::Ignored => {}
        }
    }

    fn end_line(&mut self, sink: &mut impl FnMut(Item<'_>)) {
        if let Line::Value(Field::Id) | Line::ValueStart(Field::Id) = self.line {
            self.last_id = Buf::new();
            self.last_id.push(self.pending_id.get());
        }
        if self.line == Line::Name {
            if self.fname_len == 0 {
                self.dispatch(sink);
            } else {
                // A field name alone: the field with an empty value.
                match &self.fname[..self.fname_len as usize] {
                    b"event" => self.start_value(Field::Event),
                    b"data" => self.start_value(Field::Data),
                    b"id" => self.last_id.clear(),
                    _ => {}
                }
            }
        }
        self.line = Line::Name;
        self.fname_len = 0;
    }

    fn dispatch(&mut self, sink: &mut impl FnMut(Item<'_>)) {
        if self.data_seen {
            let name = if self.name.len == 0 && !self.name.truncated {
                &b"message"[..]
            } else {
                self.name.get()
            };
            sink(Item::Event(Event {
                name,
                data: self.data.get(),
                truncated: self.name.truncated || self.data.truncated,
                id: self.last_id.get(),
            }));
        }
        self.name.clear();
        self.data.clear();
        self.data_seen = false;
    }
}

fn parse_status(line: &[u8]) -> Result<u16, ParseError> {
    let bad = ParseError("bad status line");
    if !line.starts_with(b"HTTP/1.") {
        return Err(bad);
    }
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let code = parts.nth(1).ok_or(bad.clone())?;
    if code.len() != 3 {
        return Err(bad);
    }
    parse_decimal(code)
        .and_then(|c| u16::try_from(c).ok())
        .ok_or(bad)
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The unsigned integer after `"key":` in a flat JSON object, e.g. `t` in `{"i":3,"t":17}`.
/// A fast path for the benchmark's own events; not a JSON parser.
pub fn json_u64(json: &[u8], key: &str) -> Option<u64> {
    let key = key.as_bytes();
    let mut i = 0;
    while i + key.len() + 3 <= json.len() {
        let at = &json[i..];
        if at[0] == b'"' && at[1..].starts_with(key) && at[1 + key.len()] == b'"' {
            let mut rest = &at[key.len() + 2..];
            rest = trim(rest);
            if let [b':', tail @ ..] = rest {
                let tail = trim(tail);
                let end = tail
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(tail.len());
                return parse_decimal(&tail[..end]);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test sees: items rendered as text.
    fn run(parser: &mut Parser, input: &[u8]) -> Result<Vec<String>, ParseError> {
        let mut out = Vec::new();
        parser.feed(input, &mut |item| {
            out.push(match item {
                Item::Head { status } => format!("head {status}"),
                Item::Event(e) => format!(
                    "{}|{}{}",
                    String::from_utf8_lossy(e.name),
                    String::from_utf8_lossy(e.data),
                    if e.truncated { "|cut" } else { "" }
                ),
                Item::End => "end".to_owned(),
            })
        })?;
        Ok(out)
    }

    /// Feed `input` in pieces of `step` bytes.
    fn run_split(input: &[u8], step: usize) -> Result<Vec<String>, ParseError> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            out.extend(run(&mut p, piece)?);
        }
        Ok(out)
    }

    fn chunked(frames: &[&str]) -> Vec<u8> {
        let mut body = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\ndate: x\r\n\r\n".to_vec();
        for f in frames {
            body.extend(format!("{:x}\r\n{f}\r\n", f.len()).bytes());
        }
        body
    }

    const PING: &str = "event: ping\ndata: {\"seq\":1,\"server_time\":2}\n\n";

    #[test]
    fn chunked_stream_gives_head_then_events_at_every_split() {
        let input = chunked(&[
            "event: connected\ndata: {\"a\":1}\nid: s-0\nretry: 1000\n\n",
            PING,
            ": keep-alive comment\n\n",
            "event: bench\nid: s-1\ndata: {\"i\":0,\"t\":5}\n\n",
        ]);
        let want = vec![
            "head 200",
            "connected|{\"a\":1}",
            "ping|{\"seq\":1,\"server_time\":2}",
            "bench|{\"i\":0,\"t\":5}",
        ];
        for step in 1..=input.len() {
            assert_eq!(run_split(&input, step).unwrap(), want, "split every {step}");
        }
    }

    #[test]
    fn the_last_event_id_is_kept_across_events_without_one() {
        let input = chunked(&[
            "event: connected\nid: s-0\ndata: {}\n\n",
            PING,
            "event: bench\nid: s-7\ndata: x\n\n",
            PING,
            "id\nevent: bench\ndata: y\n\n",
        ]);
        for step in [1, 3, 1000] {
            let mut p = Parser::new();
            let mut ids = Vec::new();
            for piece in input.chunks(step) {
                p.feed(piece, &mut |item| {
                    if let Item::Event(e) = item {
                        ids.push(String::from_utf8_lossy(e.id).into_owned());
                    }
                })
                .unwrap();
            }
            assert_eq!(ids, ["s-0", "s-0", "s-7", "s-7", ""], "split every {step}");
        }
    }

    #[test]
    fn one_event_may_span_several_chunks() {
        let input = chunked(&["event: pi", "ng\nda", "ta: x\n", "\n"]);
        assert_eq!(run_split(&input, 1000).unwrap(), vec!["head 200", "ping|x"]);
    }

    #[test]
    fn line_endings_crlf_cr_and_lf_all_work() {
        let input = chunked(&[
            "event: a\r\ndata: 1\r\n\r\n",
            "event: b\rdata: 2\r\r",
            "data: 3\n\n",
        ]);
        for step in 1..=input.len() {
            assert_eq!(
                run_split(&input, step).unwrap(),
                vec!["head 200", "a|1", "b|2", "message|3"],
                "split every {step}"
            );
        }
    }

    #[test]
    fn sse_field_rules() {
        let input = chunked(&[
            "data\n\n",                       // empty data still dispatches
            "event: only-name\n\n",           // no data: nothing
            "data:no-space\ndata:  two\n\n",  // one space skipped, lines joined
            "eventually: x\ndata: y\n\n",     // unknown long field ignored
            "event:e\nevent: f\ndata: z\n\n", // last event name wins
        ]);
        assert_eq!(
            run_split(&input, 7).unwrap(),
            vec![
                "head 200",
                "message|",
                "message|no-space\n two",
                "message|y",
                "f|z"
            ]
        );
    }

    #[test]
    fn long_data_is_cut_and_flagged() {
        let long = "x".repeat(DATA_CAP + 10);
        let input = chunked(&[&format!("event: big\ndata: {long}\n\n"), PING]);
        let out = run_split(&input, 13).unwrap();
        assert_eq!(out[1], format!("big|{}|cut", "x".repeat(DATA_CAP)));
        assert!(out[2].starts_with("ping|"));
    }

    #[test]
    fn last_chunk_and_trailers_end_the_body() {
        let mut input = chunked(&[PING]);
        input.extend(b"0\r\nx-trailer: 1\r\n\r\n");
        let out = run_split(&input, 3).unwrap();
        assert_eq!(out.last().unwrap(), "end");
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn content_length_and_close_delimited_bodies() {
        let body = "{\"error\":\"too_many_connections\"}";
        let input = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\nretry-after: 2\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(
            run_split(input.as_bytes(), 5).unwrap(),
            vec!["head 503", "end"]
        );
        let plain = format!("HTTP/1.0 200 OK\r\n\r\n{PING}");
        assert_eq!(run_split(plain.as_bytes(), 2).unwrap().len(), 2);
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(run_split(b"SSH-2.0-x\r\n", 4).is_err());
        assert!(run_split(b"HTTP/1.1 2000 OK\r\n", 4).is_err());
        let bad_size = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert!(run_split(bad_size, 4).is_err());
        let overlong = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n";
        assert!(run_split(overlong, 4).is_err());
        let endless = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(HEAD_LIMIT));
        assert!(run_split(endless.as_bytes(), 512).is_err());
    }

    #[test]
    fn json_u64_finds_flat_keys() {
        let d = br#"{"i":12,"t":1764000000123456789}"#;
        assert_eq!(json_u64(d, "i"), Some(12));
        assert_eq!(json_u64(d, "t"), Some(1_764_000_000_123_456_789));
        assert_eq!(json_u64(br#"{"t" : 7 }"#, "t"), Some(7));
        assert_eq!(json_u64(br#"{"it":1}"#, "t"), None);
        assert_eq!(json_u64(br#"{"t":"x"}"#, "t"), None);
    }
}
