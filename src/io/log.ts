// Logging: pino to stdout (journald), synchronous so the last lines before an exit survive.
// JSON when stdout is not a terminal; one readable line per event when it is.

import pino from 'pino';

export type Logger = pino.Logger;

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** `12:00:01.234 INFO  decide: web → plan  group=web reason="…"` from one pino JSON line. */
export function prettyLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const t = new Date(typeof o.time === 'number' ? o.time : Date.now()).toISOString().slice(11, 23);
  const lvl = LEVEL_NAMES[Number(o.level)] ?? String(o.level);
  const fields = Object.entries(o)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  const paint = (code: number, s: string): string => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const level = Number(o.level) >= 50 ? paint(31, lvl.padEnd(5)) : Number(o.level) >= 40 ? paint(33, lvl.padEnd(5)) : paint(2, lvl.padEnd(5));
  return `${paint(2, t)} ${level} ${String(o.msg ?? '')}${fields ? `  ${paint(2, fields)}` : ''}`;
}

/**
 * A group's level logged as `level` would make a second `level` key beside the severity (JSON
 * parsers keep the last one): it goes out as `runlevel`.
 */
export function renameRunlevel(obj: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(obj, 'level')) return obj;
  const { level, ...rest } = obj;
  return { ...rest, runlevel: level };
}

export function createLogger(name: string, level = process.env.PEERHA_LOG_LEVEL ?? 'info'): Logger {
  const options: pino.LoggerOptions = { name, level, base: { pid: process.pid }, formatters: { log: renameRunlevel } };
  if (process.stdout.isTTY && process.env.PEERHA_LOG_FORMAT !== 'json') {
    const color = !process.env.NO_COLOR;
    const stream = { write: (s: string) => void process.stdout.write(prettyLine(s, color) + '\n') };
    return pino(options, stream);
  }
  return pino(options, pino.destination({ dest: 1, sync: true }));
}
