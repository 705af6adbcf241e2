// The pure functions step() takes its decisions with. By default exactly the shipped ones; the
// simulator swaps single pieces (a broken decide(), a view that ignores the halt file, a reader
// that accepts torn files…) to prove that it catches the difference.

import { liveness, observe } from '../cluster/liveness.js';
import { quorum } from '../cluster/quorum.js';
import { decide } from './decide.js';
import { fenceTargets } from './fencing.js';
import type { MonitorState } from './state.js';
import { claimReleased } from '../cluster/claims.js';
import { dateBeat } from '../cluster/beats.js';
import { declaredStaleBy, decideConfig, fencedPeers, haltRequested, isReleased, isSettling, petAfterCycle, publishDeadline, publishFenced, readPeerClstat, selfFenceState, spawnRefused } from './view.js';

export interface Logic {
  readonly decide: typeof decide;
  readonly quorum: typeof quorum;
  readonly observe: typeof observe;
  readonly liveness: typeof liveness;
  readonly fenceTargets: typeof fenceTargets;
  readonly fencedPeers: typeof fencedPeers;
  readonly isReleased: typeof isReleased;
  readonly decideConfig: typeof decideConfig;
  readonly isSettling: typeof isSettling;
  readonly selfFenceState: typeof selfFenceState;
  readonly petAfterCycle: typeof petAfterCycle;
  readonly spawnRefused: typeof spawnRefused;
  readonly publishFenced: typeof publishFenced;
  readonly publishDeadline: typeof publishDeadline;
  readonly readPeerClstat: typeof readPeerClstat;
  readonly declaredStaleBy: typeof declaredStaleBy;
  readonly haltRequested: typeof haltRequested;
  readonly claimReleased: typeof claimReleased;
  readonly dateBeat: typeof dateBeat;
}

export const REAL_LOGIC: Logic = {
  decide,
  quorum,
  observe,
  liveness,
  fenceTargets,
  fencedPeers,
  isReleased,
  decideConfig,
  isSettling,
  selfFenceState,
  petAfterCycle,
  spawnRefused,
  publishFenced,
  publishDeadline,
  readPeerClstat,
  declaredStaleBy,
  haltRequested,
  claimReleased,
  dateBeat,
};

/** May the engine start a process now? Never while the watchdog may be about to (or did) self-fence us, nor after leaving. */
export function spawnAllowed(s: MonitorState, now: number, logic: Logic = REAL_LOGIC): boolean {
  // Without a watchdog nothing may be killing this node's groups: only a leave refuses (else a
  // self-fence's stop level "finishes" without running its stop entries, and nobody runs them).
  if (!s.settings.selfFence) return s.phase !== 'stopped';
  return !logic.spawnRefused(now, s.lastPet, s.settings.timeoutMs, s.phase === 'stopped');
}
