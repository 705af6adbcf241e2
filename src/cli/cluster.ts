// Cluster commands that work from any machine that mounts DIR: status (from the freshest
// hastat) and set (edit hactl under a lock).

import lockfile from 'proper-lockfile';
import { open, realpath, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { formatError, formatMode, parseCltab, type Cltab, type CltabEntry } from '../config/cltab.js';
import { formatHactl, parseHactl, type HactlWant } from '../config/hactl.js';
import { MONITOR_LEVELS, nameProblem } from '../config/names.js';
import { FsStore, newestValid } from '../cluster/store.js';
import { generationOf, withGeneration } from '../cluster/replicate.js';
import { parseHastat, type Hastat, type HastatGroup, type HastatLocalEntry } from '../cluster/hastat.js';

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
    const h = parseHastat(r.text); // torn or half-written: skip this one
    if (h) out.push({ h, mtimeMs: r.mtimeMs });
  }
  return out.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.h.time < b.h.time ? 1 : a.h.time > b.h.time ? -1 : 0)).map((x) => x.h);
}

export type Paint = (style: 'good' | 'warn' | 'bad' | 'dim' | 'bold', text: string) => string;

export const plain: Paint = (_s, t) => t;

/** ANSI colours, for a terminal that wants them (NO_COLOR honoured by the caller). */
export const ansi: Paint = (style, t) => {
  const code = { good: 32, warn: 33, bad: 31, dim: 2, bold: 1 }[style];
  return `\u001b[${code}m${t}\u001b[0m`;
};

const visible = (s: string): number => s.replace(/\u001b\[[0-9;]*m/g, '').length;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => visible(r[i] ?? ''))));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - visible(c)))).join('  ')).join('\n');
}

function age(from: string | null, to: string): string {
  if (!from) return '-';
  const ms = Date.parse(to) - Date.parse(from);
  if (!Number.isFinite(ms)) return '-';
  return ms < 60_000 ? `${(Math.max(0, ms) / 1000).toFixed(1)}s ago` : `${Math.round(ms / 60_000)}m ago`;
}

const stateStyle = (s: string): 'good' | 'warn' | 'bad' | 'dim' =>
  s === 'up' || s === 'DONE' || s === 'PASSED' ? 'good' : s === 'stale' || s === 'fenced' || s === 'FAILED' ? 'bad' : s === 'left' ? 'dim' : 'warn';

/**
 * Notes that only the node they concern can know (a failed test, a respawn backoff), gathered from
 * every live node's view and named after that node: "test failed on n2".
 */
export function remoteNotes(all: readonly Hastat[], h: Hastat): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const other of all) {
    if (other.node === h.node || h.nodes[other.node]?.state !== 'up') continue;
    for (const [g, v] of Object.entries(other.groups)) {
      for (const n of v.notes ?? []) {
        const text = n.startsWith('test failed here')
          ? `test failed on ${other.node}`
          : n.startsWith('given up here')
            ? `given up on ${other.node}${n.slice('given up here'.length)}`
            : /backoff|survives|restart(ing|ed) here|counted as a restart/.test(n)
              ? `${n} (on ${other.node})`
              : null;
        if (text) out.set(g, [...(out.get(g) ?? []), text]);
      }
    }
  }
  return out;
}

