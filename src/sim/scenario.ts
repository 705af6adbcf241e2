// A simulated history's setup, drawn from its seed: cluster size, timings, quorum and fencing
// configuration, groups with per-node test results, per-node clocks, and a schedule of faults.

import { defaultStopTimeoutMs, type FenceConfig, type FenceMethod, type QuorumConfig } from '../config/monitor.js';
import type { Timings } from '../init/machines.js';
import { DEFAULT_TIMINGS } from '../init/machines.js';
import { Rng } from './rng.js';

export interface GroupSpec {
  readonly name: string;
  readonly hasTest: boolean;
  readonly hasSetup: boolean;
  /** Node → does this group's test pass there. */
  readonly pass: ReadonlyMap<string, boolean>;
  readonly testMs: readonly [number, number];
  readonly setupMs: readonly [number, number];
  /** How long its service takes to exit on SIGINT. */
  readonly stopMs: readonly [number, number];
  /** How long its stop entry (the one that releases its resource) takes (local ms). */
  readonly cleanMs: readonly [number, number];
  /** Probability that an instance ignores SIGINT (needs SIGTERM) / SIGTERM (needs SIGKILL). */
  readonly ignoreInt: number;
  readonly ignoreTerm: number;
}

export interface NodeClockSpec {
  /** performance.now() origin of that machine (monotonic clocks of different machines are unrelated). */
  readonly base: number;
  /** Its monotonic timers run this much fast (>1) or slow (<1). */
  readonly rate: number;
  /** Wall-clock offset (only in clstat timestamps: nothing may depend on it). */
  readonly wallOffsetMs: number;
}

export type Fault =
  | { readonly kind: 'crash'; readonly node: string; readonly at: number; readonly restartAfter: number | null }
  /** Crash whichever node is running a fence hook right then (else the lowest-named live node: the designated fencer). */
  | { readonly kind: 'crash-fencer'; readonly at: number; readonly restartAfter: number }
  | { readonly kind: 'kill-monitor'; readonly node: string; readonly at: number; readonly restartAfter: number }
  | { readonly kind: 'leave'; readonly node: string; readonly at: number; readonly restartAfter: number }
  | { readonly kind: 'pause'; readonly node: string; readonly at: number; readonly dur: number; readonly watchdog: boolean }
  | { readonly kind: 'partition'; readonly node: string; readonly at: number; readonly dur: number; readonly mode: 'fail' | 'hang' }
  | { readonly kind: 'slow'; readonly node: string; readonly at: number; readonly dur: number; readonly latency: readonly [number, number] }
  | { readonly kind: 'reads'; readonly at: number; readonly dur: number; readonly torn: number; readonly missing: number; readonly reorder: number }
  | { readonly kind: 'fence-faulty'; readonly at: number; readonly dur: number; readonly failure: number; readonly timeout: number; readonly slow: number }
  /** The admin writes DIR/hactl; `valid` false: a bad edit, which must change nothing. */
  | { readonly kind: 'hactl'; readonly at: number; readonly text: string; readonly valid: boolean }
  /** The admin writes DIR/cltab: these groups have entries from now on (null: a bad edit, ignored). */
  | { readonly kind: 'cltab'; readonly at: number; readonly text: string; readonly groups: readonly string[] | null }
  /** `peerha halt`, undone (`halt --undo`) after `dur`, or never (null). */
  | { readonly kind: 'halt'; readonly at: number; readonly dur: number | null }
  /** A node's store operations fail as a whole (an unexpected EIO) with probability p. */
  | { readonly kind: 'io-error'; readonly node: string; readonly at: number; readonly dur: number; readonly p: number }
  /** The shared filesystem is full: new files fail (ENOSPC), heartbeats are rewritten in place. */
  | { readonly kind: 'full'; readonly at: number; readonly dur: number }
  /** `node`'s wall clock steps (NTP, `date -s`): only timestamps may change. */
  | { readonly kind: 'clock-step'; readonly node: string; readonly at: number; readonly stepMs: number }
  /** An admin copy is replaced by a symlink (to a file outside DIR) for a while: refused, never read. */
  | { readonly kind: 'symlink'; readonly at: number; readonly dur: number; readonly file: 'cltab' | 'hactl' }
  /**
   * One-sided: `node` cannot read `peer`'s folder (lost: missing, as under a mount) or sees it
   * frozen (stuck: a stale cache); cut: neither can read the other's folder.
   */
  | { readonly kind: 'view'; readonly node: string; readonly peer: string; readonly at: number; readonly dur: number; readonly mode: 'lost' | 'stuck' | 'cut' }
  | { readonly kind: 'start'; readonly node: string; readonly at: number };

