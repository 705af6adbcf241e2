// What /metrics shows, as pure functions of the monitor's state: the cluster as this node's last
// hastat shows it (so the numbers agree with `peerha status --json`), heartbeat ages as of now,
// and the facts a step reveals (a cycle ended, a fence run finished, a replica write failed),
// which the driver counts.

import { isRunning } from '../config/clstat.js';
import type { HastatFence, HastatNode } from '../cluster/hastat.js';
import type { MonitorEvent } from './events.js';
import type { MonitorState } from './state.js';

export const NODE_STATES: ReadonlyArray<HastatNode['state']> = ['up', 'stale', 'unknown', 'left', 'fenced'];
export const FENCE_RESULTS: ReadonlyArray<HastatFence['result']> = ['success', 'failure', 'timeout', 'waiting'];

export interface ClusterMetrics {
  /** Every node of the last hastat, this one first; heartbeat age as of now (null: never seen change). */
  readonly nodes: ReadonlyArray<{ readonly node: string; readonly state: HastatNode['state']; readonly heartbeatAgeSeconds: number | null }>;
  /** null: no hastat yet. */
  readonly quorum: boolean | null;
  readonly liveNodes: number | null;
  /** Groups hactl wants at a level other than stop. */
  readonly groupsWanted: number;
  /** Per node of the hastat: groups running there at the level hactl wants. */
  readonly groupsRunning: ReadonlyMap<string, number>;
  /** Wanted groups running nowhere at their level. */
  readonly groupsNotRunning: number;
  /** Failovers of every group as the cluster counts them (each node takes the highest published). */
  readonly failovers: number;
  /** Configuration problems the hastat lists. */
  readonly errors: number;
  /** Seconds since the hastat these numbers come from was built (null: none yet). */
  readonly hastatAgeSeconds: number | null;
}

const seconds = (ms: number): number => Math.max(0, ms) / 1000;

/** The cluster metrics at monotonic time `now`. */
export function clusterMetrics(state: MonitorState, now: number): ClusterMetrics {
  const h = state.lastHastat;
  const me = state.settings.node;
  let failovers = 0;
  for (const o of state.owners.values()) failovers += o.failovers;
  const ageOf = (node: string): number | null => {
    if (node === me) return state.lastPublishOk > 0 ? seconds(now - state.lastPublishOk) : null;
    const p = state.peers.get(node);
    return p && Number.isFinite(p.lastChange) ? seconds(now - p.lastChange) : null;
  };
  const nodes = h ? Object.entries(h.nodes).map(([node, n]) => ({ node, state: n.state, heartbeatAgeSeconds: ageOf(node) })) : [];
  const running = new Map<string, number>(nodes.map((n) => [n.node, 0]));
  let wanted = 0;
  let notRunning = 0;
  for (const g of Object.values(h?.groups ?? {})) {
    const want = g.want;
    if (want === null || want === 'stop') continue;
    wanted++;
    let here = 0;
    for (const [node, i] of Object.entries(g.instances)) {
      if (i.level !== want || !isRunning(i.state)) continue;
      running.set(node, (running.get(node) ?? 0) + 1);
      here++;
    }
    if (here === 0) notRunning++;
  }
  return {
    nodes,
    quorum: h ? h.quorum.ok : null,
    liveNodes: h ? h.quorum.live : null,
    groupsWanted: wanted,
    groupsRunning: running,
    groupsNotRunning: notRunning,
    failovers,
    errors: h ? h.errors.length : 0,
    hastatAgeSeconds: h && Number.isFinite(state.lastHastatAt) ? seconds(now - state.lastHastatAt) : null,
  };
}

export interface StepFacts {
  /** A cycle ended in this step: how long it took (s). */
  readonly cycleSeconds: number | null;
  /** Fence runs that finished in this step, by their final result. */
  readonly fences: ReadonlyArray<HastatFence['result']>;
  readonly replicationFailed: boolean;
}

const NOTHING: StepFacts = { cycleSeconds: null, fences: [], replicationFailed: false };

/** What happened between two states the driver saw, `event` being the one that led to `next`. */
export function stepFacts(prev: MonitorState, next: MonitorState, event: MonitorEvent): StepFacts {
  const c = prev.cycle;
  const cycleSeconds = c && next.cycle?.id !== c.id ? seconds(event.now - c.began) : null;
  let fences: Array<HastatFence['result']> = [];
  // A finished run sets its node's last record (a fresh object), as does a confirmation.
  if (next.fencing.last !== prev.fencing.last) {
    fences = [];
    for (const [node, rec] of next.fencing.last) if (prev.fencing.last.get(node) !== rec) fences.push(rec.result);
  }
  const replicationFailed = event.type === 'io' && event.tag.kind === 'replica' && writeFailed(event);
  return cycleSeconds === null && fences.length === 0 && !replicationFailed ? NOTHING : { cycleSeconds, fences, replicationFailed };
}

/** As step() reads a write's answer: a batch that failed, or an error on its first result. */
function writeFailed(event: Extract<MonitorEvent, { type: 'io' }>): boolean {
  if (!event.results) return true;
  const first = event.results[0];
  return !!first && first.op !== 'read' && 'error' in first && first.error !== null;
}
