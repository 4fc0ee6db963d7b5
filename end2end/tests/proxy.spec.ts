// The fault proxy itself, against a tiny Node HTTP server (no browser, no sse-status): a fault
// harness that silently forwards everything would make every resilience test pass for nothing.
import { test as base, expect } from '@playwright/test';
import http from 'node:http';
import type net from 'node:net';
import { FaultProxy } from './fixtures/proxy';
import { sleep } from './fixtures/time';

/** `/events` streams a line every 50 ms; every other path answers "ok". */
async function startUpstream(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = http.createServer((req, res) => {
    if (req.url?.startsWith('/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const t = setInterval(() => res.write(`data: ${n++}\n\n`), 50);
      res.on('close', () => clearInterval(t));
    } else {
      res.end('ok');
    }
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

interface Got {
  status: number;
  body: string;
  error?: string;
  res?: http.IncomingMessage;
}

/** GET that resolves with the status as soon as the head arrives (streams keep flowing into `body`). */
function get(url: string, agent?: http.Agent): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { status: 0, body: '' };
    const req = http.get(url, { agent }, (res) => {
      got.status = res.statusCode ?? 0;
      got.res = res;
      res.on('data', (d) => (got.body += d));
      res.on('error', (e) => (got.error = (e as NodeJS.ErrnoException).code ?? e.message));
      res.on('end', () => resolve(got));
      if (url.includes('/events')) resolve(got);
    });
    req.on('error', (e) => {
      got.error = (e as NodeJS.ErrnoException).code ?? e.message;
      resolve(got);
    });
  });
}

const test = base.extend<{ faultProxy: FaultProxy }>({
  // eslint-disable-next-line no-empty-pattern
  faultProxy: async ({}, use) => {
    const upstream = await startUpstream();
    const proxy = await new FaultProxy(upstream.port).start();
    await use(proxy);
    await proxy.close();
    await upstream.close();
  },
});

test('pass forwards and counts /events requests, also on reused keep-alive connections', async ({ faultProxy: proxy }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  expect((await get(`${proxy.url}/`, agent)).body).toBe('ok');
  expect((await get(`${proxy.url}/x`, agent)).body).toBe('ok');
  const stream = await get(`${proxy.url}/events?a=1`, agent);
  expect(stream.status).toBe(200);
  await expect.poll(() => stream.body).toContain('data: 2');
  expect(proxy.connections).toBe(1);
  expect(proxy.eventsRequests).toBe(1);
  stream.res!.destroy();
  agent.destroy();
});

test('status answers /events itself, other paths pass', async ({ faultProxy: proxy }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const open = await get(`${proxy.url}/events`);
  proxy.status(503);
  await expect.poll(() => open.error ?? (open.res?.destroyed ? 'closed' : '')).not.toBe(''); // open stream reset
  expect((await get(`${proxy.url}/`, agent)).body).toBe('ok');
  const r503 = await new Promise<Got>((resolve) => {
    const got: Got = { status: 0, body: '' };
    http.get(`${proxy.url}/events`, { agent }, (res) => {
      got.status = res.statusCode ?? 0;
      expect(res.headers.connection).toBe('close');
      res.on('data', (d) => (got.body += d)).on('end', () => resolve(got));
    });
  });
  expect(r503.status).toBe(503);
  expect(JSON.parse(r503.body)).toHaveProperty('error');
  proxy.status(204);
  const r204 = await get(`${proxy.url}/events`);
  expect(r204.status).toBe(204);
  expect(r204.body).toBe('');
  proxy.status(401);
  expect((await get(`${proxy.url}/events`)).status).toBe(401);
  expect(proxy.eventsRequests).toBe(4);
  proxy.pass();
  const ok = await get(`${proxy.url}/events`);
  expect(ok.status).toBe(200);
  ok.res!.destroy();
  agent.destroy();
});

test('cut resets open and new connections until pass', async ({ faultProxy: proxy }) => {
  const stream = await get(`${proxy.url}/events`);
  await expect.poll(() => stream.body).toContain('data: 1');
  proxy.cut();
  await expect.poll(() => stream.error).toBe('ECONNRESET');
  const during = await get(`${proxy.url}/`);
  expect(during.error).toBe('ECONNRESET');
  proxy.pass();
  expect((await get(`${proxy.url}/`)).body).toBe('ok');
});

test('freeze holds old and new connections without a byte, pass resumes them', async ({ faultProxy: proxy }) => {
  const stream = await get(`${proxy.url}/events`);
  await expect.poll(() => stream.body).toContain('data: 1');
  proxy.freeze();
  await sleep(100); // bytes already in flight may land
  const frozenAt = stream.body.length;
  const held = get(`${proxy.url}/`);
  let heldDone = false;
  void held.then(() => (heldDone = true));
  await sleep(600);
  expect(stream.body.length).toBe(frozenAt);
  expect(stream.error).toBeUndefined();
  expect(heldDone).toBe(false);
  expect(proxy.links.size).toBe(2); // the new connection was accepted and kept open
  proxy.pass();
  expect((await held).body).toBe('ok');
  await expect.poll(() => stream.body.length).toBeGreaterThan(frozenAt);
  stream.res!.destroy();
});
