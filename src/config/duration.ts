// Durations as people write them in peerha.yaml, flags and cltab options: `500ms`, `2s`, `1m`,
// `1h`, `1.5s`, or a plain number of seconds.

/** Longest duration a Node timer can wait (setTimeout clamps anything longer to 1 ms). */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DURATION = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const DURATION_HINT = 'expected a duration such as 500ms, 2s, 1m, 1.5s or a number of seconds';

/** `500ms`, `2s`, `1m`, `1h`, `1.5s`, or a plain number of seconds → integer milliseconds. */
export function parseDuration(text: string): number | { error: string } {
  if (typeof text !== 'string') return { error: DURATION_HINT };
  const t = text.trim();
  if (t.startsWith('-') && DURATION.test(t.slice(1))) return { error: 'must not be negative' };
  const m = DURATION.exec(t);
  if (!m) return { error: DURATION_HINT };
  const ms = Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000));
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) return { error: `is too long (at most ${formatDuration(MAX_DURATION_MS)})` };
  return ms;
}

/** Integer milliseconds in parseDuration syntax (`1m`, `1.5s`, `500ms`); parses back exactly. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms === 0 || ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
