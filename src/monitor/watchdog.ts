// The self-fence sidecar (bin/peerha-watchdog, a small perl script timing on the monotonic clock): `pet` lines on its stdin,
// `bye` to let it go; if the monitor stops petting it for LIMIT_MS, or dies (EOF), it SIGKILLs
// every process group in the record.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../bin/peerha-watchdog', import.meta.url));

export class Watchdog {
  private child: ChildProcess | null = null;

  constructor(
    private readonly record: string,
    /** It exited while it should be running (the monitor restarts it). */
    private readonly onExit: (code: number | null, signal: string | null) => void,
  ) {}

  start(limitMs: number): void {
    const wd = spawn(SCRIPT, [this.record, String(limitMs)], { stdio: ['pipe', 'inherit', 'inherit'] });
    wd.stdin?.on('error', () => undefined); // EPIPE once it is gone: its exit is reported
    wd.on('error', () => undefined);
    wd.on('exit', (code, signal) => {
      if (this.child !== wd) return;
      this.child = null;
      this.onExit(code, signal);
    });
    this.child = wd;
  }

  pet(): void {
    this.tell('pet');
  }

  stop(): void {
    this.tell('bye');
    this.child = null;
  }

  private tell(line: 'pet' | 'bye'): void {
    const wd = this.child;
    if (wd?.stdin && !wd.stdin.destroyed) wd.stdin.write(`${line}\n`);
  }
}
