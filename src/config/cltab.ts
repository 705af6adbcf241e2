// cltab: `group:tag:levels:mode:command` entries and `:::name:value` settings.
// Pure: text in, configuration or file:line errors out. Never throws on any input.

import { parseDuration } from './duration.js';
import { nameProblem } from './names.js';

/** The Cluster::Init run modes. */
export const RUN_MODES = ['wait', 'once', 'respawn', 'test', 'off'] as const;
/**
 * A health check: run every `interval` while its group is settled at a level that includes it
 * (options after commas in the mode field: `monitor,interval=5s,timeout=2s,failures=3`).
 */
export const MONITOR_MODE = 'monitor';
/** Every mode a cltab entry may have. */
export const MODES = [...RUN_MODES, MONITOR_MODE] as const;
export type RunMode = (typeof MODES)[number];

/** A `monitor` entry's options; the restart limits fall back to the engine's timings when unset. */
export interface HealthCheck {
  /** Between the end of one check and the start of the next. */
  readonly intervalMs: number;
  /** A check still running after this long is killed and counts as failed. */
  readonly timeoutMs: number;
  /** This many consecutive failed checks restart the group here. */
  readonly failures: number;
  /** More restarts than this within `windowMs` and this node gives the group up. */
  readonly maxRestarts?: number;
  readonly windowMs?: number;
}

export const HEALTH_DEFAULTS = { intervalMs: 10_000, timeoutMs: 5_000, failures: 3 } as const;

export interface CltabEntry {
  readonly group: string;
  readonly tag: string;
  /** The level field as written, e.g. `12` or `long1,long2,5`. */
  readonly levelField: string;
  /** Every level the entry is active at (literal strings, compared with ===). */
  readonly levels: readonly string[];
  readonly mode: RunMode;
  /** Only for mode `monitor`: its check options (defaults filled in, except the restart limits). */
  readonly health?: HealthCheck;
  readonly command: string;
  readonly line: number;
}

export interface Cltab {
  readonly file: string;
  readonly entries: readonly CltabEntry[];
  readonly settings: ReadonlyMap<string, string>;
  /** Group names in order of first appearance. */
  readonly groups: readonly string[];
  /** Groups with an entry at level `test` (their test decides where they may run). */
  readonly tested?: readonly string[];
  /** Groups with an entry at level `plan` (run on every node that plans the group). */
  readonly planned?: readonly string[];
}

