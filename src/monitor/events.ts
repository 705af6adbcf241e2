// What goes into the monitor's step() and what comes out of it. Events are facts (a timer fired,
// reads completed, the engine changed, a fence agent answered, a signal came); effects are
// requests the driver carries out and answers with an event. Nothing here does anything.

import type { Cltab } from '../config/cltab.js';
import type { FenceMethod } from '../config/monitor.js';
import type { MethodOutcome } from '../fence/fencer.js';
import type { StoreOp, StoreResult } from '../cluster/store.js';
import type { GroupStatus } from '../init/engine.js';
import type { Alert } from './alerts.js';
import type { MonitorSettings } from './state.js';

/** Which batch of store operations an `io` event answers. */
export type IoTag =
  | { readonly kind: 'startup'; readonly stage: 'mkdir' | 'dup-first' | 'dup-again' | 'halt' }
  | { readonly kind: 'cycle'; readonly id: number; readonly stage: 'scan' | 'peers' | 'copies' | 'claiming' }
  /** Older claims of a group this node just claimed: removed, nobody waits for it. */
  | { readonly kind: 'claims-gc' }
  /** A listing of DIR/beats between cycles: when peers' heartbeats moved, to the poll's precision. */
  | { readonly kind: 'beat-poll' }
  | { readonly kind: 'clstat' }
  | { readonly kind: 'hastat' }
  | { readonly kind: 'replica'; readonly file: 'cltab' | 'hactl'; readonly from: string }
  | { readonly kind: 'fence-log'; readonly stage: 'read' | 'write' }
  | { readonly kind: 'confirm'; readonly node: string; readonly incident: string; readonly polling: boolean };

/** Timers are named; setting one replaces the pending one of that name. */
export type TimerName = 'cycle' | 'beat-poll' | 'dup-check' | 'own-read' | 'halt-poll' | 'leave-cap' | `fence:${string}` | `confirm:${string}`;

/** A fence agent's or command's answer (the manual method is decided inside step). */
export type FenceOutcome = MethodOutcome;

export type EventBody =
  /** The driver is ready (pid lock taken): begin the start-up checks. */
  | { readonly type: 'start' }
  | { readonly type: 'timer'; readonly name: TimerName }
  /** A batch of store operations completed (results in order), or failed as a whole. */
  | { readonly type: 'io'; readonly tag: IoTag; readonly results: readonly StoreResult[] | null; readonly error?: string }
  /** The group engine changed (a tell, a process exit, a timer): its groups now. */
  | { readonly type: 'engine'; readonly groups: readonly GroupStatus[] }
  /** The engine's answer to a tell. */
  | { readonly type: 'told'; readonly group: string; readonly level: string; readonly reason: string; readonly ok: boolean; readonly message: string; readonly cycle?: number }
  /** Every group process is gone after `haltGroups`. */
  | { readonly type: 'halted' }
  /** What a previous run left behind was killed (`cleanLeftovers`). */
  | { readonly type: 'cleaned' }
  | { readonly type: 'fenced'; readonly node: string; readonly incident: string; readonly outcome: FenceOutcome }
  | { readonly type: 'signal'; readonly signal: 'SIGTERM' | 'SIGINT' }
  | { readonly type: 'reload'; readonly settings: MonitorSettings }
  | { readonly type: 'watchdog-exited'; readonly code: number | null; readonly signal: string | null }
  /** The watchdog let go after `watchdog leave`, once the stop entries it was running finished. */
  | { readonly type: 'watchdog-gone' }
  /** step() threw on an event, or an effect could not be carried out: retry a cycle later. */
  | { readonly type: 'failed'; readonly error: string };

/** Every event carries the driver's clocks when it is handled: monotonic ms and wall-clock ms. */
export type MonitorEvent = EventBody & { readonly now: number; readonly wall: number };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type MonitorEffect =
  | { readonly type: 'io'; readonly tag: IoTag; readonly ops: readonly StoreOp[] }
  /**
   * These groups are about to be told a level that may acquire resources: record their stop
   * entries (once, however many) before any of them starts.
   */
  | { readonly type: 'recordStops'; readonly groups: readonly string[] }
  /** `cycle`: told by that cycle's decision, which waits for the answer (echoed in `told`). */
  | { readonly type: 'tell'; readonly group: string; readonly level: string; readonly reason: string; readonly cycle?: number }
  /** Give the engine a (valid) cltab. */
  | { readonly type: 'configure'; readonly cltab: Cltab }
  /** Stop every group; answered by `halted`. */
  | { readonly type: 'haltGroups' }
  /** Fire `name` at monotonic time `at` (replacing a pending one). */
  | { readonly type: 'timer'; readonly name: TimerName; readonly at: number }
  | { readonly type: 'cancelTimer'; readonly name: TimerName }
  /**
   * The self-fence sidecar: start it (limit = timeout/2), pet it, or let it go (`stop`; `leave`:
   * and answer `watchdog-gone` once it is gone, after any stop entries it runs have finished).
   * A pet carries how long ago the last clstat went out: the watchdog counts from then.
   */
  | { readonly type: 'watchdog'; readonly action: 'start' | 'pet' | 'stop' | 'leave'; readonly limitMs: number; readonly ageMs?: number }
  /** SIGKILL every recorded process group now, as the watchdog would. */
  | { readonly type: 'killGroups' }
  /** Kill what a previous run of this node left behind; answered by `cleaned`. */
  | { readonly type: 'cleanLeftovers' }
  /** Run one fence agent or command method against `node`; answered by `fenced`. */
  | { readonly type: 'fence'; readonly node: string; readonly incident: string; readonly method: Exclude<FenceMethod, { kind: 'manual' }>; readonly action: 'off' | 'reboot'; readonly timeoutMs: number }
  /** Run the configured alert commands for this event (queued; never waited for, never answered). */
  | { readonly type: 'alert'; readonly alert: Alert }
  | { readonly type: 'log'; readonly level: LogLevel; readonly fields: Readonly<Record<string, unknown>>; readonly msg: string }
  /** Tell the service manager the monitor is up (systemd Type=notify). */
  | { readonly type: 'ready'; readonly status: string }
  /** The monitor is done: release local state (pid lock, process record) and exit with `code`. */
  | { readonly type: 'exit'; readonly code: number; readonly reason: 'left' | 'halt' | 'refused'; readonly message?: string };
