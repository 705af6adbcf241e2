// The README's three-machine walk-through, executed: its `peerha.yaml` and `commands` blocks,
// taken from README.md itself, on three network namespaces that mount one directory over sshfs
// (test/lab/sharedfs-lab.sh). `/srv/peerha` becomes each node's mount; `systemctl … peerha-monitor`
// stands for starting `peerha monitor --config <that node's peerha.yaml>` in the node's namespace
// and for SIGTERM to it (what systemd sends); every other line runs as written, through `sh -c`,
// on the node its comment names. After each step the service address 192.0.2.80 is on exactly
// one node's eth0 once web runs, and on none before.
//
// Needs root (namespaces, FUSE). PEERHA_SKIP_WALKTHROUGH=1 skips it on a machine without.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/daemon.js';
import { until } from '../helpers/chaos-lab.js';

const LAB = resolve(ROOT, 'test', 'lab', 'sharedfs-lab.sh');
const NODES = ['n1', 'n2', 'n3'];
const VIP = '192.0.2.80';
const env = { SFL_PREFIX: `phw${process.pid}`, SFL_OWNER_PID: String(process.pid) };

/** The fenced block after `<!-- walkthrough: NAME -->` in README.md. */
export function readmeBlock(readme: string, name: string): string {
  const m = new RegExp(`<!-- walkthrough: ${name.replace('.', '\\.')} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme);
  if (!m) throw new Error(`README.md has no walkthrough block "${name}"`);
  return m[1]!;
}

/** Commands with the node their trailing comment names (`# on n1`, `# on every node`, …); a here-document stays with its command. */
export function steps(block: string): Array<{ where: string; command: string }> {
  const out: Array<{ where: string; command: string }> = [];
  const lines = block.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^(.*?)\s+# on ([^:]+?)(?::.*)?$/.exec(line);
    if (!m) throw new Error(`walkthrough line without "# on …": ${line}`);
    let command = m[1]!;
    const here = /<<'(\w+)'/.exec(command);
    if (here) {
      const body: string[] = [];
      while (++i < lines.length && lines[i] !== here[1]) body.push(lines[i]!);
      command = `${command}\n${body.join('\n')}\n${here[1]}`;
    }
    out.push({ where: m[2]!, command });
  }
  return out;
}

const run = (args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> =>
  new Promise((res) => {
    execFile('bash', [LAB, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });

const enabled = process.env.PEERHA_SKIP_WALKTHROUGH !== '1';

describe.skipIf(!enabled)("the README's three-machine walk-through, on three network namespaces", () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-walk-'));
  const bin = join(dir, 'bin');
  const monitors = new Map<string, ChildProcess>();
  const logs = new Map<string, string[]>();
  const k = (node: string): string => String(NODES.indexOf(node) + 1);
  const share = (node: string): string => join(dir, `node-${k(node)}`);

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (network namespaces, FUSE mounts); PEERHA_SKIP_WALKTHROUGH=1 skips it');
    // `peerha` on PATH, as `npm install -g` puts it (test/cli/install.test.ts checks that install).
    mkdirSync(bin);
    symlinkSync(resolve(ROOT, 'bin', 'peerha'), join(bin, 'peerha'));
    const up = await run(['up', String(NODES.length), dir]);
    if (up.code !== 0) throw new Error(`lab up failed:\n${up.out}`);
  }, 180_000);

  afterAll(async () => {
    for (const m of monitors.values()) m.kill('SIGKILL');
    await run(['down']);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  /** A command line as the README writes it, on `node`'s namespace and mount. */
  const onNode = (node: string, command: string) => run(['exec', k(node), 'env', `PATH=${bin}:${process.env.PATH}`, 'sh', '-c', command.replaceAll('/srv/peerha', share(node))]);

  const startMonitor = (node: string, yaml: string): void => {
    const config = join(dir, `${node}.yaml`);
    // The lab's nodes share one filesystem: each its own state_dir (a real machine has its own /var/lib/peerha).
    writeFileSync(config, `${yaml.replaceAll('/srv/peerha', share(node)).replace(/^node: n1$/m, `node: ${node}`)}\nstate_dir: ${join(dir, 'state', node)}\n`);
    const p = spawn('bash', [LAB, 'exec', k(node), process.execPath, BIN, 'monitor', '--config', config], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    logs.set(node, tail);
    for (const s of [p.stdout!, p.stderr!]) s.on('data', (d: Buffer) => tail.push(...d.toString().split('\n').filter(Boolean)));
    monitors.set(node, p);
  };

  /** Nodes whose eth0 carries the service address. */
  const vipOn = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const n of NODES) if ((await run(['exec', k(n), 'ip', '-o', 'addr', 'show', 'dev', 'eth0'])).out.includes(`${VIP}/32`)) out.push(n);
    return out;
  };

  /** Where web runs, from the freshest view (`status --json`). */
  const webOwner = async (from: string): Promise<string | null> => {
    const r = await onNode(from, 'peerha status --root /srv/peerha --json');
    try {
      const h = JSON.parse(r.out) as { groups: Record<string, { instances: Record<string, { level: string; state: string }> }> };
      const at = Object.entries(h.groups.web?.instances ?? {}).filter(([, i]) => i.level === 'start' && i.state === 'DONE');
      return at.length === 1 ? at[0]![0] : null;
    } catch {
      return null;
    }
  };

  it('runs as written: check, three monitors, set --wait, status, a hand-over by stopping the owner, a rejoin', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const yaml = readmeBlock(readme, 'peerha.yaml');
    const plan = steps(readmeBlock(readme, 'commands'));
    expect(plan.map((s) => s.where)).toEqual(['n1', 'n1', 'every node', 'n1', 'any node', "web's node", 'another node', 'that node again']);

    let owner: string | null = null;
    let previous: string | null = null;
    const trail: string[] = [];
    for (const { where, command } of plan) {
      const label = `${where}: ${command.split('\n')[0]}`;
      if (/^systemctl (enable --now|start) peerha-monitor\b/.test(command)) {
        const nodes = where === 'every node' ? NODES : [previous!];
        for (const n of nodes) startMonitor(n, yaml);
        await until(`${nodes.join(',')} up in every view`, async () => {
          const r = await onNode('n1', 'peerha status --root /srv/peerha --json');
          try {
            const h = JSON.parse(r.out) as { nodes: Record<string, { state: string }> };
            return NODES.filter((n) => (monitors.get(n)?.exitCode ?? null) === null && monitors.has(n) && h.nodes[n]?.state !== 'up').map((n) => `${n} ${h.nodes[n]?.state ?? 'missing'}`);
          } catch {
            return ['no view yet'];
          }
        }, 60_000, 250);
      } else if (/^systemctl stop peerha-monitor\b/.test(command)) {
        owner = await webOwner('n1');
        expect(owner, 'web runs somewhere before the hand-over').not.toBeNull();
        const m = monitors.get(owner!)!;
        const exited = new Promise<number | null>((r) => m.once('exit', (code) => r(code)));
        m.kill('SIGTERM');
        expect(await exited, `${owner}'s monitor exits 0 on SIGTERM`).toBe(0);
        monitors.delete(owner!);
        previous = owner;
      } else {
        const node = where === "web's node" ? owner! : where === 'another node' ? NODES.find((n) => n !== previous)! : where === 'any node' ? 'n2' : where;
        const r = await onNode(node, command);
        trail.push(`${label}\n${r.out}`);
        expect(r.code, `${label}:\n${r.out}\n${[...logs.entries()].map(([n, t]) => `${n}: ${t.slice(-5).join('\n')}`).join('\n')}`).toBe(0);
        if (command.startsWith('peerha status')) expect(r.out).toMatch(/\bweb\b/);
      }
      // Invariant after every step: the address is on the node web runs on, and on no other.
      const want = await webOwner('n1');
      await until(`${VIP} only where web runs (${want ?? 'nowhere'}) after "${label}"`, async () => {
        const on = await vipOn();
        const now = await webOwner('n1');
        return on.length <= 1 && (now === null ? on.length === 0 : on[0] === now) ? [] : [`address on [${on.join(',')}], web on ${now}`];
      }, 20_000, 200);
    }
    // The hand-over moved web and its address; the stopped node took its address away.
    const after = await webOwner('n1');
    expect(after).not.toBeNull();
    expect(after).not.toBe(previous);
    expect(await vipOn()).toEqual([after]);
    const status = trail.find((t) => t.startsWith('another node: peerha status'))!;
    expect(status).toContain(after!);
    // And the service answers on its address there.
    const get = `python3 -c "import urllib.request; urllib.request.urlopen('http://${VIP}:8080/', timeout=2)"`;
    await until(`web answering on ${VIP}:8080 on ${after}`, async () => ((await onNode(after!, get)).code === 0 ? [] : ['no answer']), 20_000, 250);
  }, 240_000);
});
