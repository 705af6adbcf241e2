// peerha benchmarks with real monitor processes: `npm run bench [-- --json] [-- --quick]`.
// Measures cold start, failover (SIGKILL of the owner node), graceful handover, local respawn
// latency, idle CPU and RSS per monitor, and (when the simulator is built) simulator throughput.
// Prints a table, or JSON with --json. Never run it next to other heavy work: it measures time.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'peerha');
const args = new Set(process.argv.slice(2));
const JSON_OUT = args.has('--json');
const QUICK = args.has('--quick');
const TRIALS = QUICK ? 5 : 20;
const log = (...a) => { if (!JSON_OUT) console.error(...a); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const FAST = { PEERHA_TERM_AFTER_MS: '300', PEERHA_KILL_AFTER_MS: '900', PEERHA_LOG_LEVEL: 'warn' };

async function waitFor(what, fn, timeoutMs, everyMs = 10) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}
const median = (xs) => quantile(xs, 0.5);

function procStat(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), state: f[0] };
  } catch {
    return null;
  }
}
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
function children(pid) {
  const out = [];
  for (const n of readdirSync('/proc')) if (/^\d+$/.test(n) && procStat(Number(n))?.ppid === pid) out.push(Number(n));
  return out;
}
function kill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** N monitors on a private temp root, with cltab and hactl. */
class Cluster {
  constructor(n, { cycle, timeout, cltab, hactl = '' }) {
    this.dir = mkdtempSync(join(tmpdir(), 'peerha-bench-'));
    this.root = join(this.dir, 'shared');
    mkdirSync(this.root, { recursive: true });
    writeFileSync(join(this.root, 'cltab'), cltab);
    writeFileSync(join(this.root, 'hactl'), hactl);
    this.cycle = cycle;
    this.timeout = timeout;
    this.nodes = new Map();
    for (let i = 1; i <= n; i++) this.start(`n${i}`);
  }

  start(name) {
    const cfg = join(this.dir, `${name}.yaml`);
    writeFileSync(cfg, `state_dir: ${join(this.dir, 'state', name)}\n`);
    const p = spawn(process.execPath, [BIN, 'monitor', '--config', cfg, '--root', this.root, '--node', name, '--cycle', this.cycle, '--timeout', this.timeout], {
      stdio: 'ignore',
      env: { ...process.env, ...FAST, PEERHA_NODE: name },
    });
    const exited = new Promise((r) => p.on('exit', r));
    this.nodes.set(name, { name, proc: p, exited, dead: false });
  }

  clstat(name) {
    try {
      return readFileSync(join(this.root, 'nodes', name, 'clstat'), 'utf8');
    } catch {
      return '';
    }
  }

  /** The live node running GROUP at LEVEL settled, when exactly one does. */
  owner(group, level = 'start') {
    const on = [];
    for (const n of this.nodes.values()) {
      if (n.dead) continue;
      const t = this.clstat(n.name);
      if (t.includes(' left=1')) continue;
      for (const line of t.split('\n')) {
        const f = line.split(' ');
        if (f[0] === 'Cluster::Init::Group' && f[1] === group && f[3] !== 'CONFIGURED' && !(f[2] === 'stop' && f[3] === 'DONE')) on.push({ node: n.name, level: f[2], state: f[3] });
      }
    }
    return on.length === 1 && on[0].level === level && (on[0].state === 'DONE' || on[0].state === 'PASSED') ? on[0].node : null;
  }

  allUp() {
    return [...this.nodes.values()].every((n) => n.dead || /seq=\d+/.test(this.clstat(n.name)));
  }

  setHactl(text) {
    const tmp = join(this.root, '.hactl.tmp');
    writeFileSync(tmp, text);
    spawnSync('mv', [tmp, join(this.root, 'hactl')]);
  }

  /** A node crash: its monitor, its watchdog and its group processes die at once. */
  crash(name) {
    const n = this.nodes.get(name);
    const wds = children(n.proc.pid).filter((c) => readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('watchdog'));
    let pgids = [];
    try {
      pgids = JSON.parse(readFileSync(join(this.dir, 'state', name, `${name}.pgids`), 'utf8')).groups.map((g) => g.pgid);
    } catch {
      // nothing recorded
    }
    kill(n.proc.pid, 'SIGKILL');
    for (const w of wds) kill(w, 'SIGKILL');
    for (const g of pgids) kill(-g, 'SIGKILL');
    n.dead = true;
  }

  restart(name) {
    this.start(name);
  }

  pids() {
    return [...this.nodes.values()].filter((n) => !n.dead).map((n) => n.proc.pid);
  }

