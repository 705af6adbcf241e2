// `peerha fence list | describe | test | confirm | history`.

import { parseClstat } from '../config/clstat.js';
import { validNodeName } from '../config/names.js';
import { parseHactl } from '../config/hactl.js';
import { FsStore, newestValid } from '../cluster/store.js';
import { describeAgent, listAgents } from '../fence/agent.js';
import { testMethods, type FenceRecord } from '../fence/fencer.js';
import type { FenceConfig } from '../config/monitor.js';

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function fenceList(json: boolean): number {
  const agents = listAgents();
  if (json) out(JSON.stringify(agents));
  else out(agents.length ? agents.join('\n') : 'no fence agents installed (Debian: apt-get install fence-agents)');
  return 0;
}

export function fenceDescribe(agent: string, json: boolean): number {
  const md = describeAgent(agent);
  if (!md) {
    process.stderr.write(`peerha fence describe: ${agent} is not installed or printed no metadata\n`);
    return 1;
  }
  if (json) {
    out(JSON.stringify(md, null, 2));
    return 0;
  }
  const params = md.parameters.filter((p) => !p.deprecated);
  out(`${md.name}: ${md.shortdesc}`);
  out(`actions: ${md.actions.join(', ') || '(not declared)'}`);
  out('');
  out(
    table([
      ['PARAMETER', 'TYPE', 'REQUIRED', 'DEFAULT', 'DESCRIPTION'],
      ...params.map((p) => [p.name, p.type + (p.choices.length ? ` (${p.choices.join('|')})` : ''), p.required ? 'yes' : '-', p.default ?? '-', p.description + (p.obsoletes ? ` (replaces ${p.obsoletes})` : '')]),
    ]),
  );
  return 0;
}

export async function fenceTest(node: string, cfg: FenceConfig): Promise<number> {
  if (cfg.methods.length === 0) {
    out('no fencing methods configured (fence.methods or fence.command); the watchdog self-fence is the guarantee');
    return 0;
  }
  const rs = await testMethods(node, cfg);
  out(table([['METHOD', 'RESULT', 'DETAIL'], ...rs.map((r) => [r.method, r.result, r.detail.replace(/\s+/g, ' ').slice(0, 120)])]));
  return rs.some((r) => r.result === 'failure' || r.result === 'timeout') ? 1 : 0;
}

/**
 * `peerha fence confirm NODE`: the operator vouches that NODE is off. The confirmation names the
 * incarnation it is about — the heartbeat seq and monitor pid NODE's clstat shows now — so that a
 * monitor waiting on NODE's fence accepts it for that silence only, whatever the clocks say.
 */
export async function fenceConfirm(root: string, node: string, by: string): Promise<number> {
  if (!validNodeName(node)) {
    process.stderr.write(`peerha fence confirm: ${JSON.stringify(node)} is not a node name ([A-Za-z0-9._-], 1 to 63 characters)\n`);
    return 2;
  }
  const known = await clusterNodes(root);
  if (!known.includes(node)) {
    process.stderr.write(`peerha fence confirm: ${node} is not a node of the cluster in ${root}; known nodes: ${known.join(', ') || 'none'} (folders in ${root}/nodes, nodes named in hactl)\n`);
    return 2;
  }
  const clstat = await new FsStore(root, '').readNodeFile(node, 'clstat');
  const header = clstat ? parseClstat(clstat.text).header : null;
  const text = JSON.stringify({ node, time: new Date().toISOString(), by, ...(header ? { seq: header.seq, pid: header.pid } : {}) }) + '\n';
  const store = new FsStore(root, '');
  await store.mkdirInside('fence-confirm');
  await store.writeInside(`fence-confirm/${node}`, text);
  out(`confirmed: ${node} is off${header ? ` (heartbeat seq ${header.seq}, monitor pid ${header.pid})` : ''}. Monitors waiting on a manual fence of ${node} may now take over its groups.`);
  return 0;
}

/** The nodes the cluster knows: every node folder (a monitor ran there) and every node hactl names. */
async function clusterNodes(root: string): Promise<string[]> {
  const store = new FsStore(root, '');
  const { winner } = await newestValid(store, 'hactl', (t, f) => parseHactl(t, f).ok);
  const hactl = winner ? parseHactl(winner.text, winner.source) : null;
  const named = hactl?.ok ? [...hactl.hactl.wants.values()].flatMap((w) => w.nodes ?? []) : [];
  return [...new Set([...(await store.listNodes()), ...named])].sort();
}

/** Every node's fence.log, merged in time order (each file has one writer: its node). */
export async function readFenceHistory(root: string): Promise<FenceRecord[]> {
  const store = new FsStore(root, '');
  const all: FenceRecord[] = [];
  for (const n of await store.listNodes()) {
    const r = await store.readNodeFile(n, 'fence.log');
    for (const line of (r?.text ?? '').split('\n')) {
      try {
        if (line.trim()) all.push(JSON.parse(line) as FenceRecord);
      } catch {
        // a torn last line: skip
      }
    }
  }
  return all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

export async function fenceHistory(root: string, node: string | undefined, json: boolean): Promise<number> {
  const rs = (await readFenceHistory(root)).filter((r) => node === undefined || r.node === node);
  if (json) {
    out(JSON.stringify(rs, null, 2));
    return 0;
  }
  if (rs.length === 0) {
    out(node ? `no fencing of ${node} recorded` : 'no fencing recorded');
    return 0;
  }
  out(table([['TIME', 'TARGET', 'FENCER', 'METHOD', 'ACTION', 'RESULT', 'MS', 'INCIDENT'], ...rs.map((r) => [r.time, r.node, r.fencer, r.method ?? '-', r.action ?? '-', r.result, String(r.durationMs ?? '-'), r.incident ?? '-'])]));
  return 0;
}