export interface Scenario {
  readonly seed: number;
  readonly nodes: readonly string[];
  readonly groups: readonly GroupSpec[];
  readonly cycleMs: number;
  readonly timeoutMs: number;
  /** The monitors' stop_timeout (the longest config allows: timeout/2 − 100 ms, unless a control says otherwise). */
  readonly stopTimeoutMs: number;
  /** The monitors' configured visibility_lag. */
  readonly visibilityLagMs: number;
  /** The store's real propagation delay (within the configured lag). */
  readonly storeLagMs: number;
  /** Probability that the store later loses a claim it created (0 in most histories). */
  readonly claimLoss: number;
  readonly storeLatencyMs: readonly [number, number];
  readonly balance: number;
  readonly failCooldownCycles: number;
  readonly quorum: QuorumConfig;
  readonly selfFence: boolean;
  readonly fence: FenceConfig;
  readonly timings: Timings;
  readonly clocks: ReadonlyMap<string, NodeClockSpec>;
  /** Global start time of each node's first monitor (nodes absent here join by a `start` fault). */
  readonly startAt: ReadonlyMap<string, number>;
  readonly hactl: string;
  readonly cltab: string;
  readonly faults: readonly Fault[];
  /** When the last fault ends: after this nothing breaks any more. */
  readonly healAt: number;
  /** Fenced nodes power back on with this probability (else they stay down). */
  readonly rebootAfterFence: number;
}

export interface ScenarioOptions {
  /** Exact cluster size, or a range to draw from (default: a mix of 1–16 weighted to small). */
  readonly nodes?: number | readonly [number, number];
  /** Largest drift of a node's monotonic clock (fraction, default 0.02 = ±2 %). */
  readonly maxDrift?: number;
  /** Scale the number of faults (default 1; 0 = a fault-free history). */
  readonly faultRate?: number;
  /**
   * stop_timeout as a fraction of timeout (default: timeout/2 − 100 ms, the most `peerha monitor`
   * accepts). Only negative controls set more: peers then take over before the watchdog's stop
   * entries can have finished.
   */
  readonly stopTimeoutFactor?: number;
  /** timeout as a number of cycles (default: drawn from 4, 5, 6, 8, 10). */
  readonly timeoutCycles?: number;
  /** Every group's stop entry takes 50–90 % of stop_timeout (default: half of them; the others ≤ cycle/2). */
  readonly slowStops?: boolean;
  /** Draw faults of these kinds only, each as likely as before against the others (default: every kind). */
  readonly faultKinds?: readonly FaultKind[];
}

/** The kinds of fault a history draws (a late join, `start`, is drawn apart). */
export const FAULT_KINDS = ['crash', 'crash-fencer', 'kill-monitor', 'leave', 'pause', 'partition', 'slow', 'reads', 'fence-faulty', 'hactl', 'cltab', 'halt', 'io-error', 'view', 'full', 'clock-step', 'symlink'] as const satisfies ReadonlyArray<Fault['kind']>;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The simulator's cltab: per group an optional test, an optional setup, a service, a stop-level cleanup. */
export function cltabText(groups: ReadonlyArray<Pick<GroupSpec, 'name' | 'hasTest' | 'hasSetup'>>, present: ReadonlySet<string>): string {
  return (
    groups
      .filter((g) => present.has(g.name))
      .flatMap((g) => [
        ...(g.hasTest ? [`${g.name}:${g.name}-test:test,:test:sim-test`] : []),
        ...(g.hasSetup ? [`${g.name}:${g.name}-setup:start,:wait:sim-setup`] : []),
        `${g.name}:${g.name}-svc:start,:respawn:sim-svc`,
        `${g.name}:${g.name}-clean:stop,:wait:sim-clean`,
      ])
      .join('\n') + '\n'
  );
}

