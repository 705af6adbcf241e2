// `peerha init`: the standalone group engine daemon. Serves the control socket, re-reads
// cltab when its content changes (keeping the last good one through bad edits), publishes
// clstat, and shuts down in order on SIGTERM/SIGINT or `peerha shutdown`.

import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { formatError, parseCltab, unsafeName, type Cltab, type ConfigError } from '../config/cltab.js';
import { ensureDir } from '../io/atomic.js';
import type { Logger } from '../io/log.js';
import { ClstatWriter } from './clstat-writer.js';
import { Engine } from './engine.js';
import type { Timings } from './machines.js';
import { killGroups, PgidRecord } from './pgid-record.js';
import { MAX_REQUEST_BYTES, NoDaemonError, request, type Reply, type Request } from './protocol.js';
import { procStartTime, RealRunner } from './runner.js';

export const DEFAULT_SOCKET = '/run/peerha/clinit.s';
export const DEFAULT_CLSTAT = '/run/peerha/clstat';
/** Longest UNIX socket path (sun_path is 108 bytes including the terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;
/** setTimeout's limit; longer delays would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DaemonOptions {
  cltabPath: string;
  socketPath?: string;
  clstatPath?: string;
  node?: string;
  cycleMs?: number;
  timings?: Partial<Timings>;
  /** Upper bound for an orderly shutdown once every process was sent SIGKILL. */
  shutdownGraceMs?: number;
  logger: Logger;
}

type Loaded = { ok: true; cltab: Cltab; hash: string } | { ok: false; errors: readonly ConfigError[]; hash: string };

function loadCltab(path: string): Loaded {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return { ok: false, errors: [{ file: path, line: 0, message: `cannot read cltab (${code})` }], hash: `error:${code}` };
  }
  const hash = createHash('sha256').update(text).digest('hex');
  const r = parseCltab(text, path);
  return r.ok ? { ok: true, cltab: r.cltab, hash } : { ok: false, errors: r.errors, hash };
}

/** Where the socket and clstat live: command line, else cltab setting, else default. */
export function resolvePaths(cltabPath: string, cltab: Cltab | null, socket?: string, clstat?: string): { socket: string; clstat: string } {
  const fromCltab = (name: string): string | undefined => {
    const v = cltab?.settings.get(name);
    if (v === undefined) return undefined;
    return isAbsolute(v) ? v : resolve(dirname(cltabPath), v);
  };
  return {
    socket: resolve(socket ?? fromCltab('socket') ?? DEFAULT_SOCKET),
    clstat: resolve(clstat ?? fromCltab('clstat') ?? DEFAULT_CLSTAT),
  };
}

