//! Both sides, pure: a small JSON reader for the protocol's own event data, and a writer of flat
//! JSON objects of strings. The browser decodes its few event types with these instead of
//! serde_json, whose deserializer and float formatting were a sixth of the page's wasm
//! (issue 18). The server writes every type with serde; the tests check that both read the same.

/// A JSON value, as far as the protocol's types need one: everything else (booleans, arrays,
/// numbers that are not a `u64`) is checked for syntax and kept as [`Value::Other`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Str(String),
    /// A non-negative integer that fits a `u64`.
    UInt(u64),
    Object(Fields),
    Other,
}

/// The fields of an object, in their order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fields(Vec<(String, Value)>);

/// How deep values may nest (serde_json's limit).
const MAX_DEPTH: u32 = 128;

/// `text` as one JSON object (`None`: not JSON, or not an object).
pub(crate) fn object(text: &str) -> Option<Fields> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let value = p.value(0)?;
    p.ws();
    match value {
        Value::Object(fields) if p.i == p.s.len() => Some(fields),
        _ => None,
    }
}

impl Fields {
    /// The value of `name` (inner `None`: absent); `None` when it appears twice, which serde
    /// refuses too.
    fn get(&self, name: &str) -> Option<Option<&Value>> {
        let mut found = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = found.next();
        found.next().is_none().then_some(first)
    }

    /// A required string.
    pub(crate) fn str(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A required `u64`.
    pub(crate) fn uint(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            Some(Value::UInt(n)) => Some(*n),
            _ => None,
        }
    }

    /// A `u64` that is 0 when absent (`#[serde(default)]`).
    pub(crate) fn uint_or_zero(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            None => Some(0),
            Some(Value::UInt(n)) => Some(*n),
            _ => None,
        }
    }

    /// An `Option` field: absent or `null` is `Some(None)`, anything else goes through `decode`.
    pub(crate) fn opt<T>(
        &self,
        name: &str,
        decode: impl FnOnce(&Value) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.get(name)? {
            None | Some(Value::Null) => Some(None),
            Some(v) => decode(v).map(Some),
        }
    }
}

impl Value {
    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Skip white space, then take `b` if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        let found = self.peek() == Some(b);
        if found {
            self.i += 1;
        }
        found
    }

    fn value(&mut self, depth: u32) -> Option<Value> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let name = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        fields.push((name, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Object(Fields(fields)))
            }
            b'[' => {
                self.i += 1;
                if !self.eat(b']') {
                    loop {
                        self.value(depth + 1)?;
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Other)
            }
            b'"' => self.string().map(Value::Str),
            b'n' => self.word(b"null", Value::Null),
            b't' => self.word(b"true", Value::Other),
            b'f' => self.word(b"false", Value::Other),
            _ => self.number(),
        }
    }

    fn word(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let found = self.s[self.i..].starts_with(word);
        self.i += word.len();
        found.then_some(value)
    }

    /// One or more digits; their value if it fits a `u64`.
    fn digits(&mut self) -> Option<Option<u64>> {
        let start = self.i;
        let mut n = Some(0u64);
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n
                .and_then(|n| n.checked_mul(10))
                .and_then(|n| n.checked_add(u64::from(d - b'0')));
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }

    fn number(&mut self) -> Option<Value> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        let start = self.i;
        let int = self.digits()?;
        if leading_zero && self.i - start > 1 {
            return None;
        }
        let mut whole = !negative;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
            whole = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
            whole = false;
        }
        Some(match int {
            Some(n) if whole => Value::UInt(n),
            _ => Value::Other,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        digits
            .iter()
            .try_fold(0, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
    }

    /// A string, the parser standing on its opening quote.
    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => break,
                0..=0x1f => return None,
                b'\\' => {
                    let escaped = match self.peek()? {
                        b @ (b'"' | b'\\' | b'/') => char::from(b),
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            self.i += 1;
                            let mut c = self.hex4()?;
                            if (0xd800..0xdc00).contains(&c) {
                                // A surrogate pair: the low half must follow as `\uXXXX`.
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return None;
                                }
                                self.i += 2;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return None;
                                }
                                c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
                            }
                            self.i -= 1;
                            char::from_u32(c)?
                        }
                        _ => return None,
                    };
                    self.i += 1;
                    let mut buf = [0; 4];
                    out.extend_from_slice(escaped.encode_utf8(&mut buf).as_bytes());
                }
                b => out.push(b),
            }
        }
        // The input is a `str` and escapes add whole characters: always UTF-8.
        String::from_utf8(out).ok()
    }
}

