// Test harness: a real `peerha init` daemon in a private temp directory, driven over its socket.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach } from 'vitest';
import { request, type Reply, type Request } from '../../src/init/protocol.js';
import type { GroupStatus } from '../../src/init/engine.js';
import { parseClstat } from '../../src/config/clstat.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin', 'peerha');

/** Short timings so escalation and backoff happen within test time. */
export const FAST_ENV: Record<string, string> = {
  PEERHA_TERM_AFTER_MS: '300',
  PEERHA_KILL_AFTER_MS: '900',
  PEERHA_KILL_REPEAT_MS: '300',
  PEERHA_BACKOFF_MIN_MS: '1000',
  PEERHA_BACKOFF_MAX_MS: '4000',
  PEERHA_RESET_AFTER_MS: '10000',
  PEERHA_LOG_LEVEL: 'info',
};

export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether a pid exists and is not a zombie. */
/** SIGKILL the process group of every child in `procs` (each started detached) and forget them. */
export function killGroupsOf(procs: ChildProcess[]): void {
  for (const p of procs.splice(0)) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes whose command line contains `marker`. */
export function processesWith(marker: string): number[] {
  const out = spawnSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((l) => l.includes(marker) && !l.includes('ps -eo'))
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => !(f[1] ?? '').startsWith('Z'))
    .map((f) => Number(f[0]));
}

export interface DaemonHandle {
  dir: string;
  cltab: string;
  socket: string;
  clstat: string;
  out: string;
  proc: ChildProcess;
  /** Everything the daemon printed so far (stdout + stderr). */
  output(): string;
  send(req: Request): Promise<Reply>;
  tell(group: string, level: string): Promise<Reply>;
  /** `group level state` lines from clstat, like `clinit -v`. */
  statusLines(): string[];
  /** The state of `group` at `level` in clstat, or null. */
  stateOf(group: string, level: string): string | null;
  waitState(group: string, level: string, state: string, timeoutMs?: number): Promise<void>;
  /**
   * Wait until the daemon has written `n` more heartbeats (clstat seq): `n` of its cycles went by,
   * each re-reading cltab. "Nothing happened for n cycles" is counted in the daemon's own events,
   * not in a window of wall-clock time that a loaded machine may fill with nothing.
   */
  cycles(n: number, timeoutMs?: number): Promise<void>;
  writeCltab(text: string): void;
  /** Read the file the commands write to (`$OUT` in cltab commands). */
  outLines(): string[];
  cli(args: string[], env?: Record<string, string>): { code: number | null; stdout: string; stderr: string };
  exited(): Promise<number | null>;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  cycleMs?: number;
  /** Reuse a directory (e.g. to restart after SIGKILL). */
  dir?: string;
  waitReady?: boolean;
}

/**
 * Start a daemon on `cltabText`. In the text, `$DIR` is replaced by the temp directory and
 * `$OUT` by a file commands may write to.
 */
