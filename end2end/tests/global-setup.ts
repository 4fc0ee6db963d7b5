//! Preflight, once per run: is there a server binary, and does the page it renders ask for files
//! that exist under target/site? A binary built by plain `cargo build`/`cargo test` (not by
//! cargo-leptos) asks for `pkg/sse-status_bg.wasm` while cargo-leptos writes `pkg/sse-status.wasm`:
//! every page then fails to hydrate. Say so once instead of timing out in every test.
import fs from 'node:fs';
import path from 'node:path';
import { freePort, REPO_ROOT, SERVER_BIN, SERVER_SITE, ServerProcess } from './fixtures/server';

export default async function globalSetup(): Promise<void> {
  const rebuild = 'build it with `cargo leptos build` from the repo root';
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`no server binary at ${SERVER_BIN}: ${rebuild}`);
  const server = new ServerProcess(await freePort());
  await server.start();
  try {
    const html = await (await fetch(server.url + '/')).text();
    const assets = [...new Set(html.match(/\/pkg\/[\w.-]+/g) ?? [])];
    const missing = assets.filter((a) => !fs.existsSync(path.join(path.resolve(REPO_ROOT, SERVER_SITE), a)));
    if (assets.length === 0 || missing.length > 0)
      throw new Error(
        `the page asks for ${assets.join(', ') || 'no /pkg/ files'}; missing under ${SERVER_SITE}: ` +
          `${missing.join(', ') || '(none found at all)'}. The binary and the site do not belong ` +
          `together (a plain cargo build/test of the bin replaces cargo-leptos's): ${rebuild}.`,
      );
  } finally {
    await server.stop();
  }
}
