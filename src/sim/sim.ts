// Run one simulated history: draw its scenario from the seed, start the monitors, apply the faults,
// and check the invariants until the cluster has been stable after the last fault (or a violation).

import { REAL_LOGIC, type Logic } from '../monitor/logic.js';
import { describeScenario, drawScenario, type Scenario, type ScenarioOptions } from './scenario.js';
import { SimMonitor } from './driver.js';
import { REAL_MODEL, World, type SimModel, type Violation } from './world.js';

export interface RunOptions extends ScenarioOptions {
  /** Keep an event log (the replayable trace). */
  readonly trace?: boolean;
  /** Swap decision functions (default: the real ones). */
  readonly logic?: Partial<Logic>;
  /** Switch off parts of the machinery outside the monitor (negative controls; default: all real). */
  readonly model?: Partial<SimModel>;
}

export interface RunResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | null;
  readonly nodes: number;
  readonly groups: number;
  readonly faults: number;
  /** Simulated time the history covered (ms). */
  readonly simMs: number;
  readonly steps: number;
  /** After the last fault healed: how long until every group ran where it should (null: no progress expected). */
  readonly convergeMs: number | null;
  readonly boundMs: number;
  readonly cycleMs: number;
  readonly mode: 'progress' | 'no quorum' | 'halted' | null;
  /** Set when a group stayed down for a known, reported reason (fence results are not shared). */
  readonly stats: World['stats'];
  /** Whole-node freezes that overlapped a hold elsewhere: how long after the thaw each ended (ms). */
  readonly thawOverlapsMs: readonly number[];
  readonly scenario: Scenario;
  /** The scenario options it ran with (for the replay command). */
  readonly options: ScenarioOptions;
  readonly trace: readonly string[];
}

const SCENARIO_KEYS = ['nodes', 'maxDrift', 'faultRate', 'stopTimeoutFactor', 'timeoutCycles', 'slowStops', 'faultKinds'] as const satisfies ReadonlyArray<keyof ScenarioOptions>;

/** The scenario options among run options (what a replay needs). */
function scenarioOptions(opts: RunOptions): ScenarioOptions {
  const out: Record<string, unknown> = {};
  for (const k of SCENARIO_KEYS) if (opts[k] !== undefined) out[k] = opts[k];
  return out as ScenarioOptions;
}

/** The `npm run sim` command that replays a seed drawn with these scenario options. */
export function replayCommand(seed: number, o: ScenarioOptions = {}): string {
  const flags = [
    o.nodes !== undefined ? `--nodes ${typeof o.nodes === 'number' ? o.nodes : o.nodes.join('-')}` : '',
    o.maxDrift !== undefined ? `--drift ${o.maxDrift}` : '',
    o.faultRate !== undefined ? `--faults ${o.faultRate}` : '',
    o.timeoutCycles !== undefined ? `--timeout-cycles ${o.timeoutCycles}` : '',
    o.slowStops ? '--slow-stops' : '',
    o.faultKinds ? `--fault-kinds ${o.faultKinds.join(',')}` : '',
    o.stopTimeoutFactor !== undefined ? `--stop-timeout ${o.stopTimeoutFactor}` : '',
  ].filter(Boolean);
  return `npm run sim -- --seed ${seed}${flags.length ? ' ' + flags.join(' ') : ''} --trace`;
}

export function runSeed(seed: number, opts: RunOptions = {}): RunResult {
  const scenario = drawScenario(seed, opts);
  const logic: Logic = { ...REAL_LOGIC, ...opts.logic };
  const world = new World(scenario, logic, !!opts.trace, (w, node) => new SimMonitor(w, node), { ...REAL_MODEL, ...opts.model });
  const { sched } = world;
  for (const [node, at] of scenario.startAt) sched.at(at, () => world.nodes.get(node)!.startMonitor());
  for (const f of scenario.faults) sched.at(f.at, () => world.apply(f));
  sched.at(scenario.healAt, () => world.startProgress());
  // Hard stop far past any bound (the deadline moves with late disruptions; this only guards loops).
  const cap = scenario.healAt + 50 * world.progressBound() + 600_000;
  const stop = (): boolean => world.done || world.violation !== null;
  sched.run(cap, stop);
  world.stats.failedBatches = world.store.failedBatches;
  world.stats.staleHeartbeats = world.store.staleHeartbeats;
  if (!world.done && !world.violation) world.violation = { invariant: 'progress', time: sched.now, detail: 'history did not settle before the hard stop' };
  return {
    seed,
    ok: world.violation === null,
    violation: world.violation,
    nodes: scenario.nodes.length,
    groups: scenario.groups.length,
    faults: scenario.faults.length,
    simMs: sched.now,
    steps: sched.steps,
    convergeMs: world.convergeMs,
    boundMs: world.boundMs,
    cycleMs: scenario.cycleMs,
    mode: world.progressMode,
    stats: world.stats,
    thawOverlapsMs: world.thawOverlapsMs,
    scenario,
    options: scenarioOptions(opts),
    trace: world.log,
  };
}

/** A failing (or traced) history as text: how to replay it, its setup, the violation, the event log. */
export function report(r: RunResult, opts: { replay?: string; tail?: number } = {}): string {
  const lines = [
    r.ok ? `seed ${r.seed}: ok` : `seed ${r.seed}: VIOLATION of "${r.violation!.invariant}" at ${r.violation!.time.toFixed(1)} ms`,
    ...(r.violation ? [`  ${r.violation.detail}`] : []),
    `replay: ${opts.replay ?? replayCommand(r.seed, r.options)}`,
    '',
    ...describeScenario(r.scenario),
  ];
  if (r.trace.length) {
    const tail = opts.tail ?? r.trace.length;
    const shown = r.trace.slice(-tail);
    lines.push('', `event log${shown.length < r.trace.length ? ` (last ${shown.length} of ${r.trace.length} events)` : ''}:`, ...shown);
  }
  lines.push('', `simulated ${(r.simMs / 1000).toFixed(1)} s in ${r.steps} steps; converged ${r.convergeMs === null ? '-' : `${r.convergeMs.toFixed(0)} ms`} after the last fault (bound ${r.boundMs.toFixed(0)} ms)`);
  return lines.join('\n');
}