  async stop() {
    for (const n of this.nodes.values()) if (!n.dead) kill(n.proc.pid, 'SIGTERM');
    await Promise.race([Promise.all([...this.nodes.values()].map((n) => n.exited)), sleep(30_000)]);
    for (const n of this.nodes.values()) {
      kill(n.proc.pid, 'SIGKILL');
      try {
        for (const g of JSON.parse(readFileSync(join(this.dir, 'state', n.name, `${n.name}.pgids`), 'utf8')).groups) kill(-g.pgid, 'SIGKILL');
      } catch {
        // nothing left
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const WEB = 'web:web-test:test:test:true\nweb:web-run:start:respawn:exec sleep 100000\n';

/** Cold start: hactl `web start` written → web start DONE on one node. */
async function coldStart(n, cycle, timeout) {
  const c = new Cluster(n, { cycle, timeout, cltab: WEB });
  const times = [];
  try {
    await waitFor('every monitor up', () => c.allUp(), 60_000, 50);
    await sleep(3 * parseDuration(cycle));
    for (let i = 0; i < TRIALS; i++) {
      const t0 = performance.now();
      c.setHactl('web start\n');
      await waitFor('web running', () => c.owner('web'), 60_000);
      times.push(performance.now() - t0);
      c.setHactl('web stop\n');
      await waitFor('web stopped', () => !c.owner('web') && ![...c.nodes.values()].some((x) => / web (plan|test|start) /.test(c.clstat(x.name))), 60_000);
    }
  } finally {
    await c.stop();
  }
  return times;
}

/** Failover: SIGKILL of the whole owner node → web start DONE on another node. */
async function failover(n, cycle, timeout) {
  const c = new Cluster(n, { cycle, timeout, cltab: WEB, hactl: 'web start\n' });
  const times = [];
  try {
    await waitFor('every monitor up', () => c.allUp(), 60_000, 50);
    for (let i = 0; i < TRIALS; i++) {
      const owner = await waitFor('web running', () => c.owner('web'), 120_000);
      const t0 = performance.now();
      c.crash(owner);
      await waitFor('web elsewhere', () => {
        const o = c.owner('web');
        return o && o !== owner ? o : null;
      }, 120_000, 5);
      times.push(performance.now() - t0);
      c.restart(owner);
      await waitFor('restarted monitor up', () => c.allUp(), 60_000, 50);
    }
  } finally {
    await c.stop();
  }
  return times;
}

/** Graceful handover: SIGTERM of the owner's monitor → web start DONE on another node. */
async function handover(n, cycle, timeout) {
  const c = new Cluster(n, { cycle, timeout, cltab: WEB, hactl: 'web start\n' });
  const times = [];
  try {
    await waitFor('every monitor up', () => c.allUp(), 60_000, 50);
    for (let i = 0; i < TRIALS; i++) {
      const owner = await waitFor('web running', () => c.owner('web'), 120_000);
      const t0 = performance.now();
      kill(c.nodes.get(owner).proc.pid, 'SIGTERM');
      c.nodes.get(owner).dead = true;
      await waitFor('web elsewhere', () => {
        const o = c.owner('web');
        return o && o !== owner ? o : null;
      }, 60_000, 5);
      times.push(performance.now() - t0);
      await c.nodes.get(owner).exited;
      c.restart(owner);
      await waitFor('restarted monitor up', () => c.allUp(), 60_000, 50);
    }
  } finally {
    await c.stop();
  }
  return times;
}

/** Local respawn: SIGKILL of a respawn entry's process → its replacement is running. */
async function respawn() {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-bench-r-'));
  const pidFile = join(dir, 'pid');
  writeFileSync(join(dir, 'cltab'), `g:r:1:respawn:echo $$ > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; exec sleep 100000\n`);
  const d = spawn(process.execPath, [BIN, 'init', '--cltab', join(dir, 'cltab'), '--socket', join(dir, 's'), '--clstat', join(dir, 'clstat')], { stdio: 'ignore', env: { ...process.env, ...FAST } });
  const times = [];
  const readPid = () => {
    try {
      return Number(readFileSync(pidFile, 'utf8')) || 0;
    } catch {
      return 0;
    }
  };
  try {
    await waitFor('socket', () => existsSync(join(dir, 's')), 10_000);
    spawnSync(process.execPath, [BIN, 'tell', 'g', '1', '--socket', join(dir, 's')]);
    for (let i = 0; i < (QUICK ? 10 : 50); i++) {
      const old = await waitFor('pid', () => readPid(), 10_000, 1);
      await sleep(1100); // stay out of the crash-loop throttle (more than 5 exits in 10 s)
      const t0 = performance.now();
      kill(old, 'SIGKILL');
      await waitFor('new pid', () => { const p = readPid(); return p && p !== old; }, 10_000, 1);
      times.push(performance.now() - t0);
    }
  } finally {
    spawnSync(process.execPath, [BIN, 'shutdown', '--socket', join(dir, 's')], { timeout: 30_000 });
    kill(d.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  return times;
}

/** Idle monitors: CPU % and RSS per monitor (and its watchdog) over a quiet window. */
async function idle(n, cycle, timeout) {
  const c = new Cluster(n, { cycle, timeout, cltab: WEB, hactl: 'web start\n' });
  try {
    await waitFor('every monitor up', () => c.allUp(), 120_000, 100);
    await waitFor('web running', () => c.owner('web'), 120_000, 100);
    await sleep(5_000);
    const pids = c.pids().flatMap((p) => [p, ...children(p)]);
    const t0 = performance.now();
    const before = new Map(pids.map((p) => [p, procStat(p)?.ticks ?? 0]));
    await sleep(QUICK ? 5_000 : 15_000);
    const secs = (performance.now() - t0) / 1000;
    const hz = 100;
    const perMonitor = c.pids().map((p) => {
      const group = [p, ...children(p)];
      const ticks = group.reduce((s, q) => s + ((procStat(q)?.ticks ?? 0) - (before.get(q) ?? 0)), 0);
      return { cpu: (100 * ticks) / hz / secs, rss: group.reduce((s, q) => s + (rssMb(q) || 0), 0) };
    });
    return { cpuMedian: median(perMonitor.map((x) => x.cpu)), cpuMax: Math.max(...perMonitor.map((x) => x.cpu)), rssMedian: median(perMonitor.map((x) => x.rss)), rssMax: Math.max(...perMonitor.map((x) => x.rss)) };
  } finally {
    await c.stop();
  }
}

function parseDuration(d) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(d);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

function simThroughput() {
  const cli = join(ROOT, 'dist', 'sim', 'cli.js');
  if (!existsSync(cli)) return null;
  const r = spawnSync(process.execPath, [cli, '--seeds', QUICK ? '200' : '2000', '--json'], { encoding: 'utf8', timeout: 600_000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { error: (r.stdout + r.stderr).slice(-500) };
  }
}

const results = { machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`, date: new Date().toISOString(), trials: TRIALS, rows: [] };
const row = (name, config, xs, target) => {
  const r = { name, config, n: xs.length, median: Math.round(median(xs)), p99: Math.round(quantile(xs, 0.99)), target };
  results.rows.push(r);
  log(`${name.padEnd(22)} ${config.padEnd(30)} median ${String(r.median).padStart(6)} ms  p99 ${String(r.p99).padStart(6)} ms  (${xs.length} trials)${target ? `  target ${target}` : ''}`);
};

const sizes = QUICK ? [3, 16] : [3, 16, 64];
log(`peerha bench — ${results.machine}`);
row('respawn (local)', 'peerha init', await respawn(), '≤ 50 ms');
for (const [cycle, timeout] of [['250ms', '1s'], ['1s', '5s']]) {
  const c = parseDuration(cycle);
  row('cold start', `N=3 cycle ${cycle} timeout ${timeout}`, await coldStart(3, cycle, timeout), `≤ ${3 * c + 300} ms`);
  for (const n of sizes) {
    const t = parseDuration(timeout);
    row('failover (SIGKILL)', `N=${n} cycle ${cycle} timeout ${timeout}`, await failover(n, cycle, timeout), n <= 16 ? `≤ ${t + 2 * c + 300} ms` : '');
  }
  row('handover (SIGTERM)', `N=3 cycle ${cycle} timeout ${timeout}`, await handover(3, cycle, timeout), '');
}
for (const n of QUICK ? [16] : [16, 64, 128]) {
  const r = await idle(n, '1s', '5s');
  results.rows.push({ name: 'idle monitor', config: `N=${n} cycle 1s`, cpuMedian: +r.cpuMedian.toFixed(2), cpuMax: +r.cpuMax.toFixed(2), rssMedianMb: Math.round(r.rssMedian), rssMaxMb: Math.round(r.rssMax), target: '≤ 2 % CPU, ≤ 80 MB' });
  log(`${'idle monitor'.padEnd(22)} ${`N=${n} cycle 1s`.padEnd(30)} CPU median ${r.cpuMedian.toFixed(2)} % (max ${r.cpuMax.toFixed(2)} %), RSS median ${Math.round(r.rssMedian)} MB (max ${Math.round(r.rssMax)} MB)`);
}
const sim = simThroughput();
if (sim) {
  results.sim = sim;
  log(`simulator              ${JSON.stringify(sim)}`);
}
if (JSON_OUT) console.log(JSON.stringify(results, null, 2));
