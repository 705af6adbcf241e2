// A copy's verdict is cached by its file signature (no read while it stands still). When the
// signature changes, the verdict must go with it: kept, it stood for the new content once the
// new signature settled, even if no read of it ever landed (sim seed 4131: every read of the new
// cltab failed with EIO for a while, and the node ran a group removed from cltab for good).

import { describe, expect, it } from 'vitest';
import type { CopySeen } from '../../src/monitor/state.js';
import { judgeRead, unchangedVerdict } from '../../src/monitor/replication.js';

const SETTLE_MS = 100;
const OLD = 'g1:svc:start:respawn:sleep 60\n';
const NEW = 'g2:svc:start:respawn:sleep 60\n';

describe('replicated copies: the verdict follows the signature', () => {
  it('a replaced copy is read until a read of it lands, however long that takes', () => {
    const copies = new Map<string, CopySeen>();
    const old = { mtimeMs: 1_000, size: OLD.length, ino: 1, mode: 0o100644 };
    expect(unchangedVerdict(copies, 'cltab', old, 0, SETTLE_MS)).toBeUndefined();
    const first = judgeRead(copies, 'cltab', '/r/cltab', { text: OLD, mtimeMs: 1_000, size: OLD.length });
    expect(first?.text).toBe(OLD);
    expect(unchangedVerdict(copies, 'cltab', old, 200, SETTLE_MS)).toBe(first); // settled: no read

    // The admin replaces it (tmp + rename: a new inode); every read of it fails for a while.
    const replaced = { mtimeMs: 2_000, size: NEW.length, ino: 2, mode: 0o100644 };
    for (const now of [300, 400, 1_000, 60_000]) expect(unchangedVerdict(copies, 'cltab', replaced, now, SETTLE_MS), `at ${now}`).toBeUndefined();

    // A read lands: the new text is the verdict, and it stands once settled.
    const second = judgeRead(copies, 'cltab', '/r/cltab', { text: NEW, mtimeMs: 2_000, size: NEW.length });
    expect(second?.text).toBe(NEW);
    expect(unchangedVerdict(copies, 'cltab', replaced, 60_100, SETTLE_MS)).toBe(second);
  });

  it('a copy rewritten in place (same inode) sits out a cycle, then is read, never judged by its old text', () => {
    const copies = new Map<string, CopySeen>();
    const sig = { mtimeMs: 1_000, size: OLD.length, ino: 7, mode: 0o100644 };
    unchangedVerdict(copies, 'cltab', sig, 0, SETTLE_MS);
    judgeRead(copies, 'cltab', '/r/cltab', { text: OLD, mtimeMs: 1_000, size: OLD.length });
    const inPlace = { ...sig, mtimeMs: 3_000 };
    expect(unchangedVerdict(copies, 'cltab', inPlace, 500, SETTLE_MS)).toBeNull();
    expect(unchangedVerdict(copies, 'cltab', inPlace, 5_000, SETTLE_MS)).toBeUndefined();
  });
});
