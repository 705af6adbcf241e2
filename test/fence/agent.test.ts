import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeAgent, parseMetadata, redact, redactParams } from '../../src/fence/agent.js';
import { runFenceMethod, testMethods } from '../../src/fence/fencer.js';
import { validateFenceMethods } from '../../src/fence/validate.js';
import type { FenceConfig, FenceMethod } from '../../src/config/monitor.js';
import { BIN } from '../helpers/daemon.js';
import { needFenceAgents } from '../helpers/needs.js';

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

const p = (name: string, value: string, line = 1) => ({ name, value, line });
const cfg = (methods: FenceMethod[], extra: Partial<FenceConfig> = {}): FenceConfig => ({
  timeoutMs: 10_000, action: 'off', delayBaseMs: 0, delayMaxMs: 0, priorityDelayMs: 0, retryMaxMs: 60_000, methods, ...extra,
});
type Runnable = Exclude<FenceMethod, { kind: 'manual' }>;

describe('fence agent metadata (real fence-agents)', () => {
  beforeAll(needFenceAgents);
  it('parses fence_dummy and fence_ipmilan: parameters with type, required, default; actions', () => {
    const dummy = describeAgent('fence_dummy')!;
    expect(dummy.name).toBe('fence_dummy');
    expect(dummy.actions).toEqual(expect.arrayContaining(['off', 'on', 'reboot', 'status']));
    expect(dummy.parameters.find((x) => x.name === 'status_file')).toMatchObject({ type: 'string', required: false, default: '/tmp/fence_dummy.status' });
    const ipmi = describeAgent('fence_ipmilan')!;
    expect(ipmi.parameters.find((x) => x.name === 'lanplus')).toMatchObject({ type: 'boolean' });
    expect(ipmi.parameters.find((x) => x.name === 'auth')?.choices).toEqual(['md5', 'password', 'none']);
    expect(ipmi.parameters.find((x) => x.name === 'ip')?.obsoletes).toBe('ipaddr');
  });

  it('never throws on junk XML', () => {
    expect(parseMetadata('not xml')).toBeNull();
    expect(parseMetadata('<resource-agent name="x"><parameters><parameter><content/></parameter>')?.parameters).toEqual([]);
  });

  it('peerha fence describe prints both agents; check flags a misspelled and a missing required parameter with file:line', () => {
    for (const a of ['fence_dummy', 'fence_ipmilan']) {
      const r = spawnSync(process.execPath, [BIN, 'fence', 'describe', a], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/PARAMETER\s+TYPE\s+REQUIRED\s+DEFAULT\s+DESCRIPTION/);
    }
    dir = mkdtempSync(join(tmpdir(), 'peerha-fence-'));
    const file = join(dir, 'peerha.yaml');
    writeFileSync(file, 'root: /srv/x\nfence:\n  methods:\n    - agent: fence_virsh\n      params:\n        ip: 10.0.0.1\n        usernme: admin\n      nodes:\n        n1: { plug: vm1 }\n', { mode: 0o600 });
    const r = spawnSync(process.execPath, [BIN, 'check', '--config', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`${file}:7: fence_virsh: unknown parameter "usernme" (did you mean "username"?)`);
    expect(r.stdout).toContain(`${file}:4: fence_virsh: missing required parameter username for node n1`);
  });

  it('validation: type errors and an uninstalled agent', () => {
    const errs = validateFenceMethods('f', [{ kind: 'agent', line: 3, agent: 'fence_ipmilan', params: [p('lanplus', 'maybe', 5), p('auth', 'rot13', 6), p('ip', 'x', 7)], nodes: {} }, { kind: 'agent', line: 9, agent: 'fence_nope', params: [], nodes: {} }], describeAgent);
    expect(errs.map((e) => `${e.line}: ${e.message}`)).toEqual([
      '5: fence_ipmilan: parameter lanplus expects a boolean (1 or 0), found "maybe"',
      '6: fence_ipmilan: parameter auth expects one of md5, password, none, found "rot13"',
      '9: fence agent fence_nope is not installed (or its metadata cannot be read); see peerha fence list',
    ]);
  });
});

describe('fencing through fence_dummy', () => {
  beforeAll(needFenceAgents);
  // Which method runs after which (fall-through, retries, manual confirmation) is the monitor's
  // policy, tested in test/monitor/step.test.ts and by the simulator; here one method at a time.
  it('off, then status to verify; a failing agent is a failure', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-fence-'));
    const status = join(dir, 'status');
    writeFileSync(status, 'on');
    const good: Runnable = { kind: 'agent', line: 1, agent: 'fence_dummy', params: [p('status_file', status)], nodes: {} };
    const bad: Runnable = { kind: 'agent', line: 1, agent: 'fence_dummy', params: [p('type', 'fail'), p('power_timeout', '1')], nodes: {} };
    const failed = await runFenceMethod(bad, 'n2', cfg([]));
    expect([failed.method, failed.result]).toEqual(['fence_dummy', 'failure']);
    const ok = await runFenceMethod(good, 'n2', cfg([]));
    expect([ok.method, ok.result, ok.action]).toEqual(['fence_dummy', 'success', 'off+status']);
    expect(readFileSync(status, 'utf8').trim()).toBe('off');
  });

  it('a timeout is a failure of its own kind; a command method exits 0 or not', async () => {
    const slow: Runnable = { kind: 'agent', line: 1, agent: 'fence_dummy', params: [p('random_sleep_range', '5'), p('delay', '3')], nodes: {} };
    const t0 = Date.now();
    const r = await runFenceMethod(slow, 'n2', cfg([], { timeoutMs: 500 }));
    expect(r.result).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await runFenceMethod({ kind: 'command', line: 1, command: 'test n2 =' }, 'n2', cfg([]))).result).toBe('success');
    expect((await runFenceMethod({ kind: 'command', line: 1, command: 'test n3 =' }, 'n2', cfg([]))).result).toBe('failure');
  });

  it('fence test runs status only and fences nothing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-fence-'));
    const status = join(dir, 'status');
    writeFileSync(status, 'on');
    const rs = await testMethods('n2', cfg([{ kind: 'agent', line: 1, agent: 'fence_dummy', params: [p('status_file', status)], nodes: {} }, { kind: 'manual', line: 1 }]));
    expect(rs.map((r) => r.result)).toEqual(['ok (on)', 'n/a']);
    expect(readFileSync(status, 'utf8').trim()).toBe('on');
  });

  it('secrets never appear in records or output', async () => {
    const secret = 'hunter2-very-secret';
    expect(redactParams({ password: secret, ip: '1.2.3.4' })).toEqual({ password: '****', ip: '1.2.3.4' });
    expect(redact(`login failed for admin/${secret}`, { passwd: secret })).toBe('login failed for admin/****');
    // fence_dummy echoes unknown options back on stderr ("Ignoring unknown option 'passwd=…'")
    const r = await runFenceMethod({ kind: 'agent', line: 1, agent: 'fence_dummy', params: [p('type', 'fail'), p('power_timeout', '1'), p('passwd', secret)], nodes: {} }, 'n2', cfg([]));
    expect(JSON.stringify(r)).not.toContain(secret);
  });
});
