// The simulator's driver of step(): one simulated `peerha monitor` process. It carries out what
// step() asks — store batches on the simulated store, timers on the node's drifting clock, the
// real group engine on scripted processes, the node's watchdog, the fence hook — and answers with
// events, in virtual time. A frozen monitor gets its events when it thaws; a dead one never.
// Like src/monitor/daemon.ts it decides nothing: the same step() runs in both.

import { DEFAULT_STOP_LEVELS } from '../config/monitor.js';
import type { EventBody, MonitorEffect, MonitorEvent, TimerName } from '../monitor/events.js';
import { spawnAllowed } from '../monitor/logic.js';
import { guardedRunner, Machine } from '../monitor/machine.js';
import { fenceWaitMs, initialState, localInstances, type LastDecision, type MonitorSettings, type MonitorState } from '../monitor/state.js';
import { Engine, type Clock } from '../init/engine.js';
import type { Runner } from '../init/runner.js';
import { holdsResources, STOP, type Instance } from '../monitor/decide.js';
import type { Handle, SimMonitor as WorldMonitor, SimNode, World } from './world.js';

const NOOP_LOGGER = { info: (): void => undefined, warn: (): void => undefined, error: (): void => undefined };

/** The monitor configuration a scenario gives every node. */
export function simSettings(world: World, node: string): MonitorSettings {
  const scenario = world.scenario;
  return {
    root: 'DIR',
    node,
    cycleMs: scenario.cycleMs,
    timeoutMs: scenario.timeoutMs,
    stopTimeoutMs: scenario.stopTimeoutMs,
    stopLevel: DEFAULT_STOP_LEVELS,
    visibilityLagMs: scenario.visibilityLagMs,
    balance: scenario.balance,
    failCooldownCycles: scenario.failCooldownCycles,
    nice: 0,
    quorum: scenario.quorum,
    fence: scenario.fence,
    selfFence: scenario.selfFence,
    stateDir: '/run/peerha',
    timings: scenario.timings,
    clockDrift: clockDriftOf(scenario.clocks),
  };
}

/** The largest rate difference of two of the scenario's clocks (what dating a beat allows for). */
function clockDriftOf(clocks: ReadonlyMap<string, { readonly rate: number }>): number {
  const rates = [...clocks.values()].map((c) => c.rate);
  return Math.max(...rates) / Math.min(...rates) - 1;
}

export class SimMonitor implements WorldMonitor {
  readonly inc: number;
  readonly engine: Engine;
  private readonly machine: Machine;
  private readonly timers = new Map<TimerName, Handle>();
  private lastDecision: LastDecision | null = null;
  private readonly lastTraced = new Map<string, string>();
  /** Groups whose stop entries the node's stop record holds (daemon.ts recordedStops). */
  private recordedStops = new Set<string>();
  /** What this process last wrote to the record (StopRecord.last: an unchanged text is not rewritten). */
  private lastStops: string | null = null;

  constructor(
    private readonly world: World,
    private readonly node: SimNode,
  ) {
    this.inc = node.inc;
    const state = initialState(simSettings(world, node.name), node.inc, node.rng.int(0, 2 ** 32 - 1));
    this.machine = new Machine(state, { now: () => node.local(), wall: () => world.wallNow(node) }, (e) => this.perform(e), world.logic, (ev, st) => this.observe(ev, st));
    const clock: Clock = {
      now: () => node.local(),
      setTimer: (ms, fn) => node.post(ms, fn),
      clearTimer: (h) => {
        (h as Handle).cancelled = true;
      },
    };
    const guarded = guardedRunner({ spawn: (req, cb) => world.spawn(node, this.inc, req, cb) }, () => spawnAllowed(this.machine.state, node.local(), world.logic), () => undefined, (fn) => node.post(0, fn));
    const runner: Runner = world.model.heldStops ? guarded : { spawn: (req, { onRefused: _, ...cb }) => guarded.spawn(req, cb) };
    this.engine = new Engine({ runner, clock, random: () => node.rng.next(), timings: world.scenario.timings, logger: NOOP_LOGGER, onChange: () => this.engineChanged(), env: {}, stopLevel: STOP, stopTimeoutMs: state.settings.stopTimeoutMs });
  }

  get state(): MonitorState {
    return this.machine.state;
  }

  /** Past the start-up checks and cycling. */
  get running(): boolean {
    return this.state.phase === 'running';
  }

  get leaving(): boolean {
    return this.state.leave !== null;
  }

  get lastQuorumOk(): boolean | null {
    return this.state.quorumOk;
  }

  /** What the engine runs right now (ground truth for the progress check). */
  localInstances(): Map<string, Instance> {
    return localInstances({ ...this.state, local: this.engine.status() });
  }

  fenceWaitMs(): number {
    return fenceWaitMs(this.state, this.node.local());
  }

  start(): void {
    this.deliver({ type: 'start' });
  }

  leave(): void {
    this.deliver({ type: 'signal', signal: 'SIGTERM' });
  }

  /** An event from outside the process (a store answer, a signal): held while frozen, lost if it died. */
  private deliver(event: EventBody): void {
    this.node.deliver(this.inc, () => this.machine.dispatch(event));
  }

