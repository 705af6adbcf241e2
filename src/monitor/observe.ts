// The metrics and status page listener (`metrics: { listen: … }`): node:http at the edge, reading
// the monitor's state only when asked. GET/HEAD of
//   /metrics      Prometheus text format (prom-client, a registry of its own)
//   /             the live status page
//   /api/hastat   the hastat this node last built (the object it writes to the shared directory)
// and 404/405 for anything else. Nothing here changes the monitor; a cycle never waits for it.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { formatListen, type ListenAddress } from '../config/listen.js';
import type { GroupCounts } from '../init/engine.js';
import type { AlertStats } from './alert-runner.js';
import type { Logger } from '../io/log.js';
import type { MonitorEvent } from './events.js';
import { clusterMetrics, FENCE_RESULTS, NODE_STATES, stepFacts } from './metrics.js';
import type { MonitorState } from './state.js';
import { STATUS_PAGE, STATUS_PAGE_CSP } from './status-page.js';

export interface ObservedSources {
  state(): MonitorState;
  /** Monotonic ms, on the clock the state's times use. */
  now(): number;
  groupCounts(): ReadonlyMap<string, Readonly<GroupCounts>>;
  alerts(): AlertStats;
}

/** Why a listen failed, in words (the errno stays in brackets). */
function listenProblem(e: NodeJS.ErrnoException): string {
  const why: Record<string, string> = {
    EADDRINUSE: 'the port is taken (another monitor or program listens there)',
    EACCES: 'permission denied (ports below 1024 need root)',
    EADDRNOTAVAIL: 'this machine has no such address',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the host name cannot be resolved now',
  };
  return `${why[e.code ?? ''] ?? e.message} (${e.code ?? 'error'})`;
}

export class Observer {
  private readonly registry = new Registry();
  private server: Server | null = null;
  private prev: MonitorState | null = null;
  private readonly g: ReturnType<typeof gauges>;
  private readonly cycle: Histogram;
  private readonly fences: Counter<'result'>;
  private readonly replication: Counter;

