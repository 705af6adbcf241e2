import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatError,
  loadMonitorConfig,
  parseDuration,
  parseMonitorConfig,
  resolveMonitorConfig,
  type ConfigResult,
  type MonitorConfig,
  type MonitorFileConfig,
  type MonitorOverrides,
} from '../../src/config/monitor.js';
import type { MonitorSettings } from '../../src/monitor/state.js';

const FILE = '/etc/peerha/peerha.yaml';
const HOST = 'web1.example.com';

function parse(text: string, file = FILE): MonitorFileConfig {
  const r = parseMonitorConfig(text, file);
  if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
  return r.config;
}

function resolve(text: string, overrides: MonitorOverrides = { root: '/srv/ha' }, env: Record<string, string | undefined> = {}, host = HOST): ConfigResult {
  const f = parseMonitorConfig(text, FILE);
  if (!f.ok) return f;
  return resolveMonitorConfig(f.config, overrides, env, host);
}

function ok(text: string, overrides?: MonitorOverrides, env?: Record<string, string | undefined>): MonitorConfig {
  const r = resolve(text, overrides, env);
  if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
  return r.config;
}

/** The formatted errors of a configuration that must fail. */
function errs(text: string, overrides?: MonitorOverrides, env?: Record<string, string | undefined>, host?: string): string[] {
  const r = resolve(text, overrides, env, host);
  if (r.ok) throw new Error(`expected errors for ${JSON.stringify(text)}`);
  return r.errors.map(formatError);
}

const DEFAULTS: MonitorConfig = {
  root: '/srv/ha',
  node: 'web1',
  cycleMs: 1000,
  timeoutMs: 5000,
  stopTimeoutMs: 2400,
  stopLevel: { default: 'stop', groups: {} },
  visibilityLagMs: 0,
  balance: 1.5,
  failCooldownCycles: 10,
  quorum: { policy: 'adaptive', waitForAll: false },
  fence: { timeoutMs: 30_000, action: 'off', delayBaseMs: 0, delayMaxMs: 0, priorityDelayMs: 0, retryMaxMs: 60_000, methods: [] },
  selfFence: true,
  nice: -10,
  stateDir: '/run/peerha',
  logLevel: 'info',
  configFile: FILE,
};

