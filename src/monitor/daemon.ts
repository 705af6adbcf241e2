// `peerha monitor`: the real driver of step(). It owns the I/O — the shared directory (FsStore),
// the group engine and its processes, timers, the watchdog sidecar, signals, systemd — and does
// exactly what step() asks, answering with events. It decides nothing.

import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FsStore, groupId } from '../cluster/store.js';
import type { Logger } from '../io/log.js';
import { stopLevelOf } from '../config/monitor.js';
import { Engine, type GroupStatus } from '../init/engine.js';
import { killGroups, PgidRecord } from '../init/pgid-record.js';
import { StopRecord, stopRecordText } from '../init/stop-record.js';
import { pacedRunner, RealRunner, type PacedRunner, type Runner } from '../init/runner.js';
import { methodName, runFenceMethod } from '../fence/fencer.js';
import { AlertRunner, type AlertStats } from './alert-runner.js';
import type { MonitorEffect, TimerName } from './events.js';
import { spawnAllowed } from './logic.js';
import { guardedRunner, Machine } from './machine.js';
import type { Observer } from './observe.js';
import { releasePidLock, takePidLock } from './pidlock.js';
import { holdsResources, STOP, TEST } from './decide.js';
import { initialState, timingsOf, type MonitorSettings } from './state.js';
import { runRecordedStops, Watchdog } from './watchdog.js';

/**
 * Run at `nice` (below the default 0: before the groups' work) when allowed; the watchdog, started
 * later, inherits it. A priority we may not take (not root) leaves things as they are.
 */
function raisePriority(nice: number, log: Logger): void {
  if (nice >= getPriority()) return;
  try {
    setPriority(nice);
    log.info({ nice }, 'monitor priority raised');
  } catch (e) {
    log.info({ nice, err: String(e) }, 'monitor priority left as it is (raising it needs root)');
  }
}

/** How long process events are gathered before the monitor sees them (see onChange). */
const ENGINE_FLUSH_MS = 10;

/** How long an exiting monitor waits for alerts still queued or running (a leave's group_stopped). */
const ALERT_DRAIN_MS = 2000;

export class MonitorDaemon {
  private readonly store: FsStore;
  private readonly record: PgidRecord;
  private readonly stops: StopRecord;
  /** Every command's environment, also the watchdog's stop entries'. */
  private readonly env: NodeJS.ProcessEnv;
  private readonly engine: Engine;
  private readonly spawns: PacedRunner;
  private readonly watchdog: Watchdog;
  private readonly machine: Machine;
  private readonly alerts: AlertRunner;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly lock: string;
  private refusedSpawn = false;
  /** Groups whose stop entries the stop record holds. */
  private recordedStops = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private changedSoon = false;
  private exited: ((code: number) => void) | null = null;
  private readonly signals: Array<[NodeJS.Signals, () => void]> = [];
  /** The metrics and status page listener (metrics.listen), or null. */
  readonly observer: Observer | null;