export interface ConfigError {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export type CltabResult =
  | { readonly ok: true; readonly cltab: Cltab }
  /** `partial`: the lines that did parse, for checks across files (`peerha check`). */
  | { readonly ok: false; readonly errors: readonly ConfigError[]; readonly partial?: Cltab };

export const MAX_LINE_LENGTH = 64 * 1024;
const MAX_ERRORS = 100;

/**
 * An admin file whose last line has no newline, or that is empty, was caught mid-write (an
 * editor or `printf >` still writing): not used until it is complete.
 */
export function halfWritten(text: string, file: string): ConfigError | null {
  // Empty is how a file looks between truncate and write: "nothing wanted" is a comment line.
  if (text === '') return { file, line: 1, message: 'empty: the file looks truncated mid-write; not used (for "nothing wanted" write a comment line)' };
  if (text.endsWith('\n')) return null;
  return { file, line: text.split('\n').length, message: 'the last line has no newline: the file looks half-written; not used until it ends with a newline' };
}

/** `file:line: message`, or `file: message` for what is not on a line (permissions, a failed read). */
export function formatError(e: ConfigError): string {
  return e.line > 0 ? `${e.file}:${e.line}: ${e.message}` : `${e.file}: ${e.message}`;
}

/** Why `name` cannot be a group, tag or level, or null when it is safe. */
/** Why a group, tag or level name is unacceptable, or null (see names.ts). */
export function unsafeName(name: string): string | null {
  return nameProblem('level', name);
}

/**
 * Expand a level field: a comma list (trailing comma allowed), or without a comma the
 * whole string plus each of its characters (`12` → `12`, `1`, `2`).
 */
export function expandLevels(field: string): { levels: string[] } | { error: string } {
  let items: string[];
  if (field.includes(',')) {
    items = field.split(',');
    while (items.length > 0 && items[items.length - 1] === '') items.pop();
    if (items.length === 0) return { error: 'levels: expected at least one level before ","' };
    if (items.some((i) => i === '')) return { error: `levels "${field}": empty level in comma list` };
  } else {
    // A character that cannot be a level on its own (only `.`, as in `1.5`) is not one.
    items = [field, ...Array.from(field).filter((c) => unsafeName(c) === null)];
  }
  for (const level of items) {
    const why = unsafeName(level);
    if (why) return { error: `level "${level}" ${why}` };
  }
  return { levels: [...new Set(items)] };
}

export function entryHasLevel(entry: CltabEntry, level: string): boolean {
  return entry.levels.includes(level);
}

function isRunMode(s: string): s is RunMode {
  return (MODES as readonly string[]).includes(s);
}

function optionDuration(name: string, value: string): number | { error: string } {
  const ms = parseDuration(value);
  if (typeof ms !== 'number') return { error: `monitor option ${name}=${printable(value)}: ${ms.error}` };
  if (ms <= 0) return { error: `monitor option ${name}=${value}: must be more than 0` };
  return ms;
}

function optionCount(name: string, value: string, min: number): number | { error: string } {
  if (!/^\d{1,6}$/.test(value) || Number(value) < min) return { error: `monitor option ${name}=${printable(value)}: expected a whole number of at least ${min}` };
  return Number(value);
}

const HEALTH_OPTIONS = ['interval', 'timeout', 'failures', 'max_restarts', 'window'] as const;

/** The options of a `monitor` mode field (what follows `monitor,`), or why they are wrong. */
export function parseHealthOptions(options: readonly string[]): { health: HealthCheck } | { error: string } {
  let intervalMs: number = HEALTH_DEFAULTS.intervalMs;
  let timeoutMs: number = HEALTH_DEFAULTS.timeoutMs;
  let failures: number = HEALTH_DEFAULTS.failures;
  let maxRestarts: number | undefined;
  let windowMs: number | undefined;
  const seen = new Set<string>();
  for (const option of options) {
    const eq = option.indexOf('=');
    const name = eq < 0 ? option : option.slice(0, eq);
    const value = eq < 0 ? '' : option.slice(eq + 1);
    if (!(HEALTH_OPTIONS as readonly string[]).includes(name)) {
      return { error: `unknown monitor option ${printable(option)}: expected name=value with name one of ${HEALTH_OPTIONS.join(', ')}` };
    }
    if (eq < 0 || value === '') return { error: `monitor option ${name}: expected ${name}=VALUE` };
    if (seen.has(name)) return { error: `monitor option ${name} given twice` };
    seen.add(name);
    const r = name === 'failures' ? optionCount(name, value, 1) : name === 'max_restarts' ? optionCount(name, value, 0) : optionDuration(name, value);
    if (typeof r !== 'number') return r;
    if (name === 'interval') intervalMs = r;
    else if (name === 'timeout') timeoutMs = r;
    else if (name === 'failures') failures = r;
    else if (name === 'max_restarts') maxRestarts = r;
    else windowMs = r;
  }
  return { health: { intervalMs, timeoutMs, failures, ...(maxRestarts !== undefined ? { maxRestarts } : {}), ...(windowMs !== undefined ? { windowMs } : {}) } };
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** The mode field of an entry as it could be written back (`monitor,interval=5s,…` with every option). */
export function formatMode(entry: Pick<CltabEntry, 'mode' | 'health'>): string {
  const h = entry.health;
  if (entry.mode !== MONITOR_MODE || !h) return entry.mode;
  const opts = [`interval=${formatMs(h.intervalMs)}`, `timeout=${formatMs(h.timeoutMs)}`, `failures=${h.failures}`];
  if (h.maxRestarts !== undefined) opts.push(`max_restarts=${h.maxRestarts}`);
  if (h.windowMs !== undefined) opts.push(`window=${formatMs(h.windowMs)}`);
  return [MONITOR_MODE, ...opts].join(',');
}

/** Whether two entries' check options are the same (both absent for every mode but `monitor`). */
export function sameHealth(a: Pick<CltabEntry, 'health'>, b: Pick<CltabEntry, 'health'>): boolean {
  const x = a.health;
  const y = b.health;
  if (!x || !y) return x === y;
  return x.intervalMs === y.intervalMs && x.timeoutMs === y.timeoutMs && x.failures === y.failures && x.maxRestarts === y.maxRestarts && x.windowMs === y.windowMs;
}

function printable(s: string, max = 40): string {
  const shown = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(shown);
}

export function parseCltab(text: string, file: string): CltabResult {
  const errors: ConfigError[] = [];
  const entries: CltabEntry[] = [];
  const settings = new Map<string, string>();
  const groups = new Set<string>();
  const tagLines = new Map<string, number>();
  const err = (line: number, message: string): void => {
    if (errors.length < MAX_ERRORS) errors.push({ file, line, message });
  };

  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const line = text.slice(0, nul).split('\n').length;
    return { ok: false, errors: [{ file, line, message: 'binary data (NUL byte): expected a text cltab' }] };
  }

  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let raw = lines[i] ?? '';
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.length > MAX_LINE_LENGTH) {
      err(n, `line too long (${raw.length} characters, at most ${MAX_LINE_LENGTH})`);
      continue;
    }
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;

