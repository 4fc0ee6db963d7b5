// The crate's public API as plain lines, one item per line, from rustdoc's JSON output:
//   node scripts/public-api.mjs target/doc/sse_status.json > api/ssr.txt
// Every public item reachable from the crate root (through `pub mod` and `pub use`), with its
// kind and, for functions and methods, its signature; struct fields, enum variants, inherent
// methods, trait methods, constants' types and `#[non_exhaustive]`. Lines are sorted, so a
// diff shows exactly what was added, removed or changed. `scripts/public-api.sh` runs it and
// compares with the committed listing.
import { readFileSync } from "node:fs";

const doc = JSON.parse(readFileSync(process.argv[2], "utf8"));
const index = doc.index;
const out = new Set();

const isPublic = (item) => item && item.visibility === "public";
const kindOf = (item) => Object.keys(item.inner)[0];
const attrText = (item) => JSON.stringify(item.attrs ?? []);
const nonExhaustive = (item) => (attrText(item).includes("non_exhaustive") ? "#[non_exhaustive] " : "");
const hidden = (item) => attrText(item).includes("doc(hidden)") || attrText(item).includes("hidden");

function genericArgs(args) {
  if (!args) return "";
  if (args.angle_bracketed) {
    const parts = (args.angle_bracketed.args ?? []).map((a) => {
      if (a.type) return ty(a.type);
      if (a.lifetime) return a.lifetime;
      if (a.const) return a.const.expr ?? "_";
      return "_";
    });
    for (const c of args.angle_bracketed.constraints ?? []) {
      const b = c.binding ?? {};
      parts.push(`${c.name}${b.equality ? " = " + (b.equality.type ? ty(b.equality.type) : "_") : ": " + bounds(b.constraint ?? [])}`);
    }
    return parts.length ? `<${parts.join(", ")}>` : "";
  }
  if (args.parenthesized) {
    const ins = (args.parenthesized.inputs ?? []).map(ty).join(", ");
    const o = args.parenthesized.output ? ` -> ${ty(args.parenthesized.output)}` : "";
    return `(${ins})${o}`;
  }
  return "";
}

function pathName(p) {
  return (p.path ?? p.name ?? "?") + genericArgs(p.args);
}

function bounds(list) {
  return (list ?? [])
    .map((b) => {
      if (b.trait_bound) return pathName(b.trait_bound.trait);
      if (b.outlives) return b.outlives;
      if (b.use) return "use<..>";
      return "?";
    })
    .join(" + ");
}

function ty(t) {
  if (t == null) return "()";
  if (typeof t === "string") return t;
  const [k, v] = Object.entries(t)[0];
  switch (k) {
    case "resolved_path":
      return pathName(v);
    case "generic":
    case "primitive":
      return v;
    case "borrowed_ref":
      return `&${v.lifetime ? v.lifetime + " " : ""}${v.is_mutable ? "mut " : ""}${ty(v.type)}`;
    case "raw_pointer":
      return `*${v.is_mutable ? "mut" : "const"} ${ty(v.type)}`;
    case "tuple":
      return `(${v.map(ty).join(", ")})`;
    case "slice":
      return `[${ty(v)}]`;
    case "array":
      return `[${ty(v.type)}; ${v.len}]`;
    case "impl_trait":
      return `impl ${bounds(v)}`;
    case "dyn_trait":
      return `dyn ${v.traits.map((p) => pathName(p.trait)).join(" + ")}${v.lifetime ? " + " + v.lifetime : ""}`;
    case "qualified_path":
      return `<${ty(v.self_type)}${v.trait ? " as " + pathName(v.trait) : ""}>::${v.name}`;
    case "function_pointer":
      return `fn(${v.sig.inputs.map(([, x]) => ty(x)).join(", ")})${v.sig.output ? " -> " + ty(v.sig.output) : ""}`;
    case "infer":
      return "_";
    default:
      return k;
  }
}

function signature(fn) {
  const sig = fn.sig ?? fn.decl;
  const header = fn.header ?? {};
  const quals = `${header.is_const ? "const " : ""}${header.is_async ? "async " : ""}${header.is_unsafe ? "unsafe " : ""}`;
  const params = (fn.generics?.params ?? [])
    .filter((p) => !(p.kind?.lifetime) && !(p.kind?.type?.is_synthetic))
    .map((p) => p.name);
  const gen = params.length ? `<${params.join(", ")}>` : "";
  const ins = sig.inputs.map(([name, t]) => (name === "self" ? selfParam(t) : `${name}: ${ty(t)}`)).join(", ");
  const o = sig.output ? ` -> ${ty(sig.output)}` : "";
  return { quals, text: `${gen}(${ins})${o}` };
}

function selfParam(t) {
  if (t?.generic === "Self") return "self";
  if (t?.borrowed_ref?.type?.generic === "Self") return t.borrowed_ref.is_mutable ? "&mut self" : "&self";
  return `self: ${ty(t)}`;
}

