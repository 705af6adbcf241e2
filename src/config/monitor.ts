// `peerha monitor` configuration: a YAML file (default /etc/peerha/peerha.yaml) overridden by
// flags and environment (flag > env > file > default). Pure except loadMonitorConfig, which
// reads the file. Never throws on any input: every problem is a `file:line: message` error.

import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLMap } from 'yaml';
import type { ConfigError } from './cltab.js';
import { readAlerts, type AlertCommand } from './alerts.js';
import { DURATION_HINT, formatDuration, parseDuration } from './duration.js';
import { parseListen, type ListenAddress, type MetricsConfig } from './listen.js';
import { nameProblem, validNodeName } from './names.js';

export { formatDuration, MAX_DURATION_MS, parseDuration } from './duration.js';

export { formatError, type ConfigError } from './cltab.js';

export const DEFAULT_CONFIG_PATH = '/etc/peerha/peerha.yaml';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type QuorumPolicy = 'majority' | 'adaptive' | 'none';

export interface QuorumConfig {
  readonly policy: QuorumPolicy;
  /** Cluster size for `majority`; required for it. */
  readonly expected?: number;
  /** Cold start: no quorum until every expected node was seen live at least once. */
  readonly waitForAll?: boolean;
}

export const QUORUM_POLICIES: readonly QuorumPolicy[] = ['majority', 'adaptive', 'none'];

export const MIN_CYCLE_MS = 100;
export const MAX_CYCLE_MS = 60_000;
export const MAX_CONFIG_BYTES = 256 * 1024;

export interface StopLevels {
  readonly default: string;
  readonly groups: Readonly<Record<string, string>>;
}
export const DEFAULT_STOP_LEVELS: StopLevels = { default: 'stop', groups: {} };

/** The level that releases `group`'s resources. */
export function stopLevelOf(levels: StopLevels, group: string): string {
  return levels.groups[group] ?? levels.default;
}
/** Slack between the watchdog's clean-up deadline and the peers' takeover (kill, scheduling). */
export const STOP_MARGIN_MS = 100;

/** The longest stop_timeout a timeout allows, and the default: timeout/2 − 100 ms. */
export function defaultStopTimeoutMs(timeoutMs: number): number {
  return Math.max(0, Math.floor(timeoutMs / 2) - STOP_MARGIN_MS);
}

/** The shortest timeout that leaves the watchdog stopMs for the stop entries. */
export function minTimeoutForStop(stopMs: number): number {
  return 2 * (stopMs + STOP_MARGIN_MS);
}
const MAX_ERRORS = 100;

export const MONITOR_DEFAULTS = {
  cycleMs: 1000,
  timeoutMs: 5000,
  visibilityLagMs: 0,
  balance: 1.5,
  failCooldownCycles: 10,
  waitForAll: false,
  fenceTimeoutMs: 30_000,
  selfFence: true,
  nice: -10,
  stateDir: '/run/peerha',
  logLevel: 'info' as LogLevel,
} as const;

/** The fully resolved monitor configuration; every duration is integer milliseconds. */
export interface MonitorConfig {
  /** The shared directory every node sees. */
  readonly root: string;
  readonly node: string;
  readonly cycleMs: number;
  readonly timeoutMs: number;
  /**
   * How long a group's stop level may take (leave, halt, quorum loss, conflict, removal, and the
   * watchdog's clean-up after a crash); what still runs then is killed.
   */
  readonly stopTimeoutMs: number;
  /** The level that releases a group's resources: `default` (`stop` unless set), or per group. */
  readonly stopLevel: StopLevels;
  /** Propagation delay of the shared file system. */
  readonly visibilityLagMs: number;
  readonly balance: number;
  readonly failCooldownCycles: number;
  readonly quorum: { readonly policy: QuorumPolicy; readonly expected?: number; readonly waitForAll: boolean };
  readonly fence: FenceConfig;
  /** The local watchdog guarantees self-fencing. */
  readonly selfFence: boolean;
  /**
   * The monitor's (and its watchdog's) scheduling priority, as nice(1): heartbeats must not wait
   * behind the groups' own work (corosync and keepalived run at raised priority too). Groups run
   * at the normal priority. Applied when the monitor may (root); otherwise left as it is.
   */
  readonly nice: number;
  /** Local (non-shared) state. */
  readonly stateDir: string;
  /** A group (name or gid) that may read the shared files: written 0640 with it, else 0600. */
  readonly sharedGroup?: string;
  /** The metrics and status page listener; absent: none (the default). */
  readonly metrics?: MetricsConfig;
  readonly logLevel: LogLevel;
  /** The configuration file that was read, or null when there was none (optional default path). */
  readonly configFile: string | null;
  /** Commands run for cluster events (absent: none). */
  readonly alerts?: readonly AlertCommand[];
}

