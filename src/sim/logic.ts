// The decision logic a simulated monitor runs: by default exactly the real pure functions. A test
// can swap any of them (a deliberately broken decide(), a view that releases stale nodes too
// early…) to prove the simulator catches the difference.

import { liveness, observe } from '../cluster/liveness.js';
import { quorum } from '../cluster/quorum.js';
import { decide } from '../monitor/decide.js';
import { fenceTargets } from '../monitor/fencing.js';
import { decideConfig, fencedPeers, isReleased, isSettling, petAfterCycle, publishFenced, selfFenceState, spawnRefused } from '../monitor/view.js';

export interface SimLogic {
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
}

export const REAL_LOGIC: SimLogic = {
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
};
