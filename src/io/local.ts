// Files on the local disk (state_dir) only: the sync API is fine there, and the callers need the
// file on disk before they go on.

import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * tmp + fsync + rename, synchronously: only for small files on the local disk (state_dir) that
 * must be on disk before a process starts. Never on the shared directory (Node aborts when a
 * sync close() fails on a FUSE mount).
 */
export function writeLocalFileAtomicSync(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