/** One `key: value` of a fence agent, with the line it was written on (for `peerha check`). */
export interface FenceParam {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

/** One entry of `fence.methods`, tried in order like Pacemaker's fencing levels. */
export type FenceMethod =
  | { readonly kind: 'agent'; readonly line: number; readonly agent: string; readonly params: readonly FenceParam[]; readonly nodes: Readonly<Record<string, readonly FenceParam[]>> }
  | { readonly kind: 'command'; readonly line: number; readonly command: string }
  | { readonly kind: 'manual'; readonly line: number };

export interface FenceConfig {
  /** Legacy single hook (`COMMAND NODE`); same as a `command` method. */
  readonly command?: string;
  readonly timeoutMs: number;
  readonly action: 'off' | 'reboot';
  readonly delayBaseMs: number;
  readonly delayMaxMs: number;
  readonly priorityDelayMs: number;
  readonly retryMaxMs: number;
  readonly methods: readonly FenceMethod[];
}

export type ConfigResult<T = MonitorConfig> =
  | { readonly ok: true; readonly config: T }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

/** What the file sets; absent = not set there. */
export interface MonitorFileValues {
  root?: string;
  node?: string;
  cycleMs?: number;
  timeoutMs?: number;
  stopTimeoutMs?: number;
  stopLevel?: StopLevels;
  visibilityLagMs?: number;
  balance?: number;
  failCooldownCycles?: number;
  quorumPolicy?: QuorumPolicy;
  quorumExpected?: number;
  quorumWaitForAll?: boolean;
  fenceCommand?: string;
  fenceTimeoutMs?: number;
  fenceAction?: 'off' | 'reboot';
  fenceDelayBaseMs?: number;
  fenceDelayMaxMs?: number;
  fencePriorityDelayMs?: number;
  fenceRetryMaxMs?: number;
  fenceMethods?: FenceMethod[];
  selfFence?: boolean;
  nice?: number;
  stateDir?: string;
  sharedGroup?: string;
  metricsListen?: ListenAddress;
  logLevel?: LogLevel;
  alerts?: AlertCommand[];
}

export interface MonitorFileConfig {
  /** The path as given (also when the file did not exist). */
  readonly file: string;
  readonly found: boolean;
  readonly values: Readonly<MonitorFileValues>;
  /** Line of the key that set each value. */
  readonly lines: Readonly<Partial<Record<keyof MonitorFileValues, number>>>;
}

/** Flag values as typed on the command line (durations in parseDuration syntax). */
export interface MonitorOverrides {
  readonly root?: string | undefined;
  readonly node?: string | undefined;
  readonly cycle?: string | undefined;
  readonly timeout?: string | undefined;
  readonly stopTimeout?: string | undefined;
}

function checkCycle(ms: number): string | null {
  if (ms < MIN_CYCLE_MS) return `${formatDuration(ms)} is too short (at least ${formatDuration(MIN_CYCLE_MS)})`;
  if (ms > MAX_CYCLE_MS) return `${formatDuration(ms)} is too long (at most ${formatDuration(MAX_CYCLE_MS)})`;
  return null;
}

function checkPositive(ms: number): string | null {
  return ms > 0 ? null : 'must be more than 0';
}

const NODE_HINT = 'expected a node name ([A-Za-z0-9._-], 1 to 63 characters, not "." or "..")';

// ---------------------------------------------------------------------------------------------
// The file

type Key = keyof MonitorFileValues;
type YNode = unknown;
type Read = (node: YNode, lineOf: (node: YNode) => number) => { value: unknown } | { error: string };
type Entry = { kind: 'leaf'; field: Key; read: Read } | { kind: 'section'; fields: ReadonlyMap<string, Entry> };

function show(s: string, max = 40): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

function describe(node: YNode): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'string') return show(v);
    if (typeof v === 'number' || typeof v === 'boolean') return node.source ?? String(v);
  }
  return 'something else';
}

