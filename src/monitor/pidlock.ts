// One monitor per node name per machine: a pid file in the local state directory (never on the
// shared directory), taken over when the pid in it is no longer a running monitor.

import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export function takePidLock(path: string): boolean {
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return true;
    } catch {
      let alive = false;
      try {
        const pid = Number(readFileSync(path, 'utf8').trim());
        if (pid > 0 && pid !== process.pid) {
          process.kill(pid, 0);
          alive = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('monitor');
        }
      } catch {
        alive = false;
      }
      if (alive) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

export function releasePidLock(path: string): void {
  rmSync(path, { force: true });
}
