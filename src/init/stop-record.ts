// The stop entries of the groups active on this node, kept on local disk next to the process-group
// record, so that whatever outlives the monitor can still release a group's resources (a VIP, a
// mount): the watchdog runs them after it kills the groups (monitor frozen or gone), and a
// restarted monitor runs them before it joins. Plain lines, so that a small perl script can read
// them: `stop_timeout_ms MS`, then per entry `entry<TAB>GROUP<TAB>TAG<TAB>LEVEL<TAB>MODE<TAB>COMMAND`
// (names never hold a tab; the command is the rest of the line).

import { rmSync } from 'node:fs';
import type { CltabEntry } from '../config/cltab.js';
import { writeLocalFileAtomicSync } from '../io/local.js';

export interface GroupStops {
  readonly group: string;
  readonly level: string;
  readonly entries: readonly CltabEntry[];
}

export function stopRecordText(stopTimeoutMs: number, groups: readonly GroupStops[]): string {
  const lines = ['# peerha: stop entries of the groups active here (run by the watchdog after a crash)', `stop_timeout_ms ${Math.max(0, Math.round(stopTimeoutMs))}`];
  for (const g of groups) {
    for (const e of g.entries) {
      if (e.mode === 'off' || /[\r\n]/.test(e.command)) continue;
      lines.push(['entry', g.group, e.tag, g.level, e.mode, e.command].join('\t'));
    }
  }
  return lines.join('\n') + '\n';
}

export class StopRecord {
  private last: string | null = null;

  constructor(readonly path: string) {}

  /** Synchronous on purpose (local disk): the entries must be on disk before the group starts. */
  save(text: string): void {
    if (text === this.last) return;
    writeLocalFileAtomicSync(this.path, text);
    this.last = text;
  }

  remove(): void {
    rmSync(this.path, { force: true });
    this.last = null;
  }
}