describe('monitor config: defaults and values', () => {
  it('an empty file, comments only, or empty sections give every default', () => {
    for (const text of ['', '\n', '# nothing here\n', '---\n', 'quorum:\nfence:\nlog:\n', 'cycle:\nnode:\n', '\uFEFF# bom\n']) {
      expect(ok(text), JSON.stringify(text)).toEqual(DEFAULTS);
    }
  });

  it('sets every key', () => {
    const text = [
      'root: /mnt/shared/peerha',
      'node: db-2.rack_1',
      'cycle: 500ms',
      'timeout: 3s',
      'visibility_lag: 1.5s',
      'balance: 2',
      'fail_cooldown: 0',
      'quorum:',
      '  policy: none',
      '  expected: 4',
      '  wait_for_all: true',
      'fence:',
      '  command: "ipmitool -H bmc-$1 power off"',
      '  timeout: 1m',
      'self_fence: false',
      'state_dir: /var/lib/peerha',
      'log:',
      '  level: trace',
      'shared_group: monitoring',
      'nice: 0',
      '',
    ].join('\n');
    const f = parse(text);
    expect(Object.keys(f.lines)).toHaveLength(17);
    expect(f.lines).toMatchObject({ root: 1, cycleMs: 3, quorumPolicy: 9, quorumWaitForAll: 11, fenceTimeoutMs: 14, logLevel: 18, sharedGroup: 19 });
    expect(resolveMonitorConfig(f, {}, {}, HOST)).toEqual({
      ok: true,
      config: {
        root: '/mnt/shared/peerha',
        node: 'db-2.rack_1',
        cycleMs: 500,
        timeoutMs: 3000,
        stopTimeoutMs: 1400,
        stopLevel: { default: 'stop', groups: {} },
        visibilityLagMs: 1500,
        balance: 2,
        failCooldownCycles: 0,
        quorum: { policy: 'none', expected: 4, waitForAll: true },
        fence: { ...DEFAULTS.fence, command: 'ipmitool -H bmc-$1 power off', timeoutMs: 60_000, methods: [{ kind: 'command', line: 13, command: 'ipmitool -H bmc-$1 power off' }] },
        selfFence: false,
        nice: 0,
        stateDir: '/var/lib/peerha',
        sharedGroup: 'monitoring',
        logLevel: 'trace',
        configFile: FILE,
      },
    });
  });

  it('accepts flow style, anchors and aliases, and numeric node names as written', () => {
    const c = ok('root: &r /srv/x\nstate_dir: *r\nquorum: {expected: 3}\nfence: {command: /bin/fence}\nnode: 007\nbalance: 0.25\n', {});
    expect(c.root).toBe('/srv/x');
    expect(c.stateDir).toBe('/srv/x');
    expect(c.node).toBe('007');
    expect(c.balance).toBe(0.25);
    expect(c.fence.command).toBe('/bin/fence');
    expect(ok('root: /crlf\r\ncycle: 2s\r\nquorum:\r\n  expected: 2\r\n', {})).toMatchObject({ root: '/crlf', cycleMs: 2000, quorum: { expected: 2 } });
    expect(errs('root: /crlf\r\n\r\nbad: 1\r\n', {})[0]).toMatch(/:3: unknown key "bad"/);
  });

  it('quorum policy defaults to majority when expected is set, else adaptive', () => {
    expect(ok('quorum:\n  expected: 3\n').quorum).toEqual({ policy: 'majority', expected: 3, waitForAll: false });
    expect(ok('quorum:\n  wait_for_all: false\n').quorum).toEqual({ policy: 'adaptive', waitForAll: false });
    expect(ok('quorum:\n  policy: adaptive\n  expected: 5\n  wait_for_all: true\n').quorum).toEqual({ policy: 'adaptive', expected: 5, waitForAll: true });
    expect(ok('quorum:\n  policy: majority\n  expected: 1\n').quorum.policy).toBe('majority');
  });

  it('the resolved config is what the monitor takes', () => {
    const settings: MonitorSettings = ok(''); // compile-time check (tsc over this file)
    expect(settings.quorum.policy).toBe('adaptive');
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['2s', 2000],
    ['1m', 60_000],
    ['1.5s', 1500],
    ['2', 2000],
    ['0.5', 500],
    ['.25', 250],
    ['0', 0],
    ['0ms', 0],
    ['1.5m', 90_000],
    ['1h', 3_600_000],
    ['2.0005s', 2001],
    ['1.1s', 1100],
    [' 3s ', 3000],
    ['2147483647ms', 2 ** 31 - 1],
  ])('parseDuration(%j) = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 's', 'ms', '2x', '2 s', '2S', '1d', '1e3', '0x10', '+2', '1.', '1,5s', 'Infinity', 'NaN', '-1', '-1s', '--1', '1s2', '2ms ms', '3000000000ms', '99999999m'])(
    'parseDuration(%j) is an error',
    (text) => {
      const r = parseDuration(text);
      expect(typeof r).toBe('object');
      expect((r as { error: string }).error).toMatch(/expected a duration|negative|too long/);
    },
  );

  it('negative durations say so', () => {
    expect(parseDuration('-1s')).toEqual({ error: 'must not be negative' });
  });

  it('YAML numbers, numeric strings and unit strings all work in the file', () => {
    const table: Array<[string, number]> = [
      ['1', 1000],
      ['1.5', 1500],
      ['"2"', 2000],
      ["'0.1'", 100],
      ['100ms', 100],
      ['"1m"', 60_000],
      ['.5', 500],
    ];
    for (const [yaml, ms] of table) expect(ok(`cycle: ${yaml}\ntimeout: 2m\n`).cycleMs, yaml).toBe(ms);
  });

  it('formatDuration round-trips through parseDuration', () => {
    for (const ms of [0, 1, 99, 100, 999, 1000, 1001, 1234, 1500, 12_345_678, 59_999, 60_000, 61_000, 90_000, 120_000, 2 ** 31 - 1]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
    expect([500, 2000, 1500, 60_000, 90_000, 0].map(formatDuration)).toEqual(['500ms', '2s', '1.5s', '1m', '90s', '0s']);
  });
});

describe('monitor config errors name file:line', () => {
  it('unknown top-level key, with a suggestion or the list of keys', () => {
    expect(errs('root: /x\n\ncycel: 1s\n')).toEqual([`${FILE}:3: unknown key "cycel" (did you mean "cycle"?)`]);
    expect(errs('failCooldown: 3\n')).toEqual([`${FILE}:1: unknown key "failCooldown" (did you mean "fail_cooldown"?)`]);
    const [e] = errs('# c\nfrobnicate: yes\n');
    expect(e).toMatch(new RegExp(`^${FILE}:2: unknown key "frobnicate" \\(expected root, node, cycle, .*log, alerts\\)$`));
  });

  it('unknown nested keys, at their own line', () => {
    expect(errs('quorum:\n  expected: 3\n  polcy: majority\n')).toEqual([`${FILE}:3: unknown key "quorum.polcy" (did you mean "quorum.policy"?)`]);
    expect(errs('fence:\n  command: x\n\n  retries: 3\n')[0]).toMatch(/:4: unknown key "fence\.retries" \(expected in fence: command, timeout, action, delay_base, delay_max, priority_delay, retry_max, methods\)$/);
    expect(errs('log:\n  level: info\n  file: /var/log/x\n')[0]).toMatch(/:3: unknown key "log\.file"/);
    expect(errs('quorum: {expected: 3, nodes: [a, b]}\n')[0]).toMatch(/:1: unknown key "quorum\.nodes"/);
  });

  it('bad values, each at the line of the value', () => {
    const table: Array<[string, RegExp]> = [
      ['cycle: 2x', /:1: cycle "2x": expected a duration such as 500ms, 2s, 1m, 1\.5s or a number of seconds$/],
      ['cycle: 50ms', /:1: cycle 50ms is too short \(at least 100ms\)$/],
      ['cycle: 61s', /:1: cycle 61s is too long \(at most 1m\)$/],
      ['cycle: true', /:1: cycle true: expected a duration/],
      ['cycle: [1]', /:1: cycle a list: expected a duration/],
      ['timeout: -5s', /:1: timeout "-5s": must not be negative$/],
      ['timeout: 0', /:1: timeout must be more than 0$/],
      ['visibility_lag: 1 h', /:1: visibility_lag "1 h": expected a duration/],
      ['balance: 0', /:1: balance 0: expected a number more than 0$/],
      ['balance: -1', /:1: balance -1: expected a number more than 0$/],
      ['balance: "1.5"', /:1: balance "1\.5": expected a number more than 0$/],
      ['balance: .inf', /:1: balance \.inf: expected a number/],
      ['fail_cooldown: -1', /:1: fail_cooldown -1: expected a whole number of cycles \(0 or more\)$/],
      ['fail_cooldown: 2.5', /:1: fail_cooldown 2\.5: expected a whole number/],
      ['node: a/b', /:1: node "a\/b": expected a node name \(\[A-Za-z0-9\._-\], 1 to 63 characters, not "\." or "\.\."\)$/],
      ['node: ..', /:1: node "\.\.": expected a node name/],
      [`node: ${'n'.repeat(64)}`, /:1: node "n{40}…": expected a node name/],
      ['node: "a b"', /:1: node "a b": expected a node name/],
      ['node: {a: 1}', /:1: node a mapping: expected a node name/],
      ['root: srv/ha', /:1: root "srv\/ha": expected an absolute path \(starting with \/\)$/],
      ['root: ""', /:1: root is empty: expected the shared directory$/],
      ['root: "/a\\0b"', /:1: root must not contain a NUL character$/],
      ['state_dir: run', /:1: state_dir "run": expected an absolute path/],
      ['fence: {command: [a]}', /:1: fence\.command a list: expected a shell command$/],
      ['fence:\n  timeout: 0s', /:2: fence\.timeout must be more than 0$/],
      ['self_fence: yes', /:1: self_fence "yes": expected true or false$/],
      ['nice: -21', /:1: nice -21: expected an integer from -20 to 19/],
      ['nice: 2.5', /:1: nice 2.5: expected an integer from -20 to 19/],
      ['quorum:\n  policy: most', /:2: quorum\.policy "most": expected one of majority, adaptive, none$/],
      ['quorum:\n  expected: 0', /:2: quorum\.expected 0: expected a whole number of nodes \(1 or more\)$/],
      ['quorum:\n  expected: "3"', /:2: quorum\.expected "3": expected a whole number of nodes/],
      ['quorum:\n  wait_for_all: 1', /:2: quorum\.wait_for_all 1: expected true or false$/],
      ['quorum: majority', /:1: quorum: "majority": expected a mapping of policy, expected, wait_for_all$/],
      ['log: debug', /:1: log: "debug": expected a mapping of level$/],
      ['log:\n  level: verbose', /:2: log\.level "verbose": expected one of trace, debug, info, warn, error, fatal$/],
      ['cycle:\n  2x', /:2: cycle "2x"/],
      ['- root: /x', /:1: expected a mapping of settings \(name: value\), found a list$/],
      ['just text', /:1: expected a mapping of settings \(name: value\), found "just text"$/],
      ['? [a, b]\n: 1', /:1: expected a plain key \(name: value\), found a list$/],
    ];
    for (const [yaml, re] of table) {
      const e = errs(`${yaml}\n`);
      expect(e, yaml).toHaveLength(1);
      expect(e[0]!.startsWith(`${FILE}:`), yaml).toBe(true);
      expect(e[0], yaml).toMatch(re);
    }
  });

  it('policy majority without expected, wait_for_all without expected', () => {
    expect(errs('root: /x\nquorum:\n  policy: majority\n')).toEqual([`${FILE}:3: quorum.policy majority needs quorum.expected (the cluster size)`]);
    expect(errs('quorum:\n\n  wait_for_all: true\n')).toEqual([`${FILE}:3: quorum.wait_for_all needs quorum.expected (the nodes to wait for)`]);
    expect(ok('quorum:\n  wait_for_all: false\n').quorum.waitForAll).toBe(false);
    // An invalid expected is one error, not also "missing".
    expect(errs('quorum:\n  policy: majority\n  expected: many\n')).toEqual([`${FILE}:3: quorum.expected "many": expected a whole number of nodes (1 or more)`]);
  });

  it('timeout shorter than 2 × cycle: at the timeout, or at the cycle when the timeout is the default', () => {
    expect(errs('cycle: 2s\ntimeout: 3s\n')).toEqual([`${FILE}:2: timeout 3s must be at least 2 × cycle (2 × 2s = 4s)`]);
    expect(errs('# x\ncycle: 3s\n')).toEqual([`${FILE}:2: timeout 5s must be at least 2 × cycle (2 × 3s = 6s): set a longer timeout`]);
    expect(errs('timeout: 1.5s\n')).toEqual([`${FILE}:1: timeout 1.5s must be at least 2 × cycle (2 × 1s = 2s)`]);
    expect(ok('cycle: 2s\ntimeout: 4s\n').timeoutMs).toBe(4000);
    expect(ok('cycle: 100ms\ntimeout: 200ms\n')).toMatchObject({ cycleMs: 100, timeoutMs: 200 });
  });

  it('stop_timeout: default and most timeout/2 − 100ms; a longer one is refused where it was set (the watchdog must finish before peers take over)', () => {
    expect(ok('timeout: 1s\ncycle: 250ms\n').stopTimeoutMs).toBe(400);
    expect(ok('stop_timeout: 2s\n').stopTimeoutMs).toBe(2000);
    expect(ok('stop_timeout: 0\n').stopTimeoutMs).toBe(0);
    expect(errs('timeout: 5s\nstop_timeout: 3s\n')).toEqual([
      `${FILE}:2: stop_timeout 3s is too long for timeout 5s: the watchdog fires at timeout/2 and must finish the stop entries before peers take over at timeout (timeout/2 + stop_timeout + 100ms ≤ timeout); set stop_timeout to at most 2.4s or timeout to at least 6.2s`,
    ]);
    expect(errs('stop_timeout: 1s\n', { root: '/srv/ha', timeout: '2s' })).toEqual([expect.stringMatching(/:1: stop_timeout 1s is too long for timeout 2s.*at most 900ms/)]);
    expect(errs('', { root: '/srv/ha', stopTimeout: '3s' })).toEqual([expect.stringMatching(/stop_timeout 3s is too long for timeout 5s/)]);
    // Without the watchdog nothing runs stop entries after a crash: no bound to keep.
    expect(ok('self_fence: false\nstop_timeout: 30s\n').stopTimeoutMs).toBe(30_000);
  });

  it('stop_level: one level, or default plus per group; never plan or test', () => {
    expect(ok('').stopLevel).toEqual({ default: 'stop', groups: {} });
    expect(ok('stop_level: down\n').stopLevel).toEqual({ default: 'down', groups: {} });
    expect(ok('stop_level:\n  default: off\n  web: web-down\n').stopLevel).toEqual({ default: 'off', groups: { web: 'web-down' } });
    expect(ok('stop_level:\n  web: down\n').stopLevel).toEqual({ default: 'stop', groups: { web: 'down' } });
    expect(errs('stop_level: test\n')).toEqual([`${FILE}:1: stop_level "test" is the monitor's test level, not a stop level`]);
    expect(errs('x: 1\nstop_level:\n  web: a b\n')[1]).toMatch(/:3: stop_level.web: level "a b" must not contain whitespace/);
  });

  it('YAML syntax errors', () => {
    const table: Array<[string, RegExp]> = [
      ['root: /x\nquorum: [1\n', /:3: YAML: Flow sequence/],
      ['root: /x\nroot: /y\n', /:2: duplicate key "root" \(first on line 1\)$/],
      ['quorum:\n  expected: 3\n  expected: 4\n', /:3: duplicate key "quorum\.expected" \(first on line 2\)$/],
      ['quorum: {policy: none, policy: none}\n', /:1: duplicate key "quorum\.policy"/],
      ['cycle: 1s\n---\ncycle: 2s\n', /:2: YAML: only one YAML document is allowed/],
      ['root: /x\n\tcycle: 1s\n', /:2: YAML: Tabs are not allowed as indentation/],
      ['root: "/x\n', /:2: YAML: Missing closing "quote$/],
      ['root: /x\nfence:\n  command: x\n timeout: 1s\n', /:4: YAML: /],
      ['node: !secret n1\n', /:1: YAML: Unresolved tag: !secret$/],
      ['root: /x\ncycle: *nowhere\n', /:2: YAML: unknown alias \*nowhere \(its &anchor must come before it\)$/],
      ['cycle: *c\ntimeout: &c 2s\n', /:1: YAML: unknown alias \*c/],
      ['*k : 1\n', /:1: YAML: unknown alias \*k/],
    ];
    for (const [yaml, re] of table) {
      const r = parseMonitorConfig(yaml, FILE);
      expect(r.ok, yaml).toBe(false);
      if (r.ok) continue;
      expect(formatError(r.errors[0]!), yaml).toMatch(re);
      expect(r.errors.every((e) => e.file === FILE && !e.message.includes('\n')), yaml).toBe(true);
    }
  });

  it('reports every problem, not just the first', () => {
    const e = errs('cycle: 2x\nquorum:\n  polcy: 1\n  expected: 0\nnode: a/b\nlog:\n  level: loud\n');
    expect(e.map((x) => x.split(': ')[0])).toEqual([`${FILE}:1`, `${FILE}:3`, `${FILE}:4`, `${FILE}:5`, `${FILE}:7`]);
  });
});

describe('flags and environment', () => {
  const file = 'root: /file/root\nnode: filenode\ncycle: 2s\ntimeout: 10s\n';

  it('flag > env > file for root and node', () => {
    const env = { PEERHA_ROOT: '/env/root', PEERHA_NODE: 'envnode' };
    expect(ok(file, {}, {})).toMatchObject({ root: '/file/root', node: 'filenode' });
    expect(ok(file, {}, env)).toMatchObject({ root: '/env/root', node: 'envnode' });
    expect(ok(file, { root: '/flag/root', node: 'flagnode' }, env)).toMatchObject({ root: '/flag/root', node: 'flagnode' });
    expect(ok('', {}, env)).toMatchObject({ root: '/env/root', node: 'envnode' });
    expect(ok(file, {}, { PEERHA_ROOT: '', PEERHA_NODE: '' })).toMatchObject({ root: '/file/root', node: 'filenode' });
    // Relative paths from the command line or environment are the caller's business.
    expect(ok('', { root: 'rel/dir' }).root).toBe('rel/dir');
  });

  it('node defaults to the short host name', () => {
    expect(ok('', { root: '/r' }).node).toBe('web1');
    const r = resolveMonitorConfig(parse(''), { root: '/r' }, {}, 'plainhost');
    expect(r.ok && r.config.node).toBe('plainhost');
    expect(errs('', { root: '/r' }, {}, '')).toEqual([
      `${FILE}: node: not set, and the host name "" is not a valid node name; set node: in ${FILE}, --node or PEERHA_NODE`,
    ]);
    expect(errs('', { root: '/r' }, {}, 'bad host!.x')[0]).toMatch(/host name "bad host!\.x" is not a valid node name/);
    expect(ok('node: n7\n', { root: '/r' }, {}).node).toBe('n7');
  });

  it('cycle and timeout flags override the file, in duration syntax', () => {
    expect(ok(file, { cycle: '500ms' })).toMatchObject({ cycleMs: 500, timeoutMs: 10_000 });
    expect(ok(file, { timeout: '1m' })).toMatchObject({ cycleMs: 2000, timeoutMs: 60_000 });
    expect(ok(file, { cycle: '0.2', timeout: '1' })).toMatchObject({ cycleMs: 200, timeoutMs: 1000 });
    expect(ok('', { root: '/r', cycle: '2s', timeout: '4s' })).toMatchObject({ cycleMs: 2000, timeoutMs: 4000 });
    // A flag can repair what the file alone gets wrong: cycle 3s with the 5 s default timeout.
    expect(ok('cycle: 3s\n', { root: '/r', timeout: '6s' }).timeoutMs).toBe(6000);
  });

  it('bad flags and environment values are errors naming where they came from', () => {
    expect(errs(file, { cycle: 'fast' })).toEqual([
      'command line: --cycle "fast": expected a duration such as 500ms, 2s, 1m, 1.5s or a number of seconds',
    ]);
    expect(errs(file, { cycle: '10ms' })).toEqual(['command line: --cycle 10ms is too short (at least 100ms)']);
    expect(errs(file, { timeout: '0' })).toEqual(['command line: --timeout must be more than 0']);
    expect(errs(file, { node: 'a/b' })[0]).toMatch(/^command line: --node "a\/b": expected a node name/);
    expect(errs(file, { root: '' })).toEqual(['command line: --root "": expected the shared directory']);
    expect(errs(file, {}, { PEERHA_NODE: '..' })[0]).toMatch(/^environment: PEERHA_NODE "\.\.": expected a node name/);
    expect(errs(file, {}, { PEERHA_ROOT: '/a\u0000b' })).toEqual(['environment: PEERHA_ROOT must not contain a NUL character']);
  });

  it('timeout < 2 × cycle after overrides points at the flag or the file line', () => {
    expect(errs(file, { cycle: '6s' })).toEqual([`${FILE}:4: timeout 10s must be at least 2 × cycle (2 × 6s = 12s)`]);
    expect(errs(file, { timeout: '3s' })).toEqual(['command line: timeout 3s must be at least 2 × cycle (2 × 2s = 4s)']);
    expect(errs('', { root: '/r', cycle: '3s' })).toEqual(['command line: timeout 5s must be at least 2 × cycle (2 × 3s = 6s): set a longer timeout']);
  });

  it('root is required in the final configuration', () => {
    expect(errs('node: n1\n', {}, {})).toEqual([`${FILE}: root: the shared directory is required: set root: in ${FILE}, --root or PEERHA_ROOT`]);
    expect(errs('', {}, { PEERHA_NODE: 'n1' })[0]).toMatch(/root: the shared directory is required/);
  });
});

describe('loadMonitorConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file; errors carry its path', () => {
    const path = join(dir, 'peerha.yaml');
    writeFileSync(path, 'root: /srv\nquorum:\n  expected: 2\n');
    const r = loadMonitorConfig(path);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({ file: path, found: true, values: { root: '/srv', quorumExpected: 2 } });
    const c = resolveMonitorConfig(r.config, {}, {}, HOST);
    expect(c.ok && c.config).toMatchObject({ root: '/srv', configFile: path, quorum: { policy: 'majority', expected: 2 } });

    writeFileSync(path, 'root: /srv\n\nbogus: 1\n');
    const bad = loadMonitorConfig(path);
    expect(!bad.ok && bad.errors.map(formatError)).toEqual([`${path}:3: unknown key "bogus" (expected root, node, cycle, timeout, stop_timeout, stop_level, visibility_lag, balance, fail_cooldown, quorum, fence, self_fence, nice, state_dir, shared_group, metrics, log, alerts)`]);
  });

  it('a missing file is an error when given, the defaults when optional', () => {
    const missing = join(dir, 'nope.yaml');
    const r = loadMonitorConfig(missing);
    expect(!r.ok && r.errors.map(formatError)).toEqual([`${missing}: cannot read configuration: no such file (ENOENT)`]);
    const o = loadMonitorConfig(missing, { optional: true });
    expect(o).toEqual({ ok: true, config: { file: missing, found: false, values: {}, lines: {} } });
    if (!o.ok) return;
    expect(resolveMonitorConfig(o.config, { root: '/srv/ha' }, {}, HOST)).toEqual({ ok: true, config: { ...DEFAULTS, configFile: null } });
  });

  it('optional does not hide a file that exists but cannot be read', () => {
    const sub = join(dir, 'adir');
    mkdirSync(sub);
    const r = loadMonitorConfig(sub, { optional: true });
    expect(!r.ok && r.errors.map(formatError)).toEqual([`${sub}: cannot read configuration: is a directory (EISDIR)`]);
  });

  it('examples/peerha.yaml is valid and documents every key', () => {
    const path = fileURLToPath(new URL('../../examples/peerha.yaml', import.meta.url));
    const r = loadMonitorConfig(path);
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(Object.keys(r.config.lines).sort()).toEqual(
      ['root', 'node', 'cycleMs', 'timeoutMs', 'visibilityLagMs', 'balance', 'failCooldownCycles', 'quorumPolicy', 'quorumExpected', 'quorumWaitForAll', 'fenceCommand', 'fenceTimeoutMs', 'fenceAction', 'fenceDelayBaseMs', 'fenceDelayMaxMs', 'fencePriorityDelayMs', 'fenceRetryMaxMs', 'selfFence', 'nice', 'stateDir', 'logLevel'].sort(),
    );
    const c = resolveMonitorConfig(r.config, {}, {}, HOST);
    if (!c.ok) throw new Error(c.errors.map(formatError).join('\n'));
    // Everything not marked "example" in the file is the default.
    expect(c.config).toEqual({
      ...DEFAULTS,
      root: '/srv/peerha',
      node: 'node1',
      quorum: { policy: 'majority', expected: 3, waitForAll: false },
      fence: { ...DEFAULTS.fence, command: '/usr/local/sbin/fence-node', methods: [{ kind: 'command', line: c.config.fence.methods[0]?.line ?? 0, command: '/usr/local/sbin/fence-node' }] },
      configFile: path,
    });
    expect(readFileSync(path, 'utf8')).toMatch(/Precedence: command-line flag > environment > this file > default/);
  });
});

