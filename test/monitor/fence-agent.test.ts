// Fencing through the real fence_dummy (Debian fence-agents) with the watchdog self-fence off:
// a dead owner's group is taken over only after a fence succeeded (or an operator confirmed),
// exactly one node fences, failures and timeouts are retried with backoff, and no configured
// secret leaks into logs, hastat, `status --json` or fence history.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FenceRecord } from '../../src/fence/fencer.js';
import { Cluster, waitFor, webOnN3 } from '../helpers/cluster.js';
import { needFenceAgents } from '../helpers/needs.js';

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

const NODES = ['n1', 'n2', 'n3'];
const SECRET = 'S3cr3t-Fence-Pw';

/** fence.log records of every node, oldest first. */
function fenceLog(cl: Cluster): FenceRecord[] {
  const out: FenceRecord[] = [];
  for (const n of NODES) {
    const f = join(cl.root, 'nodes', n, 'fence.log');
    if (existsSync(f)) for (const l of readFileSync(f, 'utf8').split('\n').filter(Boolean)) out.push(JSON.parse(l) as FenceRecord);
  }
  return out.sort((a, b) => (a.time < b.time ? -1 : 1));
}

/** n3 is preferred for web and heartbeats before the others start, so it owns web; self-fence off. */
async function setup(methods: string, extra = '', timeout = '1s'): Promise<Cluster> {
  const cl = new Cluster({
    yaml: `self_fence: false\nquorum:\n  policy: none\nfence:\n  timeout: ${timeout}\n  retry_max: 2s\n${extra}  methods:\n${methods}`,
  });
  for (const n of NODES) writeFileSync(join(cl.dir, `${n}.power`), 'on');
  return webOnN3(cl);
}

/** Per-node fence_dummy power files: `off` writes "off" into the target's file. */
const DUMMY = `    - agent: fence_dummy
      params:
        passwd: ${SECRET}
      nodes:
${NODES.map((n) => `        ${n}: { status_file: $DIR/${n}.power }`).join('\n')}
`;

/** Poll until `done`, failing at once if web runs on a survivor before `allowed()` holds. */
async function takeoverOnlyAfter(cl: Cluster, allowed: () => boolean, what: string, timeoutMs: number): Promise<string> {
  let early: string | null = null;
  const owner = await waitFor(
    'web running on a survivor',
    () => {
      const o = cl.runningOn('web', 'start', ['n1', 'n2']) ?? [...(cl.placements(['n1', 'n2']).get('web') ?? [])].find((p) => p.level === 'start')?.node ?? null;
      if (o && !allowed()) early ??= `web started on ${o} before ${what}`;
      return early ? 'early' : cl.runningOn('web', 'start', ['n1', 'n2']);
    },
    timeoutMs,
  );
  expect(early).toBeNull();
  return owner;
}

