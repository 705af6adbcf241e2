// Test helpers for the metrics and status page listener of real monitors.
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { waitFor, type MonitorProc } from './cluster.js';
import { need } from './needs.js';

/** `metrics: { listen: 127.0.0.1:0 }`: each monitor gets a free port and logs it. */
export const METRICS_YAML = 'metrics:\n  listen: 127.0.0.1:0\n';

/** The `host:port` a monitor's listener bound, from its log. */
export async function listenOf(m: MonitorProc, timeoutMs = 15_000): Promise<string> {
  return waitFor(`${m.name}'s metrics listener`, () => /"listen":"([^"]+)"[^\n]*metrics and status page listening/.exec(m.output())?.[1], timeoutMs);
}

export async function get(address: string, path: string, method = 'GET'): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const r = await fetch(`http://${address}${path}`, { method });
  return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text(), headers: r.headers };
}

/** One sample's value by metric name and labels (every label given must match), or undefined. */
export function sample(families: readonly PromFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}

/** GET /metrics, checked line by line against the text format (values as Go's ParseFloat reads them), then parsed. */
export async function scrape(address: string): Promise<PromFamily[]> {
  const r = await get(address, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.text}`);
  const bad = r.text.split('\n').filter((l) => l !== '' && !/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(l) && !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? [-+]?([0-9.eE+-]+|inf|nan)$/i.test(l));
  if (bad.length) throw new Error(`not Prometheus text format: ${bad.slice(0, 3).join(' | ')}`);
  return parsePrometheusTextFormat(r.text);
}

export const CHROMIUM = '/usr/bin/chromium';

/** The browser the page test drives; fails at once, in one line, when it is not installed. */
export function requireChromium(): string {
  need(CHROMIUM, 'chromium', "Debian's chromium");
  return CHROMIUM;
}