  constructor(
    private readonly settings: MonitorSettings,
    private readonly log: Logger,
    runner?: Runner,
    /** The gid of settings.sharedGroup (resolved by runMonitor). */
    gid?: number,
    /** observe.js's Observer, loaded only with metrics configured (prom-client and http: 13 MB of RSS). */
    ObserverClass?: typeof Observer,
  ) {
    this.store = new FsStore(settings.root, settings.node, gid);
    this.record = new PgidRecord(join(settings.stateDir, `${settings.node}.pgids`));
    this.stops = new StopRecord(join(settings.stateDir, `${settings.node}.stops`));
    // Commands learn where they run however the node was named (flag, file, env, hostname).
    this.env = { ...process.env, PEERHA_NODE: settings.node, PEERHA_ROOT: settings.root };
    this.lock = join(settings.stateDir, `${settings.node}.pid`);
    const offset = settings.clockOffsetMs ?? 0;
    const observer = settings.metrics && ObserverClass ? new ObserverClass(settings.metrics.listen, { state: () => this.machine.state, now: () => performance.now(), groupCounts: () => this.engine.counts(), alerts: () => this.alerts.stats() }, log) : null;
    this.observer = observer;
    this.machine = new Machine(initialState(settings, process.pid, randomInt(2 ** 32)), { now: () => performance.now(), wall: () => Date.now() + offset }, (e) => this.perform(e), undefined, (ev, st) => {
      observer?.stepped(ev, st);
      // Spawns held while a cycle ran go as soon as it ends (a takeover's test and start wait on it).
      if (st.cycle === null) this.spawns.resume();
    });
    this.alerts = new AlertRunner(log, this.env, settings.node, () => this.machine.state.settings.alerts ?? []);
    this.watchdog = new Watchdog(this.record.path, this.stops.path, this.env, (code, signal) => this.machine.dispatch({ type: 'watchdog-exited', code, signal }));
    // Saved at once, in the same call as the fork: a monitor frozen right after a spawn must not
    // leave a running process its watchdog does not know of.
    const saveRecord = (live: ReadonlyMap<number, string>): void => {
      try {
        this.record.save(live);
      } catch (e) {
        log.error({ err: String(e) }, 'cannot write the process-group record');
      }
    };
    const allowed = (): boolean => {
      const ok = spawnAllowed(this.machine.state, performance.now());
      if (ok) this.refusedSpawn = false;
      return ok;
    };
    const refused = (command: string): void => {
      if (!this.refusedSpawn) log.warn({ command }, 'not starting processes: this node is self-fencing');
      this.refusedSpawn = true;
    };
    // Spawns wait while a cycle is under way: its heartbeat must not queue behind forks.
    this.spawns = pacedRunner(guardedRunner(runner ?? new RealRunner({ onGroupsChanged: saveRecord, mayRun: () => spawnAllowed(this.machine.state, performance.now()) }), allowed, refused, setImmediate), 4, 12, () => this.machine.state.cycle !== null);
    this.engine = new Engine({
      runner: this.spawns,
      logger: log,
      timings: timingsOf(settings),
      onChange: (settledAt) => {
        // Inside a step (a tell) the machine takes the change at once, so that the clstat the
        // cycle publishes shows what it told. Process events are gathered for up to
        // ENGINE_FLUSH_MS: a thousand groups starting cost a few status snapshots and record
        // updates, not a thousand (nothing waits on them for safety: the cycle decides). A
        // finished test goes at once: the group's start waits on it (a takeover).
        if (this.machine.busy) this.machine.engineChanged(() => this.groups());
        else this.changedSoon = true;
        const testDone = settledAt.includes(TEST);
        if (this.flushTimer && !testDone) return;
        clearTimeout(this.flushTimer ?? undefined);
        this.flushTimer = setTimeout(() => {
          this.flushTimer = null;
          const groups = this.groups();
          this.saveStops([], false, groups);
          if (!this.changedSoon) return;
          this.changedSoon = false;
          this.machine.engineChanged(() => groups);
        }, testDone ? 0 : ENGINE_FLUSH_MS);
      },
      env: this.env,
      stopLevel: (group) => this.stopLevelOf(group),
      stopTimeoutMs: settings.stopTimeoutMs,
    });
  }

  /**
   * Take the pid lock and bind the metrics listener, then run until the monitor leaves (exit code
   * 0) or refuses to start (1).
   */
  async run(reload?: () => MonitorSettings | null): Promise<number> {
    // The local records (pid lock, process groups, stop entries) are written with the sync fs API
    // and must outlive a lost mount: on the shared directory they would do neither. Judged by the
    // paths alone, so that nothing here touches the shared directory.
    const within = relative(resolve(this.settings.root), resolve(this.settings.stateDir));
    if (within === '' || (within !== '..' && !within.startsWith(`..${sep}`) && !isAbsolute(within))) {
      process.stderr.write(`peerha monitor: state_dir ${this.settings.stateDir} is inside the shared directory ${this.settings.root}: it holds this node's local records (pid lock, process groups, stop entries), which must stay on local disk; set state_dir to a local path such as /run/peerha\n`);
      return 1;
    }
    mkdirSync(this.settings.stateDir, { recursive: true });
    warnIfOnDisk(this.settings.stateDir, this.log);
    if (!takePidLock(this.lock)) {
      process.stderr.write(`peerha monitor: another monitor for node ${this.settings.node} runs on this machine (${this.lock})\n`);
      return 1;
    }
    if (this.observer) {
      try {
        this.log.info({ listen: await this.observer.listen() }, 'metrics and status page listening');
      } catch (e) {
        process.stderr.write(`peerha monitor: ${(e as Error).message}\n`);
        releasePidLock(this.lock);
        return 1;
      }
    }
    raisePriority(this.settings.nice, this.log);
    return new Promise<number>((resolve) => {
      this.exited = resolve;
      const on = (sig: NodeJS.Signals, fn: () => void): void => {
        process.on(sig, fn);
        this.signals.push([sig, fn]);
      };
      on('SIGTERM', () => this.machine.dispatch({ type: 'signal', signal: 'SIGTERM' }));
      on('SIGINT', () => this.machine.dispatch({ type: 'signal', signal: 'SIGINT' }));
      on('SIGHUP', () => {
        const next = reload?.();
        if (next) this.machine.dispatch({ type: 'reload', settings: next });
      });
      this.machine.dispatch({ type: 'start' });
    });
  }

