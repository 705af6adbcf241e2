// Heartbeats by name: `DIR/beats/<node>@<seq>@<gen>@<copies>@<inc>@<stamp>`, an empty file each
// node renames to its next name every cycle, right after its clstat went out. One listing of DIR/beats shows every
// node's heartbeat, so a monitor reads a peer's clstat only when its gen (the seq of the first
// clstat with that body) changed, and stats a peer's replica copies only when `copies` (the seq of
// its last copy write) changed: O(changes) file operations per cycle instead of O(nodes).
// Node names never contain '@', so a beat can never be mistaken for anything else.
//
// `<stamp>` is the writer's monotonic clock (µs) read right before the rename, `<inc>` its
// monitor's incarnation. A reader dates a beat from them (dateBeat) instead of from the poll that
// first saw it: the writer counts its own liveness from the stamp, so a beat dated no earlier than
// its stamp is safe, and a poll's lag (up to a third of a cycle) no longer delays every takeover.
// Names without the two fields (an older monitor) are still read, dated by the poll as before.

import { validNodeName } from '../config/names.js';

export const BEATS_DIR = 'beats';

export interface Beat {
  readonly node: string;
  readonly seq: number;
  readonly gen: number;
  readonly copies: number;
  /** The writer's monitor incarnation and monotonic clock (ms) at the rename; absent from older monitors' beats. */
  readonly inc?: string;
  readonly stamp?: number;
  /** The file name inside DIR/beats. */
  readonly name: string;
}

/** A beat's name up to its stamp, which the store appends right before the rename (stampedBeat). */
export function beatName(node: string, seq: number, gen: number, copies: number, inc: string): string {
  return `${node}@${seq}@${gen}@${copies}@${inc}`;
}

/** The full name: `unstamped` (beatName) and the writer's monotonic clock now, in whole µs (never later than now). */
export function stampedBeat(unstamped: string, nowMs: number): string {
  return `${unstamped}@${Math.max(0, Math.floor(nowMs * 1000))}`;
}

const NUMBER = '(0|[1-9][0-9]{0,14})';
const BEAT = new RegExp(`^([^@/]+)@${NUMBER}@${NUMBER}@${NUMBER}(?:@([0-9a-z]{1,16})@${NUMBER})?$`);

/**
 * Names parsed lately: every listing shows each peer's beat again, and a cycle parses a name up to
 * three times (the store's filter, latestBeats, ownOutdatedBeats); at 64 peers that took 19 % of
 * an idle monitor's CPU under --jitless. Parsing is pure and a Beat immutable: a cached one will do.
 */
const parsedBeats = new Map<string, Beat | null>();
const PARSED_BEATS_MAX = 4096;

/** A beat file name, or null for anything else (temp files, strays, foreign names). */
export function parseBeatName(name: string): Beat | null {
  const known = parsedBeats.get(name);
  if (known !== undefined) return known;
  const beat = parseBeatNameOnce(name);
  if (parsedBeats.size >= PARSED_BEATS_MAX) parsedBeats.clear();
  parsedBeats.set(name, beat);
  return beat;
}

function parseBeatNameOnce(name: string): Beat | null {
  const m = BEAT.exec(name);
  if (!m || !validNodeName(m[1]!)) return null;
  const [, node, seq, gen, copies, inc, stamp] = m;
  // One literal each (an object spread is several times slower without the JIT).
  if (inc === undefined || stamp === undefined) return { node: node!, seq: Number(seq), gen: Number(gen), copies: Number(copies), name };
  return { node: node!, seq: Number(seq), gen: Number(gen), copies: Number(copies), inc, stamp: Number(stamp) / 1000, name };
}

/**
 * What a peer's stamps say about our clock: the incarnation they come from, and the earliest
 * `seen − stamp × (1 + drift)` of its beats (seen on our clock), from the beat stamped `from`.
 * It changes only when a beat improves on it (no new object per beat).
 */
export interface BeatClock {
  readonly inc: string;
  readonly from: number;
  readonly intercept: number;
}

/**
 * When (our monotonic ms) a peer made `beat`, first seen at `seenAt`: never later than seenAt, and
 * never earlier than its stamp on our clock. Every beat i was seen after it was stamped, so its
 * stamp s_i was at most seen_i on our clock; a stamp s taken later on the same clock came at most
 * (s − s_i) × (1 + drift) after that (drift: the largest rate difference of two nodes' monotonic
 * clocks), so at most min_i(seen_i + (s − s_i)(1 + drift)), for s ≥ s_i. A new incarnation, a
 * stamp before the one the bound was learnt from, or a beat without one starts over from seenAt.
 */
export function dateBeat(clock: BeatClock | undefined, beat: Beat, seenAt: number, drift: number): { at: number; clock: BeatClock | undefined } {
  if (beat.stamp === undefined || beat.inc === undefined) return { at: seenAt, clock: undefined };
  const slope = 1 + drift;
  const own = seenAt - beat.stamp * slope;
  // The bound holds forward only: for a stamp taken after the one it was learnt from.
  if (!clock || clock.inc !== beat.inc || beat.stamp < clock.from) return { at: seenAt, clock: { inc: beat.inc, from: beat.stamp, intercept: own } };
  return { at: Math.min(seenAt, clock.intercept + beat.stamp * slope), clock: own < clock.intercept ? { inc: beat.inc, from: beat.stamp, intercept: own } : clock };
}

/** Each node's newest beat (highest seq) in a listing, and the names it outdates. */
export function latestBeats(names: readonly string[]): { latest: Map<string, Beat>; outdated: Beat[] } {
  const latest = new Map<string, Beat>();
  const outdated: Beat[] = [];
  for (const name of names) {
    const b = parseBeatName(name);
    if (!b) continue;
    const prev = latest.get(b.node);
    if (!prev || b.seq > prev.seq) {
      if (prev) outdated.push(prev);
      latest.set(b.node, b);
    } else outdated.push(b);
  }
  return { latest, outdated };
}

/** `beats/<name>` for one of `me`'s beats, and nothing else. */
export function isOwnBeatPath(rel: string, me: string): boolean {
  if (!rel.startsWith(`${BEATS_DIR}/`)) return false;
  const b = parseBeatName(rel.slice(BEATS_DIR.length + 1));
  return b !== null && b.node === me;
}