/** A scalar's text: strings as they are, plain numbers and booleans as written. */
function scalarText(node: YNode): string | null {
  if (!isScalar(node)) return null;
  if (typeof node.value === 'string') return node.value;
  if ((typeof node.value === 'number' || typeof node.value === 'boolean') && node.type === 'PLAIN') {
    return node.source ?? String(node.value);
  }
  return null;
}

const readString =
  (what: string, absolute = false): Read =>
  (node) => {
    const s = scalarText(node);
    if (s === null) return { error: `${describe(node)}: expected ${what}` };
    if (s === '') return { error: `is empty: expected ${what}` };
    if (s.includes('\u0000')) return { error: 'must not contain a NUL character' };
    if (absolute && !s.startsWith('/')) return { error: `${show(s)}: expected an absolute path (starting with /)` };
    return { value: s };
  };

/** A stop level must be a level name, and not one the monitor uses for something else. */
function stopLevelProblem(level: string): string | null {
  if (level === 'plan' || level === 'test') return `"${level}" is the monitor's ${level} level, not a stop level`;
  const why = nameProblem('level', level);
  return why === null ? null : `level ${show(level)} ${why}`;
}

/** `stop_level: LEVEL`, or a mapping `{ default: LEVEL, GROUP: LEVEL, … }`. */
function readStopLevels(node: YNode, lineOf: (n: YNode) => number): { value: unknown } | { error: string } {
  const one = scalarText(node);
  if (one !== null && !isMap(node)) {
    const why = stopLevelProblem(one);
    return why === null ? { value: { default: one, groups: {} } satisfies StopLevels } : { error: why };
  }
  if (!isMap(node)) return { error: `${describe(node)}: expected a level, or a mapping of group: level (with default: level)` };
  let def = DEFAULT_STOP_LEVELS.default;
  const groups: Record<string, string> = {};
  for (const item of node.items) {
    const key = isScalar(item.key) ? String(item.key.value) : '';
    const level = scalarText(item.value as YNode);
    if (level === null) throw new MethodError(`stop_level.${key}: ${describe(item.value as YNode)}: expected a level`, lineOf(item.key as YNode));
    const why = stopLevelProblem(level) ?? (key === 'default' ? null : nameProblem('group', key) === null ? null : `group ${show(key)} ${nameProblem('group', key)}`);
    if (why !== null) throw new MethodError(`stop_level.${key}: ${why}`, lineOf(item.key as YNode));
    if (key === 'default') def = level;
    else groups[key] = level;
  }
  return { value: { default: def, groups } satisfies StopLevels };
}

const readListen: Read = (node) => {
  const s = scalarText(node);
  const a = s === null ? { error: 'expected an address' } : parseListen(s);
  return 'error' in a ? { error: `${describe(node)}: ${a.error}` } : { value: a };
};

const readNode: Read = (node) => {
  const s = scalarText(node);
  if (s === null || !validNodeName(s)) return { error: `${describe(node)}: ${NODE_HINT}` };
  return { value: s };
};

const readDuration =
  (check: (ms: number) => string | null = () => null): Read =>
  (node) => {
    const s = scalarText(node);
    if (s === null || (isScalar(node) && typeof node.value === 'boolean')) return { error: `${describe(node)}: ${DURATION_HINT}` };
    const ms = parseDuration(s);
    if (typeof ms !== 'number') return { error: `${show(s)}: ${ms.error}` };
    const why = check(ms);
    return why === null ? { value: ms } : { error: why };
  };

const readNumber =
  (what: string, ok: (n: number) => boolean): Read =>
  (node) => {
    if (!isScalar(node) || typeof node.value !== 'number' || !ok(node.value)) return { error: `${describe(node)}: expected ${what}` };
    return { value: node.value };
  };

const readBool: Read = (node) =>
  isScalar(node) && typeof node.value === 'boolean' ? { value: node.value } : { error: `${describe(node)}: expected true or false` };

const readOneOf =
  (choices: readonly string[]): Read =>
  (node) => {
    const s = scalarText(node);
    if (s === null || !choices.includes(s)) return { error: `${describe(node)}: expected one of ${choices.join(', ')}` };
    return { value: s };
  };

/** A fence parameter value as the agent gets it on stdin: text; true/false as 1/0. */
function paramValue(node: YNode): string | null {
  if (!isScalar(node)) return null;
  if (typeof node.value === 'boolean') return node.value ? '1' : '0';
  return scalarText(node);
}