  /** Alert runs so far (for metrics): sent, failed, timed out, dropped, queued, running. */
  alertStats(): AlertStats {
    return this.alerts.stats();
  }

  /** Alerts dropped because the queue was full (or the monitor exited first). */
  alertQueueDropped(): number {
    return this.alerts.stats().dropped;
  }

  private perform(e: MonitorEffect): void {
    const dispatch = this.machine.dispatch.bind(this.machine);
    switch (e.type) {
      case 'io':
        return this.store.perform(e.ops, (results, error) => dispatch({ type: 'io', tag: e.tag, results, ...(error ? { error } : {}) }));
      case 'recordStops':
        return this.saveStops(e.groups);
      case 'tell': {
        // Its stop entries are on disk before anything of it can start.
        if (holdsResources({ level: e.level, state: 'STARTING' }) && !this.recordedStops.has(e.group)) this.saveStops([e.group]);
        // The monitor says `stop`; the group releases its resources at its configured stop level.
        const r = this.engine.tell(e.group, e.level === STOP ? this.stopLevelOf(e.group) : e.level);
        return dispatch({ type: 'told', group: e.group, level: e.level, reason: e.reason, ok: r.ok, message: r.message, ...(e.cycle !== undefined ? { cycle: e.cycle } : {}) });
      }
      case 'configure':
        this.engine.setConfig(e.cltab, { reconcile: true });
        return this.saveStops([], true);
      case 'haltGroups':
        return void this.engine.haltAll(() => dispatch({ type: 'halted' }));
      case 'timer': {
        clearTimeout(this.timers.get(e.name));
        const fire = (): void => {
          this.timers.delete(e.name);
          dispatch({ type: 'timer', name: e.name });
        };
        this.timers.set(e.name, setTimeout(fire, Math.max(0, e.at - performance.now())));
        return;
      }
      case 'cancelTimer':
        clearTimeout(this.timers.get(e.name));
        this.timers.delete(e.name);
        return;
      case 'watchdog':
        if (e.action === 'start') this.watchdog.start(e.limitMs);
        else if (e.action === 'pet') {
          this.watchdog.pet(e.ageMs ?? 0);
          // Petted again: the stop entries refused meanwhile run now.
          if (this.engine.hasHeld() && spawnAllowed(this.machine.state, performance.now())) this.engine.retryHeld();
        } else if (e.action === 'leave') this.watchdog.stop(() => dispatch({ type: 'watchdog-gone' }));
        else this.watchdog.stop();
        return;
      case 'killGroups':
        return this.killRecordedGroups();
      case 'cleanLeftovers':
        return void this.cleanLeftovers().then(() => dispatch({ type: 'cleaned' }));
      case 'fence':
        return void runFenceMethod(e.method, e.node, e).then(
          (outcome) => dispatch({ type: 'fenced', node: e.node, incident: e.incident, outcome }),
          (err: unknown) => dispatch({ type: 'fenced', node: e.node, incident: e.incident, outcome: { method: methodName(e.method), action: e.action, result: 'failure', durationMs: 0, detail: String(err) } }),
        );
      case 'alert':
        return this.alerts.push(e.alert);
      case 'log':
        return this.log[e.level](e.fields, e.msg);
      case 'ready':
        return this.notifyReady(e.status);
      case 'exit':
        return this.exit(e.code, e.message);
    }
  }

  /** SIGKILL every process group the engine recorded (what the watchdog does when it fires). */
  private killRecordedGroups(): void {
    const pgids = this.record.leftovers();
    for (const pgid of pgids) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (pgids.length > 0) this.log.warn({ pgids }, 'self-fence: killed local group processes');
  }

