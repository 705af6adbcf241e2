// hactl: what the admin wants — `group level [node1,node2,…]` per line. Pure.
// The optional third column lists the only nodes allowed to run the group, most preferred first.

import { unsafeName, type ConfigError } from './cltab.js';
import { MONITOR_LEVELS, validNodeName } from './names.js';

export interface HactlWant {
  readonly group: string;
  readonly level: string;
  /** Allowed nodes in preference order; null = any node. */
  readonly nodes: readonly string[] | null;
  readonly line: number;
}

export interface Hactl {
  readonly file: string;
  /** One want per group (a later line for the same group wins). */
  readonly wants: ReadonlyMap<string, HactlWant>;
}

export type HactlResult =
  | { readonly ok: true; readonly hactl: Hactl; readonly warnings: readonly ConfigError[] }
  /** `partial`: the lines that did parse, for checks across files (`peerha check`). */
  | { readonly ok: false; readonly errors: readonly ConfigError[]; readonly warnings?: readonly ConfigError[]; readonly partial?: Hactl };

export function parseHactl(text: string, file: string): HactlResult {
  const errors: ConfigError[] = [];
  const warnings: ConfigError[] = [];
  const wants = new Map<string, HactlWant>();
  if (text.includes('\u0000')) {
    const line = text.slice(0, text.indexOf('\u0000')).split('\n').length;
    return { ok: false, errors: [{ file, line, message: 'binary data (NUL byte): expected a text hactl' }] };
  }
  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n');
  for (let i = 0; i < lines.length && errors.length < 100; i++) {
    const n = i + 1;
    const trimmed = (lines[i] ?? '').trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(/\s+/);
    if (fields.length < 2 || fields.length > 3) {
      errors.push({ file, line: n, message: `expected "group level [node1,node2,…]", found ${fields.length} field(s)` });
      continue;
    }
    const [group = '', level = '', nodeList] = fields;
    const bad = [['group', group], ['level', level]].map(([what, v]) => [what, unsafeName(v!)] as const).find(([, why]) => why);
    if (bad) {
      errors.push({ file, line: n, message: `${bad[0]} ${JSON.stringify(bad[0] === 'group' ? group : level)} ${bad[1]}` });
      continue;
    }
    if (level.includes(',')) {
      errors.push({ file, line: n, message: `level ${JSON.stringify(level)}: expected a single level` });
      continue;
    }
    if (MONITOR_LEVELS.has(level)) {
      errors.push({ file, line: n, message: `level ${JSON.stringify(level)} is the monitor's own step while it places a group: expected a level from cltab, or stop` });
      continue;
    }
    let nodes: string[] | null = null;
    if (nodeList !== undefined) {
      nodes = nodeList.split(',');
      const wrong = nodes.find((x) => !validNodeName(x));
      if (wrong !== undefined) {
        errors.push({ file, line: n, message: `nodes ${JSON.stringify(nodeList)}: expected a comma list of node names ([A-Za-z0-9._-], at most 63; none empty)` });
        continue;
      }
      nodes = [...new Set(nodes)];
    }
    const earlier = wants.get(group);
    if (earlier) warnings.push({ file, line: earlier.line, message: `group ${group} again on line ${n}, which wins: this line is shadowed` });
    wants.set(group, { group, level, nodes, line: n });
  }
  if (errors.length > 0) return { ok: false, errors, warnings, partial: { file, wants } };
  return { ok: true, hactl: { file, wants }, warnings };
}

export function formatHactl(wants: Iterable<HactlWant>): string {
  const out: string[] = [];
  for (const w of wants) out.push(w.nodes ? `${w.group} ${w.level} ${w.nodes.join(',')}` : `${w.group} ${w.level}`);
  return out.join('\n') + (out.length ? '\n' : '');
}