  private engineChanged(): void {
    this.saveStops();
    this.machine.engineChanged(() => this.engine.status());
    if (!this.world.tracing) return;
    for (const [g, i] of localInstances({ ...this.state, local: this.engine.status() })) {
      const line = `${i.level} ${i.state}`;
      if (this.lastTraced.get(g) !== line) this.world.trace(this.node.name, `engine: ${g} ${line}`);
      this.lastTraced.set(g, line);
    }
  }

  /**
   * daemon.ts saveStops(): record the stop entries of every group here that may hold resources
   * (plus `starting`); while spawning is refused (the watchdog may be fencing) a group stays
   * recorded until its stop entries can really run. An unchanged record is not rewritten.
   */
  private saveStops(starting: readonly string[] = []): void {
    const { world, node } = this;
    const groups = new Set(this.engine.status().filter((g) => g.level !== null && holdsResources({ level: g.level, state: g.state })).map((g) => g.group));
    for (const g of starting) groups.add(g);
    if (!spawnAllowed(this.machine.state, node.local(), world.logic)) for (const g of this.recordedStops) groups.add(g);
    this.recordedStops = groups;
    const stopTimeoutMs = this.state.settings.stopTimeoutMs;
    const record = new Map([...groups].sort().map((g): [string, string[]] => [g, this.engine.entriesAt(g, STOP).filter((e) => e.mode !== 'off').map((e) => e.tag)]));
    const text = JSON.stringify([stopTimeoutMs, [...record]]);
    if (text === this.lastStops) return;
    this.lastStops = text;
    node.stopRecord = { stopTimeoutMs, groups: record };
  }

  /** After every step: the world checks what a monitor decided against what its node runs. */
  private observe(_event: MonitorEvent, state: MonitorState): void {
    const d = state.lastDecision;
    if (d === this.lastDecision || d === null) return;
    this.lastDecision = d;
    this.world.quorumVerdict(this.node, d.effective, d.why);
  }

  private perform(e: MonitorEffect): void {
    const { world, node, machine } = this;
    switch (e.type) {
      case 'io':
        return world.store.forNode(node.name, node).perform(e.ops, (results, error) => this.deliver({ type: 'io', tag: e.tag, results, ...(error ? { error } : {}) }));
      case 'recordStops':
        return this.saveStops(e.groups);
      case 'tell': {
        // Its stop entries are on disk before anything of it can start.
        if (holdsResources({ level: e.level, state: 'STARTING' })) this.saveStops([e.group]);
        const r = this.engine.tell(e.group, e.level);
        return machine.dispatch({ type: 'told', group: e.group, level: e.level, reason: e.reason, ok: r.ok, message: r.message, ...(e.cycle !== undefined ? { cycle: e.cycle } : {}) });
      }
      case 'configure':
        this.engine.setConfig(e.cltab, { reconcile: true });
        return this.saveStops();
      case 'haltGroups':
        return void this.engine.haltAll(() => machine.dispatch({ type: 'halted' }));
      case 'timer': {
        const prev = this.timers.get(e.name);
        if (prev) prev.cancelled = true;
        const handle = node.post(e.at - node.local(), () => {
          this.timers.delete(e.name);
          machine.dispatch({ type: 'timer', name: e.name });
        });
        this.timers.set(e.name, handle);
        return;
      }
      case 'cancelTimer': {
        const prev = this.timers.get(e.name);
        if (prev) prev.cancelled = true;
        this.timers.delete(e.name);
        return;
      }
      case 'watchdog':
        if (e.action === 'start') node.watchdogStart(e.limitMs);
        else if (e.action === 'pet') {
          node.watchdogPet(e.ageMs ?? 0);
          // daemon.ts: petted again, the stop entries refused meanwhile run now.
          if (this.engine.hasHeld() && spawnAllowed(machine.state, node.local(), world.logic)) {
            world.stats.heldStopRetries++;
            this.engine.retryHeld();
          }
        } else if (e.action === 'leave') node.watchdogLeave(() => this.deliver({ type: 'watchdog-gone' }));
        else node.watchdogBye();
        return;
      case 'killGroups':
        return node.killAll('self-fence: killing recorded process groups before publishing');
      case 'cleanLeftovers': {
        // Kill what the previous run recorded, run the stop entries it recorded, then forget both.
        node.killAll('leftovers of a previous run');
        const boot = node.boot;
        const ran = node.runRecordedStops('cleaning up after a previous run', () => {
          if (node.boot === boot) node.stopRecord = null;
          this.lastStops = null;
          this.deliver({ type: 'cleaned' });
        });
        if (ran) world.stats.leftoverStopRuns++;
        return;
      }
      case 'fence':
        return world.runFence(node, e.node, e.method, e.action, e.timeoutMs, (outcome) => this.deliver({ type: 'fenced', node: e.node, incident: e.incident, outcome }));
      case 'alert':
        return world.alerted(node, e.alert);
      case 'log':
        if (e.msg === 'cycle failed; retrying next cycle') world.stats.cycleRetries++;
        if (world.tracing && e.level !== 'debug') world.trace(node.name, `${e.msg}${Object.keys(e.fields).length ? ` ${traceFields(e.fields)}` : ''}`);
        return;
      case 'ready':
        return;
      case 'exit':
        for (const t of this.timers.values()) t.cancelled = true;
        // daemon.ts exit(): the records go with an orderly exit.
        node.stopRecord = null;
        return node.monitorExited(e.code, e.message ?? e.reason);
    }
  }
}

function traceFields(fields: Readonly<Record<string, unknown>>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}
