// Test harness: N real `peerha monitor` processes on a private temp root.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, FAST_ENV, waitFor } from './daemon.js';
import type { Hastat } from '../../src/monitor/monitor.js';
import { parseClstat } from '../../src/config/clstat.js';

export { waitFor };

export interface MonitorProc {
  name: string;
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

/**
 * A workload that holds an exclusive lock on the group's lock file while it runs; if it ever
 * finds the lock taken, it records an overlap (two instances at once).
 */
export function lockedWorkload(dir: string, group: string): string {
  const lock = join(dir, 'locks', `${group}.lock`);
  const overlaps = join(dir, 'overlaps');
  return `flock -n ${lock} -c 'echo "$PEERHA_NODE" > ${join(dir, 'locks', `${group}.owner`)}; exec sleep 100000' || echo "${group} $PEERHA_NODE $(date +%s.%N)" >> ${overlaps}`;
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

  /** Replace `$DIR` with the harness directory. */
  subst(text: string): string {
    return text.replaceAll('$DIR', this.dir);
  }

  writeRoot(file: 'cltab' | 'hactl', text: string): void {
    const tmp = join(this.root, `.${file}.tmp`);
    writeFileSync(tmp, this.subst(text));
    renameSync(tmp, join(this.root, file));
  }

  start(name: string, env: Record<string, string> = {}): MonitorProc {
    const config = join(this.dir, `${name}.yaml`);
    writeFileSync(config, `state_dir: ${join(this.state, name)}\n${this.opts.yaml ?? ''}`);
    const args = [BIN, 'monitor', '--config', config, '--root', this.root, '--node', name, '--cycle', this.opts.cycle ?? '200ms', '--timeout', this.opts.timeout ?? '1500ms', ...(this.opts.extraArgs ?? [])];
    let output = '';
    const proc = spawn(process.execPath, args, { env: { ...process.env, ...FAST_ENV, PEERHA_NODE: name, ...this.opts.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    let code: number | null | undefined;
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r((code = c))));
    const m: MonitorProc = { name, proc, output: () => output, exited, exitCode: () => code };
    this.monitors.set(name, m);
    return m;
  }

  hastat(node: string): Hastat | null {
    try {
      return JSON.parse(readFileSync(join(this.root, 'nodes', node, 'hastat'), 'utf8')) as Hastat;
    } catch {
      return null;
    }
  }

  /** Group → nodes where clstat shows it active, from every node's clstat (the ground truth). */
  placements(): Map<string, Array<{ node: string; level: string; state: string }>> {
    const out = new Map<string, Array<{ node: string; level: string; state: string }>>();
    for (const name of this.monitors.keys()) {
      let text = '';
      try {
        text = readFileSync(join(this.root, 'nodes', name, 'clstat'), 'utf8');
      } catch {
        continue;
      }
      const c = parseClstat(text);
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
  runningOn(group: string, level = 'start', among?: string[]): string | null {
    const p = (this.placements().get(group) ?? []).filter((x) => !among || among.includes(x.node));
    if (p.length !== 1) return null;
    const only = p[0]!;
    return only.level === level && (only.state === 'DONE' || only.state === 'PASSED') ? only.node : null;
  }

  async waitRunning(group: string, level = 'start', timeoutMs = 20_000, among?: string[]): Promise<string> {
    return waitFor(`${group} ${level} on exactly one node (${JSON.stringify([...this.placements()])})`, () => this.runningOn(group, level, among), timeoutMs);
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
    rmSync(this.dir, { recursive: true, force: true });
  }
}
