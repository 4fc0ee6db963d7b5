//! The crate's shape, checked on every test run (no features needed): four layers whose arrows
//! point one way — `protocol` ← `server`, `client` ← `app` — and no import circles between the
//! files of `src/`.
//!
//! An arrow is any path a file names into another module of the crate (`use crate::…`,
//! `super::…`, `self::…`, also inside expressions), resolved to the file that defines the
//! longest matching module; a `mod.rs` re-exporting a child is an arrow to that child, as the
//! child naming its parent is one back. Test modules at the end of a file (`#[cfg(test)] mod
//! tests { … }`) are left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: its module path (`["server", "stream", "feed"]`) and its code.
struct File {
    module: Vec<String>,
    code: String,
    /// Modules declared here (`mod x;`): a path may start with one (`use x::Y`).
    children: Vec<String>,
}

/// Every `.rs` file under `src/` by module path. `#[path = "x.rs"] mod name;` is honoured.
fn read_crate(root: &Path) -> BTreeMap<Vec<String>, (PathBuf, File)> {
    let mut files = BTreeMap::new();
    walk(root, &root.join("lib.rs"), Vec::new(), &mut files);
    files
}

fn walk(
    root: &Path,
    path: &Path,
    module: Vec<String>,
    out: &mut BTreeMap<Vec<String>, (PathBuf, File)>,
) {
    let code = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let code = strip_tests(&strip_comments(&code));
    // Children: `mod name;`, possibly with `#[path = "file.rs"]` on a line before.
    let dir = if path
        .file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
    {
        path.parent().unwrap().to_path_buf()
    } else {
        path.with_extension("")
    };
    let mut pending_path: Option<String> = None;
    let mut children = Vec::new();
    for line in code.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#[path = \"") {
            pending_path = rest.split('"').next().map(str::to_owned);
            continue;
        }
        let decl = line
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ")
            .strip_prefix("mod ")
            .and_then(|r| r.strip_suffix(';'));
        if let Some(name) = decl {
            children.push(name.to_owned());
            let child = match pending_path.take() {
                Some(file) => path.parent().unwrap().join(file),
                None if dir.join(format!("{name}.rs")).exists() => dir.join(format!("{name}.rs")),
                None => dir.join(name).join("mod.rs"),
            };
            if child.exists() {
                let mut m = module.clone();
                m.push(name.to_owned());
                walk(root, &child, m, out);
            }
        } else if !line.starts_with("#[") {
            pending_path = None;
        }
    }
    // Two files for one module (a `cfg`-chosen side, e.g. the browser driver and its inert
    // stand-in): both are read; paths resolve to the first.
    let mut key = module.clone();
    while out.contains_key(&key) {
        key.push("#alt".into());
    }
    let rel = path
        .strip_prefix(root.parent().unwrap())
        .unwrap()
        .to_path_buf();
    out.insert(
        key,
        (
            rel,
            File {
                module,
                code,
                children,
            },
        ),
    );
}

/// Code without `//` and `/* */` comments (doc comments name paths that are not imports).
fn strip_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_str = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Code before a trailing test module (`#[cfg(test)]` or `#[cfg(all(test, …))]`, then
/// `mod tests {`).
fn strip_tests(code: &str) -> String {
    let mut search = 0;
    while let Some(at) = code[search..].find("mod tests {") {
        let at = search + at;
        let before = code[..at].trim_end();
        if let Some(attr) = before.rfind("#[cfg(") {
            if before[attr..].contains("test") && before[attr..].ends_with(")]") {
                return code[..attr].to_owned();
            }
        }
        search = at + 1;
    }
    code.to_owned()
}

/// Byte ranges of inline modules (`mod name { … }`): inside one, `super` means the file's own
/// module.
fn inline_modules(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut ranges = Vec::new();
    let mut search = 0;
    while let Some(at) = code[search..].find("mod ") {
        let at = search + at;
        search = at + 4;
        let rest = &code[at + 4..];
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len == 0 || !rest[name_len..].trim_start().starts_with('{') {
            continue;
        }
        let open = at + 4 + name_len + rest[name_len..].find('{').unwrap();
        let mut depth = 0;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        ranges.push((open, i));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    ranges
}

/// Every path the code names that starts at `crate`, `super`, `self` or a child module of the
/// file (read as `self::child`), with `use` groups (`use crate::a::{b, c::d}`) expanded.
fn paths(code: &str, children: &[String]) -> Vec<(Vec<String>, usize)> {
    let inline = inline_modules(code);
    let child_prefixes: Vec<String> = children.iter().map(|c| format!("{c}::")).collect();
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rooted = ["crate::", "super::", "self::"]
            .into_iter()
            .any(|p| at_word && code[i..].starts_with(p));
        // A child's name after `::` is part of a longer path, not a start.
        let after_colons = i >= 2 && &bytes[i - 2..i] == b"::";
        let child = at_word
            && !after_colons
            && child_prefixes
                .iter()
                .any(|p| code[i..].starts_with(p.as_str()));
        if !rooted && !child {
            i += 1;
            continue;
        }
        // Read a path with nested `{…}` groups.
        let mut depth = 0;
        let mut j = i;
        while j < code.len() {
            let c = bytes[j];
            if c == b'{' {
                depth += 1;
            } else if c == b'}' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            } else if depth == 0 && !(c.is_ascii_alphanumeric() || c == b'_' || c == b':') {
                break;
            }
            j += 1;
        }
        let mut here = Vec::new();
        if child {
            expand(&format!("self::{}", &code[i..j]), &mut here);
        } else {
            expand(&code[i..j], &mut here);
        }
        let depth = inline.iter().filter(|(a, b)| (*a..*b).contains(&i)).count();
        found.extend(here.into_iter().map(|p| (p, depth)));
        i = j.max(i + 1);
    }
    found
}

