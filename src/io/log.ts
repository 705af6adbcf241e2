// Logging: pino to stdout (journald), synchronous so the last lines before an exit survive.

import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(name: string, level = process.env.PEERHA_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
}
