// The servers an end-to-end test runs against, started like the integration
// harness (tests/integration/harness.py) does: the fake Letterboxd
// (build/fakeboxd on port 0, its port read from --port-file) and the real
// `filmpicker serve` on a free loopback port with a fresh database, a random
// secret key, FILMPICKER_LETTERBOXD_URL pointing at the fake and
// FILMPICKER_WEB_DIR at the web build. Every wait is bounded; stop() sends
// SIGTERM, then SIGKILL after a bounded wait.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BUILD_DIR = process.env.FP_BUILD_DIR || join(ROOT, 'build');
export const WEB_DIST = process.env.FILMPICKER_WEB_DIR || join(ROOT, 'web', 'dist');

const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 10000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function httpOk(url) {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

function tail(path, limit = 4000) {
  try {
    const t = readFileSync(path, 'utf8');
    return t.length <= limit ? t : '...\n' + t.slice(-limit);
  } catch {
    return '';
  }
}

class Proc {
  constructor(name) {
    this.name = name;
    this.child = null;
    this.dir = mkdtempSync(join(tmpdir(), `${name}-`));
    this.logPath = join(this.dir, 'log.txt');
    this.exit = null;
  }

  spawn(cmd, args, env) {
    const fd = openSync(this.logPath, 'w');
    this.child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env, cwd: this.dir });
    closeSync(fd);
    this.exited = new Promise((res) => this.child.once('exit', (code, signal) => res((this.exit = { code, signal }))));
  }

  log() {
    return tail(this.logPath);
  }

  async stop() {
    if (this.child && this.exit === null) {
      this.child.kill('SIGTERM');
      const done = await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS).then(() => null)]);
      if (done === null) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    const log = this.log();
    rmSync(this.dir, { recursive: true, force: true });
    return { exit: this.exit, log };
  }
}

/** build/fakeboxd; flags as in harness.py: {latencyMs: 50} -> --latency-ms 50. */
export async function startFake(flags = {}) {
  const exe = join(BUILD_DIR, 'fakeboxd');
  if (!existsSync(exe)) throw new Error(`fakeboxd not built: ${exe} (set FP_BUILD_DIR)`);
  const p = new Proc('fakeboxd');
  const portFile = join(p.dir, 'port');
  const args = ['--listen', '127.0.0.1:0', '--port-file', portFile];
  for (const [k, v] of Object.entries(flags)) {
    if (v === false || v === null || v === undefined) continue;
    args.push('--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()));
    if (v !== true) args.push(String(v));
  }
  p.spawn(exe, args, process.env);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (p.exit) throw new Error(`fakeboxd exited at start: ${JSON.stringify(p.exit)}\n${p.log()}`);
    let port = 0;
    try {
      port = Number(readFileSync(portFile, 'utf8').trim());
    } catch {
      port = 0;
    }
    if (port > 0 && (await httpOk(`http://127.0.0.1:${port}/_fake/stats`)) === 200) {
      p.url = `http://127.0.0.1:${port}`;
      return p;
    }
    if (Date.now() > deadline) {
      await p.stop();
      throw new Error(`fakeboxd did not listen within ${START_TIMEOUT_MS} ms`);
    }
    await sleep(20);
  }
}

/** `filmpicker serve` against the fake site; env adds or overrides settings. */
export async function startServer(fake, env = {}) {
  const exe = join(BUILD_DIR, 'filmpicker');
  if (!existsSync(exe)) throw new Error(`filmpicker not built: ${exe} (set FP_BUILD_DIR)`);
  if (!existsSync(join(WEB_DIST, 'index.html'))) throw new Error(`no web build in ${WEB_DIST}: run (cd web && npm run build)`);
  const p = new Proc('filmpicker');
  const port = await freePort();
  const full = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FILMPICKER_')) full[k] = v;
  Object.assign(full, {
    FILMPICKER_LISTEN: `127.0.0.1:${port}`,
    FILMPICKER_DATABASE: join(p.dir, 'filmpicker.db'),
    FILMPICKER_SECRET_KEY: randomBytes(32).toString('hex'),
    FILMPICKER_LETTERBOXD_URL: fake.url,
    FILMPICKER_LETTERBOXD_IMAGE_URL: fake.url,
    FILMPICKER_WEB_DIR: WEB_DIST,
    // One server serves many tests' browsers from 127.0.0.1 within a minute,
    // more than any group; tests/abuse checks the rate limits at their defaults.
    FILMPICKER_RATE_FETCH_BURST: '100000',
    FILMPICKER_RATE_IMPORT_BURST: '100000',
    FILMPICKER_RATE_SESSION_BURST: '100000',
    FILMPICKER_RATE_CLIENT_BURST: '100000',
    FILMPICKER_RATE_JOB_BURST: '100000',
    ...env,
  });
  p.spawn(exe, ['serve'], full);
  p.url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (p.exit) throw new Error(`filmpicker serve exited at start: ${JSON.stringify(p.exit)}\n${p.log()}`);
    if ((await httpOk(`${p.url}/healthz`)) === 200) return p;
    if (Date.now() > deadline) {
      const { log } = await p.stop();
      throw new Error(`filmpicker not healthy within ${START_TIMEOUT_MS} ms\n${log}`);
    }
    await sleep(50);
  }
}

/**
 * A TCP relay on a free loopback port in front of `target` (http://host:port),
 * so a test can cut every connection through it (a dropped network, as a
 * phone going through a tunnel sees it) and refuse new ones for a while.
 */
export async function startRelay(target) {
  const { createConnection } = await import('node:net');
  const t = new URL(target);
  const sockets = new Set();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: t.hostname, port: Number(t.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Cuts every open connection; with refuse, new ones are cut at once too. */
    drop(refuse = false) {
      refusing = refuse;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
    async stop() {
      this.drop(true);
      await new Promise((res) => server.close(res));
    },
  };
}