function readParams(node: YNode, lineOf: (n: YNode) => number, where: string): { value: FenceParam[] } | { error: string } {
  if (!isMap(node)) return { error: `${where}: ${describe(node)}: expected a mapping of agent parameters (name: value)` };
  const out: FenceParam[] = [];
  for (const pair of node.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : null;
    const value = paramValue(pair.value);
    if (!name || !/^[A-Za-z0-9_-]+$/.test(name)) return { error: `${where}: expected parameter names like ip or username, found ${describe(pair.key)}` };
    if (value === null || /[\r\n]/.test(value)) return { error: `${where}.${name}: ${describe(pair.value)}: expected a single-line value` };
    out.push({ name, value, line: lineOf(pair.key) });
  }
  return { value: out };
}

/** fence.methods: a list of `{agent, params, nodes}`, `{command}` or `{manual: true}`. */
function readFenceMethods(node: YNode, lineOf: (n: YNode) => number): { value: unknown } | { error: string } {
  if (!isSeq(node)) return { error: `${describe(node)}: expected a list of methods (- agent: …, - command: …, - manual: true)` };
  const methods: FenceMethod[] = [];
  node.items.forEach((item, i) => {
    if (!isMap(item)) throw new MethodError(`fence.methods[${i}]: ${describe(item)}: expected a mapping`, lineOf(item));
    const keys = item.items.map((p) => (isScalar(p.key) ? String(p.key.value) : ''));
    const get = (k: string): YNode => item.items.find((p) => isScalar(p.key) && p.key.value === k)?.value;
    const line = lineOf(item);
    const allowed: Record<string, string[]> = { agent: ['agent', 'params', 'nodes'], command: ['command'], manual: ['manual'] };
    const kind = (['agent', 'command', 'manual'] as const).find((k) => keys.includes(k));
    if (!kind) throw new MethodError(`fence.methods[${i}]: expected one of agent, command or manual`, line);
    const extra = keys.find((k) => !allowed[kind]!.includes(k));
    if (extra !== undefined) throw new MethodError(`fence.methods[${i}]: unknown key ${show(extra)} for a ${kind} method (expected ${allowed[kind]!.join(', ')})`, lineOf(item.items.find((p) => isScalar(p.key) && p.key.value === extra)?.key));
    if (kind === 'manual') {
      const v = get('manual');
      if (!isScalar(v) || v.value !== true) throw new MethodError(`fence.methods[${i}].manual: expected true`, line);
      methods.push({ kind, line });
    } else if (kind === 'command') {
      const c = scalarText(get('command'));
      if (!c) throw new MethodError(`fence.methods[${i}].command: expected a shell command`, line);
      methods.push({ kind, line, command: c });
    } else {
      const agent = scalarText(get('agent'));
      if (!agent || !/^(fence_[A-Za-z0-9_-]+|\/\S+)$/.test(agent)) throw new MethodError(`fence.methods[${i}].agent: expected a fence agent name such as fence_ipmilan`, line);
      const p = get('params');
      const params = p === undefined || isNullNode(p) ? { value: [] } : readParams(p, lineOf, `fence.methods[${i}].params`);
      if ('error' in params) throw new MethodError(params.error, lineOf(p));
      const nodes: Record<string, FenceParam[]> = {};
      const n = get('nodes');
      if (n !== undefined && !isNullNode(n)) {
        if (!isMap(n)) throw new MethodError(`fence.methods[${i}].nodes: expected a mapping of node: {parameters}`, lineOf(n));
        for (const pair of n.items) {
          const name = scalarText(pair.key);
          if (!name || !validNodeName(name)) throw new MethodError(`fence.methods[${i}].nodes: ${describe(pair.key)}: ${NODE_HINT}`, lineOf(pair.key));
          const np = readParams(pair.value, lineOf, `fence.methods[${i}].nodes.${name}`);
          if ('error' in np) throw new MethodError(np.error, lineOf(pair.value));
          nodes[name] = np.value;
        }
      }
      methods.push({ kind, line, agent, params: params.value, nodes });
    }
  });
  return { value: methods };
}

const isNullNode = (node: unknown): boolean => node === null || node === undefined || (isScalar(node) && node.value === null);

/** A problem deep inside fence.methods, with the line it is on. */
class MethodError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

const leaf = (field: Key, read: Read): Entry => ({ kind: 'leaf', field, read });
const section = (fields: Record<string, Entry>): Entry => ({ kind: 'section', fields: new Map(Object.entries(fields)) });

