// clstat: a node's group states, one `Cluster::Init::Group <group> <level> <STATE>` line per
// group after a `# peerha node=… pid=… seq=… time=…` header. Notes ride along as comment
// lines (`# note <group> <text>`) so the original line format stays untouched.

export const CLSTAT_CLASS = 'Cluster::Init::Group';

export interface ClstatHeader {
  readonly node: string;
  readonly pid: number;
  readonly seq: number;
  readonly time: string;
  /** Orderly exit: this node runs nothing any more and is gone at once. */
  readonly left?: boolean;
}

export interface ClstatLine {
  readonly group: string;
  readonly level: string;
  readonly state: string;
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
}

export interface FencedLine {
  readonly node: string;
  readonly seq: number | null;
  readonly time: string;
  readonly method: string;
}

export function formatClstat(c: { header: ClstatHeader; groups: readonly ClstatLine[]; notes?: Clstat['notes']; handovers?: Clstat['handovers']; fenced?: Clstat['fenced'] }): string {
  const h = c.header;
  const lines = [`# peerha node=${h.node} pid=${h.pid} seq=${h.seq} time=${h.time}${h.left ? ' left=1' : ''}`];
  for (const g of c.groups) lines.push(`${CLSTAT_CLASS} ${g.group} ${g.level} ${g.state}`);
  for (const n of c.notes ?? []) lines.push(`# note ${n.group} ${n.text.replace(/[\r\n]+/g, ' ')}`);
  for (const h of c.handovers ?? []) lines.push(`# handover ${h.group} ${h.node}`);
  for (const f of c.fenced ?? []) lines.push(`# fenced ${f.node} ${f.seq ?? '-'} ${f.time || '-'} ${f.method.replace(/\s+/g, '_') || '-'}`);
  return lines.join('\n') + '\n';
}

/** Tolerant reader: unknown or malformed lines are skipped, never fatal. */
export function parseClstat(text: string): Clstat {
  let header: ClstatHeader | null = null;
  const groups: ClstatLine[] = [];
  const notes: Array<{ group: string; text: string }> = [];
  const handovers: Array<{ group: string; node: string }> = [];
  const fenced: FencedLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('# peerha ')) {
      const kv = new Map<string, string>();
      for (const part of line.slice(9).trim().split(/\s+/)) {
        const eq = part.indexOf('=');
        if (eq > 0) kv.set(part.slice(0, eq), part.slice(eq + 1));
      }
      const seq = Number(kv.get('seq'));
      const pid = Number(kv.get('pid'));
      if (kv.has('node') && Number.isSafeInteger(seq)) {
        header = { node: kv.get('node') ?? '', pid: Number.isSafeInteger(pid) ? pid : 0, seq, time: kv.get('time') ?? '', ...(kv.get('left') === '1' ? { left: true } : {}) };
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
    if (line.startsWith('# note ')) {
      const m = /^# note (\S+) (.*)$/.exec(line);
      if (m) notes.push({ group: m[1]!, text: m[2]! });
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length >= 4 && f[0] === CLSTAT_CLASS) groups.push({ group: f[1]!, level: f[2]!, state: f[3]! });
  }
  return { header, groups, notes, ...(handovers.length ? { handovers } : {}), ...(fenced.length ? { fenced } : {}) };
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
