// One call of step(): a working copy of the state (only its top-level fields are reassigned; every
// nested value is replaced, never changed in place) and the effects requested so far.

import type { StoreOp } from '../cluster/store.js';
import type { IoTag, LogLevel, MonitorEffect, MonitorEvent, TimerName } from './events.js';
import type { Logic } from './logic.js';
import { nextRandom, type MonitorState } from './state.js';

export type Draft = { -readonly [K in keyof MonitorState]: MonitorState[K] };

export class Turn {
  readonly effects: MonitorEffect[] = [];
  readonly state: Draft;

  constructor(
    state: MonitorState,
    readonly event: MonitorEvent,
    readonly logic: Logic,
  ) {
    this.state = { ...state };
  }

  get now(): number {
    return this.event.now;
  }

  get wallIso(): string {
    return new Date(this.event.wall).toISOString();
  }

  get me(): string {
    return this.state.settings.node;
  }

  /** This node's file, relative to DIR. */
  own(file: string): string {
    return `nodes/${this.me}/${file}`;
  }

  /** The next draw of the state's random source. */
  readonly random = (): number => {
    const [value, next] = nextRandom(this.state.rng);
    this.state.rng = next;
    return value;
  };

  emit(effect: MonitorEffect): void {
    this.effects.push(effect);
  }

  log(level: LogLevel, msg: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.emit({ type: 'log', level, fields, msg });
  }

  io(tag: IoTag, ops: readonly StoreOp[]): void {
    this.emit({ type: 'io', tag, ops });
  }

  timer(name: TimerName, at: number): void {
    this.emit({ type: 'timer', name, at });
  }
}
