// Crash-safe file replacement: write a dot-prefixed temp file beside the target, fsync it,
// rename it over the target, then fsync the directory. Readers see the old or the new file,
// never a torn one (on local disks; network filesystems are handled by retrying readers).

import { constants } from 'node:fs';
import { open, readlink, rename, unlink, mkdir, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/**
 * Where an open file really is (Linux: /proc/self/fd), to catch a symlink anywhere on its path;
 * null when /proc cannot tell (then only the last component was checked, by O_NOFOLLOW).
 */
export async function realPathOf(fh: FileHandle): Promise<string | null> {
  return readlink(`/proc/self/fd/${fh.fd}`).catch(() => null);
}

export interface AtomicOptions {
  readonly mode?: number;
  /** A replica keeps its source's age. */
  readonly mtimeMs?: number;
  /** The real path the file must end up at: refuse to write through a symlinked folder. */
  readonly realPath?: string;
  /** A group to give the file (with a mode that lets it read). */
  readonly gid?: number;
  /**
   * false: no fsync of the file or its folder (still tmp + rename, so never torn). For files
   * rewritten every cycle whose last version is worthless after a crash (heartbeats).
   */
  readonly durable?: boolean;
  /**
   * Asked right before the file replaces the target (and before an in-place rewrite): false
   * abandons the write (StaleWriteError). Content that was true when formatted can be false by the
   * time a frozen process resumes its write.
   */
  readonly stillValid?: () => boolean | Promise<boolean>;
}

/** A write abandoned because its content went stale before it could land (see stillValid). */
export class StaleWriteError extends Error {
  readonly code = 'ESTALEWRITE';
}

export async function writeFileAtomic(path: string, data: string, opts: AtomicOptions = {}): Promise<void> {
  const { mode = 0o644, mtimeMs, realPath, gid, durable = true, stillValid } = opts;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++counter}.tmp`);
  // O_EXCL + O_NOFOLLOW: a symlink planted at the temp name is never followed.
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    if (realPath !== undefined) {
      const at = await realPathOf(fh);
      if (at !== null && at !== join(dirname(realPath), basename(tmp))) throw new Error(`refused: ${dir} is reached through a symlink (${dirname(at)})`);
    }
    if (gid !== undefined) await fh.chown(process.getuid?.() ?? 0, gid);
    await fh.chmod(mode); // the umask must not widen or narrow what the caller asked for
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    if (mtimeMs !== undefined) await utimes(tmp, new Date(mtimeMs), new Date(mtimeMs));
    if (stillValid && !(await stillValid())) throw new StaleWriteError(`${path}: its content went stale before it could land: not written`);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  if (durable) await syncDir(dir);
}

/** The filesystem is full (or the quota is): a new file cannot be written. */
export function isFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Rewrite an existing regular file in place, within the blocks it already has: what still works
 * on a full filesystem. Not atomic — a reader may see old and new bytes mixed — so only for files
 * whose readers can tell (a clstat carries a checksum; a hastat is JSON).
 */
export async function rewriteInPlace(path: string, data: string, realPath?: string, stillValid?: () => boolean | Promise<boolean>): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`refused: ${path} is not a regular file`);
    if (realPath !== undefined) {
      const at = await realPathOf(fh);
      if (at !== null && at !== realPath) throw new Error(`refused: ${path} is reached through a symlink`);
    }
    const buf = Buffer.from(data);
    if (buf.length > Math.max(st.size, st.blocks * 512)) throw Object.assign(new Error(`ENOSPC: ${path} has no room to grow in place`), { code: 'ENOSPC' });
    if (stillValid && !(await stillValid())) throw new StaleWriteError(`${path}: its content went stale before it could land: not written`);
    await fh.write(buf, 0, buf.length, 0);
    await fh.truncate(buf.length);
    await fh.sync();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  }
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