function emitFunction(path, item) {
  const { quals, text } = signature(item.inner.function);
  out.add(`pub ${quals}fn ${path}${text}`);
}

function emitImpls(path, impls) {
  for (const id of impls ?? []) {
    const imp = index[id];
    if (!imp) continue;
    const inner = imp.inner.impl;
    if (inner.trait) {
      // Trait implementations: listed by trait only (what an embedder can rely on), not
      // blanket or auto traits.
      if (inner.blanket_impl || inner.is_synthetic) continue;
      out.add(`impl ${pathName(inner.trait)} for ${path}`);
      continue;
    }
    for (const mid of inner.items) {
      const m = index[mid];
      if (!isPublic(m) || hidden(m)) continue;
      const k = kindOf(m);
      if (k === "function") emitFunction(`${path}::${m.name}`, m);
      else if (k === "assoc_const") out.add(`pub const ${path}::${m.name}: ${ty(m.inner.assoc_const.type)}`);
    }
  }
}

const seen = new Set();
function walk(path, item, name) {
  if (!item || hidden(item)) return;
  const full = `${path}::${name ?? item.name}`;
  const key = `${full}#${item.id}`;
  if (seen.has(key)) return;
  seen.add(key);
  const k = kindOf(item);
  const v = item.inner[k];
  switch (k) {
    case "module":
      out.add(`pub mod ${full}`);
      for (const id of v.items) {
        const child = index[id];
        if (isPublic(child)) walk(full, child);
      }
      break;
    case "use": {
      const target = v.id != null ? index[v.id] : null;
      if (v.is_glob) {
        if (target && kindOf(target) === "module") {
          for (const id of target.inner.module.items) {
            const child = index[id];
            if (isPublic(child)) walk(path, child);
          }
        } else if (target && kindOf(target) === "enum") {
          for (const id of target.inner.enum.variants) walk(path, index[id]);
        }
      } else if (target) {
        walk(path, target, v.name);
      } else {
        out.add(`pub use ${full} = ${v.source}`);
      }
      break;
    }
    case "struct": {
      out.add(`pub ${nonExhaustive(item)}struct ${full}`);
      const kind = v.kind;
      if (kind.plain) {
        for (const fid of kind.plain.fields) {
          const f = index[fid];
          if (isPublic(f)) out.add(`pub ${full}::${f.name}: ${ty(f.inner.struct_field)}`);
        }
        if (kind.plain.has_stripped_fields) out.add(`${full} has private fields`);
      } else if (kind.tuple) {
        const fields = kind.tuple.map((fid) => (fid != null && isPublic(index[fid]) ? ty(index[fid].inner.struct_field) : "_"));
        out.add(`pub struct ${full}(${fields.join(", ")})`);
      }
      emitImpls(full, v.impls);
      break;
    }
    case "enum":
      out.add(`pub ${nonExhaustive(item)}enum ${full}`);
      for (const vid of v.variants) {
        const variant = index[vid];
        const vk = variant.inner.variant.kind;
        let shape = "";
        if (vk.tuple) shape = `(${vk.tuple.map((fid) => (fid != null ? ty(index[fid].inner.struct_field) : "_")).join(", ")})`;
        if (vk.struct) shape = ` { ${vk.struct.fields.map((fid) => `${index[fid].name}: ${ty(index[fid].inner.struct_field)}`).join(", ")} }`;
        out.add(`${full}::${variant.name}${shape}`);
      }
      emitImpls(full, v.impls);
      break;
    case "union":
      out.add(`pub union ${full}`);
      break;
    case "function":
      emitFunction(full, item);
      break;
    case "constant":
      out.add(`pub const ${full}: ${ty(v.type)}`);
      break;
    case "static":
      out.add(`pub static ${full}: ${ty(v.type)}`);
      break;
    case "type_alias":
      out.add(`pub type ${full} = ${ty(v.type)}`);
      break;
    case "trait":
      out.add(`pub trait ${full}`);
      for (const id of v.items) {
        const m = index[id];
        if (m && kindOf(m) === "function") {
          const { quals, text } = signature(m.inner.function);
          out.add(`${quals}fn ${full}::${m.name}${text}${m.inner.function.has_body ? " (provided)" : ""}`);
        } else if (m) {
          out.add(`${kindOf(m)} ${full}::${m.name}`);
        }
      }
      break;
    case "macro":
    case "proc_macro":
      out.add(`macro ${full}`);
      break;
    default:
      out.add(`${k} ${full}`);
  }
}

const root = index[doc.root];
for (const id of root.inner.module.items) {
  const child = index[id];
  if (isPublic(child)) walk(root.name, child);
}
process.stdout.write([...out].sort().join("\n") + "\n");
