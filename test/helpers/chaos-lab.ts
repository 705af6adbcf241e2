// Harness of the chaos tests on real network filesystems (test/chaos/sshfs.test.ts,
// test/chaos/glusterfs.test.ts). A lab script (test/lab/*-lab.sh) gives each cluster node its own
// network namespace and mount of the share; ChaosLab runs one `peerha monitor` per node in it and
// reads what they publish; runChaos drives rounds of faults and checks, after each, that every
// group runs exactly once and never ran twice at a time.
//
// The groups' workloads hold a per-group flock and record any overlap (lockedWorkload()).
// The lock files are on the host's local disk, outside the share: all lab nodes share the host's
// mount namespace, so they are one lock for every node.
//
// The test reads the share only through fs/promises, and only where no fault reaches
// (LabSpec.observer): on FUSE, a close() that fails inside readFileSync aborts the Node process.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseClstat, type Clstat } from '../../src/config/clstat.js';
import type { Hastat } from '../../src/cluster/hastat.js';
import { PgidRecord } from '../../src/init/pgid-record.js';
import { groupHasLiveMember } from '../../src/init/runner.js';
import { lockedWorkload } from './cluster.js';
import { BIN, FAST_ENV } from './daemon.js';

/** The cluster's folder on the share. */
const SUB = 'cluster';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms)); // fault pacing only
export const now = (): number => performance.now();
export const secs = (ms: number): string => (ms / 1000).toFixed(1);
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

/** A flock(2) lock on `file` in /proc/locks (`1: FLOCK ADVISORY WRITE pid maj:min:inode 0 EOF`, major and minor in hex). */
export function flockHeld(file: string): boolean {
  let st;
  try {
    st = statSync(file);
  } catch {
    return false;
  }
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & 0xfff00);
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((line) => {
      const f = line.trim().split(/\s+/);
      return f[1] === 'FLOCK' && f[5] === id;
    });
}

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}
const gone = (pid: number): boolean => {
  const s = procState(pid);
  return s === null || s === 'Z';
};
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
function childrenRunning(parent: number, marker: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) out.push(p);
    } catch {
      // gone
    }
  }
  return out;
}