  constructor(
    private readonly address: ListenAddress,
    private readonly src: ObservedSources,
    private readonly log: Logger,
  ) {
    const r = [this.registry];
    this.g = gauges(r);
    this.cycle = new Histogram({ name: 'peerha_cycle_duration_seconds', help: 'How long a monitor cycle took, from its scan to its heartbeat written.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: r });
    this.fences = new Counter({ name: 'peerha_fences_total', help: 'Fence runs this node made (its configured methods tried in order), by final result.', labelNames: ['result'], registers: r });
    for (const result of FENCE_RESULTS) this.fences.inc({ result }, 0);
    this.replication = new Counter({ name: 'peerha_replication_errors_total', help: 'Writes of this node\'s cltab/hactl replica that failed.', registers: r });
    // Not prom-client's default metrics: their event-loop and GC sampling ran all the time and
    // cost an idle monitor about 10 % more CPU. These few are read at the scrape.
    this.g.startTime.set(Math.round(Date.now() / 1000 - process.uptime()));
  }

  /** Bind; rejects with a sentence naming the address when it cannot. Resolves with the address bound. */
  listen(): Promise<string> {
    const server = createServer((req, res) => void this.serve(req, res));
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.maxConnections = 64;
    this.server = server;
    return new Promise((resolve, reject) => {
      const failed = (e: NodeJS.ErrnoException): void => {
        this.server = null;
        reject(new Error(`cannot listen on ${formatListen(this.address)} (metrics.listen): ${listenProblem(e)}`));
      };
      server.once('error', failed);
      server.listen(this.address.port, this.address.host, () => {
        server.off('error', failed);
        server.on('error', (e) => this.log.error({ err: String(e) }, 'metrics listener error'));
        const a = server.address() as AddressInfo;
        resolve(formatListen({ host: a.address, port: a.port }));
      });
    });
  }

  close(): void {
    this.server?.close();
    this.server?.closeAllConnections();
    this.server = null;
  }

  /** Called after every step of the machine: counts what the step did. */
  stepped(event: MonitorEvent, state: MonitorState): void {
    const prev = this.prev;
    this.prev = state;
    if (!prev) return;
    const f = stepFacts(prev, state, event);
    if (f.cycleSeconds !== null) this.cycle.observe(f.cycleSeconds);
    for (const result of f.fences) this.fences.inc({ result });
    if (f.replicationFailed) this.replication.inc();
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (code: number, type: string, body: string, headers: Record<string, string> = {}): void => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', { Allow: 'GET, HEAD' });
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path === '/metrics') {
        this.update();
        return send(200, this.registry.contentType, await this.registry.metrics());
      }
      if (path === '/api/hastat') {
        const state = this.src.state();
        const h = state.lastHastat;
        if (!h) return send(503, 'application/json', '{"error":"no hastat yet: the monitor has not finished a cycle"}\n');
        const age = Math.max(0, Math.round(this.src.now() - state.lastHastatAt));
        return send(200, 'application/json', JSON.stringify(h), { 'X-Peerha-View-Age-Ms': String(age) });
      }
      if (path === '/') return send(200, 'text/html; charset=utf-8', STATUS_PAGE, { 'Content-Security-Policy': STATUS_PAGE_CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' });
      return send(404, 'text/plain; charset=utf-8', 'not found: try /, /metrics or /api/hastat\n');
    } catch (e) {
      this.log.error({ err: String(e), url: req.url }, 'metrics request failed');
      if (!res.headersSent) send(500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  }

  /** Set the gauges (and derived counters) from the state as it is now. */
  private update(): void {
    const state = this.src.state();
    const m = clusterMetrics(state, this.src.now());
    const g = this.g;
    g.nodeState.reset();
    g.heartbeatAge.reset();
    for (const n of m.nodes) {
      for (const s of NODE_STATES) g.nodeState.set({ node: n.node, state: s }, s === n.state ? 1 : 0);
      if (n.heartbeatAgeSeconds !== null) g.heartbeatAge.set({ node: n.node }, n.heartbeatAgeSeconds);
    }
    g.groupsRunning.reset();
    for (const [node, count] of m.groupsRunning) g.groupsRunning.set({ node }, count);
    if (m.quorum === null) g.quorum.reset();
    else g.quorum.set(m.quorum ? 1 : 0);
    if (m.liveNodes === null) g.live.reset();
    else g.live.set(m.liveNodes);
    g.wanted.set(m.groupsWanted);
    g.notRunning.set(m.groupsNotRunning);
    g.errors.set(m.errors);
    if (m.hastatAgeSeconds === null) g.hastatAge.reset();
    else g.hastatAge.set(m.hastatAgeSeconds);
    g.failovers.reset();
    g.failovers.inc(m.failovers);
    const cpu = process.cpuUsage();
    g.cpu.reset();
    g.cpu.inc((cpu.user + cpu.system) / 1e6);
    const mem = process.memoryUsage();
    g.rss.set(mem.rss);
    g.heap.set(mem.heapUsed);
    const a = this.src.alerts();
    g.alertDrops.reset();
    g.alertDrops.inc(a.dropped);
    g.alerts.reset();
    g.alerts.inc({ result: 'sent' }, a.sent);
    g.alerts.inc({ result: 'failed' }, a.failed);
    g.alerts.inc({ result: 'timeout' }, a.timedOut);
    g.alertsWaiting.set(a.queued + a.running);
    for (const c of [g.respawns, g.checkFailures, g.restarts]) c.reset();
    for (const [group, c] of this.src.groupCounts()) {
      if (c.respawns) g.respawns.inc({ group }, c.respawns);
      if (c.checkFailures) g.checkFailures.inc({ group }, c.checkFailures);
      if (c.restarts) g.restarts.inc({ group }, c.restarts);
    }
  }
}

/** The metrics whose values are read from the state at each scrape. */
function gauges(registers: Registry[]) {
  return {
    nodeState: new Gauge({ name: 'peerha_node_state', help: 'Each node as this node sees it: 1 for its state (up, stale, unknown, left, fenced), 0 for the others.', labelNames: ['node', 'state'], registers }),
    heartbeatAge: new Gauge({ name: 'peerha_node_heartbeat_age_seconds', help: 'Seconds since the node\'s heartbeat last changed (this node: since its last heartbeat was written).', labelNames: ['node'], registers }),
    quorum: new Gauge({ name: 'peerha_quorum', help: '1 when this node has quorum, else 0.', registers }),
    live: new Gauge({ name: 'peerha_live_nodes', help: 'Live nodes counted for quorum.', registers }),
    wanted: new Gauge({ name: 'peerha_groups_wanted', help: 'Groups hactl wants running (at a level other than stop).', registers }),
    groupsRunning: new Gauge({ name: 'peerha_groups_running', help: 'Groups running on the node at the level hactl wants.', labelNames: ['node'], registers }),
    notRunning: new Gauge({ name: 'peerha_groups_not_running', help: 'Wanted groups running nowhere at their level.', registers }),
    errors: new Gauge({ name: 'peerha_config_errors', help: 'Configuration problems (cltab, hactl) this node reports.', registers }),
    hastatAge: new Gauge({ name: 'peerha_view_age_seconds', help: 'Seconds since this node built the view (hastat) these metrics come from.', registers }),
    failovers: new Counter({ name: 'peerha_failovers_total', help: 'Failovers of every group as the cluster counts them (the hastat\'s groups.G.failovers, summed).', registers }),
    alertDrops: new Counter({ name: 'peerha_alert_queue_dropped_total', help: 'Alerts dropped because the alert queue was full (or the monitor exited before running them).', registers }),
    alerts: new Counter({ name: 'peerha_alerts_total', help: 'Alert command runs on this node, by result: sent (exit 0), failed, timeout (killed).', labelNames: ['result'], registers }),
    alertsWaiting: new Gauge({ name: 'peerha_alerts_waiting', help: 'Alerts queued or running now.', registers }),
    respawns: new Counter({ name: 'peerha_process_restarts_total', help: 'Processes of respawn entries started again here after they exited, by group.', labelNames: ['group'], registers }),
    checkFailures: new Counter({ name: 'peerha_health_check_failures_total', help: 'Health checks (monitor entries) that failed or timed out here, by group.', labelNames: ['group'], registers }),
    restarts: new Counter({ name: 'peerha_group_restarts_total', help: 'Local restarts of a group here (failing health checks, crash loops), by group.', labelNames: ['group'], registers }),
    cpu: new Counter({ name: 'peerha_process_cpu_seconds_total', help: 'CPU time (user and system) of the monitor process.', registers }),
    rss: new Gauge({ name: 'peerha_process_resident_memory_bytes', help: 'Resident memory of the monitor process.', registers }),
    heap: new Gauge({ name: 'peerha_process_heap_used_bytes', help: 'JavaScript heap in use by the monitor process.', registers }),
    startTime: new Gauge({ name: 'peerha_process_start_time_seconds', help: 'When the monitor process started (Unix time).', registers }),
  };
}
