// The watchdog sidecar: a tiny separate process forked by the monitor. The monitor pets it
// every cycle over IPC. If the pets stop for `limit` ms (monitor frozen, hung on I/O) or the
// monitor dies, it SIGKILLs every process group the monitor's engine recorded — the self-fence
// that lets peers take over safely after `timeout`.

import { PgidRecord } from '../init/pgid-record.js';

export const WATCHDOG_PET = 'pet';
export const WATCHDOG_BYE = 'bye';

function log(msg: string, extra: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ level: 50, time: Date.now(), name: 'peerha-watchdog', pid: process.pid, ...extra, msg }) + '\n');
}

function killAll(record: PgidRecord, why: string): void {
  const pgids = record.leftovers();
  for (const pgid of pgids) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (pgids.length > 0) log(`self-fence: killed local group processes (${why})`, { pgids });
}

export function runWatchdog(recordPath: string, limitMs: number): void {
  const record = new PgidRecord(recordPath);
  let lastPet = performance.now();
  let leaving = false;
  let fired = false;
  process.on('SIGINT', () => undefined); // a terminal Ctrl-C must not take the guarantee away mid-shutdown
  process.on('SIGHUP', () => undefined);
  process.on('message', (m) => {
    if (m === WATCHDOG_PET) {
      lastPet = performance.now();
      fired = false;
    } else if (m === WATCHDOG_BYE) {
      leaving = true;
      process.exit(0);
    }
  });
  process.on('disconnect', () => {
    if (!leaving) killAll(record, 'monitor gone');
    process.exit(0);
  });
  setInterval(() => {
    const silent = performance.now() - lastPet;
    if (silent <= limitMs) return;
    if (!fired) log('monitor silent: self-fencing', { silentMs: Math.round(silent), limitMs });
    fired = true;
    killAll(record, 'monitor silent');
  }, Math.max(20, Math.floor(limitMs / 4)));
}

// Run when forked as a script: node watchdog.js RECORD LIMIT_MS
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '') && process.send) {
  const [recordPath, limit] = process.argv.slice(2);
  if (!recordPath || !Number.isFinite(Number(limit))) {
    log('usage: watchdog.js RECORD LIMIT_MS');
    process.exit(2);
  }
  runWatchdog(recordPath, Number(limit));
}
