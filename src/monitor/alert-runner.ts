// The edge that runs alert commands (step() only raises `alert` effects). A bounded queue per
// configured command, one run at a time per command (so a command sees its alerts in sequence
// order), each run killed with its process group at its timeout. Nothing here is awaited by a
// cycle: a full queue drops the alert (counted), a failure is logged.

import { spawn, type ChildProcess } from 'node:child_process';
import type { AlertCommand } from '../config/alerts.js';
import type { Logger } from '../io/log.js';
import type { Alert } from './alerts.js';

/** Alerts waiting across all commands; beyond it new ones are dropped. */
export const ALERT_QUEUE_CAPACITY = 256;

export interface AlertStats {
  /** Runs that exited 0. */
  readonly sent: number;
  /** Runs that exited non-zero, by a signal, or could not start. */
  readonly failed: number;
  /** Runs killed at their timeout. */
  readonly timedOut: number;
  /** Alerts dropped because the queue was full (or the monitor exited before running them). */
  readonly dropped: number;
  readonly queued: number;
  readonly running: number;
}

interface Lane {
  readonly command: AlertCommand;
  readonly queue: Alert[];
  running: ChildProcess | null;
}

/** The environment of one run: the event's PEERHA_* variables over the monitor's. */
export function alertEnv(base: NodeJS.ProcessEnv, a: Alert, emitter: string): NodeJS.ProcessEnv {
  return {
    ...base,
    PEERHA_EMITTER: emitter,
    PEERHA_EVENT: a.event,
    PEERHA_NODE: a.node,
    PEERHA_GROUP: a.group,
    PEERHA_LEVEL: a.level,
    PEERHA_FROM_NODE: a.fromNode,
    PEERHA_DESC: a.desc,
    PEERHA_SEQUENCE: String(a.sequence),
    PEERHA_TIME: a.time,
  };
}

export class AlertRunner {
  private readonly lanes = new Map<string, Lane>();
  private counts = { sent: 0, failed: 0, timedOut: 0, dropped: 0 };
  private queued = 0;
  private idle: (() => void) | null = null;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv,
    /** This node: the sequences are its. */
    private readonly emitter: string,
    /** The commands now (a reload may change them). */
    private readonly commands: () => readonly AlertCommand[],
    private readonly capacity = ALERT_QUEUE_CAPACITY,
  ) {}

  push(alert: Alert): void {
    for (const c of this.commands()) {
      if (c.events && !c.events.includes(alert.event)) continue;
      if (this.queued >= this.capacity) {
        this.counts.dropped++;
        // One line per burst, not one per alert.
        if (this.counts.dropped % 100 === 1) this.log.warn({ event: alert.event, sequence: alert.sequence, dropped: this.counts.dropped, capacity: this.capacity }, 'alert queue full: alert dropped');
        continue;
      }
      const key = `${c.timeoutMs} ${c.command}`;
      let lane = this.lanes.get(key);
      if (!lane) this.lanes.set(key, (lane = { command: c, queue: [], running: null }));
      lane.queue.push(alert);
      this.queued++;
      // Started after the current step: a fork never lands inside a cycle's turn.
      if (!lane.running) setImmediate(() => this.next(lane));
    }
  }

  stats(): AlertStats {
    let running = 0;
    for (const l of this.lanes.values()) if (l.running) running++;
    return { ...this.counts, queued: this.queued, running };
  }

  /**
   * The monitor exits: wait up to `ms` for what is queued and running, then kill what still runs
   * and count what never ran as dropped.
   */
  async drain(ms: number): Promise<void> {
    if (this.busy()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.idle = null;
    for (const l of this.lanes.values()) {
      if (l.running?.pid) killGroup(l.running.pid);
      this.counts.dropped += l.queue.length;
      this.queued -= l.queue.length;
      if (l.queue.length) this.log.warn({ command: l.command.command, dropped: l.queue.length }, 'monitor exiting: queued alerts not run');
      l.queue.length = 0;
    }
  }

  private busy(): boolean {
    return this.queued > 0 || [...this.lanes.values()].some((l) => l.running);
  }

  private next(lane: Lane): void {
    if (lane.running) return;
    const alert = lane.queue.shift();
    if (!alert) {
      if (this.idle && !this.busy()) this.idle();
      return;
    }
    this.queued--;
    const { command, timeoutMs } = lane.command;
    const fields = { event: alert.event, sequence: alert.sequence, node: alert.node, ...(alert.group ? { group: alert.group } : {}), command };
    const started = performance.now();
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: alertEnv(this.env, alert, this.emitter) });
    } catch (e) {
      this.counts.failed++;
      this.log.warn({ ...fields, err: String(e) }, 'alert command could not start');
      return this.next(lane);
    }
    lane.running = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      if (stderr.length < 1000) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) killGroup(child.pid);
    }, timeoutMs);
    let done = false;
    const finish = (code: number | null, signal: string | null, err?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // A background grandchild may hold stderr open: do not wait for it.
      child.stderr?.destroy();
      lane.running = null;
      const ms = Math.round(performance.now() - started);
      if (timedOut) {
        this.counts.timedOut++;
        this.log.warn({ ...fields, timeoutMs, ms }, 'alert command timed out: killed its process group');
      } else if (code === 0) {
        this.counts.sent++;
        this.log.debug({ ...fields, ms }, 'alert sent');
      } else {
        this.counts.failed++;
        this.log.warn({ ...fields, code, signal, ms, ...(err ? { err } : {}), ...(stderr.trim() ? { stderr: stderr.trim().slice(0, 500) } : {}) }, 'alert command failed');
      }
      this.next(lane);
    };
    child.on('error', (e) => finish(null, null, String(e)));
    child.on('exit', (code, signal) => finish(code, signal));
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
