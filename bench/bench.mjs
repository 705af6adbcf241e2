// peerha benchmarks with real monitor processes: `npm run bench [-- options]`.
//
// Measures cold start, failover (crash of the owner node: its monitor, watchdog and group
// processes SIGKILLed at once), graceful handover, local respawn latency, idle CPU and RSS per
// monitor and simulator throughput, on three backends:
//   local  the monitors share a directory on this machine's disk;
//   sshfs  the shared-filesystem lab (test/lab/sharedfs-lab.sh, needs root): one network
//          namespace and one sshfs mount of a common export per node, so every file operation of
//          a monitor on the share is an SFTP round trip. The bench reads the export directly.
//   gluster  the GlusterFS lab (test/lab/glusterfs-lab.sh, needs root): a replica-3 volume on three
//          storage namespaces, a FUSE client per node; cold start and failover at N = 3 only.
//
// Options:
//   --quick              5 trials instead of 20, sizes ≤ 16, shorter idle windows
//   --trials K           K trials per row (overrides --quick's 5 / the default 20; 60 for the keepalived rows)
//   --only LIST          comma-separated parts: cold, failover, handover, resources, respawn, idle,
//                        keepalived (failover at keepalived's matched settings, local N = 3),
//                        scale (300 and 1,000 groups × 3 nodes, local), sim
//   --local | --sshfs | --gluster  only these backends (default: all three; respawn, handover,
//                        keepalived, scale and sim are local only)
//   --sizes LIST         cluster sizes for every cluster part (default: cold 3,16; failover 3,16,64
//                        locally (and 128 at 1s/5s) and 3,16 on sshfs; handover 3; idle 16,64,128
//                        locally, 16 on sshfs; 3 on gluster)
//   --timings LIST       CYCLE/TIMEOUT pairs for cold start, failover and handover (default
//                        250ms/1s,1s/5s; idle always runs at 1s/5s)
//   --visibility-lag D   visibility_lag for every monitor (default: the monitor's default, 0)
//   --json               the results as JSON on stdout (progress and the table on stderr)
// Targets (issue 13): failover median ≤ timeout + 100 ms + 50 ms for the group's start (its test
// and start entries: two forks) at N ≤ 16, ≤ timeout + 2×cycle above; at keepalived's matched
// settings also below keepalived's failover measured on this machine (KEEPALIVED below); cold
// start median ≤ 3×cycle + 300 ms; respawn median ≤ 50 ms; idle ≤ 1 % CPU and ≤ 60 MB RSS per
// monitor (its watchdog, a small Perl process, reported apart) at N ≤ 64 (median over the
// monitors; the max is reported too); 1,000 groups × 3 nodes running within 10 s with 0
// self-fences; the simulator ≥ 1,000 64-node histories per minute. A target counts as met (✓, "met": true) only when the row
// was measured in full by a stable cluster: no monitor past its start-up self-fenced or froze, no
// healthy node called a healthy peer stale, no hactl write of ours was lost ("health" in the JSON
// says which; "withinTarget" is the bare median comparison). A configuration that cannot be
// measured (a timeout, no lab) is a row with "error" and met false.
// JSON rows: name, backend (local|sshfs), config, nodes, cycle, timeout, unit, n (trials; for idle
// rows the number of monitors), median, p99, max, target, withinTarget, met, health, wallSeconds.
// Never run it next to other heavy work: it measures time.

import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'peerha');
const LAB = resolve(ROOT, 'test', 'lab', 'sharedfs-lab.sh');
const LAB_STATE = '/run/sharedfs-lab';
const GLUSTER_LAB = resolve(ROOT, 'test', 'lab', 'glusterfs-lab.sh');
const PARTS = ['cold', 'failover', 'keepalived', 'handover', 'resources', 'respawn', 'idle', 'scale', 'sim'];
const PART_ALIASES = { 'cold-start': 'cold', coldstart: 'cold', simulator: 'sim', 'vs-keepalived': 'keepalived' };
/**
 * keepalived 2.2.7's failover measured on this machine (issue 13: VIP only, kill -9 of the master,
 * 10 trials each), at the peerha settings that match its advert_int.
 */
const KEEPALIVED = [
  { cycle: '100ms', timeout: '300ms', ms: 300, setting: 'advert_int 0.1' },
  { cycle: '1s', timeout: '3s', ms: 3260, setting: 'advert_int 1' },
];