/// A JSON object of string fields, written as serde_json writes one (`json!` sorts its keys, so
/// list them sorted for the same text).
#[cfg_attr(not(feature = "app"), allow(dead_code))]
pub(crate) fn write_object(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, name);
        out.push(':');
        write_str(&mut out, value);
    }
    out.push('}');
    out
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\0'..='\u{1f}' => {
                out.push_str("\\u00");
                out.push(char::from(HEX[c as usize >> 4]));
                out.push(char::from(HEX[c as usize & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn str_value(text: &str) -> Option<String> {
        object(&format!("{{\"s\":{text}}}"))?.str("s")
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let cases = [
            r#"{}"#,
            r#" { "a" : "x" , "n" : 12 } "#,
            r#"{"a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#,
            r#"{"n":18446744073709551615}"#,
            r#"{"n":0,"m":[1,2.5,-3e7,{"x":[]}],"t":true,"f":false,"z":null}"#,
            r#"{"o":{"p":{"q":"r"}}}"#,
        ];
        for text in cases {
            assert!(object(text).is_some(), "{text}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
        }
        assert_eq!(
            str_value(r#""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 中""#).as_deref(),
            Some("\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600} 中")
        );
        let fields =
            object(r#"{"n":18446744073709551615,"m":1.0,"k":-1,"l":18446744073709551616}"#)
                .unwrap();
        assert_eq!(fields.uint("n"), Some(u64::MAX));
        assert_eq!(fields.uint("m"), None, "a float is not a u64");
        assert_eq!(fields.uint("k"), None, "nor is a negative number");
        assert_eq!(fields.uint("l"), None, "nor one beyond u64::MAX");
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let cases = [
            "",
            "[]",
            "\"s\"",
            "{",
            "{} x",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{a:1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"\udc00"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"open}"#,
        ];
        for text in cases {
            assert!(object(text).is_none(), "{text}");
            assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_err(),
                "serde_json reads {text}"
            );
        }
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(object(&format!("{{\"a\":{deep}}}")).is_none());
    }

    #[test]
    fn duplicate_fields_are_refused_like_serde_derive_does() {
        let fields = object(r#"{"a":"x","a":"y","b":"z"}"#).unwrap();
        assert_eq!(fields.str("a"), None);
        assert_eq!(fields.str("b").as_deref(), Some("z"));
    }

    #[test]
    fn optional_fields() {
        let fields = object(r#"{"a":null,"b":"x","c":3}"#).unwrap();
        let as_string = |v: &Value| v.as_str().map(str::to_owned);
        assert_eq!(fields.opt("a", as_string), Some(None));
        assert_eq!(fields.opt("missing", as_string), Some(None));
        assert_eq!(fields.opt("b", as_string), Some(Some("x".to_owned())));
        assert_eq!(
            fields.opt("c", as_string),
            None,
            "the wrong type fails the decode"
        );
        assert_eq!(fields.uint_or_zero("missing"), Some(0));
        assert_eq!(fields.uint_or_zero("c"), Some(3));
        assert_eq!(fields.uint_or_zero("a"), None, "null is no u64");
    }

    #[test]
    fn writes_objects_as_serde_json_does() {
        let text = "a \"quote\" \\ / \n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é 中 😀";
        assert_eq!(
            write_object(&[("text", text), ("topic", "users/alice")]),
            serde_json::json!({ "topic": "users/alice", "text": text }).to_string()
        );
        assert_eq!(write_object(&[]), "{}");
    }

    proptest! {
        #[test]
        fn any_string_round_trips_through_serde_json(s in any::<String>()) {
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(str_value(&json), Some(s.clone()));
            let mut ours = String::new();
            write_str(&mut ours, &s);
            prop_assert_eq!(ours, json);
        }

        #[test]
        fn any_u64_round_trips(n in any::<u64>()) {
            let fields = object(&format!("{{\"n\":{n}}}")).unwrap();
            prop_assert_eq!(fields.uint("n"), Some(n));
        }
    }
}