    if (raw.startsWith(':::')) {
      const rest = raw.slice(3);
      const colon = rest.indexOf(':');
      const name = colon < 0 ? rest : rest.slice(0, colon);
      const value = colon < 0 ? '' : rest.slice(colon + 1).trim();
      if (name === '' || colon < 0) {
        err(n, 'setting: expected ":::name:value"');
        continue;
      }
      if (value === '') {
        err(n, `setting "${name}": expected a value after ":::${name}:"`);
        continue;
      }
      settings.set(name, value);
      continue;
    }

    const parts = raw.split(':');
    if (parts.length < 5) {
      err(n, `expected "group:tag:levels:mode:command" (5 fields), found ${parts.length}`);
      continue;
    }
    const [group = '', tag = '', levelField = '', modeField = ''] = parts;
    // Only `monitor` takes options, after commas: `monitor,interval=5s,timeout=2s`.
    const [modeName = '', ...modeOptions] = modeField.split(',');
    const mode = isRunMode(modeName) ? modeName : modeField;
    const command = parts.slice(4).join(':');
    const fields: Array<[string, string]> = [['group', group], ['tag', tag]];
    let bad = false;
    for (const [what, value] of fields) {
      const why = unsafeName(value);
      if (why) {
        err(n, value === '' ? `${what}: missing` : `${what} ${printable(value)} ${why}`);
        bad = true;
      }
    }
    const levels = expandLevels(levelField);
    if (levelField === '') {
      err(n, 'levels: missing (expected e.g. "start" or "1,2")');
      bad = true;
    } else if ('error' in levels) {
      err(n, levels.error);
      bad = true;
    }
    let health: HealthCheck | undefined;
    if (!isRunMode(mode)) {
      err(n, `unknown mode ${printable(mode)}: expected one of ${MODES.join(', ')}`);
      bad = true;
    } else if (mode === MONITOR_MODE) {
      const h = parseHealthOptions(modeOptions);
      if ('error' in h) {
        err(n, h.error);
        bad = true;
      } else health = h.health;
    } else if (modeOptions.length > 0) {
      err(n, `mode ${printable(modeField)}: only ${MONITOR_MODE} takes options after a comma`);
      bad = true;
    }
    if (command.trim() === '' && mode !== 'off') {
      err(n, 'command: missing (expected a shell command after the mode)');
      bad = true;
    }
    if (tag !== '' && tagLines.has(tag)) {
      err(n, `duplicate tag ${printable(tag)} (first used on line ${tagLines.get(tag)}); tags are unique per file`);
      bad = true;
    } else if (tag !== '') {
      tagLines.set(tag, n);
    }
    if (bad || 'error' in levels || !isRunMode(mode)) continue;
    groups.add(group);
    entries.push({ group, tag, levelField, levels: levels.levels, mode, ...(health ? { health } : {}), command, line: n });
  }

  const groupsAt = (level: string): string[] => [...new Set(entries.filter((e) => e.levels.includes(level)).map((e) => e.group))];
  const cltab = { file, entries, settings, groups: [...groups], tested: groupsAt('test'), planned: groupsAt('plan') };
  if (errors.length > 0) return { ok: false, errors, partial: cltab };
  return { ok: true, cltab };
}