/// `a::b::{c, d::{e, f}}` → `a::b::c`, `a::b::d::e`, `a::b::d::f`.
fn expand(path: &str, out: &mut Vec<Vec<String>>) {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    match path.find('{') {
        None => out.push(
            path.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Some(open) => {
            let prefix = &path[..open];
            let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
            let mut depth = 0;
            let mut part = String::new();
            for c in inner.chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if c == ',' && depth == 0 {
                    if !part.is_empty() {
                        expand(&format!("{prefix}{part}"), out);
                    }
                    part.clear();
                } else {
                    part.push(c);
                }
            }
        }
    }
}

/// The module a path leads into, as an absolute module path; `inline` is how many inline
/// modules of the file enclose the path (each absorbs one `super`).
fn absolute(from: &[String], inline: usize, path: &[String]) -> Vec<String> {
    // The module `self` refers to: the file's own module.
    let mut base: Vec<String> = from.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    let mut absorbed = 0;
    while rest.first().is_some_and(|s| s == "super") {
        if absorbed < inline {
            absorbed += 1;
        } else {
            base.pop();
        }
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    base
}

fn layer(module: &[String]) -> &str {
    match module.first().map(String::as_str) {
        Some("protocol") => "protocol",
        Some("server") => "server",
        Some("client") => "client",
        Some("app") => "app",
        _ => "root",
    }
}

/// Which layers a layer may import.
fn allowed(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("server", "protocol")
                | ("client", "protocol")
                | ("app", "protocol" | "server" | "client")
                | ("root", _)
        )
}

struct Graph {
    names: Vec<PathBuf>,
    edges: Vec<BTreeSet<usize>>,
    /// Why each edge exists: the path named.
    why: BTreeMap<(usize, usize), String>,
    layer_breaks: Vec<String>,
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_crate(&root);
    let keys: Vec<&Vec<String>> = files.keys().collect();
    let names = files.values().map(|(p, _)| p.clone()).collect();
    let index: BTreeMap<&Vec<String>, usize> =
        keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut edges = vec![BTreeSet::new(); keys.len()];
    let mut why = BTreeMap::new();
    let mut layer_breaks = Vec::new();
    for (from_key, (from_path, file)) in &files {
        let from = index[from_key];
        for (path, inline) in paths(&file.code, &file.children) {
            let target = absolute(&file.module, inline, &path);
            // The longest prefix that is a file's module.
            let Some(to_key) = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|k| files.contains_key(k))
            else {
                continue;
            };
            let to = index[&to_key];
            let (from_layer, to_layer) = (layer(&file.module), layer(&to_key));
            if !allowed(from_layer, to_layer) {
                layer_breaks.push(format!(
                    "{} ({from_layer}) imports {} ({to_layer})",
                    from_path.display(),
                    path.join("::")
                ));
            }
            if to != from {
                edges[from].insert(to);
                why.entry((from, to)).or_insert_with(|| path.join("::"));
            }
        }
    }
    Graph {
        names,
        edges,
        why,
        layer_breaks,
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(g: &Graph) -> Vec<Vec<usize>> {
    struct T<'a> {
        g: &'a Graph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &t.g.edges[v] {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let n = g.names.len();
    let mut t = T {
        g,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let g = graph();
    assert!(
        g.names.iter().any(|n| n.ends_with("server/live.rs")),
        "the crate was read: {:?}",
        g.names
    );
    assert!(
        g.layer_breaks.is_empty(),
        "arrows that point up or sideways:\n{}",
        g.layer_breaks.join("\n")
    );
}

#[test]
fn no_import_circles() {
    let g = graph();
    let found = circles(&g);
    let mut report = String::new();
    for scc in &found {
        report.push_str("circle:\n");
        for &a in scc {
            for &b in &g.edges[a] {
                if scc.contains(&b) {
                    report.push_str(&format!(
                        "  {} -> {} ({})\n",
                        g.names[a].display(),
                        g.names[b].display(),
                        g.why[&(a, b)]
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{report}");
}

#[test]
fn the_checker_sees_circles_and_layer_breaks() {
    // The checker itself: a two-file circle and an upward arrow are found.
    let g = Graph {
        names: vec!["a.rs".into(), "b.rs".into(), "c.rs".into()],
        edges: vec![[1].into(), [0].into(), BTreeSet::new()],
        why: BTreeMap::new(),
        layer_breaks: Vec::new(),
    };
    assert_eq!(circles(&g).len(), 1);
    assert!(!allowed("server", "client"));
    assert!(!allowed("protocol", "server"));
    assert!(!allowed("client", "app"));
    assert!(allowed("app", "server"));
    let mut out = Vec::new();
    expand("crate::a::{b, c::{d, e}}", &mut out);
    assert_eq!(
        out,
        vec![
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c", "d"],
            vec!["crate", "a", "c", "e"]
        ]
    );
    let (xy, super_z) = (
        ["x".to_owned(), "y".to_owned()],
        ["super".to_owned(), "z".to_owned()],
    );
    assert_eq!(absolute(&xy, 0, &super_z), vec!["x", "z"]);
    assert_eq!(absolute(&xy, 1, &super_z), vec!["x", "y", "z"]);
    assert_eq!(inline_modules("mod a { fn f() {} } mod b;"), vec![(6, 18)]);
    assert_eq!(
        strip_tests("x\n#[cfg(all(test, feature = \"ssr\"))]\nmod tests {}"),
        "x\n"
    );
}