export function renderStatus(h: Hastat, group?: string, paint: Paint = plain, extraNotes: Map<string, string[]> = new Map(), all: readonly Hastat[] = [h]): string {
  const nodes = Object.entries(h.nodes);
  const up = nodes.filter(([, v]) => v.state === 'up').length;
  const cluster = !h.quorum.ok ? paint('bad', 'NO QUORUM') : up < nodes.length ? paint('warn', 'DEGRADED') : paint('good', 'UP');
  const lines: string[] = [];
  lines.push(`cluster ${cluster}: ${up} of ${nodes.length} nodes up, quorum ${h.quorum.ok ? 'ok' : 'lost'} (${h.quorum.policy}: ${h.quorum.reason})`);
  lines.push(paint('dim', `${h.detection}; view of ${h.node} at ${h.time}`));
  lines.push('');
  const groupsOn = (n: string): string[] => Object.entries(h.groups).filter(([, g]) => g.instances[n]).map(([name]) => name);
  const fences = nodes.some(([, v]) => v.lastFence);
  const lastFence = (v: Hastat['nodes'][string]): string[] =>
    fences ? [v.lastFence ? `${paint(v.lastFence.result === 'success' ? 'good' : 'bad', v.lastFence.result)} by ${v.lastFence.fencer} ${age(v.lastFence.time, h.time)}` : '-'] : [];
  lines.push(
    table([
      ['NODE', 'STATE', 'HEARTBEAT', 'SEQ', ...(fences ? ['LAST FENCE'] : []), 'GROUPS'].map((x) => paint('bold', x)),
      ...nodes.map(([n, v]) => [n, paint(stateStyle(v.state), v.state + (v.readError ? ` (${v.readError})` : '') + (v.declaredStaleBy ? ' (held stale: runs nothing)' : '')), age(v.lastChange, h.time), String(v.seq ?? '-'), ...lastFence(v), groupsOn(n).join(',') || '-']),
    ]),
  );
  lines.push('');
  const rows = [['GROUP', 'WANT', 'NODE', 'LEVEL', 'STATE', 'FAILOVERS', 'NOTES'].map((x) => paint('bold', x))];
  for (const [g, v] of Object.entries(h.groups)) {
    if (group !== undefined && g !== group) continue;
    const inst = Object.entries(v.instances);
    const notes = [...(v.notes ?? []), ...(extraNotes.get(g) ?? [])].join('; ') || '-';
    const fo = String(v.failovers ?? 0);
    if (inst.length === 0) rows.push([g, v.want ?? '-', '-', '-', paint(v.want && v.want !== 'stop' ? 'warn' : 'dim', v.want && v.want !== 'stop' ? 'not running' : '-'), fo, notes]);
    for (const [n, i] of inst) rows.push([g, v.want ?? '-', n, i.level, paint(stateStyle(i.state), i.state), fo, notes]);
  }
  lines.push(table(rows));
  // Only the node held stale knows (its peers' view of it is what is stuck): ask every view.
  const never = nodes.filter(([, v]) => v.state === 'unknown' && v.seq === null).map(([n]) => `  ${n}: never read (its clstat is missing or unreadable); plans wait for it. If that node is gone, remove its folder and beats: rm -r DIR/nodes/${n} DIR/beats/${n}@*`);
  if (never.length) lines.push('', paint('warn', 'unknown nodes:'), ...never);
  const pill = all.flatMap((o) => {
    const by = o.nodes[o.node]?.declaredStaleBy;
    return by ? [`  ${o.node} is held stale by ${by}: it runs nothing until they read it again`] : [];
  });
  if (pill.length) lines.push('', paint('bad', 'poison pill:'), ...pill);
  if (h.errors.length) lines.push('', paint('bad', 'errors:'), ...h.errors.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

function ms(n: number): string {
  return n % 60_000 === 0 ? `${n / 60_000}m` : n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`;
}

/** A monitor entry's health check: last check, failures in a row. */
function checkLine(e: HastatLocalEntry, now: string, paint: Paint): string {
  const c = e.check!;
  const last = c.lastResult === null || c.lastAt === null ? 'no check yet' : `last check ${paint(c.lastResult === 'ok' ? 'good' : 'bad', c.lastResult)} ${age(c.lastAt, now)} (${c.lastAt})`;
  const failures = `${c.failures} of ${c.threshold} failed in a row`;
  return `    ${last}; ${c.failures > 0 ? paint('warn', failures) : failures}; every ${ms(c.intervalMs)}, timeout ${ms(c.timeoutMs)}`;
}

/** A group's local restarts and whether this node gave it up. */
function restartLine(local: NonNullable<HastatGroup['local']>, paint: Paint): string | null {
  if (local.restarts === undefined && local.givenUp === undefined) return null;
  const max = local.maxRestarts !== undefined ? ` (max ${local.maxRestarts})` : '';
  return `  restarts in the window: ${local.restarts ?? 0}${max}; given up: ${local.givenUp ? paint('bad', 'yes') : 'no'}`;
}

/** `peerha status GROUP`: entries, where it runs, allowed nodes, and recent transitions per node. */
export function renderGroup(all: readonly Hastat[], group: string, entries: ReadonlyArray<Pick<CltabEntry, 'tag' | 'levelField' | 'mode' | 'command' | 'health'>>, paint: Paint = plain): string {
  const h = all[0];
  const g = h?.groups[group];
  const lines: string[] = [];
  if (!h || !g) return `group ${group}: not in hactl and running nowhere\n`;
  lines.push(`${paint('bold', `group ${group}`)}: want ${g.want ?? '-'}; allowed nodes ${g.nodes ? g.nodes.join(',') : 'any'}; failovers seen by ${h.node}: ${g.failovers ?? 0}`);
  lines.push('', paint('bold', 'entries (cltab):'));
  if (entries.length === 0) lines.push('  none: the group is not in cltab');
  else lines.push(table([['  TAG', 'LEVELS', 'MODE', 'COMMAND'], ...entries.map((e) => [`  ${e.tag}`, e.levelField, formatMode(e), e.command])]));
  lines.push('', paint('bold', 'instances:'));
  const inst = Object.entries(g.instances);
  if (inst.length === 0) lines.push('  running nowhere');
  for (const [n, i] of inst) lines.push(`  ${n}: ${i.level} ${paint(stateStyle(i.state), i.state)}`);
  if (g.notes?.length) lines.push('', paint('bold', 'notes:'), ...g.notes.map((n) => `  ${n}`));
  for (const other of all) {
    const local = other.groups[group]?.local;
    if (!local || (other.node !== h.node && h.nodes[other.node]?.state !== 'up')) continue; // a dead node's last word
    lines.push('', paint('bold', `on ${other.node}:`));
    for (const e of local.entries) {
      lines.push(`  ${e.tag} (${e.mode}) ${e.state}${e.note ? ` — ${e.note}` : ''}`);
      if (e.check) lines.push(checkLine(e, other.time, paint));
    }
    const restarts = restartLine(local, paint);
    if (restarts) lines.push(restarts);
    for (const t of local.transitions.slice(-8)) lines.push(paint('dim', `  ${t.at}  ${t.level ?? '-'} ${t.state}`));
  }
  return lines.join('\n') + '\n';
}

export class SetRefused extends Error {}

/** Why `peerha set` must refuse its arguments (nothing is written then), or null. */
export function setArgumentProblem(group: string, level: string | null, nodes: readonly string[] | null): string | null {
  const g = nameProblem('group', group);
  if (g) return `group ${JSON.stringify(group)} ${g}`;
  if (level !== null) {
    const l = nameProblem('level', level);
    if (l) return `level ${JSON.stringify(level)} ${l}`;
    if (level.includes(',')) return `level ${JSON.stringify(level)}: expected a single level`;
    if (MONITOR_LEVELS.has(level)) return `level ${JSON.stringify(level)} is the monitor's own step while it places a group: expected a level from cltab, or stop`;
  }
  for (const n of nodes ?? []) {
    const p = nameProblem('node', n);
    if (p) return `node ${JSON.stringify(n)} in --nodes: ${p}`;
  }
  return null;
}

/**
 * The filesystem proper-lockfile works through, with its lock a file instead of a folder: it
 * takes a lock with mkdir, and on GlusterFS (replica 3) concurrent mkdirs of one name put the
 * volume root into split-brain, while exclusive creates of one name gave exactly one winner. So
 * "mkdir" is an O_EXCL create here, "rmdir" an unlink (a folder left by an older version is
 * removed as a folder). Its exit hook's rmdirSync does nothing: the sync API never touches the
 * shared directory (a failing close() on a FUSE mount aborts Node 20); a lock left by a killed
 * `set` goes stale after 30 s as before.
 */
type Done<T = void> = (err: NodeJS.ErrnoException | null, value?: T) => void;
/** A promise's outcome, as proper-lockfile's callback-style fs expects it. */
const settle = <T>(p: Promise<T>, cb: Done<T>): void => void p.then((v) => cb(null, v), (e: NodeJS.ErrnoException) => cb(e));
const FILE_LOCK_FS = {
  mkdir: (path: string, cb: Done): void => settle(open(path, 'wx', 0o600).then((fh) => fh.close()), cb),
  rmdir: (path: string, cb: Done): void =>
    settle(
      unlink(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EISDIR' || e.code === 'EPERM') return rmdir(path);
        throw e;
      }),
      cb,
    ),
  rmdirSync: (): void => undefined,
  stat: (path: string, cb: Done<Awaited<ReturnType<typeof stat>>>): void => settle(stat(path), cb),
  utimes: (path: string, atime: Date, mtime: Date, cb: Done): void => settle(utimes(path, atime, mtime), cb),
  realpath: (path: string, cb: Done<string>): void => settle(realpath(path), cb),
};

