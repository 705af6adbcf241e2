// Check configured fence-agent parameters against the agent's own metadata (pure): unknown
// parameter (with a suggestion), missing required one, wrong type or choice.

import type { ConfigError } from '../config/cltab.js';
import type { FenceMethod, FenceParam } from '../config/monitor.js';
import type { AgentMetadata, AgentParameter } from './agent.js';

/** Parameters peerha sets itself. */
const SET_BY_PEERHA = new Set(['action']);

function closest(name: string, names: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const n of names) {
    const d = distance(name, n);
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : null;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function typeError(p: AgentParameter, value: string): string | null {
  if (p.type === 'boolean' && !/^(0|1|true|false|on|off|yes|no)$/i.test(value)) return `expects a boolean (1 or 0), found ${JSON.stringify(value)}`;
  if (p.type === 'integer' && !/^-?\d+$/.test(value)) return `expects an integer, found ${JSON.stringify(value)}`;
  if (p.type === 'second' && !/^\d+(\.\d+)?$/.test(value)) return `expects seconds, found ${JSON.stringify(value)}`;
  if (p.type === 'select' && p.choices.length > 0 && !p.choices.includes(value)) return `expects one of ${p.choices.join(', ')}, found ${JSON.stringify(value)}`;
  return null;
}

/** Names that stand for the same parameter (a parameter and the one it obsoletes). */
function aliases(md: AgentMetadata, name: string): Set<string> {
  const out = new Set([name]);
  for (const p of md.parameters) {
    if (p.name === name && p.obsoletes) out.add(p.obsoletes);
    if (p.obsoletes === name) out.add(p.name);
  }
  return out;
}

function checkParams(file: string, line: number, md: AgentMetadata, params: readonly FenceParam[], where: string): ConfigError[] {
  const errs: ConfigError[] = [];
  const byName = new Map(md.parameters.map((p) => [p.name, p]));
  for (const p of params) {
    const meta = byName.get(p.name);
    if (!meta) {
      const near = closest(p.name, [...byName.keys()]);
      errs.push({ file, line: p.line, message: `${md.name}: unknown parameter ${JSON.stringify(p.name)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}` });
      continue;
    }
    const why = typeError(meta, p.value);
    if (why) errs.push({ file, line: p.line, message: `${md.name}: parameter ${p.name} ${why}` });
  }
  const given = new Set(params.map((p) => p.name));
  for (const req of md.parameters.filter((p) => p.required && !p.deprecated && !SET_BY_PEERHA.has(p.name))) {
    if ([...aliases(md, req.name)].some((a) => given.has(a))) continue;
    errs.push({ file, line, message: `${md.name}: missing required parameter ${req.name}${where} (${req.description || req.type})` });
  }
  return errs;
}

/**
 * Problems with the agent methods of a configuration. `metadataOf` returns null for an agent
 * that is not installed. With per-node overrides, every node's effective parameters must be
 * complete; without, the shared parameters must be.
 */
export function validateFenceMethods(file: string, methods: readonly FenceMethod[], metadataOf: (agent: string) => AgentMetadata | null): ConfigError[] {
  const errs: ConfigError[] = [];
  for (const m of methods) {
    if (m.kind !== 'agent') continue;
    const md = metadataOf(m.agent);
    if (!md) {
      errs.push({ file, line: m.line, message: `fence agent ${m.agent} is not installed (or its metadata cannot be read); see peerha fence list` });
      continue;
    }
    const nodes = Object.entries(m.nodes);
    if (nodes.length === 0) {
      errs.push(...checkParams(file, m.line, md, m.params, ''));
      continue;
    }
    // Shared parameters once (unknown/type), then each node's effective set for completeness.
    errs.push(...checkParams(file, m.line, md, m.params, '').filter((e) => !e.message.includes('missing required')));
    for (const [node, own] of nodes) {
      const merged = [...m.params.filter((p) => !own.some((o) => o.name === p.name)), ...own];
      errs.push(...checkParams(file, m.line, md, merged, ` for node ${node}`).filter((e) => e.message.includes('missing required') || own.some((o) => o.line === e.line)));
    }
  }
  return errs;
}
