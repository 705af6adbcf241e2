// clstat: a node's group states, one `Cluster::Init::Group <group> <level> <STATE>` line per
// group after a `# peerha node=… pid=… seq=… time=…` header. Notes ride along as comment
// lines (`# note <group> <text>`) so the original line format stays untouched.

export const CLSTAT_CLASS = 'Cluster::Init::Group';

/** A group's states (Cluster::Init's names); the level shown is the one it is at or moving to. */
export const GROUP_STATES = ['CONFIGURED', 'STARTING', 'CHECKING', 'DONE', 'PASSED', 'FAILED', 'STOPPING', 'HALTING'] as const;
export type GroupState = (typeof GROUP_STATES)[number];

/** A group at rest at its level: no entry is being started or stopped. */
export const SETTLED_GROUP_STATES: readonly GroupState[] = ['DONE', 'PASSED', 'FAILED'];

export function isSettled(state: GroupState): boolean {
  return SETTLED_GROUP_STATES.includes(state);
}

/** Settled and running: the group does what its level says (a FAILED test does not count). */
export function isRunning(state: GroupState): boolean {
  return state === 'DONE' || state === 'PASSED';
}

/**
 * A state read from a peer's clstat. An unknown word (a newer peer, a corrupt line) reads as
 * STARTING: something may be running there, so it is never taken for a stopped group.
 */
export function toGroupState(word: string): GroupState {
  return (GROUP_STATES as readonly string[]).includes(word) ? (word as GroupState) : 'STARTING';
}

export interface ClstatHeader {
  readonly node: string;
  readonly pid: number;
  readonly seq: number;
  readonly time: string;
  /** This monitor run's random incarnation: a restart (even with the same pid) is a new one. */
  readonly inc?: string;
  /**
   * The seq of the first clstat with this body (everything but seq and time): the heartbeat in
   * DIR/beats names it, so readers read a clstat again only when its gen changed.
   */
  readonly gen?: number;
  /**
   * The writer's monotonic clock (ms, written in whole µs) when it formatted this clstat: read ahead
   * of its beat, the clstat is dated from it as beats are from their stamps (beats.ts dateBeat).
   */
  readonly mono?: number;
  /** Orderly exit: this node runs nothing any more and is gone at once. */
  readonly left?: boolean;
  /** How many lines follow the header (absent in files of older writers): a shorter file is torn. */
  readonly lines?: number;
  /**
   * FNV-1a of the lines after the header (absent in older files). A heartbeat rewritten in place
   * (the shared filesystem is full) can be read half old, half new: the sum tells.
   */
  readonly sum?: string;
}

export interface ClstatLine {
  readonly group: string;
  readonly level: string;
  readonly state: GroupState;
}

export interface Clstat {
  readonly header: ClstatHeader | null;
  readonly groups: readonly ClstatLine[];
  readonly notes: ReadonlyArray<{ readonly group: string; readonly text: string }>;
  /** A leaving node names who should take each of its groups over (`# handover <group> <node>`). */
  readonly handovers?: ReadonlyArray<{ readonly group: string; readonly node: string }>;
  /**
   * Nodes this node fenced (`# fenced <node> <seq> <time> <method>`): seq is the target's heartbeat
   * seq when it was fenced (`-` if none was seen), so every reader releases it until it restarts.
   */
  readonly fenced?: readonly FencedLine[];
  /**
   * Peers this node holds stale (`# stale <node> <seq> <pid>`): their heartbeat stood still at seq
   * in a read that worked, so their groups may be taken over. The poison pill: a live node that
   * finds itself named here (same pid) knows a peer's view of it is stuck, and stops its groups.
   */
  readonly stale?: readonly StaleLine[];
  /**
   * Per group, the cluster's failover count as this node knows it and the node it counted the
   * group on (`# failovers <group> <count> <node>`): every node takes the highest, so all views
   * show one count, and a restarted monitor goes on from it.
   */
  readonly failovers?: readonly FailoverLine[];
  /** The cluster as last alerted (`# alerted …`, src/monitor/alerts.ts), as written. */
  readonly alerted?: string;
  /** Lines after the header, as read (compare with header.lines). */
  readonly bodyLines?: number;
  /** The lines after the header match header.sum (true when there is no sum to check). */
  readonly sumOk?: boolean;
}

