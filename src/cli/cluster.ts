// Cluster commands that work from any machine that mounts DIR: status (from the freshest
// hastat) and set (edit hactl under a lock).

import { open, realpath, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { formatError, formatMode, parseCltab, type Cltab, type CltabEntry } from '../config/cltab.js';
import { editHactl, parseHactl } from '../config/hactl.js';
import { crossCheck } from './check.js';
import { MONITOR_LEVELS, nameProblem } from '../config/names.js';
import { FsStore, newestValid } from '../cluster/store.js';
import { generationOf, withGeneration, withoutGeneration } from '../cluster/replicate.js';
import { isRunning, toGroupState } from '../config/clstat.js';
import { parseHastat, type Hastat, type HastatGroup, type HastatLocalEntry } from '../cluster/hastat.js';

/** A node's hastat and its file's mtime (stamped by the file system when it was written). */
export interface HastatView {
  readonly h: Hastat;
  readonly mtimeMs: number;
}

/**
 * Every node's hastat; the freshest first. Freshness is the file's mtime (stamped by the file
 * system when written), not the writer's own `time`: a node whose clock runs ahead would
 * otherwise always look freshest, and once it died `status` and `set --wait` would keep reading
 * its frozen view.
 */
export async function readHastatViews(root: string): Promise<HastatView[]> {
  const store = new FsStore(root, '');
  const out: HastatView[] = [];
  for (const n of await store.listNodes()) {
    const r = await store.readNodeFile(n, 'hastat');
    if (!r) continue;
    const h = parseHastat(r.text); // torn or half-written: skip this one
    if (h) out.push({ h, mtimeMs: r.mtimeMs });
  }
  return out.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.h.time < b.h.time ? 1 : a.h.time > b.h.time ? -1 : 0));
}

export async function readHastats(root: string): Promise<Hastat[]> {
  return (await readHastatViews(root)).map((x) => x.h);
}

/** How long a view's writer takes to count as gone: its own timeout (the default without one). */
const viewTimeoutMs = (h: Hastat): number => h.memory?.settings.timeoutMs ?? 5_000;

/**
 * The view `status` shows: `prefer`'s (the node shown last time) while it is live, else the
 * freshest; `live` is false when no monitor has written one for its timeout. `ageMs` is how old
 * the view is: the file's mtime against this machine's clock. Decisions in peerha never compare
 * clocks of different machines; this one is only a display for a person (clamped at 0).
 */
export function pickView(views: readonly HastatView[], nowMs: number, prefer: string | null): { view: HastatView; ageMs: number; live: boolean } | null {
  const ageOf = (v: HastatView): number => Math.max(0, nowMs - v.mtimeMs);
  const newest = views[0];
  if (!newest) return null;
  const kept = views.find((v) => v.h.node === prefer);
  const view = kept && ageOf(kept) < viewTimeoutMs(kept.h) ? kept : newest;
  return { view, ageMs: ageOf(view), live: ageOf(newest) < viewTimeoutMs(newest.h) };
}

/** "27 s", "1.5 s", "3 min": how old a view is, for a person. */
export function formatAge(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}

