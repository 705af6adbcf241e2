// `peerha plan`: what a node would do now and why — the real decide() run on the view that can be
// read from the shared directory (that node's hastat for liveness and quorum, every clstat for
// placements, the newest valid cltab/hactl). Changes nothing.

import { parseClstat } from '../config/clstat.js';
import { parseCltab } from '../config/cltab.js';
import { parseHactl, type Hactl } from '../config/hactl.js';
import { FsStore, newestValid } from '../cluster/store.js';
import { decide, EMPTY_MEMORY, type Decision, type Instance, type NodeState, type NodeView } from './decide.js';
import type { Hastat } from './monitor.js';

export interface PlanResult {
  readonly node: string;
  readonly viewTime: string | null;
  readonly quorum: boolean;
  readonly decision: Decision;
  readonly warnings: string[];
}

export async function planFor(root: string, node: string, opts: { cycleMs: number; timeoutMs: number; visibilityLagMs: number; balance: number; failCooldownCycles: number; selfFence: boolean }): Promise<PlanResult> {
  const store = new FsStore(root, node);
  const names = await store.listNodes();
  const warnings: string[] = [];
  if (!names.includes(node)) warnings.push(`no folder nodes/${node} under ${root}: this node has not run a monitor here`);
  let hastat: Hastat | null = null;
  const h = await store.readNodeFile(node, 'hastat');
  try {
    hastat = h ? (JSON.parse(h.text) as Hastat) : null;
  } catch {
    warnings.push(`nodes/${node}/hastat is unreadable right now`);
  }
  if (!hastat) warnings.push(`no hastat for ${node}: liveness unknown, every node assumed up`);

  const nodes = new Map<string, NodeView>();
  for (const n of names) {
    const r = await store.readNodeFile(n, 'clstat');
    const c = r ? parseClstat(r.text) : null;
    const groups = new Map<string, Instance>((c?.groups ?? []).map((g) => [g.group, { level: g.level, state: g.state }]));
    const state: NodeState = n === node ? 'up' : ((hastat?.nodes[n]?.state as NodeState | undefined) ?? (c?.header?.left ? 'left' : 'up'));
    const released = state === 'left' || state === 'fenced' || (state === 'stale' && opts.selfFence);
    nodes.set(n, { name: n, state, released, groups: c?.header?.left ? new Map() : groups });
  }
  if (!nodes.has(node)) nodes.set(node, { name: node, state: 'up', released: false, groups: new Map() });

  const cltabW = (await newestValid(store, 'cltab', (t, f) => parseCltab(t, f).ok)).winner;
  const hactlW = (await newestValid(store, 'hactl', (t, f) => parseHactl(t, f).ok)).winner;
  const cltab = cltabW ? parseCltab(cltabW.text, cltabW.source) : null;
  const hactlR = hactlW ? parseHactl(hactlW.text, hactlW.source) : null;
  const hactl: Hactl | null = hactlR?.ok ? hactlR.hactl : null;
  if (!cltabW) warnings.push('no valid cltab anywhere');
  if (!hactlW) warnings.push('no valid hactl anywhere');

  const quorum = hastat?.quorum.ok ?? true;
  const decision = decide(
    {
      me: node,
      nodes,
      wants: hactl?.wants ?? new Map(),
      cltabGroups: new Set(cltab?.ok ? cltab.cltab.groups : []),
      configVersion: `${cltabW?.hash ?? ''}:${hactlW?.hash ?? ''}`,
      quorum,
      memory: EMPTY_MEMORY,
    },
    { cycleMs: opts.cycleMs, planWindowMs: 2 * opts.cycleMs + 2 * opts.visibilityLagMs, balance: opts.balance, failCooldownMs: opts.failCooldownCycles * opts.cycleMs },
    0,
    () => 0, // show what planning would do when this node's random draw says "go"
  );
  return { node, viewTime: hastat?.time ?? null, quorum, decision, warnings };
}

export function renderPlan(p: PlanResult): string {
  const lines = [`plan for ${p.node} (view ${p.viewTime ? `from its hastat at ${p.viewTime}` : 'from clstats only'}; quorum ${p.quorum ? 'ok' : 'LOST'})`];
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  lines.push('', p.decision.actions.length ? 'would do now:' : 'would do nothing now.');
  for (const a of p.decision.actions) lines.push(`  tell ${a.group} ${a.level}   # ${a.reason}`);
  if (p.decision.notes.length) {
    lines.push('', 'no action:');
    for (const n of p.decision.notes) lines.push(`  ${n.group}: ${n.note}`);
  }
  if (p.decision.errors.length) lines.push('', 'errors:', ...p.decision.errors.map((e) => `  ${e}`));
  lines.push('', 'Planning is a random draw each cycle (p = min(1, balance / eligible nodes)); a plan must then stand for');
  lines.push('a full plan window before testing. Nothing was changed.');
  return lines.join('\n') + '\n';
}