  /**
   * Record the stop entries of every group here that may hold resources (plus `starting`). While
   * spawning is refused (the watchdog may be fencing) a group stays recorded, so that the watchdog
   * runs its stop entries (a refused one is held, its group unfinished, until it can run here).
   * The same groups are not rewritten unless the entries may have changed.
   */
  private saveStops(starting: readonly string[] = [], entriesChanged = false, status: readonly GroupStatus[] = this.groups()): void {
    const groups = new Set(status.filter((g) => g.level !== null && holdsResources({ level: g.level, state: g.state })).map((g) => g.group));
    for (const g of starting) groups.add(g);
    if (!spawnAllowed(this.machine.state, performance.now())) for (const g of this.recordedStops) groups.add(g);
    if (!entriesChanged && groups.size === this.recordedStops.size && [...groups].every((g) => this.recordedStops.has(g))) return;
    this.recordedStops = groups;
    const text = stopRecordText(this.settings.stopTimeoutMs, [...groups].sort().map((group) => {
      const level = this.stopLevelOf(group);
      return { group, level, entries: this.engine.entriesAt(group, level) };
    }));
    try {
      this.stops.save(text);
    } catch (e) {
      this.log.error({ err: String(e) }, 'cannot write the stop-entry record');
    }
  }

  private stopLevelOf(group: string): string {
    return stopLevelOf(this.settings.stopLevel, group);
  }

  /** The engine's groups as the monitor speaks of them: a group at its stop level is at `stop`. */
  private groups(): GroupStatus[] {
    return this.engine.status().map((g) => (g.level !== null && g.level !== STOP && g.level === this.stopLevelOf(g.group) ? { ...g, level: STOP } : g));
  }

  /** What a previous run left: kill its process groups, then run the stop entries it recorded. */
  private async cleanLeftovers(): Promise<void> {
    const leftovers = this.record.leftovers();
    if (leftovers.length > 0) {
      this.log.warn({ pgids: leftovers }, 'stopping process groups left behind by a previous run');
      const survivors = await killGroups(leftovers, 1000);
      if (survivors.length) this.log.error({ pgids: survivors }, 'process groups of a previous run survive SIGKILL');
    }
    if (existsSync(this.stops.path)) await runRecordedStops(this.stops.path, this.env);
    this.record.remove();
    this.stops.remove();
  }

  /** Under systemd (Type=notify, NotifyAccess=all): ready once the first cycle published. */
  private notifyReady(status: string): void {
    if (!process.env.NOTIFY_SOCKET) return;
    const child = spawn('systemd-notify', ['--ready', `--status=${status}`, `--pid=${process.pid}`], { stdio: 'ignore' });
    child.on('error', (err) => this.log.warn({ err: String(err) }, 'systemd-notify failed; is systemd installed?'));
  }

  private exit(code: number, message?: string): void {
    if (message) process.stderr.write(`peerha monitor: ${message}\n`);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const [sig, fn] of this.signals) process.off(sig, fn);
    this.observer?.close();
    this.record.remove();
    this.stops.remove();
    releasePidLock(this.lock);
    const exited = this.exited;
    this.exited = null;
    void this.alerts.drain(ALERT_DRAIN_MS).then(() => exited?.(code));
  }
}

export async function runMonitor(settings: MonitorSettings, log: Logger, reload?: () => MonitorSettings | null): Promise<number> {
  let gid: number | undefined;
  if (settings.sharedGroup !== undefined) {
    const id = await groupId(settings.sharedGroup);
    if (id === null) {
      log.error({ sharedGroup: settings.sharedGroup }, 'shared_group: no such group (expected a name from /etc/group or a gid)');
      return 2;
    }
    gid = id;
  }
  const ObserverClass = settings.metrics ? (await import('./observe.js')).Observer : undefined;
  return new MonitorDaemon(settings, log, undefined, gid, ObserverClass).run(reload);
}

/** Filesystems that live in memory (statfs f_type): tmpfs, ramfs. */
export const MEMORY_FS: ReadonlySet<number> = new Set([0x01021994, 0x858458f6]);

/**
 * The process-group record in state_dir is rewritten (tmp + rename, synchronously) at every
 * process start and exit. On a disk filesystem such a rename can wait on writeback: on ext4 it
 * took 1.7 s of a 15 s, 1,000-group cold start and froze cycles; on a tmpfs (/run on a systemd
 * machine) it never waits. Said once at start, so an operator knows where to put it.
 */
function warnIfOnDisk(dir: string, log: Logger): void {
  let type: number;
  try {
    type = statfsSync(dir).type;
  } catch {
    return;
  }
  if (!MEMORY_FS.has(type)) log.warn({ stateDir: dir, fsType: `0x${type.toString(16)}` }, 'state_dir is not on a tmpfs: its process-group record is rewritten at every process start and exit, and on a disk that write can hold up the monitor (many groups: cycles past timeout/2); put state_dir on a tmpfs such as /run');
}