export const SIM_FENCE_METHODS: Readonly<Record<'command' | 'agent' | 'manual', FenceMethod>> = {
  command: { kind: 'command', line: 0, command: 'sim-fence' },
  agent: { kind: 'agent', line: 0, agent: 'fence_sim', params: [], nodes: {} },
  manual: { kind: 'manual', line: 0 },
};

const CI_SIZES: ReadonlyArray<readonly [number, number]> = [
  [2, 1], [5, 2], [7, 3], [6, 4], [5, 5], [4, 6], [3, 7], [3, 8], [1, 9], [1, 10], [1, 11], [1, 12], [1, 13], [1, 14], [1, 15], [2, 16],
];

export function drawScenario(seed: number, opts: ScenarioOptions = {}): Scenario {
  const rng = new Rng(seed, 1);
  const size = opts.nodes;
  const n = typeof size === 'number' ? size : size ? rng.int(size[0], size[1]) : rng.weighted(CI_SIZES);
  const nodes = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const cycleMs = rng.pick([100, 200, 250, 500, 1000]);
  const drawnTimeoutCycles = rng.pick([4, 5, 6, 8, 10]); // drawn either way: later draws stay as they were
  const timeoutMs = cycleMs * (opts.timeoutCycles ?? drawnTimeoutCycles);
  const visibilityLagMs = Math.min(Math.round(cycleMs * rng.pick([0, 0, 0.1, 0.25, 0.5, 1, 2])), Math.floor(timeoutMs / 3));
  const storeLagMs = visibilityLagMs * rng.uniform(0.3, 1);
  const termAfterMs = Math.round(cycleMs * rng.uniform(1, 4));
  const timings: Timings = { ...DEFAULT_TIMINGS, termAfterMs, killAfterMs: termAfterMs + Math.round(cycleMs * rng.uniform(1, 4)), killRepeatMs: cycleMs };
  const policy = rng.weighted([[4, 'majority'], [3, 'adaptive'], [3, 'none']] as const);
  const quorum: QuorumConfig = policy === 'majority' ? { policy, expected: n, waitForAll: rng.chance(0.15) } : { policy };
  const selfFence = rng.chance(0.75);
  const fenceCommand = { command: rng.chance(selfFence ? 0.4 : 0.7), timeoutMs: Math.round(cycleMs * rng.uniform(2, 8)) };
  const maxDrift = opts.maxDrift ?? 0.02;
  const clocks = new Map<string, NodeClockSpec>();
  for (const node of nodes) clocks.set(node, { base: rng.uniform(0, 1e7), rate: 1 + rng.uniform(-maxDrift, maxDrift), wallOffsetMs: rng.uniform(-3.6e6, 3.6e6) });

  const groupCount = rng.int(1, Math.max(1, Math.min(10, Math.ceil(n / 2) + 2)));
  const groups: Array<Omit<GroupSpec, 'cleanMs'>> = [];
  for (let i = 1; i <= groupCount; i++) {
    const hasTest = rng.chance(0.7);
    const failRate = rng.pick([0, 0, 0.15, 0.5]);
    const pass = new Map(nodes.map((node) => [node, !hasTest || !rng.chance(failRate)]));
    const slowStop = rng.chance(0.3);
    groups.push({
      name: `g${i}`,
      hasTest,
      hasSetup: rng.chance(0.6),
      pass,
      testMs: [0, cycleMs * rng.uniform(0, 2)],
      setupMs: [0, cycleMs * rng.uniform(0, 1.5)],
      stopMs: slowStop ? [0, termAfterMs * 1.5] : [0, cycleMs / 2],
      ignoreInt: rng.pick([0, 0, 0.2]),
      ignoreTerm: rng.pick([0, 0, 0.1]),
    });
  }
  const allowed = new Map<string, string[]>();
  for (const g of groups) if (rng.chance(0.25)) allowed.set(g.name, rng.shuffle(nodes).slice(0, rng.int(1, Math.min(n, 3))));
  const hactlText = (stopped: ReadonlySet<string>, allow: ReadonlyMap<string, readonly string[]>): string =>
    groups.map((g) => `${g.name} ${stopped.has(g.name) ? 'stop' : 'start'}${allow.get(g.name) ? ' ' + allow.get(g.name)!.join(',') : ''}`).join('\n') + '\n';

  // Faults, all within [0, window]: they may hit the cold start too.
  const window = timeoutMs * rng.uniform(2, 8) + cycleMs * rng.uniform(0, 20);
  const faults: Fault[] = [];
  const startAt = new Map<string, number>();
  for (const node of nodes) {
    if (n > 1 && rng.chance(0.08)) faults.push({ kind: 'start', node, at: rng.uniform(0, window) });
    else startAt.set(node, rng.uniform(0, 2 * cycleMs));
  }
  const rate = opts.faultRate ?? 1;
  const count = Math.round(rng.int(0, Math.min(8, 2 + Math.ceil(n / 2))) * rate);
  const T = timeoutMs;
  const permanentOk = selfFence || fenceCommand.command;
  const stopped = new Set<string>();
  const allow = new Map(allowed);
  const present = new Set(groups.map((g) => g.name));
  const viewPairs = new Set<string>();
  for (let i = 0; i < count; i++) {
    const at = rng.uniform(0, window);
    const node = rng.pick(nodes);
    const mix = [
      [3, 'crash'], [fenceCommand.command ? 2 : 0, 'crash-fencer'], [2, 'kill-monitor'], [2, 'leave'], [3, 'pause'], [3, 'partition'], [2, 'slow'], [2, 'reads'], [fenceCommand.command ? 2 : 0, 'fence-faulty'], [2, 'hactl'],
      [1, 'cltab'], [1, 'halt'], [1, 'io-error'], [n > 1 ? 4 : 0, 'view'], [1, 'full'], [1, 'clock-step'], [1, 'symlink'],
    ] as const satisfies ReadonlyArray<readonly [number, FaultKind]>;
    const only = opts.faultKinds;
    // The same draw either way: a seed's other choices stay as they were.
    const kind = rng.weighted(only ? mix.map(([w, k]) => [only.includes(k) ? w : 0, k] as const) : mix);
    switch (kind) {
      case 'crash':
        faults.push({ kind, node, at, restartAfter: permanentOk && rng.chance(0.15) ? null : rng.uniform(0.2 * T, 5 * T) });
        break;
      case 'crash-fencer':
        faults.push({ kind, at, restartAfter: rng.uniform(0.2 * T, 5 * T) });
        break;
      case 'kill-monitor':
      case 'leave':
        faults.push({ kind, node, at, restartAfter: rng.uniform(0.1 * T, 4 * T) });
        break;
      case 'pause':
        faults.push({ kind, node, at, dur: rng.uniform(0.2 * T, 3 * T), watchdog: rng.chance(0.6) });
        break;
      case 'partition':
        faults.push({ kind, node, at, dur: rng.uniform(0.2 * T, 4 * T), mode: rng.chance(0.5) ? 'fail' : 'hang' });
        break;
      case 'slow': {
        const hi = T * rng.pick([0.05, 0.2, 0.45, 0.8]);
        faults.push({ kind, node, at, dur: rng.uniform(T, 5 * T), latency: [hi / 4, hi] });
        break;
      }
      case 'reads':
        faults.push({ kind, at, dur: rng.uniform(T, 5 * T), torn: rng.pick([0, 0.02, 0.1, 0.4, 0.8]), missing: rng.pick([0, 0.05, 0.2]), reorder: rng.pick([0, 0.05, 0.3]) });
        break;
      case 'fence-faulty':
        faults.push({ kind, at, dur: rng.uniform(T, 6 * T), failure: rng.uniform(0, 0.6), timeout: rng.uniform(0, 0.3), slow: rng.uniform(0, 0.5) });
        break;
      case 'hactl': {
        if (rng.chance(0.15)) {
          faults.push({ kind, at, text: `${hactlText(stopped, allow)}${rng.pick(groups).name} start ${rng.pick(['n1,', ',', 'bad/node'])} extra\n`, valid: false });
          break;
        }
        if (rng.chance(0.1)) {
          // An editor caught mid-write: the new text cut short, no final newline.
          const next = new Set(stopped);
          const g = rng.pick(groups).name;
          if (next.has(g)) next.delete(g);
          else next.add(g);
          const full = hactlText(next, allow);
          faults.push({ kind, at, text: full.slice(0, rng.int(1, full.length - 1)), valid: false });
          break;
        }
        const g = rng.pick(groups).name;
        if (stopped.has(g)) stopped.delete(g);
        else stopped.add(g);
        if (rng.chance(0.3)) {
          if (allow.has(g)) allow.delete(g);
          else allow.set(g, rng.shuffle(nodes).slice(0, rng.int(1, Math.min(n, 3))));
        }
        faults.push({ kind, at, text: hactlText(stopped, allow), valid: true });
        break;
      }
      case 'cltab': {
        if (rng.chance(0.2)) {
          faults.push({ kind, at, text: `${cltabText(groups, present)}${rng.pick(groups).name}:broken-entry\n`, groups: null });
          break;
        }
        const g = rng.pick(groups).name;
        if (present.has(g)) present.delete(g);
        else present.add(g);
        faults.push({ kind, at, text: cltabText(groups, present), groups: [...present] });
        break;
      }
      case 'halt':
        faults.push({ kind, at, dur: rng.chance(0.7) ? rng.uniform(0.5 * T, 4 * T) : null });
        break;
      case 'io-error':
        faults.push({ kind, node, at, dur: rng.uniform(T, 4 * T), p: rng.pick([0.05, 0.2, 0.6]) });
        break;
      case 'full':
        faults.push({ kind, at, dur: rng.uniform(T, 5 * T) });
        break;
      case 'clock-step':
        faults.push({ kind, node, at, stepMs: rng.pick([-3_600_000, 3_600_000, -61_000, 61_000]) });
        break;
      case 'symlink':
        faults.push({ kind, at, dur: rng.uniform(T, 5 * T), file: rng.pick(['cltab', 'hactl'] as const) });
        break;
      case 'view': {
        const peer = rng.pick(nodes.filter((x) => x !== node));
        const f: Fault = { kind, node, peer, at, dur: rng.uniform(T, 6 * T), mode: rng.pick(['lost', 'stuck', 'cut'] as const) };
        // Two views of one pair failing both ways is a partition between two nodes that both still
        // reach the store: the node that cannot read its peer cannot read its stale claim either.
        // Only quorum (or fencing) protects then; with quorum none, a double run is what was asked for.
        const pair = [node, peer].sort().join(' ');
        if (quorum.policy === 'none' && viewPairs.has(pair)) break;
        viewPairs.add(pair);
        faults.push(f);
        break;
      }
    }
  }
  faults.sort((a, b) => a.at - b.at);
  // hactl and cltab edits must apply in the order drawn: re-stamp their texts in time order.
  const restamp = <K extends 'hactl' | 'cltab'>(kind: K, list: Fault[]): Fault[] => {
    const drawn = faults.filter((f): f is Extract<Fault, { kind: K }> => f.kind === kind);
    let i = 0;
    return list.map((f) => (f.kind === kind ? { ...drawn[i++]!, at: f.at } : f));
  };
  const ordered = restamp('cltab', restamp('hactl', faults));
  let healAt = window;
  for (const f of ordered) {
    const end = 'dur' in f ? f.at + (f.dur ?? 0) : 'restartAfter' in f && f.restartAfter !== null ? f.at + f.restartAfter : f.at;
    healAt = Math.max(healAt, end);
  }
  // Drawn last, so that adding them left every earlier draw (and so the histories' faults) as it was.
  const fence: FenceConfig = {
    timeoutMs: fenceCommand.timeoutMs,
    action: 'off',
    methods: fenceCommand.command ? rng.pick<ReadonlyArray<keyof typeof SIM_FENCE_METHODS>>([['command'], ['agent'], ['agent'], ['agent', 'manual'], ['manual'], ['command', 'agent']]).map((k) => SIM_FENCE_METHODS[k]) : [],
    delayBaseMs: rng.chance(0.5) ? 0 : Math.round(cycleMs * rng.uniform(0, 2)),
    delayMaxMs: rng.chance(0.5) ? 0 : Math.round(cycleMs * rng.uniform(0, 4)),
    priorityDelayMs: rng.chance(0.5) ? 0 : Math.round(cycleMs * rng.uniform(1, 6)),
    retryMaxMs: Math.round(cycleMs * rng.pick([8, 32, 120])),
  };
  // Stop entries (and stop_timeout) come from a stream of their own, so that every earlier draw (and
  // so the histories' faults) stayed as it was when they were added. Some release at once (`ip addr
  // del`), some take most of stop_timeout (`umount` of a busy mount).
  const stopTimeoutMs = opts.stopTimeoutFactor !== undefined ? Math.round(opts.stopTimeoutFactor * timeoutMs) : defaultStopTimeoutMs(timeoutMs);
  const stopRng = new Rng(seed, 2);
  const withStops: GroupSpec[] = groups.map((g) => ({ ...g, cleanMs: stopRng.chance(0.5) || opts.slowStops ? [0.5 * stopTimeoutMs, 0.9 * stopTimeoutMs] : [0, Math.min(cycleMs / 2, 0.9 * stopTimeoutMs)] }));
  return {
    seed,
    nodes,
    groups: withStops,
    cycleMs,
    timeoutMs,
    stopTimeoutMs,
    visibilityLagMs,
    storeLagMs,
    // Its own stream: drawing it leaves every other draw of the seed as it was.
    claimLoss: ((r) => (r.chance(0.25) ? r.uniform(0.05, 0.5) : 0))(new Rng(seed, 9)),
    storeLatencyMs: [0.2, 2],
    balance: rng.pick([1, 1.5, 1.5, 2, 3]),
    failCooldownCycles: rng.pick([2, 5, 10, 10, 20]),
    quorum,
    selfFence,
    fence,
    timings,
    clocks,
    startAt,
    hactl: hactlText(new Set(), allowed),
    cltab: cltabText(groups, new Set(groups.map((g) => g.name))),
    faults: ordered,
    healAt,
    rebootAfterFence: 0.6,
  };
}