/** Whole: ends with a newline and has as many lines as its header says (a read torn at a line boundary is not). */
export function isWhole(text: string, c: Clstat): boolean {
  return text.endsWith('\n') && (c.header?.lines === undefined || c.header.lines === c.bodyLines) && c.sumOk !== false;
}

export interface FencedLine {
  readonly node: string;
  readonly seq: number | null;
  readonly time: string;
  readonly method: string;
}

export interface FailoverLine {
  readonly group: string;
  readonly count: number;
  readonly node: string;
}

export interface StaleLine {
  readonly node: string;
  /** Its heartbeat seq as last read (null: never read). */
  readonly seq: number | null;
  /** Its monitor's pid as last read (null: none seen): a restarted monitor is another incarnation. */
  readonly pid: number | null;
}

export function formatClstat(c: { header: ClstatHeader; groups: readonly ClstatLine[]; notes?: Clstat['notes']; handovers?: Clstat['handovers']; fenced?: Clstat['fenced']; stale?: Clstat['stale']; failovers?: Clstat['failovers']; alerted?: string }): string {
  const h = c.header;
  const body: string[] = [];
  for (const g of c.groups) body.push(`${CLSTAT_CLASS} ${g.group} ${g.level} ${g.state}`);
  for (const n of c.notes ?? []) body.push(`# note ${n.group} ${n.text.replace(/[\r\n]+/g, ' ')}`);
  for (const h of c.handovers ?? []) body.push(`# handover ${h.group} ${h.node}`);
  for (const f of c.fenced ?? []) body.push(`# fenced ${f.node} ${f.seq ?? '-'} ${f.time || '-'} ${f.method.replace(/\s+/g, '_') || '-'}`);
  for (const x of c.stale ?? []) body.push(`# stale ${x.node} ${x.seq ?? '-'} ${x.pid ?? '-'}`);
  for (const f of c.failovers ?? []) body.push(`# failovers ${f.group} ${f.count} ${f.node}`);
  if (c.alerted) body.push(`# alerted ${c.alerted.replace(/[\r\n]+/g, ' ')}`);
  const head = `# peerha node=${h.node} pid=${h.pid} seq=${h.seq} time=${h.time}${h.inc ? ` inc=${h.inc}` : ''}${h.gen !== undefined ? ` gen=${h.gen}` : ''}${h.mono !== undefined ? ` mono=${Math.max(0, Math.floor(h.mono * 1000))}` : ''}${h.left ? ' left=1' : ''} lines=${body.length} sum=${bodySum(body)}`;
  return [head, ...body].join('\n') + '\n';
}

