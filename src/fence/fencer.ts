// Run one fence method (an agent through its stdin protocol, or a command) against a node, or
// test every method (`status`) without fencing anything. Results are safe to log and publish:
// no secrets.

import { spawn } from 'node:child_process';
import type { FenceConfig, FenceMethod, FenceParam } from '../config/monitor.js';
import { agentPath, describeAgent, redact, runAgent, type AgentMetadata } from './agent.js';

export type FenceResult = 'success' | 'failure' | 'timeout' | 'waiting';

export interface FenceRecord {
  time: string;
  incident: string;
  fencer: string;
  node: string;
  method: string;
  action: string;
  result: FenceResult;
  durationMs: number;
  detail?: string;
}

/** The parameters an agent gets for `node`: shared ones, the node's overrides, and plug=node if unset. */
export function agentParams(m: Extract<FenceMethod, { kind: 'agent' }>, node: string, md: AgentMetadata | null): Record<string, string> {
  const merged = new Map<string, string>();
  const put = (ps: readonly FenceParam[]): void => ps.forEach((p) => merged.set(p.name, p.value));
  put(m.params);
  put(m.nodes[node] ?? []);
  const hasPlug = md?.parameters.some((p) => p.name === 'plug' || p.name === 'port');
  if (hasPlug && !merged.has('plug') && !merged.has('port')) merged.set('plug', node);
  return Object.fromEntries(merged);
}

export function methodName(m: FenceMethod): string {
  return m.kind === 'agent' ? m.agent : m.kind === 'command' ? `command ${m.command.split(/\s/)[0]}` : 'manual';
}

function runCommand(command: string, node: string, timeoutMs: number): Promise<{ code: number | null; timedOut: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `${command} "$1"`, 'fence', node], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4096)));
    child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4096)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, timedOut, output: String(e) });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, output: out.trim().slice(-1024) });
    });
  });
}

/** What one agent or command run says: `success` only when the node is verified fenced. */
export interface MethodOutcome {
  readonly method: string;
  readonly action: string;
  readonly result: 'success' | 'failure' | 'timeout';
  readonly durationMs: number;
  readonly detail?: string;
}

/**
 * One agent or command method against one node: the fence action, then `status` to verify where
 * the agent has it. Which method runs when, and what follows a failure, is the monitor's policy
 * (src/monitor/fence-duty.ts); an operator's manual confirmation is read there too.
 */
export async function runFenceMethod(m: Exclude<FenceMethod, { kind: 'manual' }>, node: string, cfg: Pick<FenceConfig, 'action' | 'timeoutMs'>): Promise<MethodOutcome> {
  const started = performance.now();
  const took = (): number => Math.round(performance.now() - started);
  if (m.kind === 'command') {
    const r = await runCommand(m.command, node, cfg.timeoutMs);
    return { method: methodName(m), action: cfg.action, result: r.timedOut ? 'timeout' : r.code === 0 ? 'success' : 'failure', durationMs: took(), detail: `exit ${r.code}${r.output ? `: ${r.output}` : ''}` };
  }
  const path = agentPath(m.agent);
  if (!path) return { method: m.agent, action: cfg.action, result: 'failure', durationMs: took(), detail: 'agent not installed' };
  const md = describeAgent(m.agent);
  const params = agentParams(m, node, md);
  const r = await runAgent(path, cfg.action, params, cfg.timeoutMs);
  if (r.timedOut) return { method: m.agent, action: cfg.action, result: 'timeout', durationMs: took(), detail: r.output };
  if (r.code !== 0) return { method: m.agent, action: cfg.action, result: 'failure', durationMs: took(), detail: `exit ${r.code}: ${r.output}` };
  if (md && !md.actions.includes('status') && md.actions.length > 0) return { method: m.agent, action: cfg.action, result: 'success', durationMs: took(), detail: r.output };
  // Verify: after `off` the target must report off (exit 2); after `reboot`, on (exit 0).
  const v = await runAgent(path, 'status', params, cfg.timeoutMs);
  const expected = cfg.action === 'off' ? 2 : 0;
  const ok = !v.timedOut && v.code === expected;
  return { method: m.agent, action: `${cfg.action}+status`, result: v.timedOut ? 'timeout' : ok ? 'success' : 'failure', durationMs: took(), detail: ok ? r.output : `status check exit ${v.code} (expected ${expected}): ${v.output}` };
}

/** `peerha fence test NODE`: ask every method whether it can reach NODE's fence device. Fences nothing. */
export async function testMethods(node: string, cfg: FenceConfig): Promise<Array<{ method: string; result: string; detail: string }>> {
  const out: Array<{ method: string; result: string; detail: string }> = [];
  for (const m of cfg.methods) {
    if (m.kind === 'manual') {
      out.push({ method: 'manual', result: 'n/a', detail: `an operator confirms with: peerha fence confirm ${node}` });
      continue;
    }
    if (m.kind === 'command') {
      out.push({ method: methodName(m), result: 'n/a', detail: 'a command method has no status action' });
      continue;
    }
    const path = agentPath(m.agent);
    const md = path ? describeAgent(m.agent) : null;
    if (!path || !md) {
      out.push({ method: m.agent, result: 'failure', detail: 'agent not installed' });
      continue;
    }
    const action = md.actions.includes('status') || md.actions.length === 0 ? 'status' : 'monitor';
    const params = agentParams(m, node, md);
    const r = await runAgent(path, action, params, cfg.timeoutMs);
    const state = r.timedOut ? 'timeout' : r.code === 0 ? 'on' : r.code === 2 ? 'off' : 'failure';
    out.push({ method: m.agent, result: state === 'on' || state === 'off' ? `ok (${state})` : state, detail: redact(r.output, params) });
  }
  return out;
}
