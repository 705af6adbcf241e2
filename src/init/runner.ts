// Runner: the only place that starts and signals processes. Each command runs as
// `/bin/sh -c COMMAND` in a new session (its own process group); every signal goes to the
// whole group, and only while the group is known to have live members.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { Readable, Writable } from 'node:stream';
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
  /**
   * The command was refused (the gate stayed shut): nothing ran. Called instead of onExit and
   * onGone once nothing is left; without it a refusal exits 126, as a command that cannot run.
   */
  onRefused?(): void;
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

/** Process groups with a member that is not a zombie, from one scan of /proc (null: no /proc). */
function scanLiveGroups(): Set<number> | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const live = new Set<number>();
  for (const name of entries) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') live.add(Number(fields[2]));
    } catch {
      // process vanished while we looked
    }
  }
  return live;
}

/** One /proc scan serves every check made in the same event-loop turn (a thousand groups exiting at once). */
let scanned: Set<number> | null | undefined;

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
  // A member seen in this turn's scan may have died since (asked again at the next poll); a group
  // the scan missed may have gained a member after it, so a "no" is always asked afresh.
  if (scanned?.has(pgid)) return true;
  if (scanned === undefined) {
    setImmediate(() => {
      scanned = undefined;
    });
  }
  scanned = scanLiveGroups();
  return scanned === null ? true : scanned.has(pgid);
}

const GATE_OPEN = 'go\n';

/**
 * The command behind a gate: its shell first waits for one line on fd 3, which the daemon writes
 * once the process group is in its record (what the watchdog and a restarted daemon kill). A
 * daemon killed between the fork and that write closes fd 3 instead, and the shell exits 126
 * without running the command: no process ever outlives a daemon that did not record it.
 */
export function gated(command: string): string {
  return `read -r _ <&3 || exit 126\nexec 3<&-\n${command}`;
}

export interface RealRunnerOptions {
  /** Told whenever a process group appears or disappears (for the pgid record). */
  onGroupsChanged?: (live: ReadonlyMap<number, string>) => void;
  /** Asked once the process group is recorded: false, and the command does not run (it exits 126). */
  mayRun?: () => boolean;
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
    let refused = false;

    const markGone = (): void => {
      if (gone) return;
      gone = true;
      if (pollTimer) clearTimeout(pollTimer);
      if (sweepTimer) clearTimeout(sweepTimer);
      if (pgid > 0 && this.live.delete(pgid)) this.opts.onGroupsChanged?.(this.live);
      if (refused && cb.onRefused) cb.onRefused();
      else cb.onGone();
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
      if (!(refused && cb.onRefused)) cb.onExit(code, signal);
      poll();
    };

    const child = spawn('/bin/sh', ['-c', gated(req.command)], {
      detached: true, // setsid(): a new session and process group led by the shell
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: req.env ?? process.env,
      cwd: req.cwd,
    });
    if (child.pid !== undefined) {
      pgid = child.pid;
      // A monitor runs at raised priority (its `nice`); its groups' commands run at the normal
      // one. Set on the shell before the gate opens, so before the command runs (nice(1) in front
      // of the shell cost one more exec, 2–4 ms, on every start and every failover).
      if (getPriority() < 0) atNormalPriority(pgid);
      this.live.set(pgid, procStartTime(pgid) ?? '');
      this.opts.onGroupsChanged?.(this.live);
    }
    // Recorded: the command may run now (a daemon killed before this line leaves nothing running),
    // unless the daemon may no longer start anything (frozen here past its watchdog's limit).
    const gate = child.stdio[3] as Writable | null | undefined;
    gate?.on('error', () => undefined);
    refused = this.opts.mayRun?.() === false;
    gate?.end(refused ? '' : GATE_OPEN);
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

/** While `held` (the monitor is in a cycle), spawns wait: at most this long at a time, retried this often. */
const MAX_HOLD_MS = 250;
const HELD_RETRY_MS = 5;

function atNormalPriority(pid: number): void {
  try {
    setPriority(pid, 0);
  } catch {
    // ESRCH: the shell is gone already (it exits by the gate's answer).
  }
}

interface Queued {
  readonly req: SpawnRequest;
  readonly cb: SpawnCallbacks;
  handle: ProcessHandle | null;
  cancelled: boolean;
}

/**
 * Spawns at most `budgetMs` worth of processes per `windowMs` (at least one per window) and
 * queues the rest. A fork costs 2–5 ms here (more under load); a thousand groups told to start at
 * once would otherwise block the loop for seconds. Paced per event-loop turn instead, a spawn in
 * every turn made each of the cycle's asynchronous file operations (several turns each) wait
 * behind one: cycles took over timeout/2 and the watchdog fired. `inner` is asked only when the
 * process really starts (a guard there sees the moment of the spawn). While `held()` (a monitor
 * cycle is under way: its heartbeat comes first) spawns wait, up to MAX_HOLD_MS at a time. A process signalled before
 * it started never starts: it "exits" by that signal.
 */
export interface PacedRunner extends Runner {
  /** The hold may have ended (a cycle finished): what waits starts now, not at the next retry. */
  resume(): void;
}

export function pacedRunner(inner: Runner, budgetMs = 4, windowMs = 12, held: () => boolean = () => false, now: () => number = () => performance.now()): PacedRunner {
  const queue: Queued[] = [];
  let windowStart = Number.NEGATIVE_INFINITY;
  let used = 0;
  let heldSince = -1;
  let timer: NodeJS.Timeout | null = null;
  const mayStart = (): boolean => {
    const t = now();
    if (held()) {
      if (heldSince < 0) heldSince = t;
      if (t - heldSince < MAX_HOLD_MS) return false;
    } else heldSince = -1;
    if (t - windowStart >= windowMs) {
      windowStart = t;
      used = 0;
    }
    return used < budgetMs;
  };
  const startOne = (q: Queued): void => {
    const t0 = now();
    q.handle = inner.spawn(q.req, q.cb);
    used += now() - t0;
  };
  const later = (): void => {
    if (timer === null && queue.length > 0) timer = setTimeout(pump, heldSince >= 0 ? HELD_RETRY_MS : Math.max(1, windowStart + windowMs - now()));
  };
  const pump = (): void => {
    timer = null;
    while (queue.length > 0 && mayStart()) {
      const q = queue.shift()!;
      if (!q.cancelled) startOne(q);
    }
    later();
  };
  return {
    resume: (): void => {
      if (timer === null || heldSince < 0 || held()) return;
      clearTimeout(timer);
      timer = setTimeout(pump, 0);
    },
    spawn: (req, cb): ProcessHandle => {
      const q: Queued = { req, cb, handle: null, cancelled: false };
      if (queue.length === 0 && mayStart()) startOne(q);
      else {
        queue.push(q);
        later();
      }
      const cancel = (signal: string): void => {
        if (q.cancelled) return;
        q.cancelled = true;
        setImmediate(() => {
          cb.onExit(null, signal);
          cb.onGone();
        });
      };
      return {
        get pgid() {
          return q.handle?.pgid ?? 0;
        },
        signal: (sig) => (q.handle ? q.handle.signal(sig) : cancel(sig)),
        sweep: (graceMs) => q.handle?.sweep(graceMs),
      };
    },
  };
}
