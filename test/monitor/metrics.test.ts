// The metrics and status page listener of real monitors: /metrics parses as Prometheus text and
// agrees with `peerha status --json` after a kill -9 failover and a fence; /api/hastat is the
// documented hastat; a taken port stops the monitor at start, naming the address.
import { createServer, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Hastat } from '../../src/cluster/hastat.js';
import { isRunning } from '../../src/config/clstat.js';
import { clusterPerTest, waitFor, webOnN3, type Cluster } from '../helpers/cluster.js';
import { get, listenOf, METRICS_YAML, sample, scrape } from '../helpers/metrics.js';
import { hastatSchema, validate } from '../helpers/schema.js';

const cluster = clusterPerTest();

/** What /metrics should say for a hastat, in the same words as the metrics. */
function expectedFrom(h: Hastat): Record<string, number> {
  const out: Record<string, number> = { peerha_quorum: h.quorum.ok ? 1 : 0, peerha_live_nodes: h.quorum.live, peerha_failovers_total: 0, peerha_groups_wanted: 0 };
  for (const [node, n] of Object.entries(h.nodes)) {
    out[`peerha_node_state{node="${node}",state="${n.state}"}`] = 1;
    out[`peerha_groups_running{node="${node}"}`] = 0;
  }
  for (const g of Object.values(h.groups)) {
    out.peerha_failovers_total! += g.failovers ?? 0;
    if (g.want === null || g.want === 'stop') continue;
    out.peerha_groups_wanted! += 1;
    for (const [node, i] of Object.entries(g.instances)) if (i.level === g.want && isRunning(i.state)) out[`peerha_groups_running{node="${node}"}`]! += 1;
  }
  return out;
}

/** The same keys, read from a scrape. */
async function observed(address: string, keys: readonly string[]): Promise<Record<string, number | undefined>> {
  const families = await scrape(address);
  const out: Record<string, number | undefined> = {};
  for (const k of keys) {
    const m = /^(\w+)(?:\{(.*)\})?$/.exec(k)!;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    out[k] = sample(families, m[1]!, labels);
  }
  return out;
}

async function statusJson(c: Cluster): Promise<Hastat> {
  const r = await c.cli(['status', '--root', c.root, '--json']);
  if (r.code !== 0) throw new Error(`status --json: ${r.stderr}`);
  return JSON.parse(r.stdout) as Hastat;
}

