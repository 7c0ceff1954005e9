// Starts `missionctl serve --demo` on a free port for the browser tests, and stops it.
//
// Environment:
//   MISSIONCTL_BIN           the binary (default: target/debug/missionctl in the repository)
//   MISSIONCTL_PLUGIN_DIR    built plugins (default: target/wasm32-wasip2/plugin)
//   MISSIONCTL_TEMPLATE_DIR  template bundles (default: templates)
//   MISSIONCTL_UI_DIR        serve the dashboard from this directory instead of the embedded copy

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function startServer({ timeoutMs = 120_000 } = {}) {
  const bin = process.env.MISSIONCTL_BIN || join(REPO, 'target', 'debug', 'missionctl');
  const dataDir = await mkdtemp(join(tmpdir(), 'mc-browser-'));
  const args = [
    'serve', '--demo', '--data-dir', dataDir, '--listen', '127.0.0.1:0',
    '--plugin-dir', process.env.MISSIONCTL_PLUGIN_DIR || join(REPO, 'target', 'wasm32-wasip2', 'plugin'),
    '--template-dir', process.env.MISSIONCTL_TEMPLATE_DIR || join(REPO, 'templates'),
  ];
  if (process.env.MISSIONCTL_UI_DIR) args.push('--ui-dir', process.env.MISSIONCTL_UI_DIR);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));

  const ready = new Promise((res, rej) => {
    const found = {};
    let expectKey = false;
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      log.push(line);
      if (expectKey) {
        found.operatorKey = line.trim();
        expectKey = false;
      }
      if (/operator key \S+ issued/.test(line)) expectKey = true;
      const listening = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(line);
      if (listening) {
        found.base = listening[1];
        found.port = Number(listening[2]);
      }
      const link = /dashboard \(signed in as the demo tenant\): (\S+#key=(\S+))/.exec(line);
      if (link) {
        found.demoLink = link[1];
        found.demoKey = decodeURIComponent(link[2]);
      }
      if (found.base && found.demoLink && found.operatorKey) res(found);
    });
    child.once('error', rej);
    exited.then(({ code, signal }) => rej(new Error(`missionctl exited early (${code ?? signal}):\n${log.join('\n')}`)));
  });
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`missionctl did not say "listening on" within ${timeoutMs} ms:\n${log.join('\n')}`)), timeoutMs);
  });
  let found;
  try {
    found = await Promise.race([ready, timeout]);
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  } finally {
    clearTimeout(timer);
  }

  return {
    ...found,
    log,
    /** Calls the API with a key (Bearer); returns {status, body}. */
    async api(key, method, path, body) {
      const res = await fetch(`${found.base}/api/v1/${path}`, {
        method,
        headers: { Authorization: `Bearer ${key}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      let parsed = text;
      try {
        parsed = JSON.parse(text);
      } catch { /* text */ }
      return { status: res.status, body: parsed };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
