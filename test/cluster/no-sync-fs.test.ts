// Nothing may use the sync fs API on the shared directory: on a FUSE mount (GlusterFS here) a
// close() that fails inside readFileSync aborts the whole Node 20 process. The modules that touch
// DIR use node:fs/promises only; the few that use the sync API touch local state only (listed).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon.js';

/** Local files only: the state directory (pid lock, pgid record) and fence agent binaries. */
const LOCAL_ONLY = new Set(['src/monitor/daemon.ts', 'src/monitor/pidlock.ts']);

it('the modules that touch the shared directory never call the sync fs API', () => {
  const files = [
    ...['src/cluster', 'src/monitor'].flatMap((d) => readdirSync(join(ROOT, d)).filter((f) => f.endsWith('.ts')).map((f) => `${d}/${f}`)),
    'src/cli/cluster.ts',
    'src/cli/check.ts',
    'src/cli/fence.ts',
    'src/io/atomic.ts',
  ].filter((f) => !LOCAL_ONLY.has(f));
  expect(files.length).toBeGreaterThan(20);
  const offenders: string[] = [];
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      if (/\b\w+Sync\s*\(/.test(line) || /from 'node:fs'/.test(line.replace(/import \{ constants \} from 'node:fs';/, ''))) offenders.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(offenders).toEqual([]);
});
