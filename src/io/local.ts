// Files on the local disk (state_dir) only: the sync API is fine there, and the callers need the
// file in place before they go on.

import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * tmp + rename, synchronously: only for small files on the local disk (state_dir) that must be
 * in place before a process starts. No fsync: these records (process groups, stop entries) matter
 * only while this boot lasts — a crashed process leaves the page cache intact, and a power loss
 * takes the processes with it — and a thousand groups starting would pay a thousand fsyncs.
 * Never on the shared directory (Node aborts when a sync close() fails on a FUSE mount).
 */
export function writeLocalFileAtomicSync(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}