/** Poll `problems` until it returns none; on the deadline, fail with what was still wrong. */
export async function until(what: string, problems: () => string[] | Promise<string[]>, timeoutMs: number, everyMs = 100): Promise<number> {
  const t0 = now();
  for (;;) {
    const p = await problems();
    if (p.length === 0) return now() - t0;
    if (now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n  ${p.join('\n  ')}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** What a chaos test needs to know of its lab. Both scripts take `up N DIR`, `exec K CMD…`, `partition K link|cut`, `heal K` and `down`. */
export interface LabSpec {
  /** Log tag ([sshfs]) and part of temp dir names. */
  readonly tag: string;
  readonly script: string;
  /** The script's variable prefix: `<vars>_PREFIX`, `<vars>_OWNER_PID` (the next `up` reaps a lab whose owner is gone), `<vars>_SHARE` (node K's mount, set by `exec`). */
  readonly vars: 'SFL' | 'GFL';
  /** Per run, so that two runs on one machine never collide. */
  readonly prefix: string;
  /** The folder under the lab's DIR that the test reads: no fault reaches it. */
  readonly observer: string;
  /** PEERHA_SKIP_…: skips the test on a machine that cannot run the lab. */
  readonly skipVar: string;
  readonly nodes: readonly string[];
  readonly groups: readonly string[];
  readonly cycle: string;
  readonly timeoutMs: number;
  /** A clstat or hastat older than this, as the test reads it, is not a live node's. */
  readonly freshMs: number;
  /**
   * A healthy node's heartbeat gap: between the moments the test sees a new heartbeat (`seen`: its
   * reads never stall), or between the times written into consecutive ones (`written`: its reads
   * go through a mount that storage faults stall).
   */
  readonly gap: 'seen' | 'written';
  /**
   * How often the test reads the observer's view (sampler and waits), 100 ms unless set. Every
   * read through an uncached GlusterFS mount is a round trip to three bricks: at 100 ms the test's
   * own reads cost more CPU than the three monitors' cycles.
   */
  readonly pollMs?: number;
}

export interface MonitorProc {
  node: string;
  k: number;
  gen: number;
  proc: ChildProcess;
  pid: number;
  exit: { code: number | null; signal: string | null } | null;
  exited: Promise<void>;
  /** Signals we sent that may end it (an exit after one is expected). */
  killedByUs: boolean;
  tail: string[];
}

export interface Snapshot {
  clstat: Map<string, Clstat | null>;
  hastat: Map<string, Hastat | null>;
}

/** What is missing on this machine for the lab, or null. */
function missing(script: string): string | null {
  if (process.getuid?.() !== 0) return 'root (network namespaces, FUSE mounts)';
  if (!existsSync('/dev/fuse') && spawnSync('modprobe', ['fuse']).status !== 0) return '/dev/fuse (FUSE)';
  const ns = spawnSync('unshare', ['--net', 'true'], { encoding: 'utf8' });
  if (ns.status !== 0) return `network namespaces (unshare --net: ${(ns.stderr || ns.error?.message || `exit ${ns.status}`).trim().split('\n')[0]})`;
  if (!existsSync(script)) return `the lab script ${script}`;
  return null;
}

export class ChaosLab {
  readonly dir: string;
  /** DIR/<spec.observer>, where the test reads the share. */
  readonly observed: string;
  /** The cluster's folder there. */
  readonly root: string;
  readonly locks: string;
  readonly logs: string;
  readonly monitors = new Map<string, MonitorProc>();
  /** Nodes under a fault, from its injection until the cluster fully recovered from it. */
  readonly faulted = new Set<string>();
  /** runChaos's heartbeat sampler; tearDown stops it. */
  sampler: NodeJS.Timeout | undefined;
  private readonly env: Record<string, string>;
  private gens = 0;
  private up = false;

  constructor(readonly spec: LabSpec) {
    this.dir = realpathSync(mkdtempSync(join(tmpdir(), `peerha-${spec.tag}-`)));
    this.observed = join(this.dir, spec.observer);
    this.root = join(this.observed, SUB);
    this.locks = join(this.dir, 'locks');
    this.logs = join(this.dir, 'logs');
    this.env = { [`${spec.vars}_PREFIX`]: spec.prefix, [`${spec.vars}_OWNER_PID`]: String(process.pid) };
  }

  get nodes(): readonly string[] {
    return this.spec.nodes;
  }

  /** The lab script with `args`. */
  run(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string; ms: number }> {
    const t0 = now();
    return new Promise((res) => {
      execFile('bash', [this.spec.script, ...args], { env: { ...process.env, ...this.env }, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
        res({ code, out: stdout + stderr, ms: now() - t0 });
      });
    });
  }

  async must(args: string[], timeoutMs = 60_000): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`${this.spec.script.split('/').pop()} ${args.join(' ')} failed (${r.code}):\n${r.out.slice(-3000)}`);
    return r.out;
  }

  k(node: string): number {
    return this.nodes.indexOf(node) + 1;
  }

  /** Node's own mount of the share. */
  mount(node: string): string {
    return join(this.dir, `node-${this.k(node)}`);
  }

  stateDir(node: string): string {
    return join(this.dir, 'state', node);
  }

  /** Script args for `exec K … CMD --root <node's mount>/<sub>` (every step execs: the pid stays CMD's). */
  execArgs(node: string, sub: string, cmd: string[]): string[] {
    return ['exec', String(this.k(node)), '/bin/sh', '-c', `exec "$@" --root "$${this.spec.vars}_SHARE/${sub}"`, 'sh', ...cmd];
  }

  /** Start node's monitor in its namespace, on its own mount. */
  start(node: string): MonitorProc {
    const { cycle, timeoutMs } = this.spec;
    const k = this.k(node);
    const config = join(this.dir, `${node}.yaml`);
    writeFileSync(config, `state_dir: ${this.stateDir(node)}\nvisibility_lag: 200ms\nquorum:\n  policy: majority\n  expected: ${this.nodes.length}\n`);
    const gen = ++this.gens;
    const log = join(this.logs, `${node}.${gen}.log`);
    const args = this.execArgs(node, SUB, [process.execPath, BIN, 'monitor', '--config', config, '--node', node, '--cycle', cycle, '--timeout', `${timeoutMs}ms`]);
    const proc = spawn('bash', [this.spec.script, ...args], { env: { ...process.env, ...FAST_ENV, ...this.env, PEERHA_NODE: node }, stdio: ['ignore', 'pipe', 'pipe'] });
    const m: MonitorProc = { node, k, gen, proc, pid: proc.pid!, exit: null, exited: Promise.resolve(), killedByUs: false, tail: [] };
    const onData = (d: Buffer): void => {
      const s = d.toString();
      appendFileSync(log, s);
      m.tail.push(...s.split('\n').filter(Boolean));
      if (m.tail.length > 400) m.tail.splice(0, m.tail.length - 300);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    m.exited = new Promise((r) =>
      proc.on('exit', (code, sig) => {
        m.exit = { code, signal: sig };
        r();
      }),
    );
    this.monitors.set(node, m);
    return m;
  }

  /** The monitor's interesting log lines (warnings and errors), for failure messages. */
  warnings(node: string, n = 15): string {
    const m = this.monitors.get(node);
    return (m?.tail ?? []).filter((l) => !l.includes('"level":30')).slice(-n).map((l) => `    ${node}: ${l.slice(0, 300)}`).join('\n');
  }

  allWarnings(n = 8): string {
    return this.nodes.map((x) => this.warnings(x, n)).join('\n');
  }

  /** Every node's clstat and hastat. */
  async snapshot(): Promise<Snapshot> {
    const read = async (n: string): Promise<[Clstat | null, Hastat | null]> => {
      const [c, h] = await Promise.all([readText(join(this.root, 'nodes', n, 'clstat')), readText(join(this.root, 'nodes', n, 'hastat'))]);
      let hs: Hastat | null = null;
      try {
        hs = h ? (JSON.parse(h) as Hastat) : null;
      } catch {
        hs = null;
      }
      return [c ? parseClstat(c) : null, hs];
    };
    const all = await Promise.all(this.nodes.map(read));
    return { clstat: new Map(this.nodes.map((n, i) => [n, all[i]![0]])), hastat: new Map(this.nodes.map((n, i) => [n, all[i]![1]])) };
  }

  /** group → active instances, from every node's clstat. */
  placements(s: Snapshot, among: readonly string[] = this.nodes): Map<string, Array<{ node: string; level: string; state: string }>> {
    const out = new Map<string, Array<{ node: string; level: string; state: string }>>();
    for (const n of among) {
      const c = s.clstat.get(n);
      if (!c || c.header?.left) continue;
      for (const g of c.groups) {
        if (g.state === 'CONFIGURED' || (g.level === 'stop' && ['DONE', 'PASSED', 'FAILED'].includes(g.state))) continue;
        out.set(g.group, [...(out.get(g.group) ?? []), { node: n, level: g.level, state: g.state }]);
      }
    }
    return out;
  }

  /** group → node when it runs settled at start on exactly one of `among`. */
  runningOn(s: Snapshot, group: string, among: readonly string[] = this.nodes): string | null {
    const p = this.placements(s, among).get(group) ?? [];
    return p.length === 1 && p[0]!.level === 'start' && p[0]!.state === 'DONE' ? p[0]!.node : null;
  }

  pgids(node: string): number[] {
    try {
      const rec = JSON.parse(readFileSync(join(this.stateDir(node), `${node}.pgids`), 'utf8')) as { groups?: Array<{ pgid: number }> };
      return (rec.groups ?? []).map((g) => g.pgid).filter((p) => Number.isSafeInteger(p) && p > 1);
    } catch {
      return [];
    }
  }

  /**
   * Whether some process holds the group's lock, from /proc/locks: probing with `flock -n` would
   * take a free lock for a moment, and a workload starting in that moment records a false overlap.
   */
  lockHeld(group: string): boolean {
    return flockHeld(join(this.locks, `${group}.lock`));
  }

  lockOwner(group: string): string {
    try {
      return readFileSync(join(this.locks, `${group}.owner`), 'utf8').trim();
    } catch {
      return '';
    }
  }

  overlaps(): string[] {
    const f = join(this.dir, 'overlaps');
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** A monitor that died without our doing is a failure at once, not a timeout later. */
  checkNoneDied(): void {
    for (const m of this.monitors.values()) {
      if (m.exit && !m.killedByUs) throw new Error(`monitor ${m.node} (pid ${m.pid}) exited on its own: ${JSON.stringify(m.exit)}\n${this.warnings(m.node, 40)}`);
    }
  }

  /** What still keeps the cluster from "fully recovered" (empty when it is). */
  async problems(): Promise<string[]> {
    this.checkNoneDied();
    const s = await this.snapshot();
    const out: string[] = [];
    const wall = Date.now();
    const fresh = this.spec.freshMs;
    const owner = new Map<string, string>();
    for (const n of this.nodes) {
      const m = this.monitors.get(n)!;
      const c = s.clstat.get(n);
      if (!c?.header) out.push(`${n}: no clstat`);
      else if (c.header.pid !== m.pid) out.push(`${n}: clstat not yet from the current monitor (pid ${c.header.pid}, want ${m.pid})`);
      else if (c.header.left) out.push(`${n}: clstat says left`);
      else if (wall - Date.parse(c.header.time) > fresh) out.push(`${n}: heartbeat ${wall - Date.parse(c.header.time)} ms old`);
      const h = s.hastat.get(n);
      if (!h || wall - Date.parse(h.time) > fresh) out.push(`${n}: no fresh hastat`);
      else {
        if (!h.quorum.ok) out.push(`${n}: no quorum (${h.quorum.reason})`);
        const notUp = this.nodes.filter((x) => h.nodes[x]?.state !== 'up');
        if (notUp.length) out.push(`${n} sees ${notUp.map((x) => `${x} ${h.nodes[x]?.state ?? 'unknown'}`).join(', ')}`);
      }
    }
    const p = this.placements(s);
    for (const g of this.spec.groups) {
      const inst = p.get(g) ?? [];
      const where = this.runningOn(s, g);
      if (!where) {
        out.push(`${g}: ${inst.length ? inst.map((i) => `${i.node} ${i.level} ${i.state}`).join(', ') : 'runs nowhere'}`);
        continue;
      }
      owner.set(g, where);
      for (const n of this.nodes) {
        const seen = Object.keys(s.hastat.get(n)?.groups[g]?.instances ?? {});
        if (seen.length !== 1 || seen[0] !== where) out.push(`${n}'s view of ${g}: [${seen.join(',')}], runs on ${where}`);
      }
    }
    // Only when the shared files look right: the workloads really hold their locks, on those nodes.
    if (out.length === 0) {
      for (const [g, n] of owner) {
        if (!this.lockHeld(g)) out.push(`${g}: nobody holds its lock`);
        else if (this.lockOwner(g) !== n) out.push(`${g}: lock owner ${this.lockOwner(g)}, clstat says ${n}`);
      }
    }
    return out;
  }

  /** Lab up (`up` reaps labs of killed runs and installs missing packages), then cltab and hactl. */
  async setUp(): Promise<void> {
    const { tag, skipVar, groups } = this.spec;
    const lacking = missing(this.spec.script);
    if (lacking) throw new Error(`this test needs ${lacking}; ${skipVar}=1 skips it`);
    mkdirSync(this.locks, { recursive: true });
    mkdirSync(this.logs, { recursive: true });
    const t0 = now();
    this.up = true;
    const out = await this.must(['up', String(this.nodes.length), this.dir], 240_000);
    for (const line of out.split('\n').filter((x) => /taking down lab/.test(x))) console.log(`[${tag}] ${line}`);
    console.log(`[${tag}] lab ${this.spec.prefix} up in ${secs(now() - t0)} s at ${this.dir}`);
    await mkdir(this.root, { recursive: true });
    const put = async (file: string, text: string): Promise<void> => {
      await writeFile(join(this.root, `.${file}.tmp`), text);
      await rename(join(this.root, `.${file}.tmp`), join(this.root, file));
    };
    await put('cltab', groups.flatMap((g) => [`${g}:${g}-test:test:test:true`, `${g}:${g}-run:start:respawn:${lockedWorkload(this.dir, g)}`]).join('\n') + '\n');
    await put('hactl', groups.map((g) => `${g} start`).join('\n') + '\n');
  }

  /**
   * Orderly stop first (SIGCONT in case one is frozen), bounded; then SIGKILL what is left and every
   * process group the engines recorded; then the lab. `saveLabLogs(into)` runs before `down` removes them.
   */
  async tearDown(keepLogs: boolean, saveLabLogs?: (into: string) => void): Promise<void> {
    const { tag, prefix } = this.spec;
    clearInterval(this.sampler);
    const ms = [...this.monitors.values()].filter((m) => !m.exit);
    for (const m of ms) {
      m.killedByUs = true;
      signal(m.pid, 'SIGCONT');
      signal(m.pid, 'SIGTERM');
    }
    await Promise.race([Promise.all(ms.map((m) => m.exited)), sleep(15_000)]);
    for (const m of ms) if (!m.exit) signal(m.pid, 'SIGKILL');
    for (const n of this.nodes) for (const pg of new PgidRecord(join(this.stateDir(n), `${n}.pgids`)).leftovers()) signal(-pg, 'SIGKILL');
    if (keepLogs) saveLabLogs?.(join(this.logs, 'lab'));
    if (this.up) {
      const r = await this.run(['down'], 60_000);
      if (r.code !== 0) console.log(`[${tag}] lab down failed: ${r.out}`);
    }
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => (line.split(' ')[4] ?? '').startsWith(this.dir + '/'));
    if (keepLogs) {
      const keep = join(tmpdir(), `peerha-${tag}-logs-${prefix}`);
      cpSync(this.logs, keep, { recursive: true });
      console.log(`[${tag}] monitor logs kept in ${keep}`);
    }
    if (mounted) console.log(`[${tag}] something is still mounted under ${this.dir}; not removing it`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One lab for a describe block: up in beforeAll, down in afterAll. Returns its `it`, which hands each
 * test the lab; the monitors' logs are kept unless every started test passed (or `keepLogsVar`=1).
 */
export function chaosSuite(spec: LabSpec, keepLogsVar: string, saveLabLogs?: (into: string) => void): (name: string, fn: (l: ChaosLab) => Promise<void>, timeoutMs: number) => void {
  let lab: ChaosLab | null = null;
  let started = 0;
  let passed = 0;
  beforeAll(async () => {
    lab = new ChaosLab(spec);
    await lab.setUp();
  }, 300_000);
  afterAll(async () => {
    await lab?.tearDown(passed < started || process.env[keepLogsVar] === '1', saveLabLogs);
  }, 120_000);
  return (name, fn, timeoutMs) =>
    it(
      name,
      async () => {
        started++;
        await fn(lab!);
        passed++;
      },
      timeoutMs,
    );
}

export const NODE_FAULTS = ['partition-link', 'partition-cut', 'sigstop', 'kill-monitor', 'crash-node'] as const;
export type NodeFault = (typeof NODE_FAULTS)[number];
const isNodeFault = (f: string): f is NodeFault => (NODE_FAULTS as readonly string[]).includes(f);

export interface Step<F extends string> {
  round: number;
  fault: F;
  /** A cluster node (n1…) for a node fault; the lab's own target (s1…) for its other faults. */
  target: string;
  /** Partitions: link down on the node, or its port down on the switch side. */
  mode: 'link' | 'cut';
  /** long: hold a node fault until every peer calls the node stale and its groups run elsewhere; short: for `shortMs`. */
  hold: 'short' | 'long';
  shortMs: number;
}

export interface ChaosPlan<F extends string> {
  seed: number;
  /** Env that replays this run. */
  replay: string;
  /** Every fault the schedule may draw (the summary has a row for each). */
  faults: readonly F[];
  steps: Step<F>[];
  /** A step's fault in the logs. */
  label?(step: Step<F>): string;
  /** Before each round's fault. */
  beforeRound?(step: Step<F>): Promise<void>;
  /** Inject, hold and restore a fault that is not a node fault; resolves to how long the restore took. */
  otherFault?(step: Step<F>): Promise<number>;
  /** After full recovery from a round, with where each group ran before and after it. */
  afterRound?(step: Step<F>, before: Map<string, string | null>, after: Map<string, string | null>): void;
  /** After the last round: a line for the summary and checks to run after the summary. */
  afterRounds?(): Promise<{ line: string; check(): void }>;
}

/**
 * Cold start of every monitor, then the plan's rounds. A node fault is a partition (link or cut)
 * then heal, SIGSTOP then SIGCONT of its monitor, SIGKILL of its monitor, or a crash of the whole
 * node (monitor, watchdog and group process groups) then a restart. After each round: full recovery
 * (every monitor heartbeats, every view shows every node up with quorum, every group runs at
 * `start` on exactly one node, the one holding its lock) and no overlap ever recorded.
 */
export async function runChaos<F extends string>(l: ChaosLab, plan: ChaosPlan<F>): Promise<void> {
  const { tag, groups, timeoutMs } = l.spec;
  const nodes = l.nodes;
  const { steps } = plan;
  const label = (s: Step<F>): string => plan.label?.(s) ?? s.fault;
  const width = Math.max(...steps.map((s) => label(s).length));
  console.log(`[${tag}] seed ${plan.seed} (replay: ${plan.replay}); cycle ${l.spec.cycle}, timeout ${timeoutMs} ms`);
  console.log(`[${tag}] faults: ${steps.map((s) => `${s.round}:${label(s)}@${s.target}/${s.hold === 'long' ? 'long' : `${s.shortMs}ms`}`).join(' ')}`);
  const tStart = now();

  // Cold start: every monitor at once.
  for (const n of nodes) l.start(n);
  const pollMs = l.spec.pollMs ?? 100;
  const cold = await until('cold start: every group once', () => l.problems(), 90_000, pollMs);
  let snap = await l.snapshot();
  console.log(`[${tag}] cold start: all ${groups.length} groups up in ${secs(cold)} s; ${groups.map((g) => `${g}@${l.runningOn(snap, g)}`).join(' ')}`);

  // The overlap detector works across namespaces: another node cannot take a running group's lock.
  const g1 = l.runningOn(snap, 'g1')!;
  const other = nodes.find((n) => n !== g1)!;
  const probe = await l.run(['exec', String(l.k(other)), 'flock', '-n', join(l.locks, 'g1.lock'), 'true']);
  expect(probe.code, `flock from ${other}'s namespace on g1's lock (held on ${g1}): ${probe.out}`).toBe(1);

  // Meanwhile, watch the healthy nodes: a healthy node's heartbeats must never be far apart, and no
  // healthy node may ever call another healthy one anything but up — that would be the first step
  // of a false takeover. Faults of the lab's own (storage) fault no cluster node: they must not show here.
  const beats = new Map<string, { pid: number; seq: number; at: number }>();
  const maxGap = new Map<string, number>();
  const falseStale: string[] = [];
  let sampling = false;
  l.sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    const seenAt = now();
    // A snapshot shows the moment it began reading (slow on a loaded network mount): a node
    // faulted then, and restored by the time it is judged, was not healthy in what it shows.
    const faultedAtStart = new Set(l.faulted);
    const faulted = (n: string): boolean => l.faulted.has(n) || faultedAtStart.has(n);
    l.snapshot()
      .then((s) => {
        for (const n of nodes) {
          const c = s.clstat.get(n)?.header;
          if (faulted(n) || !c) {
            beats.delete(n);
            continue;
          }
          const prev = beats.get(n);
          if (l.spec.gap === 'seen') {
            if (prev && prev.pid === c.pid && prev.seq === c.seq) continue;
            if (prev) maxGap.set(n, Math.max(maxGap.get(n) ?? 0, seenAt - prev.at));
            beats.set(n, { pid: c.pid, seq: c.seq, at: seenAt });
          } else {
            const time = Date.parse(c.time);
            if (prev && prev.pid === c.pid && c.seq === prev.seq + 1) maxGap.set(n, Math.max(maxGap.get(n) ?? 0, time - prev.at));
            beats.set(n, { pid: c.pid, seq: c.seq, at: time });
          }
        }
        for (const v of nodes) {
          const h = faulted(v) ? null : s.hastat.get(v);
          for (const n of nodes) {
            if (h && n !== v && !faulted(n) && h.nodes[n] && h.nodes[n]!.state !== 'up') falseStale.push(`${h.time}: ${v} called ${n} ${h.nodes[n]!.state}`);
          }
        }
      })
      .finally(() => {
        sampling = false;
      });
  }, 100);

  const stats = new Map<F, { detection: number[]; failover: number[]; recovery: number[]; fenceLead: number[] }>(plan.faults.map((f) => [f, { detection: [], failover: [], recovery: [], fenceLead: [] }]));
  for (const step of steps) {
    const { fault, target } = step;
    await plan.beforeRound?.(step);
    snap = await l.snapshot();
    const before = new Map(groups.map((g) => [g, l.runningOn(snap, g)]));
    const owned = groups.filter((g) => before.get(g) === target);
    const t0 = now();
    const marks: { stale: number | null; takenOver: number | null } = { stale: null, takenOver: null };
    /** When the node's own group processes were first all dead (self-fence, crash). */
    const dead: { at: number | null } = { at: null };
    let healMs: number;

    if (!isNodeFault(fault)) {
      if (!plan.otherFault) throw new Error(`round ${step.round}: no way to inject ${fault}`);
      healMs = await plan.otherFault(step);
    } else {
      const node = target;
      const k = l.k(node);
      const m = l.monitors.get(node)!;
      const pgids = l.pgids(node);
      const watchdogs = childrenRunning(m.pid, 'peerha-watchdog');

      // Inject.
      l.faulted.add(node);
      if (fault === 'partition-link' || fault === 'partition-cut') await l.must(['partition', String(k), step.mode]);
      else if (fault === 'sigstop') signal(m.pid, 'SIGSTOP');
      else {
        m.killedByUs = true;
        if (fault === 'crash-node') {
          // As test/helpers/cluster.ts killNode: freeze monitor and watchdog so nobody reacts, then
          // SIGKILL the recorded process groups, the watchdog and the monitor.
          signal(m.pid, 'SIGSTOP');
          for (const w of watchdogs) signal(w, 'SIGSTOP');
          for (const pg of l.pgids(node)) if (!pgids.includes(pg)) pgids.push(pg);
          for (const pg of pgids) signal(-pg, 'SIGKILL');
          for (const w of watchdogs) signal(w, 'SIGKILL');
        }
        signal(m.pid, 'SIGKILL');
        await m.exited;
        // A monitor killed alone: its watchdog sees the IPC channel close, kills the groups, exits.
        await until(`${node}'s watchdog and groups gone after SIGKILL`, () => [...watchdogs.filter((w) => !gone(w)).map((w) => `watchdog ${w} alive`), ...pgids.filter((p) => groupHasLiveMember(p)).map((p) => `process group ${p} alive`)], 5_000, 50);
      }

      // Hold: briefly (pacing), or until every peer calls the node stale and its groups run elsewhere.
      if (step.hold === 'long') {
        const others = nodes.filter((n) => n !== node);
        await until(
          `every peer to see ${node} stale${owned.length ? ` and ${owned.join(',')} to be taken over` : ''} (${fault})`,
          async () => {
            l.checkNoneDied();
            const t = now() - t0;
            if (dead.at === null && !pgids.some((p) => groupHasLiveMember(p))) dead.at = t;
            const s = await l.snapshot();
            const wrong: string[] = [];
            const notStale = others.filter((o) => s.hastat.get(o)?.nodes[node]?.state !== 'stale');
            if (notStale.length) wrong.push(...notStale.map((o) => `${o} sees ${node} ${s.hastat.get(o)?.nodes[node]?.state ?? 'unknown'}`));
            else if (marks.stale === null) marks.stale = now() - t0;
            // The node's clstat still claims its groups (it cannot rewrite it, or is dead): leave it out.
            const pending = owned.filter((g) => !l.runningOn(s, g, others));
            if (pending.length) wrong.push(...pending.map((g) => `${g}: ${JSON.stringify(l.placements(s).get(g) ?? [])}`));
            else if (owned.length && marks.takenOver === null) marks.takenOver = now() - t0;
            return wrong;
          },
          45_000,
          l.spec.pollMs ?? 50,
        );
        // Taken over (or at least called stale): the node's own instances must be dead by now.
        const alive = pgids.filter((p) => groupHasLiveMember(p));
        expect(alive, `${node}'s group processes still alive after peers called it stale (${fault})\n${l.warnings(node)}`).toEqual([]);
        const st = stats.get(fault)!;
        if (marks.stale !== null) st.detection.push(marks.stale);
        if (marks.takenOver !== null) {
          st.failover.push(marks.takenOver);
          if (dead.at !== null && (fault === 'partition-link' || fault === 'partition-cut' || fault === 'sigstop')) st.fenceLead.push(marks.takenOver - dead.at);
        }
      } else {
        await sleep(step.shortMs);
      }

      // Restore.
      const tRestore = now();
      if (fault === 'partition-link' || fault === 'partition-cut') await l.must(['heal', String(k)]);
      else if (fault === 'sigstop') signal(m.pid, 'SIGCONT');
      else l.start(node);
      healMs = now() - tRestore;
    }

    let recovery: number;
    try {
      recovery = await until(`full recovery after round ${step.round} (${fault} of ${target})`, () => l.problems(), 90_000, pollMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${l.allWarnings()}`);
    }
    recovery += healMs;
    l.faulted.delete(target);
    stats.get(fault)!.recovery.push(recovery);
    expect(l.overlaps(), `overlaps after round ${step.round}`).toEqual([]);
    snap = await l.snapshot();
    const after = new Map(groups.map((g) => [g, l.runningOn(snap, g)]));
    plan.afterRound?.(step, before, after);
    console.log(
      `[${tag}] ${new Date().toISOString().slice(11, 19)} round ${String(step.round).padStart(2)}: ${label(step).padEnd(width)} ${target} ${step.hold === 'long' ? 'long ' : `${secs(step.shortMs)}s`.padEnd(5)}` +
        ` owned [${owned.join(',')}]` +
        (marks.stale !== null ? `; stale for all at ${secs(marks.stale)} s` : '') +
        (marks.takenOver !== null ? `; taken over at ${secs(marks.takenOver)} s` : '') +
        (dead.at !== null && owned.length ? ` (its processes dead at ${secs(dead.at)} s)` : '') +
        `; restore ${secs(healMs)} s; recovered ${secs(recovery)} s after restore; now ${groups.map((g) => `${g}@${after.get(g)}`).join(' ')}`,
    );
  }

  const extra = await plan.afterRounds?.();
  console.log(`[${tag}] ${steps.length} rounds in ${secs(now() - tStart)} s (seed ${plan.seed}); overlaps: ${l.overlaps().length}${extra ? `; ${extra.line}` : ''}`);
  // Times in s, median/max (lead: median/min). detection: fault → every peer calls the node stale;
  // failover: fault → its groups run elsewhere; recovery: restore (heal, SIGCONT, restart; for the
  // lab's own faults, its restore) → all recovered; lead: the node's own group processes were dead
  // this long before the takeover.
  console.log(`[${tag}] ${'fault'.padEnd(18)} n  detection  failover   recovery   self-fence lead`);
  for (const f of plan.faults) {
    const s = stats.get(f)!;
    const n = steps.filter((x) => x.fault === f).length;
    const mm = (xs: number[], min = false): string => (xs.length ? `${secs(median(xs))}/${secs(min ? Math.min(...xs) : Math.max(...xs))}` : '-').padEnd(10);
    console.log(`[${tag}] ${f.padEnd(18)} ${String(n).padStart(2)}  ${mm(s.detection)} ${mm(s.failover)} ${mm(s.recovery)} ${mm(s.fenceLead, true)}`);
  }
  clearInterval(l.sampler);
  const gaps = nodes.map((n) => `${n} ${secs(maxGap.get(n) ?? 0)}`).join(', ');
  console.log(`[${tag}] longest heartbeat gap of a healthy node (s): ${gaps}; healthy nodes called stale by healthy peers: ${falseStale.length}`);
  extra?.check();
  expect(falseStale.slice(0, 10)).toEqual([]);
  expect(Math.max(...maxGap.values())).toBeLessThan(timeoutMs / 2);
  expect(l.overlaps()).toEqual([]);
  // EIO, ENOTCONN, EROFS and blocked I/O are handled where they happen: no cycle died of an
  // exception, no watchdog had to be restarted.
  const logs = readdirSync(l.logs).map((f) => readFileSync(join(l.logs, f), 'utf8')).join('\n');
  expect(logs.split('\n').filter((x) => /"msg":"(cycle failed|watchdog exited)/.test(x))).toEqual([]);
}