export function shortHostname(): string {
  return hostname().split('.')[0] || 'localhost';
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = opts.logger;
  const cltabPath = resolve(opts.cltabPath);
  let loaded = loadCltab(cltabPath);
  if (!loaded.ok) {
    for (const e of loaded.errors) process.stderr.write(`${formatError(e)}\n`);
    log.error({ errors: loaded.errors.map(formatError) }, 'bad cltab at start; not starting');
    return 2;
  }
  let good: Cltab = loaded.cltab;
  let goodHash = loaded.hash;
  let configErrors: string[] = [];
  const paths = resolvePaths(cltabPath, good, opts.socketPath, opts.clstatPath);
  const node = opts.node ?? shortHostname();
  if (unsafeName(node)) {
    process.stderr.write(`peerha init: bad node name ${JSON.stringify(node)}\n`);
    return 2;
  }
  const cycleMs = opts.cycleMs ?? 1000;

  // sun_path holds 108 bytes with the NUL; a longer path would be truncated silently and the
  // daemon would serve a socket nobody connects to.
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH_BYTES) {
    process.stderr.write(`peerha init: socket path too long (${Buffer.byteLength(paths.socket)} bytes, at most ${MAX_SOCKET_PATH_BYTES}): ${paths.socket}\n`);
    return 1;
  }
  for (const [what, path] of [['socket', paths.socket], ['clstat', paths.clstat]] as const) {
    try {
      await ensureDir(dirname(path));
    } catch (e) {
      process.stderr.write(`peerha init: cannot create the ${what} directory for ${path}: ${(e as Error).message}\n`);
      return 1;
    }
  }

  // One daemon per socket: refuse if one answers, replace a stale socket file.
  try {
    await request(paths.socket, [{ op: 'ping' }], 2000);
    process.stderr.write(`peerha init: another daemon is already serving ${paths.socket}\n`);
    return 1;
  } catch (e) {
    if (!(e instanceof NoDaemonError)) {
      process.stderr.write(`peerha init: ${paths.socket}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  rmSync(paths.socket, { force: true });

  const record = new PgidRecord(`${paths.socket}.pgids`);
  const leftovers = record.leftovers();
  let survivors: number[] = [];
  if (leftovers.length > 0) {
    log.warn({ pgids: leftovers }, 'stopping process groups left behind by a previous run');
    const timings = opts.timings ?? {};
    survivors = await killGroups(leftovers, Math.max(0, (timings.killAfterMs ?? 15_000) - (timings.termAfterMs ?? 5_000)));
    if (survivors.length > 0) log.error({ pgids: survivors }, 'process groups of a previous run survive SIGKILL');
  }
  // Forget the previous run's (dead) groups, so that a later crash of this run does not make the
  // next start signal whatever reuses their ids; survivors stay recorded for the next start.
  if (survivors.length === 0) record.remove();

  const runner = new RealRunner({
    onGroupsChanged: (live) => {
      try {
        record.save(live);
      } catch (e) {
        log.error({ err: String(e), path: record.path }, 'cannot write the process-group record');
      }
    },
  });
  for (const pgid of survivors) runner.live.set(pgid, procStartTime(pgid) ?? '');

  const waiters = new Set<() => void>();
  let clstat: ClstatWriter | null = null;
  const engine = new Engine({
    runner,
    logger: log,
    timings: opts.timings,
    env: { ...process.env, PEERHA_NODE: node },
    onChange: () => {
      clstat?.request();
      for (const w of [...waiters]) w();
    },
  });
  engine.setConfig(good);
  clstat = new ClstatWriter(
    paths.clstat,
    node,
    {
      lines: () => engine.status().flatMap((g) => (g.level === null ? [] : [{ group: g.group, level: g.level, state: g.state }])),
      notes: () => engine.status().flatMap((g) => g.notes.map((text) => ({ group: g.group, text }))),
    },
    (e) => log.error({ err: String(e), path: paths.clstat }, 'cannot write clstat'),
  );

  /** Re-read cltab if its content changed. Returns the current errors (empty when good). */
  const reread = (why: string): string[] => {
    const now = loadCltab(cltabPath);
    if (now.hash === goodHash) {
      configErrors = [];
      return configErrors;
    }
    if (now.ok) {
      good = now.cltab;
      goodHash = now.hash;
      configErrors = [];
      log.info({ why, groups: good.groups.length, entries: good.entries.length }, 'cltab loaded');
      engine.setConfig(good);
    } else {
      const msgs = now.errors.map(formatError);
      if (msgs.join('\n') !== configErrors.join('\n')) {
        log.error({ errors: msgs }, 'cltab has errors; keeping the last good configuration');
      }
      configErrors = msgs;
    }
    return configErrors;
  };

  let shuttingDown: Promise<void> | null = null;
  let server: Server | null = null;
  const sockets = new Set<Socket>();
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => (resolveExit = r));

  const shutdown = (why: string): Promise<void> => {
    if (shuttingDown) return shuttingDown;
    log.info({ why }, 'shutting down: stopping every group');
    shuttingDown = (async () => {
      const t = engine.timings;
      const cap = opts.shutdownGraceMs ?? t.killAfterMs + 3 * t.killRepeatMs;
      let timer: NodeJS.Timeout | undefined;
      const capped = new Promise<'cap'>((r) => (timer = setTimeout(() => r('cap'), cap)));
      const r = await Promise.race([engine.haltAll().then(() => 'halted' as const), capped]);
      clearTimeout(timer);
      if (r === 'cap') log.error({ capMs: cap }, 'some processes did not stop; exiting anyway (the next start stops them)');
      else record.remove();
      await clstat?.stopAndRemove();
      clearInterval(tick);
      server?.close();
      rmSync(paths.socket, { force: true });
      log.info({}, 'shutdown complete');
      setImmediate(() => {
        for (const s of sockets) s.end(); // flush the shutdown reply, then close
        resolveExit(0);
      });
    })();
    return shuttingDown;
  };

  const waitFor = (group: string, level: string, timeoutMs: number): Promise<Reply> =>
    new Promise((resolveWait) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        const st = engine.groupStatus(group);
        const settled = engine.settledAt(group, level);
        let reply: Reply | null = null;
        if (settled) reply = { ok: settled !== 'FAILED', message: `${group} ${level} ${settled}`, state: settled };
        else if (!st) reply = { ok: false, message: `no such group: ${group}` };
        else if (st.level !== level) reply = { ok: false, message: `${group} was told level ${st.level} meanwhile`, state: st.state };
        if (reply) {
          waiters.delete(check);
          clearTimeout(timer);
          resolveWait(reply);
        }
      };
      timer = setTimeout(() => {
        waiters.delete(check);
        const st = engine.groupStatus(group);
        resolveWait({ ok: false, timeout: true, message: `timed out: ${group} is ${st?.level ?? '-'} ${st?.state ?? '-'}`, state: st?.state });
      }, Math.min(MAX_TIMER_MS, Math.max(0, timeoutMs)));
      waiters.add(check);
      check();
    });

  const handle = async (req: Request): Promise<Reply> => {
    switch (req.op) {
      case 'ping':
        return { ok: true, message: 'pong', node };
      case 'status':
        return { ok: true, message: 'status', node, groups: engine.status(), configErrors };
      case 'reread': {
        const errs = reread('reread request');
        return errs.length ? { ok: false, message: errs.join('\n'), configErrors: errs } : { ok: true, message: 'cltab re-read' };
      }
      case 'tell': {
        if (shuttingDown) return { ok: false, message: 'shutting down' };
        for (const [what, v] of [['group', req.group], ['level', req.level]] as const) {
          const why = typeof v === 'string' ? unsafeName(v) : 'is missing';
          if (why) return { ok: false, message: `bad request: ${what} ${why}` };
        }
        const errs = reread('tell');
        if (errs.length) return { ok: false, message: errs.join('\n'), configErrors: errs };
        return engine.tell(req.group, req.level);
      }
      case 'wait':
        if (typeof req.group !== 'string' || typeof req.level !== 'string') return { ok: false, message: 'bad request: wait needs group and level' };
        return waitFor(req.group, req.level, Number.isFinite(req.timeoutMs) ? req.timeoutMs : 0);
      case 'shutdown':
        void shutdown('shutdown request');
        await shuttingDown;
        return { ok: true, message: 'all groups halted; daemon exiting' };
      default:
        return { ok: false, message: `bad request: unknown op ${JSON.stringify((req as { op?: unknown }).op)}` };
    }
  };

  server = createServer((sock) => {
    sockets.add(sock);
    sock.setEncoding('utf8');
    let buf = '';
    let chain = Promise.resolve();
    const reply = (r: Reply): void => {
      if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
    };
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES && !buf.includes('\n')) {
        reply({ ok: false, message: `bad request: longer than ${MAX_REQUEST_BYTES} bytes` });
        sock.end();
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        chain = chain.then(async () => {
          let req: Request;
          try {
            req = JSON.parse(line) as Request;
            if (typeof req !== 'object' || req === null) throw new Error('not an object');
          } catch {
            reply({ ok: false, message: 'bad request: expected one JSON object per line' });
            return;
          }
          try {
            reply(await handle(req));
          } catch (e) {
            log.error({ err: String(e) }, 'request failed');
            reply({ ok: false, message: `internal error: ${String(e)}` });
          }
        });
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });

  const listening = await new Promise<boolean>((resolveListen) => {
    const oldMask = process.umask(0o177); // socket file mode 0600
    server!.once('error', (e) => {
      process.umask(oldMask);
      process.stderr.write(`peerha init: cannot listen on ${paths.socket}: ${e.message}\n`);
      resolveListen(false);
    });
    server!.listen(paths.socket, () => {
      process.umask(oldMask);
      resolveListen(true);
    });
  });
  if (!listening) return 1;

  clstat.start(cycleMs);
  const tick = setInterval(() => {
    if (!shuttingDown) reread('changed on disk');
  }, cycleMs);

  const onSignal = (sig: NodeJS.Signals): void => void shutdown(sig);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => reread('SIGHUP'));
  log.info({ node, cltab: cltabPath, socket: paths.socket, clstat: paths.clstat, groups: good.groups }, 'peerha init ready');

  const code = await exited;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return code;
}
