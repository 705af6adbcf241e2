// The self-fence sidecar (bin/peerha-watchdog, a small perl script timing on the monotonic clock):
// `pet` lines on its stdin, `bye` to let it go; if the monitor stops petting it for LIMIT_MS, or
// dies (EOF), it SIGKILLs every process group in the record, then runs the stop entries of the
// groups that were active (the stop record) within stop_timeout.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../bin/peerha-watchdog', import.meta.url));

export class Watchdog {
  private child: ChildProcess | null = null;

  constructor(
    private readonly record: string,
    private readonly stops: string,
    /** The stop entries' environment (PEERHA_NODE, PEERHA_ROOT…). */
    private readonly env: NodeJS.ProcessEnv,
    /** It exited while it should be running (the monitor restarts it). */
    private readonly onExit: (code: number | null, signal: string | null) => void,
  ) {}

  start(limitMs: number): void {
    const wd = spawn(SCRIPT, [this.record, String(limitMs), this.stops], { stdio: ['pipe', 'inherit', 'inherit'], env: this.env });
    wd.stdin?.on('error', () => undefined); // EPIPE once it is gone: its exit is reported
    wd.on('error', () => undefined);
    wd.on('exit', (code, signal) => {
      if (this.child !== wd) return;
      this.child = null;
      this.onExit(code, signal);
    });
    this.child = wd;
  }

  /** The monitor's last heartbeat went out `ageMs` ago: the silence counts from then. */
  pet(ageMs = 0): void {
    this.tell(`pet ${Math.max(0, Math.round(ageMs))}`);
  }

  /** Let it go: `gone` once it exited (it waits for the stop entries it is running, if any). */
  stop(gone?: () => void): void {
    const wd = this.child;
    this.tell('bye');
    this.child = null;
    if (!gone) return;
    if (!wd || wd.exitCode !== null || wd.signalCode !== null) return gone();
    wd.once('exit', () => gone());
  }

  private tell(line: string): void {
    const wd = this.child;
    if (wd?.stdin && !wd.stdin.destroyed) wd.stdin.write(`${line}\n`);
  }
}

/**
 * Run the stop entries a previous run recorded (it crashed, or its watchdog was killed with it),
 * with the same code the watchdog uses; resolves when they finished or their stop_timeout passed.
 */
export function runRecordedStops(stops: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(SCRIPT, ['--run-stops', stops], { stdio: ['ignore', 'inherit', 'inherit'], env });
    child.on('error', () => resolve());
    child.on('exit', () => resolve());
  });
}