const SCHEMA = new Map(Object.entries({
  root: leaf('root', readString('the shared directory', true)),
  node: leaf('node', readNode),
  cycle: leaf('cycleMs', readDuration(checkCycle)),
  timeout: leaf('timeoutMs', readDuration(checkPositive)),
  stop_timeout: leaf('stopTimeoutMs', readDuration()),
  stop_level: leaf('stopLevel', readStopLevels),
  visibility_lag: leaf('visibilityLagMs', readDuration()),
  balance: leaf('balance', readNumber('a number more than 0', (n) => Number.isFinite(n) && n > 0)),
  fail_cooldown: leaf('failCooldownCycles', readNumber('a whole number of cycles (0 or more)', (n) => Number.isSafeInteger(n) && n >= 0)),
  quorum: section({
    policy: leaf('quorumPolicy', readOneOf(QUORUM_POLICIES)),
    expected: leaf('quorumExpected', readNumber('a whole number of nodes (1 or more)', (n) => Number.isSafeInteger(n) && n >= 1)),
    wait_for_all: leaf('quorumWaitForAll', readBool),
  }),
  fence: section({
    command: leaf('fenceCommand', readString('a shell command')),
    timeout: leaf('fenceTimeoutMs', readDuration(checkPositive)),
    action: leaf('fenceAction', readOneOf(['off', 'reboot'])),
    delay_base: leaf('fenceDelayBaseMs', readDuration()),
    delay_max: leaf('fenceDelayMaxMs', readDuration()),
    priority_delay: leaf('fencePriorityDelayMs', readDuration()),
    retry_max: leaf('fenceRetryMaxMs', readDuration(checkPositive)),
    methods: leaf('fenceMethods', (node, lineOf) => readFenceMethods(node, lineOf)),
  }),
  self_fence: leaf('selfFence', readBool),
  nice: leaf('nice', readNumber('an integer from -20 to 19 (nice(1): lower runs first)', (n) => Number.isInteger(n) && n >= -20 && n <= 19)),
  state_dir: leaf('stateDir', readString('a local directory', true)),
  shared_group: leaf('sharedGroup', readString('a group name or gid that may read the shared files')),
  metrics: section({
    listen: leaf('metricsListen', readListen),
  }),
  log: section({
    level: leaf('logLevel', readOneOf(LOG_LEVELS)),
  }),
  alerts: leaf('alerts', (node, lineOf) => readAlerts(node, lineOf, (m, line) => new MethodError(m, line))),
}));

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i]![j] = v;
    }
  }
  return at(a.length, b.length);
}

function unknownKey(prefix: string, name: string, known: readonly string[]): string {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const near =
    known.find((k) => norm(k) === norm(name)) ??
    known.find((k) => editDistance(k, name) <= Math.min(2, Math.max(1, Math.floor(k.length / 3))));
  const hint = near !== undefined ? `did you mean "${prefix}${near}"?` : `expected ${prefix ? `in ${prefix.slice(0, -1)}: ` : ''}${known.join(', ')}`;
  return `unknown key ${show(prefix + name)} (${hint})`;
}

/** Parse configuration text. Cross-setting checks that flags can change happen in resolve. */
export function parseMonitorConfig(text: string, file: string): ConfigResult<MonitorFileConfig> {
  try {
    return parseUnsafe(text, file);
  } catch (e) {
    // Not expected; the guarantee is that a config never crashes the monitor.
    return { ok: false, errors: [{ file, line: 0, message: `cannot parse configuration: ${(e as Error)?.message ?? String(e)}` }] };
  }
}