/**
 * Set GROUP's wanted level in DIR/hactl (level `stop` keeps the line; `--remove` style deletion
 * is `level === null`). Written as the next generation: strictly the newest copy, whatever the
 * mtime granularity of the filesystem.
 */
export async function setWant(root: string, group: string, level: string | null, nodes: string[] | null): Promise<string> {
  const store = new FsStore(root, '');
  const target = join(root, 'hactl');
  const release = await lockfile.lock(root, {
    lockfilePath: join(root, '.hactl.lock'),
    realpath: false,
    fs: FILE_LOCK_FS,
    stale: 30_000,
    update: 5_000,
    retries: { retries: 30, minTimeout: 200, maxTimeout: 2_000 },
    onCompromised: (err) => {
      throw err;
    },
  });
  try {
    const { winner } = await newestValid(store, 'hactl', (t, f) => parseHactl(t, f).ok);
    const wants = new Map<string, HactlWant>();
    if (winner) {
      const p = parseHactl(winner.text, target);
      if (p.ok) for (const [g, w] of p.hactl.wants) wants.set(g, w);
    }
    if (level === null) wants.delete(group);
    else wants.set(group, { group, level, nodes, line: 0 });
    // The next generation: strictly the newest edit, whatever the filesystem's timestamps.
    const text = withGeneration(formatHactl(wants.values()), (winner ? generationOf(winner.text) : 0) + 1);
    // Never leave behind a file that would be refused: check what is about to be written.
    const check = parseHactl(text, target);
    if (!check.ok) throw new SetRefused(check.errors.map(formatError).join('\n'));
    await store.writeInside('hactl', text);
    return text;
  } finally {
    await release();
  }
}

/** The cltab the cluster currently follows: the newest valid copy. */
export async function newestCltab(root: string): Promise<Cltab | null> {
  const { winner } = await newestValid(new FsStore(root, ''), 'cltab', (t, f) => parseCltab(t, f).ok);
  const p = winner ? parseCltab(winner.text, winner.source) : null;
  return p?.ok ? p.cltab : null;
}
