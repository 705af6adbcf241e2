// Publishes the engine's group states to clstat: on every change (coalesced) and at least once
// per cycle as a heartbeat. `seq` grows on every write; writes never overlap.

import { rm } from 'node:fs/promises';
import { formatClstat, type ClstatLine } from '../config/clstat.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface ClstatSource {
  lines(): ClstatLine[];
  notes(): Array<{ group: string; text: string }>;
}

export class ClstatWriter {
  private seq = 0;
  private writing = false;
  private dirty = false;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly path: string,
    private readonly node: string,
    private readonly source: ClstatSource,
    private readonly onError: (e: unknown) => void,
  ) {}

  start(cycleMs: number): void {
    this.request();
    this.heartbeat = setInterval(() => this.request(), cycleMs);
  }

  /** Schedule a rewrite; several requests while a write is in flight become one more write. */
  request(): void {
    if (this.stopped) return;
    if (this.writing) {
      this.dirty = true;
      return;
    }
    this.writing = true;
    setImmediate(() => void this.loop());
  }

  get lastSeq(): number {
    return this.seq;
  }

  private async loop(): Promise<void> {
    do {
      this.dirty = false;
      const text = formatClstat({
        header: { node: this.node, pid: process.pid, seq: ++this.seq, time: new Date().toISOString() },
        groups: this.source.lines(),
        notes: this.source.notes(),
      });
      try {
        await writeFileAtomic(this.path, text);
      } catch (e) {
        this.onError(e);
      }
    } while (this.dirty && !this.stopped);
    this.writing = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Stop writing and delete clstat (orderly exit: nothing runs here any more). */
  async stopAndRemove(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.writing) await new Promise<void>((r) => this.idleWaiters.push(r));
    await rm(this.path, { force: true });
  }
}