/** What `status` says first when every monitor has been silent for its timeout. */
export function noLiveMonitor(node: string, ageMs: number): string {
  return `no live monitor: newest view from ${node}, ${formatAge(ageMs)} old (no monitor wrote one for its timeout); below is how things stood then`;
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

/** How long before `to` `from` was, plus `laterMs` (the age of the view both come from). */
function age(from: string | null, to: string, laterMs = 0): string {
  if (!from) return '-';
  const ms = Date.parse(to) - Date.parse(from) + laterMs;
  if (!Number.isFinite(ms)) return '-';
  return ms < 60_000 ? `${(Math.max(0, ms) / 1000).toFixed(1)}s ago` : `${Math.round(ms / 60_000)}m ago`;
}

/** Entries by key, for rows in the same order whichever view they come from. */
const byName = ([a]: [string, unknown], [b]: [string, unknown]): number => (a < b ? -1 : a > b ? 1 : 0);

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

/**
 * The cluster as one view `h` shows it, `viewAgeMs` old: every age inside it is aged by that much
 * (a frozen view must not say "up 0.0s ago"). Rows sorted by name, whichever node wrote it.
 */
export function renderStatus(h: Hastat, group?: string, paint: Paint = plain, extraNotes: Map<string, string[]> = new Map(), all: readonly Hastat[] = [h], viewAgeMs = 0): string {
  const nodes = Object.entries(h.nodes).sort(byName);
  const up = nodes.filter(([, v]) => v.state === 'up').length;
  const cluster = !h.quorum.ok ? paint('bad', 'NO QUORUM') : up < nodes.length ? paint('warn', 'DEGRADED') : paint('good', 'UP');
  const lines: string[] = [];
  lines.push(`cluster ${cluster}: ${up} of ${nodes.length} nodes up, quorum ${h.quorum.ok ? 'ok' : 'lost'} (${h.quorum.policy}: ${h.quorum.reason})`);
  lines.push(paint('dim', `${h.detection}; view of ${h.node}, ${formatAge(viewAgeMs)} old (written ${h.time})`));
  lines.push('');
  const groupsOn = (n: string): string[] => Object.keys(h.groups).sort().filter((g) => h.groups[g]!.instances[n]);
  const fences = nodes.some(([, v]) => v.lastFence);
  const lastFence = (v: Hastat['nodes'][string]): string[] =>
    fences ? [v.lastFence ? `${paint(v.lastFence.result === 'success' ? 'good' : 'bad', v.lastFence.result)} by ${v.lastFence.fencer} ${age(v.lastFence.time, h.time, viewAgeMs)}` : '-'] : [];
  lines.push(
    table([
      ['NODE', 'STATE', 'HEARTBEAT', 'SEQ', ...(fences ? ['LAST FENCE'] : []), 'GROUPS'].map((x) => paint('bold', x)),
      ...nodes.map(([n, v]) => [n, paint(stateStyle(v.state), v.state + (v.readError ? ` (${v.readError})` : '') + (v.declaredStaleBy ? ' (held stale: runs nothing)' : '')), age(v.lastChange, h.time, viewAgeMs), String(v.seq ?? '-'), ...lastFence(v), groupsOn(n).join(',') || '-']),
    ]),
  );
  lines.push('');
  const rows = [['GROUP', 'WANT', 'NODE', 'LEVEL', 'STATE', 'FAILOVERS', 'NOTES'].map((x) => paint('bold', x))];
  for (const [g, v] of Object.entries(h.groups).sort(byName)) {
    if (group !== undefined && g !== group) continue;
    const inst = Object.entries(v.instances);
    const notes = [...(v.notes ?? []), ...(extraNotes.get(g) ?? [])].join('; ') || '-';
    const fo = String(v.failovers ?? 0);
    if (inst.length === 0) rows.push([g, v.want ?? '-', '-', '-', paint(v.want && v.want !== 'stop' ? 'warn' : 'dim', v.want && v.want !== 'stop' ? 'not running' : '-'), fo, notes]);
    for (const [n, i] of inst.sort(byName)) rows.push([g, v.want ?? '-', n, i.level, paint(stateStyle(i.state), i.state), fo, notes]);
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
function checkLine(e: HastatLocalEntry, now: string, paint: Paint, viewAgeMs: number): string {
  const c = e.check!;
  const last = c.lastResult === null || c.lastAt === null ? 'no check yet' : `last check ${paint(c.lastResult === 'ok' ? 'good' : 'bad', c.lastResult)} ${age(c.lastAt, now, viewAgeMs)} (${c.lastAt})`;
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
export function renderGroup(all: readonly Hastat[], group: string, entries: ReadonlyArray<Pick<CltabEntry, 'tag' | 'levelField' | 'mode' | 'command' | 'health'>>, paint: Paint = plain, ageOf: (node: string) => number = () => 0): string {
  const h = all[0];
  const g = h?.groups[group];
  const lines: string[] = [];
  if (!h || !g) return `group ${group}: not in hactl and running nowhere\n`;
  lines.push(`${paint('bold', `group ${group}`)}: want ${g.want ?? '-'}; allowed nodes ${g.nodes ? g.nodes.join(',') : 'any'}; failovers: ${g.failovers ?? 0}`);
  lines.push(paint('dim', `view of ${h.node}, ${formatAge(ageOf(h.node))} old (written ${h.time})`));
  lines.push('', paint('bold', 'entries (cltab):'));
  if (entries.length === 0) lines.push('  none: the group is not in cltab');
  else lines.push(table([['  TAG', 'LEVELS', 'MODE', 'COMMAND'], ...entries.map((e) => [`  ${e.tag}`, e.levelField, formatMode(e), e.command])]));
  lines.push('', paint('bold', 'instances:'));
  const inst = Object.entries(g.instances).sort(byName);
  if (inst.length === 0) lines.push('  running nowhere');
  for (const [n, i] of inst) lines.push(`  ${n}: ${i.level} ${paint(stateStyle(i.state), i.state)}`);
  if (g.notes?.length) lines.push('', paint('bold', 'notes:'), ...g.notes.map((n) => `  ${n}`));
  for (const other of all) {
    const local = other.groups[group]?.local;
    if (!local || (other.node !== h.node && h.nodes[other.node]?.state !== 'up')) continue; // a dead node's last word
    lines.push('', paint('bold', `on ${other.node}:`));
    for (const e of local.entries) {
      lines.push(`  ${e.tag} (${e.mode}) ${e.state}${e.note ? ` — ${e.note}` : ''}`);
      if (e.check) lines.push(checkLine(e, other.time, paint, ageOf(other.node)));
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
 * is `level === null`), as a one-line edit of the copy the cluster follows: comments, blank
 * lines and order stay. Written as the next generation: strictly the newest copy, whatever the
 * mtime granularity of the filesystem. Refused (SetRefused, nothing written) when DIR/hactl does
 * not parse, or — unless `force` — when the cltab has no such group or no entry at that level.
 */
export async function setWant(root: string, group: string, level: string | null, nodes: readonly string[] | null, opts: { force?: boolean } = {}): Promise<string> {
  const store = new FsStore(root, '');
  const target = join(root, 'hactl');
  // Loaded here, not with the CLI: `peerha monitor` never takes this lock (4 MB of RSS).
  const { default: lockfile } = await import('proper-lockfile');
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
    // A broken admin copy is the operator's to fix: editing a replica instead would silently
    // throw away whatever they wrote there.
    const admin = await store.readRootFile('hactl', true);
    const current = admin ? parseHactl(admin.text, target) : null;
    if (current && !current.ok) throw new SetRefused(`${target} does not parse; fix it first:\n${current.errors.map(formatError).join('\n')}`);
    if (level !== null && !opts.force) {
      const problem = await cltabProblem(root, group, level, nodes);
      if (problem) throw new SetRefused(`${problem} (--force sets it anyway)`);
    }
    const { winner } = await newestValid(store, 'hactl', (t, f) => parseHactl(t, f).ok);
    const base = winner ? withoutGeneration(winner.text) : '';
    // The next generation: strictly the newest edit, whatever the filesystem's timestamps.
    const text = withGeneration(editHactl(base, group, level, nodes), (winner ? generationOf(winner.text) : 0) + 1);
    // Never leave behind a file that would be refused: check what is about to be written.
    const check = parseHactl(text, target);
    if (!check.ok) throw new SetRefused(check.errors.map(formatError).join('\n'));
    await store.writeInside('hactl', text);
    return text;
  } finally {
    await release();
  }
}

/** Why the cltab the cluster follows cannot run GROUP at LEVEL (names the cltab), or null. */
async function cltabProblem(root: string, group: string, level: string, nodes: readonly string[] | null): Promise<string | null> {
  const cltab = await newestCltab(root);
  if (!cltab) return `no valid cltab in ${root} (nor in a node's folder): cannot tell whether group ${group} has level ${level}`;
  const want = { group, level, nodes, line: 0 };
  return crossCheck(cltab, { file: join(root, 'hactl'), wants: new Map([[group, want]]) })[0]?.message ?? null;
}

/**
 * Whether a view shows GROUP settled as `set` asked: wanted as asked, and then nowhere (stop) or
 * at LEVEL on exactly one node, one of `nodes` when given. The message to print, or null.
 */
export function settledAs(h: Hastat, group: string, level: string, nodes: readonly string[] | null): string | null {
  const g = h.groups[group];
  if (!g || g.want !== level || (nodes !== null && (g.nodes ?? []).join(',') !== [...new Set(nodes)].join(','))) return null;
  const inst = Object.entries(g.instances);
  if (level === 'stop') return inst.length === 0 ? `${group} stopped everywhere` : null;
  if (inst.length !== 1) return null;
  const [node, i] = inst[0]!;
  if (i.level !== level || !isRunning(toGroupState(i.state))) return null;
  // Running on a node it may not run on: the monitors are about to move it; not done yet.
  if (nodes !== null && !nodes.includes(node)) return null;
  return `${group} ${level} on ${node}`;
}

/** The cltab the cluster currently follows: the newest valid copy. */
export async function newestCltab(root: string): Promise<Cltab | null> {
  const { winner } = await newestValid(new FsStore(root, ''), 'cltab', (t, f) => parseCltab(t, f).ok);
  // Named by its real path (the winner's source says DIR/…), for messages that name the cltab.
  const p = winner ? parseCltab(winner.text, join(root, winner.source.replace(/^DIR\//, ''))) : null;
  return p?.ok ? p.cltab : null;
}
