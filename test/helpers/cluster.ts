// Test harness: N real `peerha monitor` processes on a private temp root.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync, existsSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { BIN, FAST_ENV, waitFor } from './daemon.js';
import type { Hastat } from '../../src/cluster/hastat.js';
import { parseClstat, type Clstat } from '../../src/config/clstat.js';
import { PgidRecord } from '../../src/init/pgid-record.js';
import { groupHasLiveMember } from '../../src/init/runner.js';

export { waitFor };

/** /proc/<pid>/stat fields after the command name: [state, ppid, pgrp, …]. */
function procStat(pid: number): { state: string; ppid: number; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', ppid: Number(f[1]), pgrp: Number(f[2]) };
  } catch {
    return null;
  }
}

function allPids(): number[] {
  try {
    return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export interface NodeKill {
  monitorPid: number;
  watchdogPids: number[];
  pgids: number[];
  /** Date.now() when the node was frozen (the moment of the "crash"). */
  at: number;
}

export interface MonitorProc {
  /** Key in Cluster.monitors (the node name, unless started with another key). */
  name: string;
  /** The --node it runs as. */
  node: string;
  stateDir: string;
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  exitCode(): number | null | undefined;
}

export interface ClusterOptions {
  cycle?: string;
  timeout?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Extra YAML for the config file. */
  yaml?: string;
}

/** A Cluster per test, cleaned up after it (call once at the top of a test file). */
export function clusterPerTest(): (opts?: ClusterOptions) => Cluster {
  let current: Cluster | null = null;
  afterEach(async () => {
    await current?.cleanup();
    current = null;
  });
  return (opts) => (current = new Cluster(opts));
}

/**
 * A workload that holds an exclusive lock on the group's lock file while it runs; if it ever
 * finds the lock taken, it records an overlap (two instances at once).
 */
export function lockedWorkload(dir: string, group: string): string {
  const lock = join(dir, 'locks', `${group}.lock`);
  const overlaps = join(dir, 'overlaps');
  return `flock -n ${lock} -c 'echo "$PEERHA_NODE" > ${join(dir, 'locks', `${group}.owner`)}; exec sleep 100000' || echo "${group} $PEERHA_NODE $(date +%s.%N)" >> ${overlaps}`;
}

/**
 * Three nodes running `web` (a test, then a locked respawn workload), preferred on n3, which
 * heartbeats before n1 and n2 start: n3 owns web.
 */
export async function webOnN3(cl: Cluster): Promise<Cluster> {
  cl.writeRoot('cltab', `web:web-test:test:test:true\nweb:web-run:start:respawn:${lockedWorkload(cl.dir, 'web')}\n`);
  cl.writeRoot('hactl', 'web start n3,n2,n1\n');
  await cl.startHeartbeating('n3');
  for (const n of ['n1', 'n2']) cl.start(n);
  return cl;
}

export class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'peerha-c-'));
  readonly root = join(this.dir, 'shared');
  readonly state = join(this.dir, 'state');
  readonly monitors = new Map<string, MonitorProc>();

  constructor(private readonly opts: ClusterOptions = {}) {
    mkdirSync(this.root, { recursive: true });
    mkdirSync(join(this.dir, 'locks'), { recursive: true });
    mkdirSync(this.state, { recursive: true });
  }

  /** Wait until `node` has published `cycles` more heartbeats: time measured in its cycles, not by a clock. */
  async cyclesPass(node: string, cycles: number, timeoutMs = 15_000): Promise<void> {
    const from = this.clstat(node)?.header?.seq ?? 0;
    await waitFor(`${cycles} more cycles of ${node}`, () => (this.clstat(node)?.header?.seq ?? 0) >= from + cycles, timeoutMs);
  }

  /**
   * Run `each` every `everyMs` until `node` has published `cycles` more heartbeats: a window that
   * must hold, measured in the monitor's cycles (a loaded machine runs fewer in a fixed time).
   * A throw from `each` fails at once; so does a node that stops cycling (the deadline).
   */
  async duringCycles(node: string, cycles: number, each: () => void, everyMs = 100, timeoutMs = 30_000): Promise<void> {
    const seq = (): number => this.clstat(node)?.header?.seq ?? 0;
    const until = seq() + cycles;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      each();
      if (seq() >= until) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${cycles} more cycles of ${node}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** Replace `$DIR` with the harness directory. */
  subst(text: string): string {
    return text.replaceAll('$DIR', this.dir);
  }

  writeRoot(file: 'cltab' | 'hactl', text: string): void {
    const tmp = join(this.root, `.${file}.tmp`);
    writeFileSync(tmp, this.subst(text));
    renameSync(tmp, join(this.root, file));
  }

  /**
   * Start (or restart) a monitor. `opts.node` runs it under another --node than its key (for
   * duplicate-id tests); `opts.stateDir` overrides its local state directory.
   */
  start(name: string, env: Record<string, string> = {}, opts: { node?: string; stateDir?: string; wrap?: readonly string[] } = {}): MonitorProc {
    const node = opts.node ?? name;
    const stateDir = opts.stateDir ?? join(this.state, node);
    const config = join(this.dir, `${name}.yaml`);
    writeFileSync(config, `state_dir: ${stateDir}\n${this.subst(this.opts.yaml ?? '')}`);
    const args = [BIN, 'monitor', '--config', config, '--root', this.root, '--node', node, '--cycle', this.opts.cycle ?? '200ms', '--timeout', this.opts.timeout ?? '1500ms', ...(this.opts.extraArgs ?? [])];
    let output = '';
    // `wrap`: a command that execs the monitor (e.g. unshare, for a private mount namespace).
    const proc = spawn(opts.wrap?.[0] ?? process.execPath, opts.wrap ? [...opts.wrap.slice(1), process.execPath, ...args] : args, { env: { ...process.env, ...FAST_ENV, PEERHA_NODE: node, ...this.opts.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    let code: number | null | undefined;
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r((code = c))));
    const m: MonitorProc = { name, node, stateDir, proc, output: () => output, exited, exitCode: () => code };
    this.monitors.set(name, m);
    return m;
  }

  /** Start a monitor and wait for its first heartbeat (so that the next ones find it up). */
  async startHeartbeating(name: string, env: Record<string, string> = {}, opts: { node?: string; stateDir?: string; wrap?: readonly string[] } = {}): Promise<MonitorProc> {
    const m = this.start(name, env, opts);
    await waitFor(`${name} heartbeating`, () => this.clstat(m.node)?.header != null, 15_000);
    return m;
  }

  hastat(node: string): Hastat | null {
    try {
      return JSON.parse(readFileSync(join(this.root, 'nodes', node, 'hastat'), 'utf8')) as Hastat;
    } catch {
      return null;
    }
  }

  /** Node names of every monitor ever started (once each). */
  nodeNames(): string[] {
    return [...new Set([...this.monitors.values()].map((m) => m.node))].sort();
  }

  /** Nodes whose latest monitor process has not exited. */
  aliveNodes(): string[] {
    return [...this.monitors.values()].filter((m) => m.exitCode() === undefined).map((m) => m.node).sort();
  }

  /** A node's parsed clstat, or null. */
  clstat(node: string): Clstat | null {
    try {
      return parseClstat(readFileSync(join(this.root, 'nodes', node, 'clstat'), 'utf8'));
    } catch {
      return null;
    }
  }

  /**
   * Group → nodes where clstat shows it active, from the clstat of every node ever started (or
   * only `among`). A SIGKILLed node's clstat still lists its groups: pass the live nodes.
   */
  placements(among?: readonly string[]): Map<string, Array<{ node: string; level: string; state: string }>> {
    const out = new Map<string, Array<{ node: string; level: string; state: string }>>();
    for (const name of among ?? this.nodeNames()) {
      const c = this.clstat(name);
      if (!c) continue;
      if (c.header?.left) continue;
      for (const g of c.groups) {
        if (g.state === 'CONFIGURED' || (g.level === 'stop' && ['DONE', 'PASSED', 'FAILED'].includes(g.state))) continue;
        const list = out.get(g.group) ?? [];
        list.push({ node: name, level: g.level, state: g.state });
        out.set(g.group, list);
      }
    }
    return out;
  }

  /** The node running `group` at `level` settled, when exactly one does. */
  runningOn(group: string, level = 'start', among?: readonly string[]): string | null {
    const p = this.placements(among).get(group) ?? [];
    if (p.length !== 1) return null;
    const only = p[0]!;
    return only.level === level && (only.state === 'DONE' || only.state === 'PASSED') ? only.node : null;
  }

  async waitRunning(group: string, level = 'start', timeoutMs = 20_000, among?: readonly string[]): Promise<string> {
    try {
      return await waitFor(`${group} ${level} on exactly one node`, () => this.runningOn(group, level, among), timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}; placements now: ${JSON.stringify([...this.placements(among)])}`);
    }
  }

  /** Process groups a node's engine has recorded as running (its `<state_dir>/<node>.pgids`). */
  /**
   * The recorded process groups once the record stood still for 400 ms: a group shows `start DONE`
   * up to 250 ms before its process is forked (spawns wait while a monitor cycle runs).
   */
  async settledPgids(name: string, timeoutMs = 10_000): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    let last = JSON.stringify(this.pgids(name));
    let since = Date.now();
    while (Date.now() - since < 400 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      const now = JSON.stringify(this.pgids(name));
      if (now !== last) [last, since] = [now, Date.now()];
    }
    return JSON.parse(last) as number[];
  }

  pgids(name: string): number[] {
    const m = this.monitors.get(name);
    const path = join(m?.stateDir ?? join(this.state, name), `${m?.node ?? name}.pgids`);
    try {
      const rec = JSON.parse(readFileSync(path, 'utf8')) as { groups?: Array<{ pgid: number }> };
      return (rec.groups ?? []).map((g) => g.pgid).filter((p) => Number.isSafeInteger(p) && p > 1);
    } catch {
      return [];
    }
  }

  /** Whether any process of these process groups is alive (not a zombie). */
  anyAlive(pgids: readonly number[]): boolean {
    return pgids.some((p) => groupHasLiveMember(p));
  }

  /** The watchdog(s) a monitor started: its children running bin/peerha-watchdog. */
  watchdogPids(name: string): number[] {
    const pid = this.monitors.get(name)?.proc.pid;
    if (!pid) return [];
    return allPids().filter((p) => procStat(p)?.ppid === pid && cmdline(p).includes('peerha-watchdog'));
  }

  /**
   * A node crash: freeze the monitor, its watchdog and every recorded process group at once
   * (SIGSTOP, so nobody reacts), then SIGKILL them all, and wait until they are gone.
   */
  async killNode(name: string): Promise<NodeKill> {
    const m = this.monitors.get(name);
    if (!m?.proc.pid) throw new Error(`no monitor ${name}`);
    const monitorPid = m.proc.pid;
    const at = Date.now();
    signal(monitorPid, 'SIGSTOP');
    const watchdogPids = this.watchdogPids(name);
    for (const w of watchdogPids) signal(w, 'SIGSTOP');
    // The monitor is frozen now, so the record cannot change under us. A fork it was in the middle
    // of is not recorded yet: its child dies with the node too (a real crash takes everything).
    const forked = allPids().filter((p) => procStat(p)?.ppid === monitorPid && !watchdogPids.includes(p));
    const pgids = [...new Set([...this.pgids(name), ...forked.map((p) => procStat(p)?.pgrp ?? -1).filter((g) => g > 1)])];
    for (const pg of pgids) signal(-pg, 'SIGKILL');
    for (const w of watchdogPids) signal(w, 'SIGKILL');
    signal(monitorPid, 'SIGKILL');
    await m.exited;
    await waitFor(`node ${name}'s processes gone`, () => !this.anyAlive(pgids) && watchdogPids.every((w) => procStat(w) === null || procStat(w)!.state === 'Z'), 5_000);
    return { monitorPid, watchdogPids, pgids, at };
  }

  /** SIGSTOP / SIGCONT only the monitor process (its watchdog and groups keep running). */
  freeze(name: string): void {
    signal(this.monitors.get(name)!.proc.pid!, 'SIGSTOP');
  }

  /**
   * SIGSTOP the monitor in the middle of a cycle: right when it starts writing its hastat, i.e.
   * after it decided and published but before it pets its watchdog.
   */
  async freezeMidCycle(name: string, timeoutMs = 10_000): Promise<void> {
    const m = this.monitors.get(name)!;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        w.close();
        reject(new Error(`${name} wrote no hastat within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = watch(join(this.root, 'nodes', m.node), (_ev, file) => {
        if (!String(file).startsWith('.hastat.')) return;
        signal(m.proc.pid!, 'SIGSTOP');
        clearTimeout(timer);
        w.close();
        resolve();
      });
    });
  }

  thaw(name: string): void {
    signal(this.monitors.get(name)!.proc.pid!, 'SIGCONT');
  }

  /** Run the CLI asynchronously (a blocking spawnSync would stop us draining monitors' pipes). */
  cli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** `peerha set GROUP LEVEL --root DIR [--wait=S]`. */
  set(group: string, level: string, waitS?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.cli(['set', group, level, '--root', this.root, ...(waitS !== undefined ? [`--wait=${waitS}`] : [])]);
  }

  /** Write a file in a node's folder directly (corruption tests). */
  writeNodeFile(node: string, file: string, data: string | Buffer): void {
    writeFileSync(join(this.root, 'nodes', node, file), data);
  }

  /** Every process whose process group is one of these (for diagnostics). */
  membersOf(pgids: readonly number[]): number[] {
    return allPids().filter((p) => pgids.includes(procStat(p)?.pgrp ?? -1));
  }

  overlaps(): string[] {
    const f = join(this.dir, 'overlaps');
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.monitors.values()].map(async (m) => {
        if (m.exitCode() !== undefined) return;
        try {
          process.kill(m.proc.pid!, 'SIGCONT');
        } catch {
          // gone
        }
        m.proc.kill('SIGTERM');
        const done = await Promise.race([m.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 20_000))]);
        if (!done) m.proc.kill('SIGKILL');
      }),
    );
  }

  async cleanup(): Promise<void> {
    await this.stopAll();
    // Safety net: nothing a test left behind (after SIGKILLs, a failed assertion…) may outlive
    // it. Only process groups the engines recorded are touched (pid reuse is checked).
    for (const m of this.monitors.values()) {
      for (const pg of new PgidRecord(join(m.stateDir, `${m.node}.pgids`)).leftovers()) signal(-pg, 'SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
