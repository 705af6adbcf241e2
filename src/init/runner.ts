// Runner: the only place that starts and signals processes. Each command runs as
// `/bin/sh -c COMMAND` in a new session (its own process group); every signal goes to the
// whole group, and only while the group is known to have live members.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { StopSignal } from './machines.js';

export interface ProcessHandle {
  readonly pgid: number;
  /** The whole process group: SIGINT/SIGTERM/SIGKILL. No-op once the group is gone. */
  signal(sig: StopSignal): void;
  /** Stop what is left in the group after its leader exited: SIGTERM, then SIGKILL after graceMs. */
  sweep(graceMs: number): void;
}

export interface SpawnCallbacks {
  /** Leader exited; code 127 when the command could not be executed at all. */
  onExit(code: number | null, signal: string | null): void;
  /** No member of the process group is left. Always after onExit. */
  onGone(): void;
  onOutput(stream: 'stdout' | 'stderr', line: string): void;
}

export interface SpawnRequest {
  readonly command: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface Runner {
  spawn(req: SpawnRequest, cb: SpawnCallbacks): ProcessHandle;
}

const MAX_OUTPUT_LINE = 16 * 1024;

function splitLines(stream: Readable | null, emit: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      emit(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > MAX_OUTPUT_LINE) {
      emit(buf);
      buf = '';
    }
  });
  stream.on('end', () => {
    if (buf !== '') emit(buf);
  });
  stream.on('error', () => undefined);
}

/** Start time (clock ticks since boot) of a process, from /proc; null if it does not exist. */
export function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether a process group has a member that is not a zombie. Orphaned zombies can linger
 * where PID 1 does not reap, so signal-0 alone is not enough.
 */
export function groupHasLiveMember(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true; // no /proc: trust signal 0
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && fields[2] === String(pgid)) return true;
    } catch {
      // process vanished while we looked
    }
  }
  return false;
}

export interface RealRunnerOptions {
  /** Told whenever a process group appears or disappears (for the pgid record). */
  onGroupsChanged?: (live: ReadonlyMap<number, string>) => void;
  pollMs?: number;
}

export class RealRunner implements Runner {
  /** pgid → leader start time, for every group that still has members. */
  readonly live = new Map<number, string>();

  constructor(private readonly opts: RealRunnerOptions = {}) {}

  spawn(req: SpawnRequest, cb: SpawnCallbacks): ProcessHandle {
    const pollMs = this.opts.pollMs ?? 100;
    let exited = false;
    let gone = false;
    let pgid = 0;
    let pollTimer: NodeJS.Timeout | null = null;
    let sweepTimer: NodeJS.Timeout | null = null;

    const markGone = (): void => {
      if (gone) return;
      gone = true;
      if (pollTimer) clearTimeout(pollTimer);
      if (sweepTimer) clearTimeout(sweepTimer);
      if (pgid > 0 && this.live.delete(pgid)) this.opts.onGroupsChanged?.(this.live);
      cb.onGone();
    };
    const poll = (): void => {
      pollTimer = null;
      if (gone) return;
      if (pgid <= 0 || !groupHasLiveMember(pgid)) markGone();
      else pollTimer = setTimeout(poll, pollMs);
    };
    const onLeaderExit = (code: number | null, signal: string | null): void => {
      if (exited) return;
      exited = true;
      cb.onExit(code, signal);
      poll();
    };

    const child = spawn('/bin/sh', ['-c', req.command], {
      detached: true, // setsid(): a new session and process group led by the shell
      stdio: ['ignore', 'pipe', 'pipe'],
      env: req.env ?? process.env,
      cwd: req.cwd,
    });
    if (child.pid !== undefined) {
      pgid = child.pid;
      this.live.set(pgid, procStartTime(pgid) ?? '');
      this.opts.onGroupsChanged?.(this.live);
    }
    child.on('error', () => {
      // /bin/sh itself could not be started: only this entry is affected, as an exec failure.
      setImmediate(() => onLeaderExit(127, null));
    });
    child.on('exit', (code, signal) => onLeaderExit(code, signal));
    splitLines(child.stdout, (l) => cb.onOutput('stdout', l));
    splitLines(child.stderr, (l) => cb.onOutput('stderr', l));

    const signalGroup = (sig: NodeJS.Signals): void => {
      if (gone || pgid <= 0) return;
      try {
        process.kill(-pgid, sig);
      } catch {
        // ESRCH: the group emptied between checks; the poll will notice.
      }
    };
    return {
      pgid,
      signal: (sig) => signalGroup(sig),
      sweep: (graceMs) => {
        if (gone || sweepTimer) return;
        signalGroup('SIGTERM');
        sweepTimer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      },
    };
  }
}