function usage(msg) {
  process.stderr.write(`bench: ${msg}\nusage: node bench/bench.mjs [--quick] [--trials K] [--only ${PARTS.join(',')}] [--local|--sshfs|--gluster] [--sizes 3,16] [--timings 250ms/1s,1s/5s] [--visibility-lag D] [--json]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { json: false, quick: false, trials: null, only: new Set(PARTS), backends: new Set(), sizes: null, lag: null, timings: [['250ms', '1s'], ['1s', '5s']] };
  const list = (v, what) => {
    if (!v || v.startsWith('--')) usage(`${what} needs a comma-separated list`);
    return v.split(',').map((x) => x.trim()).filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--json': o.json = true; break;
      case '--quick': o.quick = true; break;
      case '--local': o.backends.add('local'); break;
      case '--sshfs': o.backends.add('sshfs'); break;
      case '--gluster': o.backends.add('gluster'); break;
      case '--trials':
        o.trials = Number(v);
        if (!Number.isInteger(o.trials) || o.trials < 1) usage('--trials needs a positive integer');
        i++;
        break;
      case '--only': {
        const parts = list(v, k).map((p) => PART_ALIASES[p] ?? p);
        for (const p of parts) if (!PARTS.includes(p)) usage(`unknown part ${p} (parts: ${PARTS.join(', ')})`);
        o.only = new Set(parts);
        i++;
        break;
      }
      case '--sizes':
        o.sizes = list(v, k).map(Number);
        if (o.sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) usage('--sizes needs integers 1..200');
        i++;
        break;
      case '--timings':
        o.timings = list(v, k).map((t) => {
          const m = /^(\d+(?:\.\d+)?(?:ms|s))\/(\d+(?:\.\d+)?(?:ms|s))$/.exec(t);
          if (!m) usage('--timings needs CYCLE/TIMEOUT pairs such as 250ms/1s,1s/5s');
          return [m[1], m[2]];
        });
        i++;
        break;
      case '--visibility-lag':
        if (!/^\d+(\.\d+)?(ms|s)$/.test(v ?? '')) usage('--visibility-lag needs a duration such as 200ms');
        o.lag = v;
        i++;
        break;
      case '--help':
      case '-h':
        process.stderr.write(readFileSync(import.meta.filename, 'utf8').split(/\n(?!\/\/)/)[0].replace(/^\/\/ ?/gm, '') + '\n');
        process.exit(0);
        break;
      default:
        usage(`unknown argument ${k}`);
    }
  }
  if (o.backends.size === 0) for (const b of ['local', 'sshfs', 'gluster']) o.backends.add(b);
  return o;
}

const OPT = parseArgs(process.argv.slice(2));
const QUICK = OPT.quick;
const TRIALS = OPT.trials ?? (QUICK ? 5 : 20);
const log = (...a) => console.error(...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A sleep that does not keep the process alive (for races against a deadline). */
const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());
/** Clusters above this size start their monitors in batches of STAGGER_BATCH (see Cluster.init). */
const STAGGER_ABOVE = 16;
const STAGGER_BATCH = 8;
const FAST = { PEERHA_TERM_AFTER_MS: '300', PEERHA_KILL_AFTER_MS: '900', PEERHA_LOG_LEVEL: 'warn' };

async function waitFor(what, fn, timeoutMs, everyMs = 10) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}
const median = (xs) => quantile(xs, 0.5);

function parseDuration(d) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(d);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

// ---------------------------------------------------------------------------------------------
// Processes

function procStat(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), state: f[0] };
  } catch {
    return null;
  }
}
const alive = (pid) => { const s = procStat(pid); return s !== null && s.state !== 'Z'; };
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
function children(pid) {
  const out = [];
  for (const n of readdirSync('/proc')) if (/^\d+$/.test(n) && procStat(Number(n))?.ppid === pid) out.push(Number(n));
  return out;
}
function descendants(pid) {
  const out = [];
  for (let todo = [pid]; todo.length; ) {
    const p = todo.pop();
    for (const c of children(p)) { out.push(c); todo.push(c); }
  }
  return out;
}
function kill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}
/**
 * CPU ticks (100 Hz, all cores) the hypervisor gave to other guests so far (/proc/stat `steal`):
 * this VM's host takes a few % at times, and a run during such a spell freezes monitors.
 */
function stolenTicks() {
  try {
    return Number(readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)[8] ?? 0);
  } catch {
    return 0;
  }
}
/** Sum of CPU ticks (100 Hz) of PIDS now. */
const ticksOf = (pids) => pids.reduce((s, p) => s + (procStat(p)?.ticks ?? 0), 0);
const mountedUnder = (dir) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => (line.split(' ')[4] ?? '').startsWith(dir + '/'));

/** Everything to undo if we are interrupted: clusters, the respawn daemon. */
const cleanups = new Set();
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`\nbench: ${sig}: stopping monitors and taking labs down…`);
    for (const fn of [...cleanups]) {
      try {
        fn();
      } catch (e) {
        log(`bench: cleanup failed: ${e}`);
      }
    }
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// Backends: how to start a monitor, where the shared root is as seen from the bench, how to
// stop. The crash itself (SIGKILL of monitor, watchdog and the recorded process groups) is the
// same on both: lab nodes are network namespaces, every process is visible from here.

class LocalBackend {
  name = 'local';
  async up(_n, dir) {
    this.root = join(dir, 'shared');
    mkdirSync(this.root, { recursive: true });
  }
  spawnMonitor(_k, argv, env) {
    // As the systemd unit runs it: through its #! line (and the node flags there).
    return spawn(BIN, [...argv, '--root', this.root], { stdio: ['ignore', 'pipe', 'pipe'], env });
  }
  /** Per node, processes that are part of its share's cost (none locally). */
  fsPids() {
    return [];
  }
  storagePids() {
    return [];
  }
  async down() {}
  downSync() {}
}

function labRun(prefix, args, timeoutMs, script = LAB, env = { SFL_PREFIX: prefix }) {
  return new Promise((res) => {
    execFile('bash', [script, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

class SshfsBackend {
  static count = 0;
  name = 'sshfs';
  prefix = `phb${process.pid}x${++SshfsBackend.count}`;
  isUp = false;

  static problem() {
    if (process.getuid?.() !== 0) return 'needs root (network namespaces, FUSE)';
    if (!existsSync(LAB)) return `lab script not found at ${LAB}`;
    if (!existsSync('/dev/fuse')) return '/dev/fuse missing';
    return null;
  }

  async up(n, dir) {
    this.isUp = true; // from here on, `down` is owed (it is idempotent)
    const t0 = performance.now();
    const r = await labRun(this.prefix, ['up', String(n), dir], 300_000);
    if (r.code !== 0) throw new Error(`sharedfs-lab.sh up ${n} failed (${r.code}): ${r.out.trim().split('\n').slice(-3).join(' | ')}`);
    this.upMs = performance.now() - t0;
    this.root = join(dir, 'export', 'cluster');
    mkdirSync(this.root, { recursive: true });
  }
  /** `sharedfs-lab.sh exec K … --root $SFL_SHARE/cluster`: bash, nsenter, env and sh all exec, so the pid is the monitor's. */
  spawnMonitor(k, argv, env) {
    return spawn('bash', [LAB, 'exec', String(k), '/bin/sh', '-c', 'exec "$@" --root "$SFL_SHARE/cluster"', 'sh', process.execPath, BIN, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env, SFL_PREFIX: this.prefix },
    });
  }
  /** Node K's sshfs and its ssh. */
  fsPids(k) {
    try {
      const pid = Number(readFileSync(join(LAB_STATE, this.prefix, `sshfs-${k}.pid`), 'utf8'));
      return pid > 1 ? [pid, ...descendants(pid)] : [];
    } catch {
      return [];
    }
  }
  /** sshd and its per-connection sftp processes in the storage namespace. */
  storagePids() {
    const r = spawnSync('ip', ['netns', 'pids', `${this.prefix}-stor`], { encoding: 'utf8' });
    return (r.stdout ?? '').split('\n').map(Number).filter((p) => p > 1);
  }
  async down() {
    if (!this.isUp) return;
    const r = await labRun(this.prefix, ['down'], 120_000);
    if (r.code !== 0) log(`bench: sharedfs-lab.sh down (${this.prefix}) failed: ${r.out}`);
    else this.isUp = false;
  }
  downSync() {
    if (!this.isUp) return;
    spawnSync('bash', [LAB, 'down'], { env: { ...process.env, SFL_PREFIX: this.prefix }, timeout: 120_000, stdio: 'ignore' });
    this.isUp = false;
  }
}

class GlusterBackend {
  static count = 0;
  name = 'gluster';
  prefix = `pgb${process.pid % 100000}x${++GlusterBackend.count}`;
  isUp = false;

  static problem() {
    if (process.getuid?.() !== 0) return 'needs root (network namespaces, FUSE, glusterd)';
    if (!existsSync(GLUSTER_LAB)) return `lab script not found at ${GLUSTER_LAB}`;
    if (!existsSync('/dev/fuse')) return '/dev/fuse missing';
    return null;
  }

  /** The lab's environment: its prefix, owned by this process (a later `up` reaps it once we are gone). */
  env() {
    return { GFL_PREFIX: this.prefix, GFL_NET: '10.213.77', GFL_OWNER_PID: String(process.pid) };
  }

  async up(n, dir) {
    this.isUp = true;
    const r = await labRun(this.prefix, ['up', String(n), dir], 600_000, GLUSTER_LAB, this.env());
    if (r.code !== 0) throw new Error(`glusterfs-lab.sh up ${n} failed (${r.code}): ${r.out.trim().split('\n').slice(-3).join(' | ')}`);
    // The bench reads through the observer's mount (never faulted), as the chaos test does.
    this.root = join(dir, 'view', 'cluster');
    mkdirSync(this.root, { recursive: true });
  }
  spawnMonitor(k, argv, env) {
    return spawn('bash', [GLUSTER_LAB, 'exec', String(k), '/bin/sh', '-c', 'exec "$@" --root "$GFL_SHARE/cluster"', 'sh', process.execPath, BIN, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env, ...this.env() },
    });
  }
  fsPids() {
    return [];
  }
  storagePids() {
    return [];
  }
  async down() {
    if (!this.isUp) return;
    const r = await labRun(this.prefix, ['down'], 120_000, GLUSTER_LAB, this.env());
    if (r.code !== 0) log(`bench: glusterfs-lab.sh down (${this.prefix}) failed: ${r.out}`);
    else this.isUp = false;
  }
  downSync() {
    if (!this.isUp) return;
    spawnSync('bash', [GLUSTER_LAB, 'down'], { env: { ...process.env, ...this.env() }, timeout: 120_000, stdio: 'ignore' });
    this.isUp = false;
  }
}

/** Labs a killed bench run left behind (its pid is gone): take them down, remove their dirs. */
async function reapLabs() {
  if (!existsSync(LAB_STATE)) return;
  for (const p of readdirSync(LAB_STATE)) {
    const m = /^phb(\d+)x\d+$/.exec(p);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    let dir = '';
    try {
      dir = /^DIR=(.*)$/m.exec(readFileSync(join(LAB_STATE, p, 'lab.env'), 'utf8'))?.[1] ?? '';
    } catch {
      // no state
    }
    const r = await labRun(p, ['down'], 120_000);
    log(`bench: took down lab ${p} left behind by an earlier run: ${r.out.trim()}`);
    if (dir && basename(dir).startsWith('peerha-bench-') && !mountedUnder(dir)) rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// A cluster of N monitors on a backend

/** The `# peerha node=… pid=… seq=…` header of a clstat. */
function header(text) {
  const m = /^# peerha .*?\bpid=(\d+)\b.*?\bseq=(\d+)(?:.*?\btime=(\S+))?/m.exec(text);
  return m ? { pid: Number(m[1]), seq: Number(m[2]), wall: m[3] ? Date.parse(m[3]) : NaN, left: / left=1\b/.test(text.split('\n')[0]) } : null;
}

class Cluster {
  /** N monitors on BACKEND with cltab and hactl; throws (after cleaning up) when they cannot start. */
  static async create(backend, n, opts) {
    const c = new Cluster(backend, opts);
    try {
      await c.init(n);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  constructor(backend, { cycle, timeout, cltab, hactl = '' }) {
    this.backend = backend;
    this.dir = realpathSync(mkdtempSync(join(tmpdir(), `peerha-bench-${backend.name}-`)));
    // Each node's state_dir where production keeps it: /run, a tmpfs on a systemd machine. This
    // VM's /run and /tmp are on its disk (ext4), where every group start and exit rewrote the
    // process-group record by a rename that waited on writeback: 1.7 s of 15 in one monitor's
    // 1,000-group cold start (2026-12-03), and frozen cycles. /dev/shm is a tmpfs here too.
    this.stateRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/peerha-bench-state-') : join(this.dir, 'state');
    this.cltab = cltab;
    this.hactl = hactl;
    this.cycle = cycle;
    this.timeout = timeout;
    this.cycleMs = parseDuration(cycle);
    this.timeoutMs = parseDuration(timeout);
    this.nodes = new Map();
    /** Monitor warnings and errors, by message. */
    this.warnings = new Map();
    /** Nodes crashed or restarted and not yet settled: the false-stale watch leaves them out. */
    this.faulted = new Set();
    this.falseStale = 0;
    this.badPairs = new Set();
    /** The first few false stale calls, described (who, whom, as what, how long after its start). */
    this.staleSamples = [];
    /** Self-fences, freezes and failed cycles of monitors past their start-up (see start()). */
    this.fenceEvents = 0;
    /** hactl writes of ours the cluster never followed (it kept an older copy). */
    this.lostWrites = 0;
    /** Heartbeats seen by watch(): per node the current incarnation; finished periods; the longest pause. */
    this.beats = new Map();
    this.periods = [];
    this.maxBeatGapMs = 0;
    this.stopped = false;
    this.cleanup = () => this.stopSync();
    cleanups.add(this.cleanup);
  }

  async init(n) {
    // The bench reads every node's files while it waits: keep that small beside N monitors on a
    // few cores. Owner polls (which time the measurements) every pollMs, full-view polls slower.
    this.pollMs = Math.max(5, Math.ceil(n / 4));
    this.slowPollMs = Math.max(50, 4 * n);
    this.cpu0 = process.cpuUsage();
    this.steal0 = stolenTicks();
    this.t0 = performance.now();
    await this.backend.up(n, this.dir);
    this.root = this.backend.root;
    this.put('cltab', this.cltab);
    this.put('hactl', this.hactl);
    if (n <= STAGGER_ABOVE) {
      for (let i = 1; i <= n; i++) this.start(`n${i}`);
      return;
    }
    // Many monitors on this machine's 2 cores: started a batch at a time, each batch once the one
    // before it beats. All at once, the node start-ups alone (~0.3 CPU-s each) starve the monitors
    // already running for seconds, which then miss heartbeats: an artefact of N nodes sharing two
    // cores that a real cluster (a machine per node) never has.
    for (let i = 1; i <= n; i += STAGGER_BATCH) {
      const batch = [];
      for (let k = i; k < i + STAGGER_BATCH && k <= n; k++) {
        this.start(`n${k}`);
        batch.push(`n${k}`);
      }
      await waitFor(`monitors ${batch[0]}–${batch.at(-1)} beating`, () => batch.every((name) => header(this.clstat(name))?.pid === this.nodes.get(name)?.proc.pid), 60_000, 100);
    }
  }

  /** Write a shared file atomically (tmp + rename), from the bench's side of the share. */
  put(file, text) {
    const tmp = join(this.root, `.${file}.bench.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(this.root, file));
  }

  setHactl(text) {
    this.put('hactl', text);
    this.hactlWrittenAt = Date.now();
  }

  /**
   * The last hactl write was lost: well after it, every live monitor's fresh hastat still wants
   * something else for web (the monitors kept an older copy; see snapshot() for the mtimes).
   */
  hactlLost(want) {
    const since = (this.hactlWrittenAt ?? 0) + 6 * this.cycleMs + 3000;
    if (Date.now() < since) return false;
    return this.live().every((n) => {
      const h = this.hastat(n.name);
      return h && Date.parse(h.time) > since && (h.groups?.web?.want ?? null) !== want;
    });
  }

  /**
   * Wait until the wall clock is in a later second than the last hactl write. SFTP carries mtime in
   * whole seconds and the monitors pick the newest copy of hactl by mtime (ties by content hash), so
   * on sshfs a second write within the same second can lose to the replicas of the first one.
   */
  async nextMtimeSecond() {
    if (this.hactlWrittenAt === undefined) return;
    const now = Date.now();
    if (Math.floor(now / 1000) <= Math.floor(this.hactlWrittenAt / 1000)) await sleep(1000 - (now % 1000) + 20);
  }

  stateDir(name) {
    return join(this.stateRoot, name);
  }

  start(name) {
    const k = Number(name.slice(1));
    const cfg = join(this.dir, `${name}.yaml`);
    writeFileSync(cfg, `state_dir: ${this.stateDir(name)}\n${OPT.lag ? `visibility_lag: ${OPT.lag}\n` : ''}`);
    const p = this.backend.spawnMonitor(k, ['monitor', '--config', cfg, '--node', name, '--cycle', this.cycle, '--timeout', this.timeout], { ...process.env, ...FAST, PEERHA_NODE: name });
    let buf = '';
    let entry = null;
    const onData = (d) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        // pino puts its numeric level first; a log object's own `level` field (a group level) may follow.
        const lvl = /^\{"level":(\d+)/.exec(line);
        if (lvl && Number(lvl[1]) < 40) continue;
        let msg = line.slice(0, 120);
        try {
          msg = String(JSON.parse(line).msg).replace(/\(.*\)$/, '').trim();
        } catch {
          // not JSON: count the raw line
        }
        if (msg) this.warnings.set(msg, (this.warnings.get(msg) ?? 0) + 1);
        // A monitor's first moments are left out (a just-started monitor may call its own start-up a
        // freeze); after that, any of these means it cannot keep its cycle on this backend.
        // (Not the clean-up of a node the bench itself crashed: its watchdog says it self-fences.)
        if (/frozen|self-fenc|monitor silent|cycle failed|watchdog exited/.test(msg) && entry && !entry.dead && performance.now() - entry.startedPerf > 2 * this.timeoutMs + 2000) this.fenceEvents++;
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    const exited = new Promise((r) => p.on('exit', r));
    entry = { name, k, proc: p, exited, dead: false, startedWall: Date.now(), startedPerf: performance.now() };
    this.nodes.set(name, entry);
  }

  read(name, file) {
    try {
      return readFileSync(join(this.root, 'nodes', name, file), 'utf8');
    } catch {
      return '';
    }
  }
  clstat(name) {
    return this.read(name, 'clstat');
  }
  hastat(name) {
    try {
      return JSON.parse(this.read(name, 'hastat'));
    } catch {
      return null;
    }
  }

  live() {
    return [...this.nodes.values()].filter((n) => !n.dead);
  }

  /** The live node running GROUP at LEVEL settled, when exactly one does. */
  owner(group, level = 'start') {
    const on = [];
    for (const n of this.live()) {
      const t = this.clstat(n.name);
      if (t.includes(' left=1')) continue;
      for (const line of t.split('\n')) {
        const f = line.split(' ');
        if (f[0] === 'Cluster::Init::Group' && f[1] === group && f[3] !== 'CONFIGURED' && !(f[2] === 'stop' && f[3] === 'DONE')) on.push({ node: n.name, level: f[2], state: f[3] });
      }
    }
    return on.length === 1 && on[0].level === level && (on[0].state === 'DONE' || on[0].state === 'PASSED') ? on[0].node : null;
  }

  /** Every live monitor has published a clstat of its own (not one a previous process left). */
  allUp() {
    return this.live().every((n) => header(this.clstat(n.name))?.pid === n.proc.pid);
  }

  /** allUp, and every live monitor's fresh hastat calls every live node up. */
  settled() {
    if (!this.allUp()) return false;
    const live = this.live();
    for (const v of live) {
      const h = this.hastat(v.name);
      if (!h || !(Date.parse(h.time) > v.startedWall)) return false;
      if (live.some((x) => h.nodes?.[x.name]?.state !== 'up')) return false;
    }
    for (const n of live) this.faulted.delete(n.name);
    return true;
  }

  /**
   * Watch for healthy nodes calling healthy peers anything but up (a false takeover's first step),
   * and time the heartbeats: how often monitors really publish, their longest pause.
   */
  watch() {
    this.watcher = setInterval(() => {
      const t = performance.now();
      for (const n of this.live()) {
        const h = header(this.clstat(n.name));
        if (!h || h.pid !== n.proc.pid) continue;
        const b = this.beats.get(n.name);
        if (!b || b.pid !== h.pid) {
          if (b) this.endBeats(b);
          this.beats.set(n.name, { pid: h.pid, seq: h.seq, at: t, wall: h.wall, firstSeq: h.seq, firstAt: t });
        } else if (h.seq !== b.seq) {
          // Between two heartbeats in a row, timed by the writer's own clock (the same machine):
          // the watcher's sampling alone would add up to its interval to every pause (a 100 ms
          // cycle showed "203 ms" pauses at 200 ms samples). Otherwise the sampled time, an upper bound.
          const pause = h.seq === b.seq + 1 && Number.isFinite(h.wall - b.wall) ? h.wall - b.wall : t - b.at;
          if (!this.faulted.has(n.name)) this.maxBeatGapMs = Math.max(this.maxBeatGapMs, pause);
          b.seq = h.seq;
          b.at = t;
          b.wall = h.wall;
        }
      }
      const ok = this.live().filter((n) => !this.faulted.has(n.name));
      const bad = new Set();
      for (const v of ok) {
        const h = this.hastat(v.name);
        if (!h || !(Date.parse(h.time) > v.startedWall)) continue;
        for (const n of ok) {
          const seen = h.nodes?.[n.name];
          if (n === v || !seen || seen.state === 'up') continue;
          const pair = `${v.name}>${n.name}`;
          bad.add(pair);
          if (this.badPairs.has(pair) || this.staleSamples.length >= 3) continue;
          const own = header(this.clstat(n.name));
          this.staleSamples.push(`${v.name} called ${n.name} ${seen.state} ${((performance.now() - n.startedPerf) / 1000).toFixed(1)} s after its start (last change ${seen.lastChange}; its clstat: ${own ? `seq ${own.seq} at ${Number.isFinite(own.wall) ? new Date(own.wall).toISOString() : '?'}` : 'none'})`);
        }
      }
      for (const p of bad) if (!this.badPairs.has(p)) this.falseStale++;
      this.badPairs = bad;
    }, this.watchEveryMs());
  }

  /** Every half cycle locally (up to 16 nodes); on a network filesystem its reads would load the store. */
  watchEveryMs() {
    if (this.nodes.size > 16) return 500;
    return this.backend.name === 'local' ? Math.min(200, Math.max(25, this.cycleMs / 2)) : 200;
  }

  endBeats(b) {
    if (b.seq - b.firstSeq >= 3) this.periods.push((b.at - b.firstAt) / (b.seq - b.firstSeq));
  }

  watchdogs(name) {
    const n = this.nodes.get(name);
    return children(n.proc.pid).filter((c) => cmdline(c).includes('watchdog'));
  }

  pgids(name) {
    try {
      return JSON.parse(readFileSync(join(this.stateDir(name), `${name}.pgids`), 'utf8')).groups.map((g) => g.pgid).filter((g) => Number.isSafeInteger(g) && g > 1);
    } catch {
      return [];
    }
  }

  /** A node crash: its monitor, its watchdog and its group processes die at once. */
  crash(name) {
    const n = this.nodes.get(name);
    const wds = this.watchdogs(name);
    const pgids = this.pgids(name);
    this.faulted.add(name);
    kill(n.proc.pid, 'SIGKILL');
    for (const w of wds) kill(w, 'SIGKILL');
    for (const g of pgids) kill(-g, 'SIGKILL');
    n.dead = true;
  }

  restart(name) {
    this.faulted.add(name);
    this.start(name);
  }

  /**
   * A restarted monitor up and seen by all, and past its start-up. Node's start and a monitor's
   * first cycles take ~0.6 CPU-s (a whole core for ~0.7 s here, then a fifth of one for ~1 s;
   * 2026-12-03): on this 2-core machine that slows every other monitor, and a fault of the next
   * trial landed in it about one time in six (takeovers 50–130 ms late). On a real cluster each
   * monitor has its own machine. So the next trial waits until the restarted monitor (and its
   * watchdog) used at most a fifth of a core over 300 ms, for up to 10 s.
   */
  async rejoined(name) {
    await waitFor('restarted monitor up and seen by all', () => this.settled(), trialLimit(this), this.slowPollMs);
    const pid = this.nodes.get(name).proc.pid;
    const pids = [pid, ...descendants(pid)];
    const used = [];
    let last = ticksOf(pids);
    await waitFor(`${name} past its start-up`, () => {
      const now = ticksOf(pids);
      used.push(now - last);
      last = now;
      return used.length >= 3 && used.slice(-3).reduce((a, b) => a + b, 0) <= 6;
    }, 10_000, 100).catch(() => undefined);
  }

  /** Ask every monitor to leave, bounded; then SIGKILL what is left and the recorded process groups; then the backend. */
  async stop() {
    if (this.stopped) return;
    clearInterval(this.watcher);
    const live = this.live();
    // Watchdogs now: once a monitor has exited they are no longer its children.
    const wds = live.flatMap((n) => this.watchdogs(n.name));
    for (const n of live) kill(n.proc.pid, 'SIGTERM');
    await Promise.race([Promise.all(live.map((n) => n.exited)), deadline(30_000)]);
    this.killAll();
    for (const w of wds) if (alive(w) && cmdline(w).includes('watchdog')) kill(w, 'SIGKILL');
    await this.backend.down();
    this.finish();
  }

  /** For signal handlers: everything at once, synchronously. */
  stopSync() {
    if (this.stopped) return;
    clearInterval(this.watcher);
    this.killAll();
    this.backend.downSync();
    this.finish();
  }

  killAll() {
    for (const n of this.nodes.values()) {
      if (alive(n.proc.pid)) for (const w of children(n.proc.pid)) kill(w, 'SIGKILL');
      kill(n.proc.pid, 'SIGKILL');
      for (const g of this.pgids(n.name)) kill(-g, 'SIGKILL');
    }
  }

  finish() {
    this.stopped = true;
    cleanups.delete(this.cleanup);
    if (mountedUnder(this.dir)) log(`bench: something is still mounted under ${this.dir}; not removing it`);
    else rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.stateRoot, { recursive: true, force: true });
  }

  /** What the cluster looked like (for a failed row): who runs web at which level, what hactl says where. */
  snapshot(group = 'web') {
    const on = [];
    const hactls = new Map();
    const add = (src, file) => {
      try {
        const k = `${JSON.stringify(readFileSync(file, 'utf8').trim())} mtime ${(statSync(file).mtimeMs / 1000).toFixed(3)}`;
        hactls.set(k, [...(hactls.get(k) ?? []), src]);
      } catch {
        // none
      }
    };
    add('DIR', join(this.root, 'hactl'));
    for (const n of this.live()) {
      const line = this.clstat(n.name).split('\n').find((l) => l.startsWith(`Cluster::Init::Group ${group} `));
      if (line && !/ CONFIGURED$/.test(line)) on.push(`${n.name} ${line.split(' ').slice(2).join(' ')}`);
      add(n.name, join(this.root, 'nodes', n.name, 'hactl'));
    }
    const h = this.hastat(this.live()[0]?.name);
    const g = h?.groups?.[group];
    return `${group} on: [${on.join(', ')}]; last hactl write by the bench at ${((this.hactlWrittenAt ?? 0) / 1000).toFixed(3)}; hactl: ${[...hactls].map(([t, src]) => `${t} at ${src.length > 3 ? `${src.length} places` : src.join(',')}`).join('; ')}${g ? `; ${h.node} sees want ${g.want}${g.notes?.length ? `, notes ${JSON.stringify(g.notes)}` : ''}` : ''}`;
  }

  /**
   * How the cluster coped while measured: stable unless a monitor past its start-up self-fenced,
   * froze or failed a cycle, or a healthy node called a healthy peer stale.
   */
  health() {
    for (const b of this.beats.values()) this.endBeats(b);
    this.beats.clear();
    const reasons = [];
    if (this.fenceEvents) reasons.push(`${this.fenceEvents} self-fence/freeze event(s) of running monitors`);
    if (this.falseStale) reasons.push(`${this.falseStale} false stale call(s) between healthy nodes (first: ${this.staleSamples.join('; ')})`);
    if (this.lostWrites) reasons.push(`${this.lostWrites} hactl write(s) lost: the monitors kept the older hactl (same mtime second)`);
    const h = {
      stable: reasons.length === 0,
      ...(reasons.length ? { unstable: reasons.join(', ') } : {}),
      falseStale: this.falseStale,
      fenceEvents: this.fenceEvents,
      lostHactlWrites: this.lostWrites,
      ...(this.lostSnapshot ? { firstLostWrite: this.lostSnapshot } : {}),
      // Mean interval between a monitor's clstat publishes (median over monitors): about the cycle
      // when it keeps up, shorter when it publishes extra (state changes), longer when it cannot.
      heartbeatIntervalMs: this.periods.length ? Math.round(median(this.periods)) : null,
      maxBeatGapMs: Math.round(this.maxBeatGapMs),
      // The bench's own CPU while this cluster ran (it competes with the monitors for the cores).
      benchCpuPct: +((100 * (process.cpuUsage(this.cpu0).user + process.cpuUsage(this.cpu0).system)) / 1000 / (performance.now() - this.t0)).toFixed(1),
      // The machine's CPU time the host took meanwhile (% of all cores).
      stolenPct: +((stolenTicks() - this.steal0) / ((performance.now() - this.t0) / 10) / cpus().length * 100).toFixed(1),
      warnings: Object.fromEntries(this.warnings),
    };
    return { health: h };
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

const WEB = 'web:web-test:test:test:true\nweb:web-run:start:respawn:exec sleep 100000\n';
/** How long one trial may take before the configuration counts as not working. */
const trialLimit = (c) => Math.max(30_000, 10 * c.timeoutMs + 20 * c.cycleMs + 10_000);

/** Run `count` (TRIALS) of TRIAL on a fresh cluster; keeps the times measured before a failure. */
async function trials(backend, n, cycle, timeout, hactl, { setup, trial, cltab = WEB, count = TRIALS }) {
  const times = [];
  let c = null;
  try {
    c = await Cluster.create(backend, n, { cycle, timeout, cltab, hactl });
    await waitFor('every monitor up and seeing every other', () => c.settled(), 120_000, c.slowPollMs);
    await setup?.(c);
    c.watch();
    // A trial may be discarded (null: see coldStart); a few spare attempts make up for those.
    for (let attempt = 0; times.length < count && attempt < count + 5; attempt++) {
      const ms = await trial(c);
      if (ms === null) {
        log(`  … ${backend.name} N=${n} ${cycle}/${timeout} attempt ${attempt + 1}: discarded (hactl write lost)`);
        continue;
      }
      times.push(ms);
      if (!QUICK || times.length === 1 || times.length === count) log(`  … ${backend.name} N=${n} ${cycle}/${timeout} trial ${times.length}/${count}: ${Math.round(ms)} ms`);
    }
    return { times, ...c.health() };
  } catch (e) {
    return { times, error: `${e.message} after ${times.length} trial(s)`, ...(c ? { snapshot: c.root ? c.snapshot() : null, ...c.health() } : {}) };
  } finally {
    await c?.stop();
  }
}

/**
 * A fault or an admin's edit strikes at any moment of the monitors' cycles. Without this wait the
 * trial would start right after the poll that ended the previous one, i.e. in step with some
 * monitor's heartbeat, and measure that phase instead of a random one.
 */
const atRandomPhase = (c) => sleep(Math.random() * c.cycleMs);

/** Cold start: hactl `web start` written → web start DONE on one node. */
function coldStart(backend, n, cycle, timeout) {
  return trials(backend, n, cycle, timeout, '', {
    setup: () => sleep(3 * parseDuration(cycle)),
    async trial(c) {
      await c.nextMtimeSecond();
      await atRandomPhase(c);
      const t0 = performance.now();
      c.setHactl('web start\n');
      let lost = false;
      await waitFor('web running', async () => {
        if (c.owner('web')) return true;
        if (!c.hactlLost('start')) return false;
        // The cluster kept the previous hactl: this trial measures nothing. Write it again (a later
        // mtime second wins) and carry on to a clean state.
        lost = true;
        c.lostWrites++;
        c.lostSnapshot ??= c.snapshot();
        await c.nextMtimeSecond();
        c.setHactl('web start\n');
        return false;
      }, trialLimit(c), c.pollMs);
      const ms = performance.now() - t0;
      await c.nextMtimeSecond();
      c.setHactl('web stop\n');
      await waitFor('web stopped', async () => {
        if (!c.owner('web') && !c.live().some((x) => / web (plan|test|start) /.test(c.clstat(x.name)))) return true;
        if (c.hactlLost('stop')) {
          c.lostWrites++;
          c.lostSnapshot ??= c.snapshot();
          await c.nextMtimeSecond();
          c.setHactl('web stop\n');
        }
        return false;
      }, trialLimit(c), c.pollMs);
      return lost ? null : ms;
    },
  });
}

/**
 * Scale: G groups × N nodes, cycle 250 ms / timeout 1 s. hactl wants all G at once; measured: until
 * every group runs at start on exactly one node, self-fences (any, start-up included), and how the
 * groups spread (max − min per node).
 */
async function scaleColdStart(backend, n, groups) {
  const names = Array.from({ length: groups }, (_, i) => `g${i + 1}`);
  const cltab = names.map((g) => `${g}:${g}-run:start:respawn:exec sleep 100000`).join('\n') + '\n';
  let c = null;
  try {
    c = await Cluster.create(backend, n, { cycle: '250ms', timeout: '1s', cltab, hactl: '' });
    await waitFor('every monitor up and seeing every other', () => c.settled(), 120_000, c.slowPollMs);
    const t0 = performance.now();
    c.setHactl(names.map((g) => `${g} start`).join('\n') + '\n');
    let counts = [];
    await waitFor(`all ${groups} groups running once`, () => {
      const on = new Map();
      for (const x of c.live()) {
        for (const line of c.clstat(x.name).split('\n')) {
          const f = line.split(' ');
          if (f[0] === 'Cluster::Init::Group' && f[2] === 'start' && f[3] === 'DONE') on.set(f[1], [...(on.get(f[1]) ?? []), x.name]);
        }
      }
      counts = c.live().map((x) => [...on.values()].filter((v) => v.length === 1 && v[0] === x.name).length);
      return names.every((g) => on.get(g)?.length === 1);
    }, 120_000, 100);
    const ms = performance.now() - t0;
    const fences = [...c.warnings].filter(([m]) => /frozen|self-fencing|monitor silent: self/.test(m)).reduce((a, [, k]) => a + k, 0);
    return { times: [ms], fences, spread: Math.max(...counts) - Math.min(...counts), counts, ...c.health() };
  } catch (e) {
    return { times: [], error: e.message, ...(c ? c.health() : {}) };
  } finally {
    await c?.stop();
  }
}

/** Failover: crash of the whole owner node → web start DONE on another node. */
function failover(backend, n, cycle, timeout, count = TRIALS) {
  return trials(backend, n, cycle, timeout, 'web start\n', {
    count,
    async trial(c) {
      const owner = await waitFor('web running', () => c.owner('web'), trialLimit(c), c.pollMs);
      await atRandomPhase(c);
      const t0 = performance.now();
      c.crash(owner);
      await waitFor('web elsewhere', () => {
        const o = c.owner('web');
        return o && o !== owner ? o : null;
      }, trialLimit(c), c.pollMs);
      const ms = performance.now() - t0;
      await c.nodes.get(owner).exited;
      c.restart(owner);
      await c.rejoined(owner);
      return ms;
    },
  });
}

/**
 * A group holding a resource (a marker file per holder, taken by a start entry, released by its
 * stop entry): kill -9 of the owner's monitor alone → its watchdog kills the group and runs the
 * stop entry; time until web runs elsewhere. `released` collects when the old marker went.
 */
function stopEntryFailover(backend, n, cycle, timeout, released) {
  const holder = (c, node) => join(dirname(c.root), `held.${node}`);
  const cltab = `${WEB}web:web-up:start:wait:touch "$PEERHA_ROOT/../held.$PEERHA_NODE"\nweb:web-down:stop:wait:rm -f "$PEERHA_ROOT/../held.$PEERHA_NODE"\n`;
  return trials(backend, n, cycle, timeout, 'web start\n', {
    cltab,
    async trial(c) {
      const owner = await waitFor('web running', () => c.owner('web'), trialLimit(c), c.pollMs);
      await waitFor('the owner holds the marker', () => existsSync(holder(c, owner)), trialLimit(c), c.pollMs);
      await atRandomPhase(c);
      const t0 = performance.now();
      c.faulted.add(owner);
      kill(c.nodes.get(owner).proc.pid, 'SIGKILL');
      c.nodes.get(owner).dead = true;
      let gone = null;
      const to = await waitFor('web elsewhere', () => {
        if (gone === null && !existsSync(holder(c, owner))) gone = performance.now() - t0;
        const o = c.owner('web');
        return o && o !== owner ? o : null;
      }, trialLimit(c), c.pollMs);
      const ms = performance.now() - t0;
      if (gone === null && !existsSync(holder(c, owner))) gone = ms;
      if (gone !== null) released.push(gone);
      await waitFor('the new owner holds the marker', () => existsSync(holder(c, to)), trialLimit(c), c.pollMs);
      await c.nodes.get(owner).exited;
      c.restart(owner);
      await c.rejoined(owner);
      return ms;
    },
  });
}

/**
 * A service that stops answering: its health check (every 250 ms, 2 failures, no local restart)
 * starts failing on the owner → web start DONE on another node.
 */
function healthFailover(backend, n, cycle, timeout) {
  const healthy = (c, node) => join(dirname(c.root), `healthy.${node}`);
  let trialNo = 0;
  const cltab = `${WEB}web:web-check:start:monitor,interval=250ms,timeout=1s,failures=2,max_restarts=0:test -e "$PEERHA_ROOT/../healthy.$PEERHA_NODE"\n`;
  return trials(backend, n, cycle, timeout, 'web start\n', {
    cltab,
    setup: (c) => {
      for (let i = 1; i <= n; i++) writeFileSync(healthy(c, `n${i}`), '');
    },
    async trial(c) {
      const owner = await waitFor('web running', () => c.owner('web'), trialLimit(c), c.pollMs);
      await sleep(500); // past its first checks
      await atRandomPhase(c);
      const t0 = performance.now();
      rmSync(healthy(c, owner), { force: true });
      await waitFor('web elsewhere', () => {
        const o = c.owner('web');
        return o && o !== owner ? o : null;
      }, trialLimit(c), c.pollMs);
      const ms = performance.now() - t0;
      writeFileSync(healthy(c, owner), '');
      // A configuration change clears every node's failed-test memory: each trial starts from a
      // cluster where no node has failed web before (else later trials measure cooldowns).
      await c.nextMtimeSecond();
      c.setHactl(`web start\n# trial ${++trialNo}\n`);
      await sleep(3 * c.cycleMs);
      return ms;
    },
  });
}

/** Graceful handover: SIGTERM of the owner's monitor → web start DONE on another node. */
function handover(backend, n, cycle, timeout) {
  return trials(backend, n, cycle, timeout, 'web start\n', {
    async trial(c) {
      const owner = await waitFor('web running', () => c.owner('web'), trialLimit(c), c.pollMs);
      await atRandomPhase(c);
      const t0 = performance.now();
      c.faulted.add(owner);
      kill(c.nodes.get(owner).proc.pid, 'SIGTERM');
      c.nodes.get(owner).dead = true;
      await waitFor('web elsewhere', () => {
        const o = c.owner('web');
        return o && o !== owner ? o : null;
      }, trialLimit(c), c.pollMs);
      const ms = performance.now() - t0;
      await c.nodes.get(owner).exited;
      c.restart(owner);
      await c.rejoined(owner);
      return ms;
    },
  });
}

/** Local respawn: SIGKILL of a respawn entry's process → its replacement is running. */
async function respawn() {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-bench-r-'));
  const pidFile = join(dir, 'pid');
  writeFileSync(join(dir, 'cltab'), `g:r:1:respawn:echo $$ > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; exec sleep 100000\n`);
  const d = spawn(process.execPath, [BIN, 'init', '--cltab', join(dir, 'cltab'), '--socket', join(dir, 's'), '--clstat', join(dir, 'clstat')], {
    stdio: 'ignore',
    // An instance that ran 1 s resets the crash-loop memory, so that kills 1.1 s apart never meet
    // the crash-loop backoff (more than 5 exits in 10 s) and every trial measures a plain respawn.
    env: { ...process.env, ...FAST, PEERHA_RESET_AFTER_MS: '1000' },
  });
  const readPid = () => {
    try {
      return Number(readFileSync(pidFile, 'utf8')) || 0;
    } catch {
      return 0;
    }
  };
  const cleanup = () => {
    const p = readPid();
    kill(d.pid, 'SIGKILL');
    if (p) kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.add(cleanup);
  const times = [];
  try {
    await waitFor('socket', () => existsSync(join(dir, 's')), 10_000);
    spawnSync(process.execPath, [BIN, 'tell', 'g', '1', '--socket', join(dir, 's')]);
    for (let i = 0; i < (OPT.trials ?? (QUICK ? 10 : 50)); i++) {
      const old = await waitFor('pid', () => readPid(), 10_000, 1);
      await sleep(1100); // longer than PEERHA_RESET_AFTER_MS: out of the crash-loop backoff
      const t0 = performance.now();
      kill(old, 'SIGKILL');
      await waitFor('new pid', () => { const p = readPid(); return p && p !== old; }, 10_000, 1);
      times.push(performance.now() - t0);
    }
    return { times };
  } catch (e) {
    return { times, error: e.message };
  } finally {
    spawnSync(process.execPath, [BIN, 'shutdown', '--socket', join(dir, 's')], { timeout: 30_000 });
    cleanup();
    cleanups.delete(cleanup);
  }
}

/**
 * Idle monitors over a quiet window: CPU % and RSS per monitor (monitor + watchdog), the cycle
 * period they actually achieve, and on the lab the sshfs client per node and the storage sshd.
 */
const FILE_SYSCALLS = 'openat,statx,newfstatat,lstat,rename,renameat2,getdents64,unlink,readlink,mkdir,fsync,fdatasync,read,write,close';

/**
 * File syscalls of one monitor over MS (strace -c), per cycle it published meanwhile: what the
 * shared directory serves per monitor. read/write/close count every fd (pipes to its children too).
 */
function fileSyscalls(c, name, ms) {
  const n = c.nodes.get(name);
  if (!n || spawnSync('strace', ['-V']).status !== 0) return Promise.resolve(null);
  const seq0 = header(c.clstat(name))?.seq ?? 0;
  return new Promise((res) => {
    execFile('timeout', ['-s', 'INT', String(ms / 1000), 'strace', '-c', '-f', '-e', `trace=${FILE_SYSCALLS}`, '-p', String(n.proc.pid)], { encoding: 'utf8' }, (_err, _out, stderr) => {
      const cycles = (header(c.clstat(name))?.seq ?? 0) - seq0;
      const total = /(\d+)\s+(?:\d+\s+)?total\s*$/m.exec(stderr ?? '');
      if (!total || cycles <= 0) return res(null);
      const calls = Object.fromEntries([...(stderr ?? '').matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/gm)].map((m) => [m[2], Number(m[1])]));
      res({ perCycle: Number(total[1]) / cycles, cycles, note: `${cycles} cycles: ${Object.entries(calls).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / cycles).toFixed(1)}`).join(', ')}` });
    });
  });
}

/** How long a cluster runs before its idle window (see idle()). */
const IDLE_WARMUP_MS = 60_000;

async function idle(backend, n, cycle, timeout) {
  let c = null;
  try {
    c = await Cluster.create(backend, n, { cycle, timeout, cltab: WEB, hactl: 'web start\n' });
    await waitFor('every monitor up and seeing every other', () => c.settled(), 180_000, Math.max(100, c.slowPollMs));
    await waitFor('web running', () => c.owner('web'), 120_000, Math.max(100, c.pollMs));
    c.watch();
    // Idle means steady: a monitor's first minute costs ~30 % more CPU than its later ones (V8
    // still compiling its hot code; measured at N = 64 on 2026-12-03: 1.27 % in the 2nd and 3rd
    // minute, 0.9–1.0 % from then on). Self-fences and false stale calls count from the start.
    await sleep(QUICK ? 5_000 : IDLE_WARMUP_MS);
    const nodes = c.live().map((x) => ({ name: x.name, mon: [x.proc.pid, ...c.watchdogs(x.name)], fs: backend.fsPids(x.k) }));
    const storage = backend.storagePids();
    const t0 = performance.now();
    const before = nodes.map((x) => ({ mon: ticksOf(x.mon), monitor: ticksOf(x.mon.slice(0, 1)), fs: ticksOf(x.fs) }));
    const st0 = ticksOf(storage);
    const idleMs = QUICK ? 5_000 : 15_000;
    await sleep(idleMs);
    const secs = (performance.now() - t0) / 1000;
    const pct = (ticks) => ticks / secs; // 100 ticks/s = 100 %
    const per = nodes.map((x, i) => ({
      cpu: pct(ticksOf(x.mon.slice(0, 1)) - before[i].monitor),
      cpuWithWatchdog: pct(ticksOf(x.mon) - before[i].mon),
      rss: x.mon.reduce((s, p) => s + rssMb(p), 0),
      rssMonitor: rssMb(x.mon[0]),
      fsCpu: pct(ticksOf(x.fs) - before[i].fs),
      fsRss: x.fs.reduce((s, p) => s + rssMb(p), 0),
    }));
    const storageNow = backend.storagePids();
    const fileOps = await fileSyscalls(c, 'n1', Math.min(10_000, idleMs));
    return {
      per,
      idleSeconds: Math.round((idleMs + (QUICK ? 5_000 : IDLE_WARMUP_MS)) / 1000),
      fileOps,
      storage: storage.length ? { cpu: pct(ticksOf(storage) - st0), rss: storageNow.reduce((s, p) => s + rssMb(p), 0), processes: storageNow.length } : null,
      ...c.health(),
    };
  } catch (e) {
    return { per: [], error: e.message, ...(c ? c.health() : {}) };
  } finally {
    await c?.stop();
  }
}

function simThroughput(seeds = QUICK ? 200 : 2000, extra = []) {
  const cli = join(ROOT, 'dist', 'sim', 'cli.js');
  if (!existsSync(cli)) return Promise.resolve({ seeds, error: 'dist/sim/cli.js not built (npm run build)' });
  return new Promise((res) => {
    execFile(process.execPath, [cli, '--seeds', String(seeds), ...extra, '--json'], { encoding: 'utf8', timeout: 1_200_000, maxBuffer: 64 << 20 }, (_err, stdout, stderr) => {
      try {
        res(JSON.parse(stdout.trim().split('\n').pop()));
      } catch {
        res({ seeds, error: `${stdout}${stderr}`.trim().slice(-500) || 'no output' });
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Rows and the table

const results = {
  machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  date: new Date().toISOString(),
  options: { quick: QUICK, trials: TRIALS, only: [...OPT.only], backends: [...OPT.backends], sizes: OPT.sizes, timings: OPT.timings.map((t) => t.join('/')), visibilityLag: OPT.lag ?? 'default (0)' },
  // 1-minute load average when the bench started and ended: anything well above 0 at the start
  // means other work shared the cores and the times are noisy.
  loadavg: { start: +loadavg()[0].toFixed(2), end: null },
  rows: [],
};

/**
 * One result row. Targets are judged on the median; met is null when the row has no target, false
 * when the measurement failed or the cluster was unstable (see the header).
 */
function addRow({ name, backend, config, nodes = null, cycle = null, timeout = null, unit = 'ms', xs, target = null, limit = null, error, extra = {}, digits = 0 }) {
  const round = (v) => (Number.isFinite(v) ? +v.toFixed(digits) : null);
  const med = round(median(xs));
  const r = {
    name,
    backend,
    config,
    nodes,
    cycle,
    timeout,
    unit,
    n: xs.length,
    median: med,
    p99: round(quantile(xs, 0.99)),
    max: xs.length ? round(Math.max(...xs)) : null,
    target: target,
    ...(error ? { error } : {}),
    ...extra,
  };
  // A target counts as met only when measured in full, by a stable cluster.
  if (limit !== null) r.withinTarget = med !== null && med <= limit;
  if (!('met' in extra)) r.met = limit === null ? null : !error && r.withinTarget && r.health?.stable !== false;
  results.rows.push(r);
  log(`${mark(r)} ${name} [${backend}] ${config}: ${r.n ? `median ${r.median} ${unit}, p99 ${r.p99} ${unit} (${r.n})` : 'no result'}${target ? `, target ${target}` : ''}${error ? ` — ${error}` : ''}${notes(r) ? ` — ${notes(r)}` : ''}`);
  if (r.snapshot) log(`    at the failure: ${r.snapshot}`);
  return r;
}
const mark = (r) => (r.met === null ? (r.error ? '✗' : ' ') : r.met ? '✓' : '✗');
function notes(r) {
  const out = [];
  const h = r.health;
  if (h?.unstable) out.push(`UNSTABLE: ${h.unstable}`);
  if (h?.heartbeatIntervalMs && h.heartbeatIntervalMs > 1.2 * parseDuration(r.cycle)) out.push(`heartbeat every ${h.heartbeatIntervalMs} ms`);
  if (h && r.timeout && h.maxBeatGapMs > parseDuration(r.timeout) / 2) out.push(`longest heartbeat pause ${h.maxBeatGapMs} ms`);
  if (h?.stolenPct >= 1) out.push(`${h.stolenPct} % of the CPU taken by the host`);
  if (r.note) out.push(r.note);
  return out.join('; ');
}

function printTable() {
  const rows = results.rows;
  const fmt = (v, u) => (v === null ? '-' : `${v} ${u}`);
  const cols = [
    ['', (r) => mark(r)],
    ['measurement', (r) => r.name],
    ['backend', (r) => r.backend],
    ['config', (r) => r.config],
    ['n', (r) => String(r.n)],
    ['median', (r) => fmt(r.median, r.unit)],
    ['p99', (r) => fmt(r.p99, r.unit)],
    ['max', (r) => fmt(r.max, r.unit)],
    ['target', (r) => r.target ?? ''],
    ['notes', (r) => [r.error ? `NOT MEASURED: ${r.error}` : '', notes(r)].filter(Boolean).join('; ')],
  ];
  const cells = rows.map((r) => cols.map(([, f]) => f(r)));
  const width = cols.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(width[i]))).join('  ').trimEnd();
  const out = [`peerha bench — ${results.machine}; ${results.date}; ${TRIALS} trials per row; load average ${results.loadavg.start} at the start, ${results.loadavg.end} at the end`, line(cols.map(([h]) => h)), ...cells.map(line)];
  const withTarget = rows.filter((r) => r.met !== null);
  out.push(`${withTarget.filter((r) => r.met).length} of ${withTarget.length} targets met${rows.some((r) => r.error) ? `; ${rows.filter((r) => r.error).length} row(s) could not be measured fully` : ''}`);
  (OPT.json ? process.stderr : process.stdout).write(out.join('\n') + '\n');
}

// ---------------------------------------------------------------------------------------------
// The plan

const TIMINGS = OPT.timings;
const wants = (part) => OPT.only.has(part);
function sizesFor(part, backend, timeout = null) {
  if (OPT.sizes) return OPT.sizes;
  if (backend === 'gluster') return [3];
  const d = {
    cold: [3, 16],
    // 128 monitors at the relaxed setting only: the issue's target for them is 1s/5s.
    failover: backend === 'local' ? (timeout === '5s' ? [3, 16, 64, 128] : [3, 16, 64]) : [3, 16],
    handover: [3],
    resources: [3],
    idle: backend === 'local' ? [16, 64, 128] : [16],
  }[part];
  return QUICK ? d.filter((n) => n <= 16) : d;
}
/** Failover target: timeout + 100 ms + the group's start (50 ms) at N ≤ 16, timeout + 2 × cycle above. */
const failoverLimit = (n, c, t) => (n <= 16 ? t + 150 : t + 2 * c);
const failoverTarget = (n, c, t) => `≤ ${failoverLimit(n, c, t)} ms${n <= 16 ? ' (timeout + 150)' : ' (timeout + 2 cycles)'}`;
const cfgText = (n, cycle, timeout) => `N=${n} cycle ${cycle} timeout ${timeout}`;

/** Run FN and note how long it took (r.wallSeconds), for planning full runs. */
async function timed(fn) {
  const t0 = performance.now();
  const r = await fn();
  r.wallSeconds = Math.round((performance.now() - t0) / 1000);
  return r;
}

async function clusterRows(backendName, make, timings = TIMINGS) {
  for (const [cycle, timeout] of timings) {
    const c = parseDuration(cycle);
    const t = parseDuration(timeout);
    const base = (n) => ({ backend: backendName, config: cfgText(n, cycle, timeout), nodes: n, cycle, timeout });
    if (wants('cold')) {
      for (const n of sizesFor('cold', backendName)) {
        log(`cold start [${backendName}] ${cfgText(n, cycle, timeout)} …`);
        const r = await timed(() => coldStart(make(), n, cycle, timeout));
        addRow({ name: 'cold start', ...base(n), xs: r.times, target: `≤ ${3 * c + 300} ms`, limit: 3 * c + 300, error: r.error, extra: healthOf(r) });
      }
    }
    if (wants('failover')) {
      for (const n of sizesFor('failover', backendName, timeout)) {
        log(`failover [${backendName}] ${cfgText(n, cycle, timeout)} …`);
        const r = await timed(() => failover(make(), n, cycle, timeout));
        addRow({ name: 'failover (crash)', ...base(n), xs: r.times, target: failoverTarget(n, c, t), limit: failoverLimit(n, c, t), error: r.error, extra: healthOf(r) });
      }
    }
    if (wants('resources') && backendName === 'local') {
      for (const n of sizesFor('resources', backendName)) {
        log(`failover with a stop entry [${backendName}] ${cfgText(n, cycle, timeout)} …`);
        const released = [];
        const r = await timed(() => stopEntryFailover(make(), n, cycle, timeout, released));
        const limit = t + 2 * c + 300;
        addRow({ name: 'failover (kill -9 of the monitor, stop entry; it waits for the watchdog)', ...base(n), xs: r.times, target: `≤ ${limit} ms`, limit, error: r.error, extra: { ...healthOf(r), note: `old marker released after ${Math.round(median(released))} ms (median)`, releasedMs: released } });
      }
    }
    if (wants('resources') && backendName === 'local') {
      for (const n of sizesFor('resources', backendName)) {
        log(`failover on a failing health check [${backendName}] ${cfgText(n, cycle, timeout)} …`);
        const r = await timed(() => healthFailover(make(), n, cycle, timeout));
        addRow({ name: 'failover (health check fails; interval 250ms, failures 2, max_restarts 0)', ...base(n), xs: r.times, error: r.error, extra: healthOf(r) });
      }
    }
    if (wants('handover') && backendName === 'local') {
      for (const n of sizesFor('handover', backendName)) {
        log(`handover [${backendName}] ${cfgText(n, cycle, timeout)} …`);
        const r = await timed(() => handover(make(), n, cycle, timeout));
        addRow({ name: 'handover (SIGTERM)', ...base(n), xs: r.times, error: r.error, extra: healthOf(r) });
      }
    }
  }
  if (wants('idle') && backendName !== 'gluster') {
    const [cycle, timeout] = ['1s', '5s'];
    for (const n of sizesFor('idle', backendName)) {
      log(`idle [${backendName}] ${cfgText(n, cycle, timeout)} …`);
      const r = await timed(() => idle(make(), n, cycle, timeout));
      const b = { backend: backendName, config: `${cfgText(n, cycle, timeout)}, per monitor`, nodes: n, cycle, timeout };
      // Targets up to N = 64; 128 monitors on two cores are measured for stability (below).
      const judged = n <= 64;
      addRow({ name: 'idle CPU', ...b, unit: '%', digits: 2, xs: r.per.map((x) => x.cpu), target: judged ? '≤ 1 %' : null, limit: judged ? 1 : null, error: r.error, extra: { ...healthOf(r), note: r.per.length ? `monitor + watchdog ${median(r.per.map((x) => x.cpuWithWatchdog)).toFixed(2)} %` : '' } });
      const split = r.per.length ? { withWatchdogMb: Math.round(median(r.per.map((x) => x.rss))), watchdogMb: Math.round(median(r.per.map((x) => x.rss - x.rssMonitor))) } : {};
      addRow({ name: 'idle RSS', ...b, unit: 'MB', xs: r.per.map((x) => x.rssMonitor), target: judged ? '≤ 60 MB' : null, limit: judged ? 60 : null, error: r.error, extra: { ...healthOf(r), ...split, ...(r.per.length ? { note: `+ watchdog ${split.watchdogMb} MB` } : {}) } });
      addRow({ name: 'stable while idle (self-fences + false stale calls)', ...b, config: `${cfgText(n, cycle, timeout)}, ${r.idleSeconds ?? '?'} s`, unit: '', xs: r.health ? [r.health.fenceEvents + r.health.falseStale] : [], target: '0', limit: 0, error: r.error, extra: healthOf(r) });
      if (r.fileOps) addRow({ name: 'file syscalls per monitor per cycle (strace -c of n1)', ...b, unit: '', digits: 1, xs: [r.fileOps.perCycle], extra: { note: r.fileOps.note } });
      if (backendName === 'sshfs' && !r.error) {
        const fb = { ...b, config: `${cfgText(n, cycle, timeout)}, per node (sshfs + ssh)` };
        addRow({ name: 'idle sshfs client CPU', ...fb, unit: '%', digits: 2, xs: r.per.map((x) => x.fsCpu) });
        addRow({ name: 'idle sshfs client RSS', ...fb, unit: 'MB', digits: 1, xs: r.per.map((x) => x.fsRss) });
        if (r.storage) {
          const sb = { ...b, config: `${cfgText(n, cycle, timeout)}, storage sshd total (${r.storage.processes} processes)` };
          addRow({ name: 'idle storage sshd CPU', ...sb, unit: '%', digits: 2, xs: [r.storage.cpu] });
          addRow({ name: 'idle storage sshd RSS', ...sb, unit: 'MB', xs: [r.storage.rss] });
        }
      }
    }
  }
}
/**
 * Trials a keepalived row takes unless --trials says otherwise: the kill's phase against the
 * owner's last heartbeat spreads a trial over a whole cycle, so a 20- or 30-trial median moved by
 * ±15 ms from run to run (2026-12-03), about the margin to keepalived's figure.
 */
const KEEPALIVED_TRIALS = OPT.trials ?? (QUICK ? 5 : 60);

/** Failover at keepalived's matched settings (local, N = 3), beside keepalived's measured figure. */
async function keepalivedRows() {
  for (const k of KEEPALIVED) {
    const c = parseDuration(k.cycle);
    const t = parseDuration(k.timeout);
    log(`failover vs keepalived [local] ${cfgText(3, k.cycle, k.timeout)} …`);
    const r = await timed(() => failover(new LocalBackend(), 3, k.cycle, k.timeout, KEEPALIVED_TRIALS));
    const limit = Math.min(failoverLimit(3, c, t), k.ms);
    addRow({ name: `failover (crash) vs keepalived ${k.setting}: ${k.ms} ms`, backend: 'local', config: cfgText(3, k.cycle, k.timeout), nodes: 3, cycle: k.cycle, timeout: k.timeout, xs: r.times, target: `≤ ${limit} ms (timeout + 150, and keepalived's ${k.ms})`, limit, error: r.error, extra: { ...healthOf(r), keepalivedMs: k.ms } });
  }
}

async function scaleRows() {
  for (const [n, g] of (process.env.PEERHA_BENCH_SCALE ?? "300,1000").split(",").map((g) => [3, Number(g)])) {
    log(`scale [local] ${g} groups × ${n} nodes, 250ms/1s …`);
    const r = await timed(() => scaleColdStart(new LocalBackend(), n, g));
    const config = `${g} groups × N=${n}, 250ms/1s`;
    addRow({ name: 'cold start, every group running once', backend: 'local', config, nodes: n, cycle: '250ms', timeout: '1s', xs: r.times, target: '≤ 10000 ms', limit: 10_000, error: r.error, extra: healthOf(r) });
    if (!r.error) {
      addRow({ name: 'self-fences during that cold start', backend: 'local', config, nodes: n, unit: '', xs: [r.fences], target: '0', limit: 0 });
      addRow({ name: 'spread (max − min groups per node)', backend: 'local', config, nodes: n, unit: '', xs: [r.spread], target: '≤ 1', limit: 1, extra: { note: `per node ${r.counts.join(', ')}` } });
    }
  }
}

const healthOf = (r) => ({ wallSeconds: r.wallSeconds, ...(r.health ? { health: r.health } : {}), ...(r.snapshot ? { snapshot: r.snapshot } : {}) });

/** A backend that cannot run here: one failed row per measurement it would have made. */
function unavailableRows(backendName, why) {
  for (const [cycle, timeout] of backendName === 'gluster' ? [['250ms', '1s']] : TIMINGS) {
    const c = parseDuration(cycle);
    const t = parseDuration(timeout);
    const base = (n) => ({ backend: backendName, config: cfgText(n, cycle, timeout), nodes: n, cycle, timeout, xs: [], error: why });
    if (wants('cold')) for (const n of sizesFor('cold', backendName)) addRow({ name: 'cold start', ...base(n), target: `≤ ${3 * c + 300} ms`, limit: 3 * c + 300 });
    if (wants('failover')) for (const n of sizesFor('failover', backendName, timeout)) addRow({ name: 'failover (crash)', ...base(n), target: failoverTarget(n, c, t), limit: failoverLimit(n, c, t) });
  }
  if (wants('idle') && backendName !== 'gluster') for (const n of sizesFor('idle', backendName)) addRow({ name: 'idle CPU', ...{ backend: backendName, config: cfgText(n, '1s', '5s'), nodes: n, cycle: '1s', timeout: '5s' }, unit: '%', xs: [], target: '≤ 1 %', limit: 1, error: why });
}

async function main() {
  const t0 = performance.now();
  log(`peerha bench — ${results.machine}; ${TRIALS} trials; parts ${[...OPT.only].join(',')}; backends ${[...OPT.backends].join(',')}${OPT.sizes ? `; sizes ${OPT.sizes.join(',')}` : ''}`);
  if (OPT.backends.has('local')) {
    if (wants('respawn')) {
      log('respawn [local] …');
      const r = await timed(() => respawn());
      addRow({ name: 'respawn', backend: 'local', config: 'peerha init, SIGKILL of a respawn entry', xs: r.times, target: '≤ 50 ms', limit: 50, error: r.error, extra: { wallSeconds: r.wallSeconds } });
    }
    await clusterRows('local', () => new LocalBackend());
    if (wants('keepalived')) await keepalivedRows();
    if (wants('scale')) await scaleRows();
  }
  if (OPT.backends.has('sshfs') && !OPT.backends.has('local') && ['respawn', 'handover', 'sim'].some(wants)) log('bench: respawn, handover and sim run on the local backend only (add --local)');
  if (OPT.backends.has('sshfs') && ['cold', 'failover', 'idle'].some(wants)) {
    const why = SshfsBackend.problem();
    if (why) unavailableRows('sshfs', why);
    else {
      await reapLabs();
      await clusterRows('sshfs', () => new SshfsBackend());
    }
  }
  if (OPT.backends.has('gluster') && ['cold', 'failover'].some(wants)) {
    const why = GlusterBackend.problem();
    if (why) unavailableRows('gluster', why);
    else await clusterRows('gluster', () => new GlusterBackend(), [['250ms', '1s']]);
  }
  if (OPT.backends.has('local') && wants('sim')) {
    log('simulator …');
    const sim = await simThroughput();
    results.sim = sim;
    addRow({
      name: 'simulator throughput',
      backend: 'local',
      config: `--seeds ${sim.seeds ?? '?'}${sim.jobs ? `, ${sim.jobs} threads` : ''}`,
      unit: 'histories/min',
      xs: sim.historiesPerMinute !== undefined ? [sim.historiesPerMinute] : [],
      target: '0 failing seeds',
      limit: null,
      error: sim.error,
      extra: sim.error ? { met: false } : { met: sim.failures === 0, note: `${sim.failures} failing, ${sim.wallSeconds} s wall${sim.convergenceCycles ? `, convergence p50/p99/max ${sim.convergenceCycles.p50}/${sim.convergenceCycles.p99}/${sim.convergenceCycles.max} cycles` : ''}` },
    });
    log('simulator, 64 nodes …');
    const big = await simThroughput(QUICK ? 10 : 30, ['--nodes', '64', '--jobs', '2']);
    results.sim64 = big;
    const rate = big.historiesPerMinute;
    addRow({
      name: 'simulator throughput, 64-node histories',
      backend: 'local',
      config: `--seeds ${big.seeds ?? '?'} --nodes 64 --jobs 2`,
      unit: 'histories/min',
      xs: rate !== undefined ? [rate] : [],
      target: '≥ 1000 /min, 0 failing',
      limit: null,
      error: big.error,
      extra: big.error ? { met: false } : { met: big.failures === 0 && rate >= 1000, note: `${big.failures} failing, ${big.wallSeconds} s wall` },
    });
  }
  results.wallSeconds = Math.round((performance.now() - t0) / 1000);
  results.loadavg.end = +loadavg()[0].toFixed(2);
  printTable();
  log(`bench: ${results.wallSeconds} s`);
  if (OPT.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

try {
  await main();
} finally {
  for (const fn of [...cleanups]) fn();
}