describe('metrics on a 3-node cluster', () => {
  it('after kill -9 of the owner and its fence, every survivor\'s /metrics matches status --json', async () => {
    const c = cluster({ yaml: `${METRICS_YAML}quorum:\n  policy: none\nfence:\n  command: $DIR/fence.sh\n  timeout: 2s\nalerts:\n  - command: "true"\n` });
    writeFileSync(join(c.dir, 'fence.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    await webOnN3(c);
    await c.waitRunning('web');
    expect(c.runningOn('web')).toBe('n3');
    const address = new Map<string, string>();
    for (const n of ['n1', 'n2', 'n3']) address.set(n, await listenOf(c.monitors.get(n)!));

    // Before: web on n3 (once n3's view shows it: the view follows the clstat by up to a cycle), nothing fenced.
    const before = await waitFor('web running on n3 in its metrics', async () => {
      const f = await scrape(address.get('n3')!);
      return sample(f, 'peerha_groups_running', { node: 'n3' }) === 1 ? f : null;
    }, 10_000, 100);
    expect(sample(before, 'peerha_fences_total', { result: 'success' })).toBe(0);

    await c.killNode('n3');
    const survivors = ['n1', 'n2'];
    const now = await c.waitRunning('web', 'start', 20_000, survivors);
    // n1 (the lowest live name) fences n3; both survivors then hold it fenced.
    await waitFor('n3 fenced in both views', () => survivors.every((n) => c.hastat(n)?.nodes.n3?.state === 'fenced' && c.hastat(n)?.groups.web?.failovers === 1), 15_000);

    let last = '';
    const matched = waitFor('metrics of n1 and n2 to match status --json', async () => {
      const h = await statusJson(c);
      const want = expectedFrom(h);
      for (const n of survivors) {
        const got = await observed(address.get(n)!, Object.keys(want));
        last = `${n}: want ${JSON.stringify(want)} got ${JSON.stringify(got)}`;
        if (JSON.stringify(got) !== JSON.stringify(want)) return false;
      }
      return true;
    }, 15_000, 200);
    await matched.catch((e: Error) => {
      throw new Error(`${e.message}; last difference: ${last}`);
    });
    const h = await statusJson(c);
    expect(h.nodes.n3?.state).toBe('fenced');
    expect(h.groups.web?.instances[now]?.level).toBe('start');

    const n1 = await scrape(address.get('n1')!);
    const n2 = await scrape(address.get('n2')!);
    expect(sample(n1, 'peerha_node_state', { node: 'n3', state: 'fenced' })).toBe(1);
    expect(sample(n1, 'peerha_node_state', { node: 'n3', state: 'up' })).toBe(0);
    expect(sample(n1, `peerha_groups_running`, { node: now })).toBe(1);
    expect(sample(n1, 'peerha_failovers_total')).toBe(1);
    expect(sample(n2, 'peerha_failovers_total')).toBe(1);
    expect(sample(n1, 'peerha_fences_total', { result: 'success' })).toBe(1);
    expect(sample(n2, 'peerha_fences_total', { result: 'success' })).toBe(0);
    expect(sample(n1, 'peerha_fences_total', { result: 'failure' })).toBe(0);
    // n3 stopped heartbeating when it was killed: its age grows, the live ones stay within a cycle or so.
    expect(sample(n1, 'peerha_node_heartbeat_age_seconds', { node: 'n3' })).toBeGreaterThan(1.5);
    expect(sample(n1, 'peerha_node_heartbeat_age_seconds', { node: 'n2' })).toBeLessThan(1.5);
    expect(sample(n1, 'peerha_node_heartbeat_age_seconds', { node: 'n1' })).toBeLessThan(1.5);
    const cycles = n1.find((f) => f.name === 'peerha_cycle_duration_seconds');
    expect(cycles?.type).toBe('HISTOGRAM');
    expect(Number(cycles?.metrics[0]?.count)).toBeGreaterThan(10);
    for (const name of ['peerha_alert_queue_dropped_total', 'peerha_replication_errors_total']) expect(sample(n1, name)).toBe(0);
    // The stale node, its fence and the failover were alerted (once for the cluster, by n1 or n2).
    expect(sample(n1, 'peerha_alerts_total', { result: 'sent' })! + sample(n2, 'peerha_alerts_total', { result: 'sent' })!).toBeGreaterThanOrEqual(2);
    expect(sample(n1, 'peerha_alerts_total', { result: 'failed' })).toBe(0);
    expect(n1.find((f) => f.name === 'peerha_fences_total')?.type).toBe('COUNTER');
    expect(sample(n1, 'peerha_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);

    // /api/hastat: the versioned hastat the node last built, as documented.
    const schema = hastatSchema();
    for (const n of survivors) {
      const r = await get(address.get(n)!, '/api/hastat');
      expect(r.status).toBe(200);
      expect(r.type).toMatch(/^application\/json/);
      const api = JSON.parse(r.text) as Hastat;
      expect(validate(api, schema)).toEqual([]);
      expect(api.node).toBe(n);
      expect(api.nodes.n3?.state).toBe('fenced');
      expect(Number(r.headers.get('x-peerha-view-age-ms'))).toBeLessThan(5_000);
    }
  }, 90_000);

  it('serves GET and HEAD of /, /metrics and /api/hastat only; binds where configured', async () => {
    const c = cluster({ yaml: METRICS_YAML });
    c.writeRoot('cltab', 'web:web-run:start:respawn:sleep 7341.5\n');
    c.writeRoot('hactl', 'web start\n');
    await c.startHeartbeating('n1');
    const address = await listenOf(c.monitors.get('n1')!);
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    await waitFor('a hastat to serve', async () => (await get(address, '/api/hastat')).status === 200);
    const page = await get(address, '/');
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'sha256-/);
    expect(page.text).toMatch(/<title>peerha status<\/title>/);
    expect(page.text).not.toMatch(/<form|https?:\/\/(?!localhost)/);
    const head = await get(address, '/metrics', 'HEAD');
    expect([head.status, head.text, head.type]).toEqual([200, '', 'text/plain; version=0.0.4; charset=utf-8']);
    expect((await get(address, '/nope')).status).toBe(404);
    expect((await get(address, '/metrics/')).status).toBe(404);
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = await get(address, '/metrics', m);
      expect([r.status, r.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    }
  }, 60_000);
});

describe('metrics listener start-up', () => {
  let taken: Server | null = null;
  afterEach(() => {
    taken?.close();
    taken = null;
  });

  it('a port that is taken: the monitor exits 1 at start with one line naming the address', async () => {
    taken = createServer();
    const port = await new Promise<number>((resolve) => taken!.listen(0, '127.0.0.1', () => resolve((taken!.address() as { port: number }).port)));
    const c = cluster({ yaml: `metrics:\n  listen: 127.0.0.1:${port}\n` });
    c.writeRoot('cltab', 'web:web-run:start:respawn:sleep 7341.6\n');
    c.writeRoot('hactl', 'web start\n');
    const m = c.start('n1');
    expect(await m.exited).toBe(1);
    expect(m.output()).toContain(`peerha monitor: cannot listen on 127.0.0.1:${port} (metrics.listen): the port is taken (another monitor or program listens there) (EADDRINUSE)\n`);
    // It stopped before joining: no heartbeat, nothing started.
    expect(c.clstat('n1')).toBeNull();
  }, 30_000);
});

describe('troubles counted per group', () => {
  it('respawns, failed health checks and local restarts of a flaky group', async () => {
    const c = cluster({ yaml: METRICS_YAML });
    // A respawn entry that keeps exiting and a check that always fails (never enough in a row to restart).
    c.writeRoot('cltab', 'flaky:flaky-run:start:respawn:sleep 0.2\nflaky:flaky-check:start:monitor,interval=200ms,failures=1000:false\nsteady:steady-run:start:respawn:sleep 7341.7\n');
    c.writeRoot('hactl', 'flaky start\nsteady start\n');
    await c.startHeartbeating('n1');
    const address = await listenOf(c.monitors.get('n1')!);
    const families = await waitFor('respawns, failed checks and a restart counted', async () => {
      const f = await scrape(address);
      const ok = ['peerha_process_restarts_total', 'peerha_health_check_failures_total', 'peerha_group_restarts_total'].every((n) => (sample(f, n, { group: 'flaky' }) ?? 0) > 0);
      return ok ? f : null;
    }, 30_000, 200);
    for (const n of ['peerha_process_restarts_total', 'peerha_health_check_failures_total', 'peerha_group_restarts_total']) {
      expect(families.find((f) => f.name === n)?.type).toBe('COUNTER');
      expect(sample(families, n, { group: 'steady' })).toBeUndefined();
    }
    // Counters never go down.
    const again = await scrape(address);
    expect(sample(again, 'peerha_process_restarts_total', { group: 'flaky' })).toBeGreaterThanOrEqual(sample(families, 'peerha_process_restarts_total', { group: 'flaky' })!);
  }, 60_000);
});
