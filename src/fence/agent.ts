// Standard fence agents (ClusterLabs fence-agents: fence_ipmilan, fence_redfish, fence_dummy, …)
// driven unchanged: parameters as `key=value` lines on stdin, `-o metadata` XML describing them,
// exit 0 = success (for `status`: 0 = on, 2 = off, 1 = error), and a timeout is a failure.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

export const AGENT_DIRS = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

export interface AgentParameter {
  readonly name: string;
  readonly required: boolean;
  readonly type: string;
  readonly default: string | null;
  readonly description: string;
  readonly deprecated: boolean;
  readonly obsoletes: string | null;
  readonly choices: readonly string[];
}

export interface AgentMetadata {
  readonly name: string;
  readonly shortdesc: string;
  readonly parameters: readonly AgentParameter[];
  readonly actions: readonly string[];
}

const decode = (s: string): string =>
  s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

function attr(tag: string, name: string): string | null {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(tag);
  return m ? decode(m[1]!) : null;
}

/** Parse `AGENT -o metadata` (the OCF-style XML every fence agent prints). Pure; never throws. */
export function parseMetadata(xml: string): AgentMetadata | null {
  const head = /<resource-agent\b[^>]*>/.exec(xml);
  if (!head) return null;
  const parameters: AgentParameter[] = [];
  for (const m of xml.matchAll(/<parameter\b([^>]*)>([\s\S]*?)<\/parameter>/g)) {
    const open = m[1]!;
    const body = m[2]!;
    const content = /<content\b[^>]*\/?>/.exec(body)?.[0] ?? '';
    const name = attr(open, 'name');
    if (!name) continue;
    parameters.push({
      name,
      required: attr(open, 'required') === '1',
      type: attr(content, 'type') ?? 'string',
      default: attr(content, 'default'),
      description: decode((/<shortdesc\b[^>]*>([\s\S]*?)<\/shortdesc>/.exec(body)?.[1] ?? '').trim()),
      deprecated: attr(open, 'deprecated') === '1',
      obsoletes: attr(open, 'obsoletes'),
      choices: [...body.matchAll(/<option\b[^>]*value="([^"]*)"/g)].map((o) => decode(o[1]!)),
    });
  }
  const actions = [...xml.matchAll(/<action\b([^>]*)\/?>/g)].map((a) => attr(a[1]!, 'name')).filter((n): n is string => !!n);
  return { name: attr(head[0], 'name') ?? '', shortdesc: attr(head[0], 'shortdesc') ?? '', parameters, actions: [...new Set(actions)] };
}

/** The agent's executable: an absolute path, or a name found in the usual sbin directories. */
export function agentPath(agent: string): string | null {
  if (isAbsolute(agent)) return existsSync(agent) ? agent : null;
  if (!/^fence_[A-Za-z0-9_-]+$/.test(agent)) return null;
  for (const d of AGENT_DIRS) if (existsSync(join(d, agent))) return join(d, agent);
  return null;
}

export function listAgents(): string[] {
  const names = new Set<string>();
  for (const d of AGENT_DIRS) {
    try {
      for (const f of readdirSync(d)) if (/^fence_[A-Za-z0-9_-]+$/.test(f)) names.add(f);
    } catch {
      // directory absent
    }
  }
  return [...names].sort();
}

const metadataCache = new Map<string, AgentMetadata | null>();

export function describeAgent(agent: string): AgentMetadata | null {
  const path = agentPath(agent);
  if (!path) return null;
  if (metadataCache.has(path)) return metadataCache.get(path)!;
  const r = spawnSync(path, ['-o', 'metadata'], { encoding: 'utf8', timeout: 20_000 });
  const md = r.status === 0 ? parseMetadata(r.stdout) : null;
  metadataCache.set(path, md);
  return md;
}

/** Parameter names whose values are secrets: never logged, published or recorded. */
export const SECRET_NAME = /pass|secret|key|token|community|credential|auth/i;

/** Replace every secret value of `params` in `text`. */
export function redact(text: string, params: Readonly<Record<string, string>>): string {
  let out = text;
  for (const [k, v] of Object.entries(params)) if (SECRET_NAME.test(k) && v.length >= 3) out = out.split(v).join('****');
  return out;
}

export function redactParams(params: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, SECRET_NAME.test(k) ? '****' : v]));
}

export interface AgentRun {
  readonly code: number | null;
  readonly timedOut: boolean;
  /** stdout + stderr, with secrets redacted, trimmed to the last 2 KB. */
  readonly output: string;
  readonly durationMs: number;
}

/** Run one action of an agent with parameters on stdin; a timeout kills its process group. */
export function runAgent(path: string, action: string, params: Readonly<Record<string, string>>, timeoutMs: number): Promise<AgentRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let out = '';
    const collect = (d: Buffer): void => {
      out = (out + d.toString()).slice(-8192);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    const finish = (code: number | null): void => {
      clearTimeout(timer);
      resolve({ code, timedOut, output: redact(out, params).trim().slice(-2048), durationMs: Math.round(performance.now() - started) });
    };
    child.on('error', (e) => {
      out += String(e);
      finish(null);
    });
    child.on('exit', (code) => finish(code));
    child.stdin.on('error', () => undefined);
    const lines = Object.entries({ ...params, action }).map(([k, v]) => `${k}=${v.replace(/[\r\n]/g, ' ')}`);
    child.stdin.end(lines.join('\n') + '\n');
  });
}
