// Under systemd (Type=notify), the monitor reports readiness after its first cycle.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Cluster, waitFor } from '../helpers/cluster.js';

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

it('sends READY=1 with a STATUS line to NOTIFY_SOCKET once it has joined', async () => {
  c = new Cluster();
  const sock = join(c.dir, 'notify.sock');
  const got = join(c.dir, 'notify.txt');
  // A stand-in for systemd's notification socket (AF_UNIX datagrams, which Node cannot bind).
  const listener = spawn('python3', ['-c', `import socket\ns=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(${JSON.stringify(sock)})\ns.settimeout(30)\nopen(${JSON.stringify(got)},'w').write(s.recv(4096).decode())\n`], { stdio: 'inherit' });
  try {
    await waitFor('the notify socket', () => {
      try {
        return readFileSync(sock) !== null;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    }, 10_000);
    c.writeRoot('cltab', 'web:w:start:respawn:sleep 100000\n');
    c.writeRoot('hactl', 'web start\n');
    c.start('n1', { NOTIFY_SOCKET: sock });
    const text = await waitFor('the readiness datagram', () => {
      try {
        return readFileSync(got, 'utf8');
      } catch {
        return '';
      }
    }, 15_000);
    expect(text).toMatch(/^READY=1$/m);
    expect(text).toMatch(/^STATUS=peerha monitor n1 joined /m);
  } finally {
    listener.kill('SIGKILL');
  }
}, 40_000);