export async function startDaemon(cltabText: string | null, opts: StartOptions = {}): Promise<DaemonHandle> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'peerha-t-'));
  const cltab = join(dir, 'cltab');
  const socket = join(dir, 'clinit.s');
  const clstat = join(dir, 'clstat');
  const out = join(dir, 'out');
  const subst = (t: string): string => t.replaceAll('$DIR', dir).replaceAll('$OUT', out);
  if (cltabText !== null) writeFileSync(cltab, subst(cltabText));
  let output = '';
  const proc = spawn(process.execPath, [BIN, 'init', '--cltab', cltab, '--socket', socket, '--clstat', clstat, '--node', 'testnode', '--cycle', `${opts.cycleMs ?? 200}ms`], {
    env: { ...process.env, ...FAST_ENV, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exitP = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let exitCode: number | null | undefined;
  void exitP.then((c) => (exitCode = c));

  const h: DaemonHandle = {
    dir,
    cltab,
    socket,
    clstat,
    out,
    proc,
    output: () => output,
    send: async (req) => (await request(socket, [req], 30_000))[0]!,
    tell: (group, level) => h.send({ op: 'tell', group, level }),
    statusLines: () => {
      let text = '';
      try {
        text = readFileSync(clstat, 'utf8');
      } catch {
        return [];
      }
      return parseClstat(text).groups.map((g) => `${g.group} ${g.level} ${g.state}`);
    },
    stateOf: (group, level) => {
      const line = h.statusLines().find((l) => l.startsWith(`${group} ${level} `));
      return line ? line.split(' ')[2]! : null;
    },
    waitState: async (group, level, state, timeoutMs = 10_000) => {
      await waitFor(`${group} ${level} ${state} (clstat: ${h.statusLines().join(' | ')})`, () => h.stateOf(group, level) === state, timeoutMs);
    },
    cycles: async (n, timeoutMs = 30_000) => {
      const seq = (): number => {
        try {
          return parseClstat(readFileSync(clstat, 'utf8')).header?.seq ?? 0;
        } catch {
          return 0;
        }
      };
      const from = seq();
      await waitFor(`${n} daemon cycles after seq ${from}`, () => seq() >= from + n, timeoutMs, 20);
    },
    writeCltab: (text) => {
      const tmp = `${cltab}.tmp`;
      writeFileSync(tmp, subst(text));
      spawnSync('mv', [tmp, cltab]);
    },
    outLines: () => {
      try {
        return readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
      } catch {
        return [];
      }
    },
    cli: (args, env = {}) => {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, PEERHA_SOCKET: socket, ...env }, timeout: 60_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    exited: () => exitP,
    stop: async () => {
      if (exitCode === undefined) {
        try {
          await request(socket, [{ op: 'shutdown' }], 20_000);
        } catch {
          proc.kill('SIGKILL');
        }
        await Promise.race([exitP, new Promise((r) => setTimeout(r, 20_000))]);
        if (exitCode === undefined) proc.kill('SIGKILL');
      }
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.waitReady !== false) {
    await waitFor(`daemon ready (output: ${output.slice(-500)})`, () => exitCode !== undefined || (existsSync(socket) && output.includes('peerha init ready')), 10_000);
    if (exitCode !== undefined) throw new Error(`daemon exited with ${exitCode}: ${output}`);
  }
  return h;
}

/**
 * Daemons and marker processes a test file starts; afterEach stops the daemons (newest first:
 * daemons sharing a directory are stopped before the one that owns it) and kills every process
 * whose command line contains a marker (a unique fragment such as `sleep 7101.5`, made unique to
 * this test process).
 */
export function trackDaemons(): { start: (text: string | null, opts?: StartOptions) => Promise<DaemonHandle>; marker: (m: string) => string } {
  const daemons: DaemonHandle[] = [];
  const markers: string[] = [];
  afterEach(async () => {
    for (const d of daemons.splice(0).reverse()) await d.stop().catch(() => undefined);
    for (const m of markers.splice(0)) {
      for (const pid of processesWith(m)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  });
  return {
    start: async (text, opts) => {
      const d = await startDaemon(text, opts);
      daemons.push(d);
      return d;
    },
    marker: (m) => {
      // Unique to this test process too: processesWith() sees the whole machine, and a second test
      // run beside this one (another checkout, CI) starts the same commands. `sleep 7104.1` becomes
      // `sleep 7104.1<pid>`, still a number of seconds.
      const mine = /\d$/.test(m) ? `${m}${process.pid}` : m;
      markers.push(mine);
      return mine;
    },
  };
}

export async function groupStatus(d: DaemonHandle, group: string): Promise<GroupStatus | undefined> {
  const r = await d.send({ op: 'status' });
  return r.groups?.find((g) => g.group === group);
}

/** Live processes whose whole command line is exactly `cmd` (not just containing it). */
export function exactProcesses(cmd: string): number[] {
  return processesWith(cmd).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') === cmd;
    } catch {
      return false;
    }
  });
}
