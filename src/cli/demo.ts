// `peerha demo`: a real cluster of N local monitors on a temp root, an HTTP service group and a
// worker group; kills the node serving HTTP and measures the failover. Leaves nothing behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseClstat } from '../config/clstat.js';
import { readHastats, renderStatus } from './cluster.js';

const BIN = fileURLToPath(new URL('../../bin/peerha', import.meta.url));
const DEMO_DIR = fileURLToPath(new URL('../../examples/demo', import.meta.url));

export interface DemoOptions {
  nodes: number;
  keep: boolean;
  cycle: string;
  timeout: string;
  out: (line: string) => void;
}

interface DemoNode {
  name: string;
  proc: ChildProcess;
  exited: Promise<void>;
  killed: boolean;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** GET the service; the body is the serving node's name, or null on any failure. */
function probe(port: number, timeoutMs = 300): Promise<string | null> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : null));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A deadline for Promise.race that does not keep the process alive once the race is won. */
const deadline = (ms: number): Promise<false> => new Promise((r) => setTimeout(() => r(false), ms).unref());

/** Children of `pid` (from /proc), e.g. the monitor's watchdog. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

function recordedPgids(stateDir: string, node: string): number[] {
  try {
    const rec = JSON.parse(readFileSync(join(stateDir, `${node}.pgids`), 'utf8')) as { groups?: Array<{ pgid: number }> };
    return (rec.groups ?? []).map((g) => g.pgid).filter((p) => Number.isSafeInteger(p) && p > 1);
  } catch {
    return [];
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-demo-'));
  const root = join(dir, 'shared');
  const state = join(dir, 'state');
  mkdirSync(root, { recursive: true });
  const port = await freePort();
  const fill = (t: string): string => t.replaceAll('@DEMO@', DEMO_DIR).replaceAll('@PORT@', String(port)).replaceAll('@NODE_BIN@', process.execPath);
  writeFileSync(join(root, 'cltab'), fill(readFileSync(join(DEMO_DIR, 'cltab'), 'utf8')), { mode: 0o644 });
  writeFileSync(join(root, 'hactl'), readFileSync(join(DEMO_DIR, 'hactl'), 'utf8'), { mode: 0o644 });

  const nodes: DemoNode[] = [];
  let doubleActive = 0;
  let sampling = true;
  const say = o.out;

  const cleanup = async (): Promise<void> => {
    sampling = false;
    for (const n of nodes) if (!n.killed) kill(n.proc.pid!, 'SIGTERM');
    const all = Promise.all(nodes.map((n) => n.exited));
    const done = await Promise.race([all.then(() => true), deadline(20_000)]);
    // Whatever is still there (a wedged monitor) goes the hard way, with its groups.
    for (const n of nodes) {
      if (!done) kill(n.proc.pid!, 'SIGKILL');
      for (const w of childPids(n.proc.pid!)) kill(w, 'SIGKILL');
      for (const pg of recordedPgids(join(state, n.name), n.name)) kill(-pg, 'SIGKILL');
    }
    await Promise.race([all, deadline(5_000)]);
    rmSync(dir, { recursive: true, force: true });
  };

  const status = async (): Promise<void> => {
    const h = (await readHastats(root))[0];
    if (h) say(renderStatus(h).trimEnd().split('\n').map((l) => `    ${l}`).join('\n'));
  };

  // Two live nodes running one group at its wanted level at once: what must never happen.
  const sample = async (): Promise<void> => {
    while (sampling) {
      const active = new Map<string, string[]>();
      for (const n of nodes) {
        if (n.killed) continue;
        try {
          const c = parseClstat(readFileSync(join(root, 'nodes', n.name, 'clstat'), 'utf8'));
          for (const g of c.groups) if (g.level === 'start' && g.state !== 'CONFIGURED') active.set(g.group, [...(active.get(g.group) ?? []), n.name]);
        } catch {
          // not written yet
        }
      }
      for (const [, on] of active) if (on.length > 1) doubleActive++;
      await sleep(100);
    }
  };

  try {
    say(`peerha demo: ${o.nodes} monitors on ${root} (cycle ${o.cycle}, timeout ${o.timeout}); HTTP service on 127.0.0.1:${port}`);
    const t0 = performance.now();
    for (let i = 1; i <= o.nodes; i++) {
      const name = `n${i}`;
      const cfg = join(dir, `${name}.yaml`);
      writeFileSync(cfg, `state_dir: ${join(state, name)}\n`);
      const logFd = openSync(join(dir, `${name}.log`), 'a');
      const proc = spawn(process.execPath, [BIN, 'monitor', '--config', cfg, '--root', root, '--node', name, '--cycle', o.cycle, '--timeout', o.timeout], {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, PEERHA_NODE: name },
      });
      const node: DemoNode = { name, proc, killed: false, exited: new Promise((r) => proc.on('exit', () => r())) };
      nodes.push(node);
    }
    void sample();

    // Cold start: until the service answers and the worker runs somewhere.
    let owner: string | null = null;
    const coldDeadline = performance.now() + 30_000;
    while (!owner) {
      if (performance.now() > coldDeadline) throw new Error('the HTTP service did not come up within 30 s');
      owner = await probe(port);
      if (!owner) await sleep(50);
    }
    const coldMs = performance.now() - t0;
    say(`\n[${(coldMs / 1000).toFixed(2)} s] cold start: the HTTP service answers from ${owner}`);
    await sleep(1000); // let every node publish a view that includes the worker
    await status();

    // Failover: the node serving HTTP dies (monitor, watchdog and its groups at once).
    const victim = nodes.find((n) => n.name === owner)!;
    const victimWatchdogs = childPids(victim.proc.pid!);
    const victimPgids = recordedPgids(join(state, victim.name), victim.name);
    say(`\n[kill] SIGKILL node ${victim.name}: its monitor, its watchdog and its group processes`);
    const tk = performance.now();
    victim.killed = true;
    kill(victim.proc.pid!, 'SIGKILL');
    for (const w of victimWatchdogs) kill(w, 'SIGKILL');
    for (const pg of victimPgids) kill(-pg, 'SIGKILL');
    let failed = 0;
    let requests = 0;
    let next: string | null = null;
    const foDeadline = tk + 30_000;
    while (!next || next === victim.name) {
      if (performance.now() > foDeadline) throw new Error('no failover within 30 s');
      const r = await probe(port, 200);
      requests++;
      if (!r) failed++;
      next = r;
      if (!r) await sleep(50);
    }
    const foMs = performance.now() - tk;
    say(`[${(foMs / 1000).toFixed(2)} s after the kill] the HTTP service answers from ${next}`);
    await sleep(1000);
    await status();

    say('\nsummary');
    say(`  nodes                    ${o.nodes} (cycle ${o.cycle}, timeout ${o.timeout})`);
    say(`  cold start               ${(coldMs / 1000).toFixed(2)} s (monitors started → service answering)`);
    say(`  failover                 ${(foMs / 1000).toFixed(2)} s (${victim.name} killed → ${next} answering)`);
    say(`  requests during failover ${requests} sent, ${failed} failed`);
    say(`  double-active moments    ${doubleActive}`);

    if (o.keep) {
      say(`\n--keep: the cluster keeps running in ${root}; try 'peerha status --root ${root}'. Ctrl-C stops it.`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
    say('\nstopping the cluster…');
    await cleanup();
    say('done: every process stopped, temp directory removed');
    return doubleActive === 0 ? 0 : 1;
  } catch (e) {
    say(`demo failed: ${(e as Error).message} (logs were in ${dir})`);
    await cleanup();
    return 1;
  }
}