describe('junk never throws', () => {
  let seed = 11;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

  function check(text: string): void {
    let r: ReturnType<typeof parseMonitorConfig> | undefined;
    expect(() => (r = parseMonitorConfig(text, 'junk.yaml')), JSON.stringify(text)).not.toThrow();
    if (!r) return;
    if (r.ok) {
      const res = resolveMonitorConfig(r.config, { root: '/r' }, {}, 'h');
      if (res.ok) expect(res.config.timeoutMs).toBeGreaterThanOrEqual(2 * res.config.cycleMs);
      else for (const e of res.errors) expect(typeof e.message).toBe('string');
    } else {
      expect(r.errors.length).toBeGreaterThan(0);
      for (const e of r.errors) {
        expect(e.file).toBe('junk.yaml');
        expect(Number.isInteger(e.line) && e.line >= 0).toBe(true);
        expect(e.message.length).toBeGreaterThan(0);
      }
    }
  }

  it('random bytes', () => {
    for (let i = 0; i < 300; i++) {
      const n = Math.floor(rnd() * 200);
      check(Array.from({ length: n }, () => String.fromCharCode(Math.floor(rnd() * 256))).join(''));
    }
  });

  it('random YAML-ish token soup', () => {
    const tokens = ['root', 'node', 'cycle', 'timeout', 'quorum', 'fence', 'log', 'level', 'policy', 'expected', ':', ': ', '\n', '\n  ', '  ', '- ', '[', ']', '{', '}', ',', '&a ', '*a', '*b', '!!str ', '!x ', '"', "'", '#', '---', '...', '? ', '|', '>', '1', '-1', '1.5', '2s', 'true', 'null', '~', '.inf', '<<: ', '\t', '%YAML 1.2\n', '\u0000', '\uFEFF'];
    for (let i = 0; i < 1500; i++) {
      const n = Math.floor(rnd() * 40);
      check(Array.from({ length: n }, () => pick(tokens)).join(''));
    }
  });

  it('mutations of a valid configuration', () => {
    const base = readFileSync(fileURLToPath(new URL('../../examples/peerha.yaml', import.meta.url)), 'utf8');
    for (let i = 0; i < 300; i++) {
      const chars = Array.from(base);
      for (let k = 0; k < 1 + Math.floor(rnd() * 5); k++) {
        const at = Math.floor(rnd() * chars.length);
        const what = rnd();
        if (what < 0.4) chars.splice(at, 1);
        else if (what < 0.8) chars.splice(at, 0, pick([':', ' ', '\n', '-', '[', '{', '"', '&', '*', '!', 'x', '9', '\t']));
        else chars[at] = pick(['a', '0', ':', '\n', ' ']);
      }
      check(chars.join(''));
    }
  });

  it('large inputs are bounded', () => {
    const t0 = performance.now();
    check(Array.from({ length: 20_000 }, (_, i) => `k${i}: *a`).join('\n'));
    check('x: 1\n'.repeat(50_000));
    check('['.repeat(5000) + ']'.repeat(5000));
    expect(performance.now() - t0).toBeLessThan(10_000);
    const big = parseMonitorConfig(`# ${'x'.repeat(256 * 1024)}\n`, 'big.yaml');
    expect(!big.ok && big.errors.map(formatError)).toEqual(['big.yaml: file too large (more than 262144 bytes)']);
  });

  it('alias bombs are bounded', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    check(bomb);
    check(`root: /x\nquorum: &q {expected: 3}\nfence: *q\n`);
  });

  it('parseDuration and resolve take any strings', () => {
    for (let i = 0; i < 500; i++) {
      const s = Array.from({ length: Math.floor(rnd() * 12) }, () => pick(['1', '0', '.', 'm', 's', '-', ' ', 'e', '9', 'x', '\u0000'])).join('');
      const d = parseDuration(s);
      expect(typeof d === 'number' ? Number.isSafeInteger(d) && d >= 0 : typeof d.error === 'string').toBe(true);
      expect(() => resolveMonitorConfig(parse(''), { root: s, node: s, cycle: s, timeout: s }, { PEERHA_ROOT: s, PEERHA_NODE: s }, s)).not.toThrow();
    }
  });
});
