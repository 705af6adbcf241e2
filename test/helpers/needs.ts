// Tests that drive a system tool fail at once, in one line naming the tool and how to install it,
// when it is missing: never a TypeError later on, never a silent skip. `npm test` as root
// installs them (scripts/system-deps.sh).

import { existsSync } from 'node:fs';

/** Throws unless `path` exists: `<what> is not installed (no <path>): apt-get install <pkg> …`. */
export function need(path: string, pkg: string, what = pkg): void {
  if (!existsSync(path)) throw new Error(`${what} is not installed (no ${path}): apt-get install ${pkg} (npm test does it when run as root)`);
}

/** The Debian fence-agents package, for tests that run real agents. */
export const needFenceAgents = (): void => need('/usr/sbin/fence_dummy', 'fence-agents');