/** FNV-1a (32 bits, hex) of the body lines joined by newlines. */
function bodySum(lines: readonly string[]): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (i > 0) h = Math.imul(h ^ 10, 0x01000193) >>> 0;
    for (let j = 0; j < line.length; j++) h = Math.imul(h ^ line.charCodeAt(j), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Tolerant reader: unknown or malformed lines are skipped, never fatal. */
export function parseClstat(text: string): Clstat {
  let header: ClstatHeader | null = null;
  const groups: ClstatLine[] = [];
  const notes: Array<{ group: string; text: string }> = [];
  const handovers: Array<{ group: string; node: string }> = [];
  const fenced: FencedLine[] = [];
  const stale: StaleLine[] = [];
  const failovers: FailoverLine[] = [];
  let alerted: string | undefined;
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  let headerAt = -1;
  for (let i = 0; i < all.length; i++) {
    const line = all[i]!.replace(/\r$/, '');
    if (line.startsWith('# peerha ')) {
      const kv = new Map<string, string>();
      for (const part of line.slice(9).trim().split(/\s+/)) {
        const eq = part.indexOf('=');
        if (eq > 0) kv.set(part.slice(0, eq), part.slice(eq + 1));
      }
      const seq = Number(kv.get('seq'));
      const pid = Number(kv.get('pid'));
      const count = Number(kv.get('lines'));
      const gen = Number(kv.get('gen'));
      const mono = Number(kv.get('mono'));
      if (kv.has('node') && Number.isSafeInteger(seq)) {
        header = { node: kv.get('node') ?? '', pid: Number.isSafeInteger(pid) ? pid : 0, seq, time: kv.get('time') ?? '', ...(kv.has('inc') ? { inc: kv.get('inc')! } : {}), ...(kv.has('gen') && Number.isSafeInteger(gen) ? { gen } : {}), ...(/^[0-9]{1,15}$/.test(kv.get('mono') ?? '') ? { mono: mono / 1000 } : {}), ...(kv.get('left') === '1' ? { left: true } : {}), ...(kv.has('lines') && Number.isSafeInteger(count) ? { lines: count } : {}), ...(kv.has('sum') ? { sum: kv.get('sum')! } : {}) };
        headerAt = i;
      }
      continue;
    }
    if (line.startsWith('# handover ')) {
      const m = /^# handover (\S+) (\S+)\s*$/.exec(line);
      if (m) handovers.push({ group: m[1]!, node: m[2]! });
      continue;
    }
    if (line.startsWith('# fenced ')) {
      const m = /^# fenced (\S+) (\d+|-) (\S+) (\S+)\s*$/.exec(line);
      if (m) fenced.push({ node: m[1]!, seq: m[2] === '-' ? null : Number(m[2]), time: m[3] === '-' ? '' : m[3]!, method: m[4]! });
      continue;
    }
    if (line.startsWith('# stale ')) {
      const m = /^# stale (\S+) (\d+|-) (\d+|-)\s*$/.exec(line);
      if (m) stale.push({ node: m[1]!, seq: m[2] === '-' ? null : Number(m[2]), pid: m[3] === '-' ? null : Number(m[3]) });
      continue;
    }
    if (line.startsWith('# failovers ')) {
      const m = /^# failovers (\S+) (\d{1,15}) (\S+)\s*$/.exec(line);
      if (m) failovers.push({ group: m[1]!, count: Number(m[2]), node: m[3]! });
      continue;
    }
    if (line.startsWith('# alerted ')) {
      alerted = line.slice('# alerted '.length);
      continue;
    }
    if (line.startsWith('# note ')) {
      const m = /^# note (\S+) (.*)$/.exec(line);
      if (m) notes.push({ group: m[1]!, text: m[2]! });
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length >= 4 && f[0] === CLSTAT_CLASS) groups.push({ group: f[1]!, level: f[2]!, state: toGroupState(f[3]!) });
  }
  return { header, groups, notes, ...(handovers.length ? { handovers } : {}), ...(fenced.length ? { fenced } : {}), ...(stale.length ? { stale } : {}), ...(failovers.length ? { failovers } : {}), ...(alerted !== undefined ? { alerted } : {}), bodyLines: headerAt < 0 ? 0 : all.length - headerAt - 1, sumOk: header?.sum === undefined || header.sum === bodySum(all.slice(headerAt + 1)) };
}

/**
 * `clinit -v` filtering (reference §3.1): no filter → `group level state`; group only →
 * `level state`; level only → `group state`; both → `state`.
 */
export function filterStatus(lines: readonly ClstatLine[], group?: string, level?: string): string[] {
  return lines
    .filter((l) => (group === undefined || l.group === group) && (level === undefined || l.level === level))
    .map((l) => {
      if (group !== undefined && level !== undefined) return l.state;
      if (group !== undefined) return `${l.level} ${l.state}`;
      if (level !== undefined) return `${l.group} ${l.state}`;
      return `${l.group} ${l.level} ${l.state}`;
    });
}
