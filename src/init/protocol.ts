// Control socket protocol: one JSON object per line each way (newline-delimited JSON).
// Every request gets exactly one reply line, in order.

import { connect } from 'node:net';
import type { GroupStatus } from './engine.js';

export type Request =
  | { op: 'ping' }
  | { op: 'tell'; group: string; level: string }
  | { op: 'reread' }
  | { op: 'status' }
  | { op: 'wait'; group: string; level: string; timeoutMs: number }
  | { op: 'shutdown' };

export interface Reply {
  ok: boolean;
  message: string;
  /** wait: the group's state when the wait ended. */
  state?: string;
  timeout?: boolean;
  /** status */
  node?: string;
  groups?: GroupStatus[];
  configErrors?: string[];
}

export const MAX_REQUEST_BYTES = 64 * 1024;

export class NoDaemonError extends Error {}

/** Send requests over one connection; resolves with one reply per request. */
export function request(socketPath: string, reqs: Request[], timeoutMs = 0): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const replies: Reply[] = [];
    let buf = '';
    let timer: NodeJS.Timeout | null = null;
    const done = (err: Error | null): void => {
      if (timer) clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    if (timeoutMs > 0) timer = setTimeout(() => done(new Error(`no reply from ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      for (const r of reqs) sock.write(JSON.stringify(r) + '\n');
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          replies.push(JSON.parse(line) as Reply);
        } catch {
          replies.push({ ok: false, message: `unreadable reply: ${line.slice(0, 200)}` });
        }
        if (replies.length === reqs.length) done(null);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (replies.length === reqs.length) return;
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK') {
        done(new NoDaemonError(`no daemon answers on ${socketPath} (${e.code})`));
      } else done(e);
    });
    sock.on('close', () => {
      if (replies.length < reqs.length) done(new NoDaemonError(`daemon on ${socketPath} closed the connection`));
    });
  });
}