function parseUnsafe(text: string, file: string): ConfigResult<MonitorFileConfig> {
  if (text.length > MAX_CONFIG_BYTES) {
    return { ok: false, errors: [{ file, line: 0, message: `file too large (more than ${MAX_CONFIG_BYTES} bytes)` }] };
  }
  const errors: ConfigError[] = [];
  const err = (line: number, message: string): void => {
    if (errors.length < MAX_ERRORS) errors.push({ file, line, message });
  };
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  // (Duplicate keys are found below: yaml's own check is quadratic in the number of keys.)
  const lineAt = (offset: number): number => lc.linePos(Math.max(0, Math.min(offset, text.length))).line;
  for (const e of [...doc.errors, ...doc.warnings]) {
    const message = e.code === 'MULTIPLE_DOCS' ? 'only one YAML document is allowed (found a second one)' : e.message.split('\n')[0];
    err(lineAt(e.pos[0]), `YAML: ${message}`);
  }
  if (errors.length > 0) return { ok: false, errors };

  const values: Record<string, unknown> = {};
  const lines: Partial<Record<Key, number>> = {};
  const present = new Set<Key>(); // written in the file, valid or not
  // An alias whose anchor is missing resolves to nothing; it must not read as "not set".
  const UNRESOLVED = Symbol('unresolved alias');
  const deref = (node: unknown): unknown => (isAlias(node) ? (node.resolve(doc as Document) ?? UNRESOLVED) : node);
  const unresolved = (node: unknown): string => `YAML: unknown alias *${isAlias(node) ? node.source : ''} (its &anchor must come before it)`;
  const lineOf = (node: unknown, fallback: number): number => {
    const range = (node as { range?: readonly number[] | null } | null)?.range;
    return range && typeof range[0] === 'number' ? lineAt(range[0]) : fallback;
  };
  const isNull = (node: unknown): boolean => node === null || node === undefined || (isScalar(node) && node.value === null);

  const walk = (map: YAMLMap, fields: ReadonlyMap<string, Entry>, prefix: string): void => {
    const mapLine = lineOf(map, 1);
    const seen = new Map<string, number>();
    for (const pair of map.items) {
      if (errors.length >= MAX_ERRORS) return; // also bounds the alias look-ups
      const keyNode = deref(pair.key);
      const keyLine = lineOf(pair.key, lineOf(pair.value, mapLine));
      if (keyNode === UNRESOLVED) {
        err(keyLine, unresolved(pair.key));
        continue;
      }
      const name = isScalar(keyNode) && keyNode.value !== null && typeof keyNode.value !== 'object' ? String(keyNode.value) : null;
      if (name === null) {
        err(keyLine, `${prefix ? `${prefix.slice(0, -1)}: ` : ''}expected a plain key (name: value), found ${describe(keyNode)}`);
        continue;
      }
      const first = seen.get(name);
      if (first !== undefined) {
        err(keyLine, `duplicate key ${show(prefix + name)} (first on line ${first})`);
        continue;
      }
      seen.set(name, keyLine);
      const entry = fields.get(name);
      if (!entry) {
        err(keyLine, unknownKey(prefix, name, [...fields.keys()]));
        continue;
      }
      const valueNode = deref(pair.value);
      const valueLine = lineOf(valueNode, keyLine);
      if (valueNode === UNRESOLVED) {
        err(lineOf(pair.value, keyLine), unresolved(pair.value));
        continue;
      }
      if (isNull(valueNode)) continue; // `key:` with nothing = the default
      if (entry.kind === 'leaf') present.add(entry.field);
      if (entry.kind === 'section') {
        if (isMap(valueNode)) walk(valueNode, entry.fields, `${prefix}${name}.`);
        else err(valueLine, `${prefix}${name}: ${describe(valueNode)}: expected a mapping of ${[...entry.fields.keys()].join(', ')}`);
        continue;
      }
      let r: { value: unknown } | { error: string };
      try {
        r = entry.read(valueNode, (n) => lineOf(n, valueLine));
      } catch (e) {
        if (!(e instanceof MethodError)) throw e;
        err(e.line, e.message);
        continue;
      }
      if ('error' in r) {
        err(valueLine, `${prefix}${name} ${r.error}`);
        continue;
      }
      values[entry.field] = r.value;
      lines[entry.field] = keyLine;
    }
  };

  const top = deref(doc.contents);
  if (top === UNRESOLVED) {
    err(lineOf(doc.contents, 1), unresolved(doc.contents));
  } else if (isMap(top)) {
    walk(top, SCHEMA, '');
  } else if (!isNull(top)) {
    err(lineOf(top, 1), `expected a mapping of settings (name: value), found ${describe(top)}`);
  }

  const v = values as MonitorFileValues;
  // (An invalid expected was reported already; don't also report it as missing.)
  if (v.quorumPolicy === 'majority' && !present.has('quorumExpected')) {
    err(lines.quorumPolicy ?? 1, 'quorum.policy majority needs quorum.expected (the cluster size)');
  }
  if (v.quorumWaitForAll === true && !present.has('quorumExpected')) {
    err(lines.quorumWaitForAll ?? 1, 'quorum.wait_for_all needs quorum.expected (the nodes to wait for)');
  }

  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { file, found: true, values: v, lines } };
}

/**
 * Read the configuration file. A missing file is an error, unless `optional` (the default
 * path when --config was not given): then nothing is set and the defaults apply.
 */
