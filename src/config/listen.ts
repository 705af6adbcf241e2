// `metrics: { listen: ADDRESS }` in peerha.yaml: where the metrics and status page listener binds.
// Pure. A bare port binds to localhost: a non-local address is only ever one written down.

export interface ListenAddress {
  readonly host: string;
  /** 0: any free port (the monitor logs the one it got). */
  readonly port: number;
}

export interface MetricsConfig {
  readonly listen: ListenAddress;
}

export const DEFAULT_METRICS_HOST = '127.0.0.1';

export const LISTEN_HINT = 'expected PORT, HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9664';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/** `9664`, `127.0.0.1:9664`, `localhost:9664`, `[::1]:9664`, `0.0.0.0:9664` → host and port. */
export function parseListen(text: string): ListenAddress | { error: string } {
  const t = text.trim();
  const m = /^(?:\[([^\]]*)\]:|([^:[\]]*):)?(\d{1,5})$/.exec(t);
  if (!m) return { error: LISTEN_HINT };
  const port = Number(m[3]);
  if (port > 65535) return { error: `port ${port} is out of range (0 to 65535)` };
  const v6 = m[1];
  const host = v6 ?? m[2] ?? DEFAULT_METRICS_HOST;
  if (v6 !== undefined ? !v6.includes(':') || !IPV6.test(v6) : !HOSTNAME.test(host)) return { error: `host ${JSON.stringify(host)}: ${LISTEN_HINT}` };
  return { host, port };
}

/** As people write it back: `127.0.0.1:9664`, `[::1]:9664`. */
export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
