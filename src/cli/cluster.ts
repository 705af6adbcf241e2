// Cluster commands that work from any machine that mounts DIR: status (from the freshest
// hastat) and set (edit hactl under a lock).

import lockfile from 'proper-lockfile';
import { stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { formatHactl, parseHactl, type HactlWant } from '../config/hactl.js';
import { contentHash, pickNewest, type Judged } from '../cluster/replicate.js';
import { FsStore } from '../cluster/store.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Hastat } from '../monitor/monitor.js';

/**
 * Every node's hastat; the freshest first. Freshness is the file's mtime (stamped by the file
 * system when written), not the writer's own `time`: a node whose clock runs ahead would
 * otherwise always look freshest, and once it died `status` and `set --wait` would keep reading
 * its frozen view.
 */
export async function readHastats(root: string): Promise<Hastat[]> {
  const store = new FsStore(root, '');
  const out: Array<{ h: Hastat; mtimeMs: number }> = [];
  for (const n of await store.listNodes()) {
    const r = await store.readNodeFile(n, 'hastat');
    if (!r) continue;
    try {
      const h = JSON.parse(r.text) as Hastat;
      if (h && h.version === 1) out.push({ h, mtimeMs: r.mtimeMs });
    } catch {
      // torn or half-written: skip this one
    }
  }
  return out.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.h.time < b.h.time ? 1 : a.h.time > b.h.time ? -1 : 0)).map((x) => x.h);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function renderStatus(h: Hastat, group?: string): string {
  const nodes = Object.entries(h.nodes);
  const up = nodes.filter(([, v]) => v.state === 'up').length;
  const cluster = !h.quorum.ok ? 'NO QUORUM' : up < nodes.length ? 'DEGRADED' : 'UP';
  const lines: string[] = [];
  lines.push(`cluster ${cluster}: ${up}/${nodes.length} nodes up, quorum ${h.quorum.ok ? 'ok' : 'lost'} (${h.quorum.policy}: ${h.quorum.reason}); view of ${h.node} at ${h.time}`);
  lines.push(h.detection);
  lines.push('');
  const groupsOn = (n: string): string[] => Object.entries(h.groups).filter(([, g]) => g.instances[n]).map(([name]) => name);
  lines.push(table([['NODE', 'STATE', 'SEQ', 'LAST CHANGE', 'GROUPS'], ...nodes.map(([n, v]) => [n, v.state, String(v.seq ?? '-'), v.lastChange ?? '-', groupsOn(n).join(',') || '-'])]));
  lines.push('');
  const rows = [['GROUP', 'WANT', 'NODE', 'LEVEL', 'STATE', 'NOTES']];
  for (const [g, v] of Object.entries(h.groups)) {
    if (group !== undefined && g !== group) continue;
    const inst = Object.entries(v.instances);
    const notes = (v.notes ?? []).join('; ') || '-';
    if (inst.length === 0) rows.push([g, v.want ?? '-', '-', '-', '-', notes]);
    for (const [n, i] of inst) rows.push([g, v.want ?? '-', n, i.level, i.state, notes]);
  }
  lines.push(table(rows));
  if (h.errors.length) lines.push('', 'errors:', ...h.errors.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

/** The hactl the cluster currently follows: the newest valid copy. */
async function currentHactl(store: FsStore): Promise<{ winner: Judged | null; maxMtime: number }> {
  const reads = [await store.readRootFile('hactl')];
  for (const n of await store.listNodes()) reads.push(await store.readNodeFile(n, 'hactl'));
  const judged: Judged[] = [];
  let maxMtime = 0;
  reads.forEach((r, i) => {
    if (!r) return;
    maxMtime = Math.max(maxMtime, r.mtimeMs);
    const p = parseHactl(r.text, `hactl#${i}`);
    judged.push({ source: String(i), text: r.text, mtimeMs: r.mtimeMs, hash: contentHash(r.text), errors: p.ok ? [] : ['bad'] });
  });
  return { winner: pickNewest(judged), maxMtime };
}

/**
 * Set GROUP's wanted level in DIR/hactl (level `stop` keeps the line; `--remove` style deletion
 * is `level === null`). Written so that it is strictly the newest copy, whatever the mtime
 * granularity of the filesystem.
 */
export async function setWant(root: string, group: string, level: string | null, nodes: string[] | null): Promise<string> {
  const store = new FsStore(root, '');
  const target = join(root, 'hactl');
  const release = await lockfile.lock(root, {
    lockfilePath: join(root, '.hactl.lock'),
    realpath: false,
    stale: 30_000,
    update: 5_000,
    retries: { retries: 30, minTimeout: 200, maxTimeout: 2_000 },
    onCompromised: (err) => {
      throw err;
    },
  });
  try {
    const { winner, maxMtime } = await currentHactl(store);
    const wants = new Map<string, HactlWant>();
    if (winner) {
      const p = parseHactl(winner.text, target);
      if (p.ok) for (const [g, w] of p.hactl.wants) wants.set(g, w);
    }
    if (level === null) wants.delete(group);
    else wants.set(group, { group, level, nodes, line: 0 });
    const text = formatHactl(wants.values());
    await writeFileAtomic(target, text);
    const st = await stat(target);
    if (st.mtimeMs <= maxMtime) {
      const t = new Date(Math.floor(maxMtime / 1000) * 1000 + 1000);
      await utimes(target, t, t);
    }
    return text;
  } finally {
    await release();
  }
}