export function loadMonitorConfig(path: string, opts: { optional?: boolean } = {}): ConfigResult<MonitorFileConfig> {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_CONFIG_BYTES) {
      return { ok: false, errors: [{ file: path, line: 0, message: `file too large (more than ${MAX_CONFIG_BYTES} bytes)` }] };
    }
    text = buf.toString('utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code ?? 'error';
    if (code === 'ENOENT' && opts.optional) return { ok: true, config: { file: path, found: false, values: {}, lines: {} } };
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : 'cannot read it';
    return { ok: false, errors: [{ file: path, line: 0, message: `cannot read configuration: ${why} (${code})` }] };
  }
  return parseMonitorConfig(text, path);
}

// ---------------------------------------------------------------------------------------------
// Overrides and the final configuration

const COMMAND_LINE = 'command line';
const ENVIRONMENT = 'environment';

/**
 * Apply flags and environment (PEERHA_ROOT, PEERHA_NODE) to what the file set:
 * flag > env > file > default. node defaults to the short host name. root is required.
 */
export function resolveMonitorConfig(
  fileConfig: MonitorFileConfig,
  overrides: MonitorOverrides,
  env: Readonly<Record<string, string | undefined>>,
  hostname: string = safeHostname(),
): ConfigResult {
  const f = fileConfig.values;
  const errors: ConfigError[] = [];
  const fileErr = (key: Key | null, message: string): void => {
    errors.push({ file: fileConfig.file, line: key === null ? 0 : (fileConfig.lines[key] ?? 0), message });
  };
  const cliErr = (message: string): void => void errors.push({ file: COMMAND_LINE, line: 0, message });
  const envErr = (message: string): void => void errors.push({ file: ENVIRONMENT, line: 0, message });
  const envValue = (name: string): string | undefined => {
    const v = env[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };

  // root
  let root: string | undefined;
  const envRoot = envValue('PEERHA_ROOT');
  if (overrides.root !== undefined) {
    if (overrides.root !== '' && !overrides.root.includes('\u0000')) root = overrides.root;
    else cliErr(`--root ${show(overrides.root)}: expected the shared directory`);
  } else if (envRoot !== undefined) {
    if (!envRoot.includes('\u0000')) root = envRoot;
    else envErr('PEERHA_ROOT must not contain a NUL character');
  } else if (f.root !== undefined) {
    root = f.root;
  } else {
    fileErr(null, `root: the shared directory is required: set root: in ${fileConfig.file}, --root or PEERHA_ROOT`);
  }

  // node
  let node: string | undefined;
  const envNode = envValue('PEERHA_NODE');
  if (overrides.node !== undefined) {
    if (validNodeName(overrides.node)) node = overrides.node;
    else cliErr(`--node ${show(overrides.node)}: ${NODE_HINT}`);
  } else if (envNode !== undefined) {
    if (validNodeName(envNode)) node = envNode;
    else envErr(`PEERHA_NODE ${show(envNode)}: ${NODE_HINT}`);
  } else if (f.node !== undefined) {
    node = f.node;
  } else {
    const short = hostname.split('.')[0] ?? '';
    if (validNodeName(short)) node = short;
    else fileErr(null, `node: not set, and the host name ${show(hostname)} is not a valid node name; set node: in ${fileConfig.file}, --node or PEERHA_NODE`);
  }

  // cycle and timeout
  type Source = 'flag' | 'file' | 'default';
  const duration = (
    flag: string | undefined,
    name: string,
    key: 'cycleMs' | 'timeoutMs' | 'stopTimeoutMs',
    fallback: number,
    check: (ms: number) => string | null,
  ): { ms: number; source: Source } | null => {
    if (flag !== undefined) {
      const ms = parseDuration(flag);
      const why = typeof ms === 'number' ? check(ms) : `${show(flag)}: ${ms.error}`;
      if (why !== null || typeof ms !== 'number') {
        cliErr(`--${name} ${why}`);
        return null;
      }
      return { ms, source: 'flag' };
    }
    const v = f[key];
    return v !== undefined ? { ms: v, source: 'file' } : { ms: fallback, source: 'default' };
  };
  const cycle = duration(overrides.cycle, 'cycle', 'cycleMs', MONITOR_DEFAULTS.cycleMs, checkCycle);
  const timeout = duration(overrides.timeout, 'timeout', 'timeoutMs', MONITOR_DEFAULTS.timeoutMs, checkPositive);
  if (cycle && timeout && timeout.ms < 2 * cycle.ms) {
    const message =
      `timeout ${formatDuration(timeout.ms)} must be at least 2 × cycle (2 × ${formatDuration(cycle.ms)} = ${formatDuration(2 * cycle.ms)})` +
      (timeout.source === 'default' ? ': set a longer timeout' : '');
    // Point at the setting that was written down: the timeout if it was, else the cycle.
    const at = timeout.source !== 'default' ? timeout : cycle;
    if (at.source === 'flag') cliErr(message);
    else fileErr(at === timeout ? 'timeoutMs' : 'cycleMs', message);
  }

  // The watchdog fires timeout/2 after the last pet and then has stop_timeout for the stop
  // entries; peers take over only after timeout: it must cover both.
  const selfFence = f.selfFence ?? MONITOR_DEFAULTS.selfFence;
  const stopTimeout = duration(overrides.stopTimeout, 'stop-timeout', 'stopTimeoutMs', timeout ? defaultStopTimeoutMs(timeout.ms) : 0, () => null);
  if (timeout && stopTimeout && selfFence && stopTimeout.source !== 'default') {
    const most = defaultStopTimeoutMs(timeout.ms);
    if (stopTimeout.ms > most) {
      const message =
        `stop_timeout ${formatDuration(stopTimeout.ms)} is too long for timeout ${formatDuration(timeout.ms)}: the watchdog fires at timeout/2 ` +
        `and must finish the stop entries before peers take over at timeout (timeout/2 + stop_timeout + ${STOP_MARGIN_MS}ms ≤ timeout); ` +
        `set stop_timeout to at most ${formatDuration(most)} or timeout to at least ${formatDuration(minTimeoutForStop(stopTimeout.ms))}`;
      if (stopTimeout.source === 'flag') cliErr(message);
      else fileErr('stopTimeoutMs', message);
    }
  }

  if (errors.length > 0 || root === undefined || node === undefined || !cycle || !timeout || !stopTimeout) {
    return { ok: false, errors };
  }
  const expected = f.quorumExpected;
  return {
    ok: true,
    config: {
      root,
      node,
      cycleMs: cycle.ms,
      timeoutMs: timeout.ms,
      stopTimeoutMs: stopTimeout.ms,
      stopLevel: f.stopLevel ?? DEFAULT_STOP_LEVELS,
      visibilityLagMs: f.visibilityLagMs ?? MONITOR_DEFAULTS.visibilityLagMs,
      balance: f.balance ?? MONITOR_DEFAULTS.balance,
      failCooldownCycles: f.failCooldownCycles ?? MONITOR_DEFAULTS.failCooldownCycles,
      quorum: {
        policy: f.quorumPolicy ?? (expected !== undefined ? 'majority' : 'adaptive'),
        ...(expected !== undefined ? { expected } : {}),
        waitForAll: f.quorumWaitForAll ?? MONITOR_DEFAULTS.waitForAll,
      },
      fence: {
        ...(f.fenceCommand !== undefined ? { command: f.fenceCommand } : {}),
        action: f.fenceAction ?? 'off',
        delayBaseMs: f.fenceDelayBaseMs ?? 0,
        delayMaxMs: f.fenceDelayMaxMs ?? 0,
        priorityDelayMs: f.fencePriorityDelayMs ?? 0,
        retryMaxMs: f.fenceRetryMaxMs ?? 60_000,
        methods: f.fenceMethods ?? (f.fenceCommand !== undefined ? [{ kind: 'command', line: fileConfig.lines.fenceCommand ?? 0, command: f.fenceCommand }] : []),
        timeoutMs: f.fenceTimeoutMs ?? MONITOR_DEFAULTS.fenceTimeoutMs,
      },
      selfFence,
      nice: f.nice ?? MONITOR_DEFAULTS.nice,
      stateDir: f.stateDir ?? MONITOR_DEFAULTS.stateDir,
      ...(f.sharedGroup !== undefined ? { sharedGroup: f.sharedGroup } : {}),
      ...(f.metricsListen !== undefined ? { metrics: { listen: f.metricsListen } } : {}),
      logLevel: f.logLevel ?? MONITOR_DEFAULTS.logLevel,
      configFile: fileConfig.found ? fileConfig.file : null,
      ...(f.alerts !== undefined ? { alerts: f.alerts } : {}),
    },
  };
}

function safeHostname(): string {
  try {
    return osHostname();
  } catch {
    return '';
  }
}
