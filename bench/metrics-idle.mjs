#!/usr/bin/env node
// Idle cost of the metrics listener: N monitors (default 3) at a 250 ms cycle (--cycle, --timeout) with one group
// running, measured over a window (default 60 s) with `metrics:` off and on, in alternating rounds
// (default 2 each). With metrics on, each monitor is scraped every 15 s, as Prometheus would.
// CPU is the monitor process's utime + stime over the window (% of one core), RSS its VmRSS at the
// end (the watchdog is left out: metrics do not touch it). Needs `npm run build`.
//   node bench/metrics-idle.mjs [--nodes N] [--seconds S] [--rounds R] [--cycle 1s --timeout 5s]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '3' }, seconds: { type: 'string', default: '60' }, rounds: { type: 'string', default: '2' }, cycle: { type: 'string', default: '250ms' }, timeout: { type: 'string', default: '1s' } } });
const N = Number(values.nodes);
const SECONDS = Number(values.seconds);
const BIN = join(import.meta.dirname, '..', 'bin', 'peerha');

const ticks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(x[11]) + Number(x[12]);
};
const rssMb = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function until(what, fn, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (fn()) return;
  throw new Error(`timed out waiting for ${what}`);
}

// Interrupted: stop the monitors of the round under way (they leave; their watchdogs go with them).
let running = [];
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => {
  for (const m of running) m.proc.kill('SIGTERM');
  process.exit(130);
});

async function round(metrics) {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-mi-'));
  const root = join(dir, 'shared');
  mkdirSync(root);
  writeFileSync(join(root, 'cltab'), 'web:web-run:start:respawn:sleep 7399.5\n');
  writeFileSync(join(root, 'hactl'), 'web start\n');
  const mons = (running = []);
  try {
    for (let i = 1; i <= N; i++) {
      const config = join(dir, `n${i}.yaml`);
      writeFileSync(config, `state_dir: ${join(dir, 'state', `n${i}`)}\n${metrics ? 'metrics:\n  listen: 127.0.0.1:0\n' : ''}`);
      const proc = spawn(process.execPath, [BIN, 'monitor', '--config', config, '--root', root, '--node', `n${i}`, '--cycle', values.cycle, '--timeout', values.timeout], { stdio: ['ignore', 'pipe', 'pipe'] });
      const m = { proc, out: '' };
      proc.stdout.on('data', (d) => (m.out += d));
      proc.stderr.on('data', (d) => (m.out += d));
      mons.push(m);
    }
    const webRunning = () => {
      try {
        return Object.values(JSON.parse(readFileSync(join(root, 'nodes', 'n1', 'hastat'), 'utf8')).groups.web.instances).some((i) => i.state === 'DONE');
      } catch {
        return false;
      }
    };
    await until('web running', webRunning, 60_000);
    const addrs = metrics ? mons.map((m) => /"listen":"([^"]+)"/.exec(m.out)?.[1]) : [];
    await sleep(5_000);
    const t0 = performance.now();
    const before = mons.map((m) => ticks(m.proc.pid));
    let scrapes = 0;
    const scraper = metrics ? setInterval(() => void Promise.all(addrs.map((a) => fetch(`http://${a}/metrics`).then((r) => r.text()).then(() => scrapes++))), 15_000) : null;
    await sleep(SECONDS * 1000);
    clearInterval(scraper);
    const secs = (performance.now() - t0) / 1000;
    return { cpu: mons.map((m, i) => (ticks(m.proc.pid) - before[i]) / secs), rss: mons.map((m) => rssMb(m.proc.pid)), scrapes };
  } finally {
    for (const m of mons) m.proc.kill('SIGTERM');
    await Promise.all(mons.map((m) => new Promise((r) => (m.proc.exitCode !== null ? r() : m.proc.on('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = { off: [], on: [] };
for (let r = 0; r < Number(values.rounds); r++) {
  for (const mode of ['off', 'on']) {
    const x = await round(mode === 'on');
    rows[mode].push(x);
    console.log(`round ${r + 1} metrics ${mode}: CPU ${x.cpu.map((c) => c.toFixed(2)).join(' ')} %, RSS ${x.rss.map((m) => m.toFixed(1)).join(' ')} MB${mode === 'on' ? `, ${x.scrapes} scrapes` : ''}`);
  }
}
const summary = Object.fromEntries(Object.entries(rows).map(([k, xs]) => [k, { cpuPct: median(xs.flatMap((x) => x.cpu)), rssMb: median(xs.flatMap((x) => x.rss)) }]));
console.log(JSON.stringify({ nodes: N, cycle: values.cycle, timeout: values.timeout, seconds: SECONDS, ...summary, cpuRatio: summary.on.cpuPct / summary.off.cpuPct, rssRatio: summary.on.rssMb / summary.off.rssMb }));
