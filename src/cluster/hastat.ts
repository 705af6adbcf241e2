// hastat: a node's consolidated view of the cluster (JSON, version 1), rewritten every cycle in
// DIR/nodes/<node>/hastat. `peerha status` renders it; `peerha plan` restores the monitor's
// decision memory from its `memory` part. Schema: docs/hastat.schema.json.

import type { FencedLine, GroupState } from '../config/clstat.js';
import type { QuorumConfig } from '../config/monitor.js';
import type { CheckStatus } from '../init/engine.js';

export const HASTAT_VERSION = 1;

/** The last fence of a node as a hastat shows it: the fencer's own attempt or its `# fenced` line. */
export interface HastatFence {
  readonly time: string;
  readonly fencer: string;
  readonly node: string;
  readonly result: 'success' | 'failure' | 'timeout' | 'waiting';
  readonly method?: string;
  readonly action?: string;
  readonly incident?: string;
  readonly durationMs?: number;
  readonly detail?: string;
}

export interface HastatNode {
  /** `unknown`: its clstat could not be read for a timeout; its groups still count as running. */
  readonly state: 'up' | 'stale' | 'unknown' | 'left' | 'fenced';
  readonly seq: number | null;
  readonly lastChange: string | null;
  readonly fencedBy?: string;
  readonly lastFence?: HastatFence;
  /** Why its clstat could not be read lately (ENOENT, EACCES, a symlink: refused…). */
  readonly readError?: string;
  /** This node only: the live peers that hold it stale (it runs nothing meanwhile: the poison pill). */
  readonly declaredStaleBy?: string;
}

export interface HastatInstance {
  readonly level: string;
  readonly state: GroupState;
}

export interface HastatGroup {
  readonly want: string | null;
  readonly nodes?: readonly string[] | null;
  readonly instances: Readonly<Record<string, HastatInstance>>;
  readonly notes?: readonly string[];
  /** Times the group moved from one running node to another: the cluster's count (every node takes the highest published), kept across restarts. */
  readonly failovers?: number;
  /** Only for a group this node runs: its entries and recent transitions here. */
  readonly local?: {
    readonly entries: ReadonlyArray<HastatLocalEntry>;
    readonly transitions: ReadonlyArray<{ readonly at: string; readonly level: string | null; readonly state: GroupState }>;
    /** Local restarts (failing health checks, crash-loop backoffs) within the restart window. */
    readonly restarts?: number;
    readonly maxRestarts?: number;
    /** This node gave the group up (too many restarts): FAILED here, another node takes it. */
    readonly givenUp?: boolean;
  };
}

/** One entry of a group this node runs. */
export interface HastatLocalEntry {
  readonly tag: string;
  readonly mode: string;
  readonly state: string;
  readonly note: string | null;
  /** `monitor` entries: their health check. */
  readonly check?: HastatCheck;
}

/** A `monitor` entry's health check, as the engine reports it. */
export type HastatCheck = CheckStatus;

/**
 * What the writer's next decision depends on that the files do not show, with every monotonic
 * time as milliseconds relative to when the hastat was written (never a clock reading: clocks of
 * different machines are unrelated). `peerha plan` restores the monitor's state from it.
 */
export interface HastatMemory {
  readonly settings: {
    readonly cycleMs: number;
    readonly timeoutMs: number;
    /** Absent in hastats written before stop_timeout existed. */
    readonly stopTimeoutMs?: number;
    readonly visibilityLagMs: number;
    readonly balance: number;
    readonly failCooldownCycles: number;
    readonly selfFence: boolean;
    readonly quorum: QuorumConfig;
  };
  /** How long the monitor has been cycling (it plans nothing while settling). */
  readonly runningMs: number;
  readonly configVersion: string;
  /** Per peer: its last heartbeat seq, how long it has been silent and unread, whether it left. */
  readonly peers: Readonly<Record<string, { readonly seq: number | null; readonly silentMs: number; readonly unreadMs?: number; readonly left: boolean; readonly pid?: number }>>;
  readonly quorum: { readonly base: number; readonly allSeen: boolean; readonly leftAtBase?: number };
  /** Group → ms its own plan has stood unchallenged. */
  readonly planned: Readonly<Record<string, number>>;
  /** Group → failed test here: ms until it may plan again, how often in a row, for which configuration. */
  readonly failed: Readonly<Record<string, { readonly forMs: number; readonly count: number; readonly configVersion: string }>>;
  /** Group → ms left of the backoff after a lost conflict. */
  readonly backoff: Readonly<Record<string, number>>;
  /** Group → ms it has been needed and running nowhere. */
  readonly homeless: Readonly<Record<string, number>>;
  /** group → ms since our passed test was first seen (only while it waits out visibility_lag). */
  readonly tested?: Readonly<Record<string, number>>;
  /** Node that left → the heirs it named and how long ago they were first seen. */
  readonly handovers: Readonly<Record<string, { readonly seq: number; readonly seenMs: number; readonly heirs: Readonly<Record<string, string>> }>>;
  /** Nodes this node fenced (its `# fenced` lines) and every peer's claims. */
  readonly fenced: readonly FencedLine[];
  readonly claims: Readonly<Record<string, readonly FencedLine[]>>;
}

export interface Hastat {
  readonly version: number;
  readonly node: string;
  readonly time: string;
  readonly quorum: { readonly ok: boolean; readonly live: number; readonly expected: number | null; readonly policy: string; readonly reason: string };
  readonly detection: string;
  readonly nodes: Readonly<Record<string, HastatNode>>;
  readonly groups: Readonly<Record<string, HastatGroup>>;
  readonly errors: readonly string[];
  readonly memory?: HastatMemory;
}

/** A hastat from its text, or null when torn, half-written or of another version. */
export function parseHastat(text: string): Hastat | null {
  try {
    const h = JSON.parse(text) as Hastat;
    return h && typeof h === 'object' && h.version === HASTAT_VERSION && typeof h.node === 'string' && h.nodes && h.groups ? h : null;
  } catch {
    return null;
  }
}