/** One line per setting, for traces. */
export function describeScenario(s: Scenario): string[] {
  const q = s.quorum;
  const out = [
    `seed ${s.seed}: ${s.nodes.length} nodes, ${s.groups.length} groups; cycle ${s.cycleMs} ms, timeout ${s.timeoutMs} ms, visibility_lag ${s.visibilityLagMs} ms (store lag ${s.storeLagMs.toFixed(0)} ms)${s.claimLoss > 0 ? `; the store loses ${Math.round(100 * s.claimLoss)} % of claims` : ''}`,
    `quorum ${q.policy}${q.expected !== undefined ? ` expected=${q.expected}` : ''}${q.waitForAll ? ' wait_for_all' : ''}; self_fence ${s.selfFence}; fence methods ${s.fence.methods.length ? `${s.fence.methods.map((m) => m.kind).join(',')} (timeout ${s.fence.timeoutMs} ms, delay ${s.fence.delayBaseMs}+${s.fence.delayMaxMs}, priority ${s.fence.priorityDelayMs}, retry cap ${s.fence.retryMaxMs})` : 'none'}; balance ${s.balance}; fail_cooldown ${s.failCooldownCycles} cycles`,
    `engine: SIGTERM after ${s.timings.termAfterMs} ms, SIGKILL after ${s.timings.killAfterMs} ms; stop_timeout ${s.stopTimeoutMs} ms`,
    `clocks: ${[...s.clocks].map(([n, c]) => `${n} ×${c.rate.toFixed(4)}`).join(' ')}`,
  ];
  for (const g of s.groups) {
    const fails = [...g.pass].filter(([, ok]) => !ok).map(([n]) => n);
    out.push(`group ${g.name}: ${g.hasTest ? `test (fails on ${fails.length ? fails.join(',') : 'none'})` : 'no test'}${g.hasSetup ? ', setup' : ''}, svc stops in ≤${Math.round(g.stopMs[1])} ms, stop entry takes ≤${Math.round(g.cleanMs[1])} ms${g.ignoreInt ? `, ignores SIGINT p=${g.ignoreInt}` : ''}${g.ignoreTerm ? `, ignores SIGTERM p=${g.ignoreTerm}` : ''}`);
  }
  out.push(`hactl: ${s.hactl.trim().split('\n').join(' | ')}`);
  const late = s.nodes.filter((n) => !s.startAt.has(n));
  if (late.length) out.push(`late joiners: ${late.join(',')}`);
  for (const f of s.faults) out.push(`fault @${f.at.toFixed(0)}: ${describeFault(f)}`);
  out.push(`faults heal by ${s.healAt.toFixed(0)} ms`);
  return out;
}