describe('fencing with fence agents, no self-fence', () => {
  beforeAll(needFenceAgents);
  it('SIGKILL of the owner node: exactly one fencer runs fence_dummy off (then status); takeover waits for that success', async () => {
    c = await setup(DUMMY, '  delay_base: 1s\n');
    expect(await c.waitRunning('web', 'start', 20_000)).toBe('n3');
    await c.killNode('n3');
    const fencedOk = (): boolean => fenceLog(c!).some((r) => r.node === 'n3' && r.result === 'success');
    const owner = await takeoverOnlyAfter(c, fencedOk, 'a successful fence of n3', 30_000);
    expect(['n1', 'n2']).toContain(owner);
    expect(readFileSync(join(c.dir, 'n3.power'), 'utf8').trim()).toBe('off');
    expect(readFileSync(join(c.dir, 'n1.power'), 'utf8').trim()).toBe('on');
    // a few more cycles: still one fence of n3, run by the lowest live node
    await c.cyclesPass('n1', 8);
    const log = fenceLog(c);
    expect(log.map((r) => [r.fencer, r.node, r.method, r.action, r.result])).toEqual([['n1', 'n3', 'fence_dummy', 'off+status', 'success']]);
    // every survivor shows n3 fenced (the fencer's clstat carries it), not only the fencer
    await waitFor('n2 sees n3 fenced by n1', () => c!.hastat('n2')?.nodes.n3?.state === 'fenced' && c!.hastat('n2')?.nodes.n3?.fencedBy === 'n1', 5_000);
    expect(c.clstat('n1')?.fenced?.map((f) => f.node)).toEqual(['n3']);
    const hist = await c.cli(['fence', 'history', 'n3', '--root', c.root]);
    expect(hist.stdout).toMatch(/n3\s+n1\s+fence_dummy\s+off\+status\s+success/);
    // a clean restart ends the fenced state
    c.start('n3');
    await waitFor('n3 up again everywhere', () => NODES.every((n) => c!.hastat(n)?.nodes.n3?.state === 'up' || n === 'n3'), 15_000);
    expect(c.overlaps()).toEqual([]);
  }, 90_000);

  it('a failing and a timing-out agent are retried with backoff; no takeover until `peerha fence confirm`', async () => {
    const methods = `    - agent: fence_dummy
      params: { random_sleep_range: "5", delay: "3", passwd: ${SECRET} }
    - agent: fence_dummy
      params: { type: fail, power_timeout: "1" }
    - manual: true
`;
    // 2.5 s: the slow agent (3 s delay) times out, the failing one fails (after ~1 s)
    c = await setup(methods, '', '2500ms');
    expect(await c.waitRunning('web', 'start', 20_000)).toBe('n3');
    await c.killNode('n3');
    await waitFor('four attempts', () => fenceLog(c!).filter((r) => r.result === 'failure').length >= 4, 60_000);
    const log = fenceLog(c);
    expect(new Set(log.map((r) => r.fencer))).toEqual(new Set(['n1']));
    expect(log.filter((r) => r.result === 'success')).toEqual([]);
    expect(log.filter((r) => r.result === 'timeout').length).toBeGreaterThanOrEqual(4);
    expect(log.find((r) => r.method === 'manual')?.result).toBe('waiting');
    // backoff between attempts (from the end of one attempt's last agent call to the next
    // attempt's first): cycle (200 ms) doubling — 200, 400, 800 ms — plus up to a cycle of tick
    const starts = log.filter((r) => r.result === 'timeout').map((r) => Date.parse(r.time));
    const ends = log.filter((r) => r.result === 'failure').map((r) => Date.parse(r.time) + r.durationMs);
    const idle = starts.slice(1, 4).map((t, i) => t - ends[i]!);
    expect(idle[0]!).toBeGreaterThanOrEqual(150);
    expect(idle[2]!).toBeGreaterThan(idle[0]! + 300);
    expect(c.runningOn('web', 'start', ['n1', 'n2'])).toBeNull();
    expect([...(c.placements(['n1', 'n2']).get('web') ?? [])]).toEqual([]);
    const before = fenceLog(c).length;
    const confirm = await c.cli(['fence', 'confirm', 'n3', '--root', c.root]);
    expect(confirm.code).toBe(0);
    const owner = await c.waitRunning('web', 'start', 20_000, ['n1', 'n2']);
    expect(['n1', 'n2']).toContain(owner);
    expect(fenceLog(c).slice(before).some((r) => r.method === 'manual' && r.result === 'success')).toBe(true);
    expect(c.overlaps()).toEqual([]);

    // secrets: nowhere in logs, hastat, status --json or fence history
    const status = await c.cli(['status', '--root', c.root, '--json']);
    const history = await c.cli(['fence', 'history', '--root', c.root, '--json']);
    const texts = [
      ...NODES.map((n) => c!.monitors.get(n)?.output() ?? ''),
      ...NODES.map((n) => JSON.stringify(c!.hastat(n))),
      status.stdout,
      history.stdout,
      ...NODES.map((n) => (existsSync(join(c!.root, 'nodes', n, 'fence.log')) ? readFileSync(join(c!.root, 'nodes', n, 'fence.log'), 'utf8') : '')),
    ];
    expect(texts.join('\n').length).toBeGreaterThan(1000);
    for (const t of texts) expect(t).not.toContain(SECRET);
  }, 150_000);
});
