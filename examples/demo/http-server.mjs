// The demo's HTTP service: answers every request with the name of the node serving it.
// Binding the port is itself an exclusivity check: a second instance would fail with EADDRINUSE.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const node = process.env.PEERHA_NODE ?? 'unknown';
const server = createServer((_req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`${node}\n`);
});
server.on('error', (e) => {
  console.error(`http-server: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => console.log(`serving on 127.0.0.1:${port} as ${node}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