export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'crash':
      return `crash ${f.node}${f.restartAfter === null ? ' (stays down)' : `, restart after ${f.restartAfter.toFixed(0)} ms`}`;
    case 'crash-fencer':
      return `crash the node running a fence hook (or the designated fencer), restart after ${f.restartAfter.toFixed(0)} ms`;
    case 'kill-monitor':
      return `kill -9 monitor of ${f.node}, restart after ${f.restartAfter.toFixed(0)} ms`;
    case 'leave':
      return `SIGTERM ${f.node} (orderly leave), restart after ${f.restartAfter.toFixed(0)} ms`;
    case 'pause':
      return `${f.watchdog ? 'pause monitor of' : 'freeze whole node (monitor, watchdog, processes)'} ${f.node} for ${f.dur.toFixed(0)} ms`;
    case 'partition':
      return `partition ${f.node} from the store (${f.mode}) for ${f.dur.toFixed(0)} ms`;
    case 'slow':
      return `slow store on ${f.node} (+${f.latency[0].toFixed(0)}–${f.latency[1].toFixed(0)} ms per op) for ${f.dur.toFixed(0)} ms`;
    case 'reads':
      return `read faults for ${f.dur.toFixed(0)} ms: torn ${f.torn}, missing ${f.missing}, reordered ${f.reorder}`;
    case 'fence-faulty':
      return `fence hook faulty for ${f.dur.toFixed(0)} ms: failure ${f.failure.toFixed(2)}, timeout ${f.timeout.toFixed(2)}, slow ${f.slow.toFixed(2)}`;
    case 'hactl':
      return `admin writes ${f.valid ? '' : 'a bad '}hactl: ${f.text.trim().split('\n').join(' | ')}`;
    case 'cltab':
      return f.groups ? `admin writes cltab with groups ${f.groups.join(',') || '(none)'}` : 'admin writes a bad cltab (must be ignored)';
    case 'halt':
      return `peerha halt${f.dur === null ? ' (never undone)' : `, undone after ${f.dur.toFixed(0)} ms`}`;
    case 'io-error':
      return `${f.node}'s store batches fail (EIO) with p=${f.p} for ${f.dur.toFixed(0)} ms`;
    case 'full':
      return `the shared filesystem is full for ${f.dur.toFixed(0)} ms`;
    case 'clock-step':
      return `${f.node}'s wall clock steps ${f.stepMs > 0 ? '+' : ''}${(f.stepMs / 1000).toFixed(0)} s`;
    case 'symlink':
      return `DIR/${f.file} is a symlink for ${f.dur.toFixed(0)} ms`;
    case 'view':
      return f.mode === 'cut' ? `${f.node} and ${f.peer} cannot read each other's folder for ${f.dur.toFixed(0)} ms` : `${f.node} ${f.mode === 'lost' ? 'cannot read' : 'sees a frozen copy of'} nodes/${f.peer} for ${f.dur.toFixed(0)} ms`;
    case 'start':
      return `${f.node} joins (first start)`;
  }
}
