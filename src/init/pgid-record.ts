// A local record of the process groups this daemon started, so that a daemon killed with
// SIGKILL and restarted first stops what its previous run left behind.

import { readFileSync, rmSync } from 'node:fs';
import { writeLocalFileAtomicSync } from '../io/local.js';
import { groupHasLiveMember, procStartTime } from './runner.js';

interface RecordFile {
  bootId: string;
  daemonPid: number;
  groups: Array<{ pgid: number; start: string }>;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

export class PgidRecord {
  private readonly boot = bootId();

  constructor(readonly path: string) {}

  /** Synchronous on purpose: the record must be on disk before the process can outlive us. */
  save(live: ReadonlyMap<number, string>): void {
    const rec: RecordFile = { bootId: this.boot, daemonPid: process.pid, groups: [...live].map(([pgid, start]) => ({ pgid, start })) };
    writeLocalFileAtomicSync(this.path, JSON.stringify(rec) + '\n');
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }

  /**
   * Process groups a previous run left alive. A group whose leader pid now belongs to a newer
   * process (pid reuse) or a record from another boot is ignored.
   */
  leftovers(): number[] {
    let rec: RecordFile;
    try {
      rec = JSON.parse(readFileSync(this.path, 'utf8')) as RecordFile;
    } catch {
      return [];
    }
    if (!Array.isArray(rec.groups) || rec.bootId !== this.boot) return [];
    const out: number[] = [];
    for (const g of rec.groups) {
      if (!Number.isSafeInteger(g.pgid) || g.pgid <= 1) continue;
      const leaderStart = procStartTime(g.pgid);
      if (leaderStart !== null && g.start !== '' && leaderStart !== g.start) continue; // reused pid
      if (groupHasLiveMember(g.pgid)) out.push(g.pgid);
    }
    return out;
  }
}

/** SIGTERM the groups, SIGKILL what remains after graceMs, wait (bounded) until they are gone. */
export async function killGroups(pgids: readonly number[], graceMs: number, capMs = graceMs + 5_000): Promise<number[]> {
  const send = (sig: NodeJS.Signals): void => {
    for (const pgid of pgids) {
      try {
        process.kill(-pgid, sig);
      } catch {
        // already gone
      }
    }
  };
  const alive = (): number[] => pgids.filter((p) => groupHasLiveMember(p));
  send('SIGTERM');
  const started = Date.now();
  let killed = false;
  while (alive().length > 0 && Date.now() - started < capMs) {
    if (!killed && Date.now() - started >= graceMs) {
      send('SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return alive();
}
