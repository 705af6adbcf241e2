// The event pump both drivers share: events are handled one at a time, in order, each stamped
// with the driver's clocks when its turn comes; the effects step() returns are handed to the
// driver, which answers some of them with further events (queued, never re-entrant).

import type { GroupStatus } from '../init/engine.js';
import type { ProcessHandle, Runner } from '../init/runner.js';
import type { EventBody, MonitorEffect, MonitorEvent } from './events.js';
import type { Logic } from './logic.js';
import type { MonitorState } from './state.js';
import { step } from './step.js';

export interface MachineClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds (timestamps only). */
  wall(): number;
}

export class Machine {
  private readonly queue: Array<() => EventBody> = [];
  private draining = false;
  private engineQueued = false;

  constructor(
    public state: MonitorState,
    private readonly clock: MachineClock,
    private readonly perform: (effect: MonitorEffect) => void,
    private readonly logic?: Logic,
    /** Called after every step (the simulator checks invariants here). */
    private readonly observe?: (event: MonitorEvent, state: MonitorState) => void,
  ) {}

  /** A step or its effects are being carried out now (an effect's callbacks run inside it). */
  get busy(): boolean {
    return this.draining;
  }

  dispatch(event: EventBody): void {
    this.queue.push(() => event);
    this.drain();
  }

  /** The engine changed: one queued event carries its groups as they are when that event is handled. */
  engineChanged(groups: () => readonly GroupStatus[]): void {
    if (this.engineQueued) return;
    this.engineQueued = true;
    this.queue.push(() => {
      this.engineQueued = false;
      return { type: 'engine', groups: groups() };
    });
    this.drain();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        const body = next();
        const event = { ...body, now: this.clock.now(), wall: this.clock.wall() } as MonitorEvent;
        let effects: readonly MonitorEffect[];
        try {
          const r = step(this.state, event, this.logic);
          this.state = r.state;
          effects = r.effects;
        } catch (e) {
          // A bug in step on this event: the state stays as it was; the cycle is retried later.
          if (body.type === 'failed') throw e;
          this.queue.unshift(() => ({ type: 'failed', error: `step failed on ${body.type}: ${String(e)}` }));
          continue;
        }
        this.observe?.(event, this.state);
        for (const effect of effects) {
          try {
            this.perform(effect);
          } catch (e) {
            this.queue.push(() => ({ type: 'failed', error: `cannot ${effect.type}: ${String(e)}` }));
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }
}

/**
 * A Runner that refuses to start anything while `allowed()` says no (the node may be self-fencing):
 * the refused command is reported refused (a stop entry then waits to run), or else "exits" 126
 * at once, as a command that cannot be executed would.
 */
export function guardedRunner(inner: Runner, allowed: () => boolean, refused: (command: string) => void, soon: (fn: () => void) => void): Runner {
  return {
    spawn: (req, cb): ProcessHandle => {
      if (allowed()) return inner.spawn(req, cb);
      refused(req.command);
      soon(() => {
        if (cb.onRefused) return cb.onRefused();
        cb.onExit(126, null);
        cb.onGone();
      });
      return { pgid: 0, signal: () => undefined, sweep: () => undefined };
    },
  };
}
