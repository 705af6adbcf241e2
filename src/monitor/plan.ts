// `peerha plan`: what a node's monitor would do now, and why — step() on a snapshot. The node's
// hastat carries the monitor's decision memory (plan windows, cooldowns, backoffs, peers' silence,
// quorum); its clstat, its groups. A read-only driver runs one cycle of the real step() on that
// state against DIR as it is now (every read real, every write and tell withheld) and reports what
// the monitor would do. It refuses a snapshot older than the monitor's timeout unless told not to.

import { parseClstat } from '../config/clstat.js';
import { DEFAULT_STOP_LEVELS } from '../config/monitor.js';
import { parseHastat } from '../cluster/hastat.js';
import { FsStore, type StoreResult } from '../cluster/store.js';
import type { GroupStatus } from '../init/engine.js';
import { decide } from './decide.js';
import type { EventBody, MonitorEffect } from './events.js';
import { REAL_LOGIC, type Logic } from './logic.js';
import { restoreState } from './snapshot.js';
import type { LastDecision, MonitorSettings, MonitorState } from './state.js';
import { step } from './step.js';

export class PlanError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface PlanResult {
  readonly node: string;
  /** When the monitor wrote the snapshot (its wall clock), and how old the file is here. */
  readonly snapshotTime: string;
  readonly ageMs: number;
  readonly timeoutMs: number;
  readonly quorum: { readonly ok: boolean; readonly reason: string };
  readonly decision: LastDecision | null;
  readonly fences: ReadonlyArray<{ readonly node: string; readonly delayMs: number }>;
  /** Set when the cycle would leave the cluster instead (DIR/halt). */
  readonly leaving: string | null;
  readonly warnings: readonly string[];
}

/** The settings plan cannot learn from the snapshot: where DIR is, and the fence methods. */
export type PlanBase = Pick<MonitorSettings, 'root' | 'stateDir' | 'fence'>;

/** Its own groups as its clstat shows them (what the engine reported when it last published). */
function groupsFromClstat(text: string | null): GroupStatus[] {
  const c = text === null ? null : parseClstat(text);
  return (c?.groups ?? []).map((g) => ({ group: g.group, level: g.level, state: g.state, notes: (c?.notes ?? []).filter((n) => n.group === g.group).map((n) => n.text), procs: [], transitions: [] }));
}

const readOnly = (e: MonitorEffect): boolean => e.type === 'io' && e.ops.every((op) => op.op === 'read' || op.op === 'list' || op.op === 'stat');

export async function planFor(base: PlanBase, node: string, opts: { staleOk?: boolean; wallNow?: number } = {}): Promise<PlanResult> {
  const store = new FsStore(base.root, node);
  const read = await store.readNodeFile(node, 'hastat');
  if (!read) throw new PlanError(`no hastat for ${node} in ${base.root}/nodes/${node}: has a monitor for ${node} run here?`, 3);
  const h = parseHastat(read.text);
  if (!h) throw new PlanError(`${base.root}/nodes/${node}/hastat cannot be read right now (torn, or another version); try again`, 3);
  if (!h.memory) throw new PlanError(`${node}'s hastat carries no decision memory (written by an older monitor): restart that monitor`, 3);
  const timeoutMs = h.memory.settings.timeoutMs;
  const ageMs = Math.max(0, (opts.wallNow ?? Date.now()) - read.mtimeMs);
  if (ageMs > timeoutMs && !opts.staleOk) {
    throw new PlanError(`${node}'s hastat is ${(ageMs / 1000).toFixed(1)} s old (timeout ${timeoutMs / 1000} s): its monitor is not running, or cannot write DIR. --stale-ok plans on it anyway`, 1);
  }
  const own = await store.readNodeFile(node, 'clstat');
  let state: MonitorState = restoreState(h, { ...base, node, fence: base.fence, stopLevel: DEFAULT_STOP_LEVELS, nice: 0 }, groupsFromClstat(own?.text ?? null), ageMs);

  // Planning is a random draw for a node that is not the designated planner: show the draw that plans.
  const logic: Logic = { ...REAL_LOGIC, decide: (v, c, now) => decide(v, c, now, () => 0) };
  const cycle = state.cycleNo + 1;
  const effects: MonitorEffect[] = [];
  const queue: EventBody[] = [{ type: 'timer', name: 'cycle' }];
  const wall = opts.wallNow ?? Date.now();
  while (queue.length > 0 && state.lastDecision?.cycle !== cycle && !state.leave) {
    const r = step(state, { ...queue.shift()!, now: ageMs, wall }, logic);
    state = r.state;
    for (const e of r.effects) {
      if (e.type === 'io' && readOnly(e)) {
        const results = await new Promise<readonly StoreResult[] | null>((resolve) => store.perform(e.ops, resolve));
        queue.push({ type: 'io', tag: e.tag, results });
      } else effects.push(e);
    }
  }
  const warnings = effects.flatMap((e) => (e.type === 'log' && (e.level === 'warn' || e.level === 'error') && !e.msg.startsWith('STOMITH') && e.msg !== 'configuration problems' ? [e.msg] : []));
  if (ageMs > timeoutMs) warnings.unshift(`the snapshot is ${(ageMs / 1000).toFixed(1)} s old, older than the timeout`);
  const fences = effects.flatMap((e) => (e.type === 'timer' && e.name.startsWith('fence:') ? [{ node: e.name.slice('fence:'.length), delayMs: Math.round(e.at - ageMs) }] : []));
  const hq = state.lastHastat?.quorum ?? h.quorum;
  return { node, snapshotTime: h.time, ageMs, timeoutMs, quorum: { ok: hq.ok, reason: hq.reason }, decision: state.lastDecision, fences, leaving: state.leave?.why ?? null, warnings };
}

export function renderPlan(p: PlanResult): string {
  const lines = [`plan for ${p.node}: its monitor's state as of ${p.snapshotTime} (${(p.ageMs / 1000).toFixed(1)} s ago); quorum ${p.quorum.ok ? 'ok' : 'LOST'} (${p.quorum.reason})`];
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  if (p.leaving !== null) {
    lines.push('', `would leave the cluster (${p.leaving}): stop every local group and exit.`);
    return lines.join('\n') + '\n';
  }
  const d = p.decision;
  const actions = d?.actions ?? [];
  lines.push('', actions.length || p.fences.length ? 'would do now:' : 'would do nothing now.');
  for (const a of actions) lines.push(`  tell ${a.group} ${a.level}   # ${a.reason}`);
  for (const f of p.fences) lines.push(`  fence ${f.node}   # stale; after a race delay of ${f.delayMs} ms`);
  if (d?.notes.length) {
    lines.push('', 'no action:');
    for (const n of d.notes) lines.push(`  ${n.group}: ${n.note}`);
  }
  if (d?.errors.length) lines.push('', 'errors:', ...d.errors.map((e) => `  ${e}`));
  lines.push('', 'A node that is not a group\'s designated planner plans it by a random draw (p = min(1, balance / eligible');
  lines.push('nodes)); shown here as the draw that plans. A plan stands a full plan window before testing. Nothing was changed.');
  return lines.join('\n') + '\n';
}
