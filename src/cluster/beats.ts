// Heartbeats by name: `DIR/beats/<node>@<seq>@<gen>@<copies>`, an empty file each node renames to
// its next name every cycle, right after its clstat went out. One listing of DIR/beats shows every
// node's heartbeat, so a monitor reads a peer's clstat only when its gen (the seq of the first
// clstat with that body) changed, and stats a peer's replica copies only when `copies` (the seq of
// its last copy write) changed: O(changes) file operations per cycle instead of O(nodes).
// Node names never contain '@', so a beat can never be mistaken for anything else.

import { validNodeName } from '../config/names.js';

export const BEATS_DIR = 'beats';

export interface Beat {
  readonly node: string;
  readonly seq: number;
  readonly gen: number;
  readonly copies: number;
  /** The file name inside DIR/beats. */
  readonly name: string;
}

export function beatName(node: string, seq: number, gen: number, copies: number): string {
  return `${node}@${seq}@${gen}@${copies}`;
}

const NUMBER = '(0|[1-9][0-9]{0,14})';
const BEAT = new RegExp(`^([^@/]+)@${NUMBER}@${NUMBER}@${NUMBER}$`);

/** A beat file name, or null for anything else (temp files, strays, foreign names). */
export function parseBeatName(name: string): Beat | null {
  const m = BEAT.exec(name);
  if (!m || !validNodeName(m[1]!)) return null;
  return { node: m[1]!, seq: Number(m[2]), gen: Number(m[3]), copies: Number(m[4]), name };
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
