/**
 * One node's whole o2cb stack: o2nm (configuration), o2hb (disk heartbeat,
 * helper module), o2net and o2quo, wired the way the kernel wires them, plus
 * the node's local control socket.
 *
 * Process model: a node is one host identity, so there is one stack per
 * (cluster, node).  The first mount or `cluster node` for a node starts the
 * stack and owns its control socket (a Unix socket under the runtime dir);
 * later ones find the socket and join the running stack instead of starting a
 * second one: in local heartbeat mode they add their volume's heartbeat, and
 * when their control connection closes (clean unmount, or the process died)
 * that volume's heartbeat stops if nobody else uses it.  `cluster status`
 * asks the same socket.
 *
 * Heartbeat events reach o2net first (the kernel registers o2net's callbacks
 * with the highest priority, O2NET_HB_PRI), and o2net forwards them to o2quo.
 * A node is live while any region sees it (node-up on the first region,
 * node-down when the last one loses it), as o2hb's global live map does.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { NodeManager, type O2cbTimeouts, type O2nmNode } from './nodemanager';
import { O2Net, type ConnectionInfo } from './net/o2net';
import { O2Quo, type QuorumDecision } from './quorum';
import { O2Dlm, type DomainStatus } from './dlm/dlm';
import { DlmControl } from './dlm/control';
import { crc32_le } from '../libocfs2/crc32';
import { errnoOf } from '../libocfs2/errors';

// ---------------------------------------------------------------- control socket

/** Where a node's control socket lives unless overridden. */
export function defaultRuntimeDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg) return path.join(xdg, 'ocfs2-fuse');
  try {
    fs.accessSync('/run', fs.constants.W_OK);
    return '/run/ocfs2-fuse';
  } catch {
    return path.join(os.tmpdir(), `ocfs2-fuse-${process.getuid?.() ?? 0}`);
  }
}

export function controlSocketPath(cluster: string, node: string, runtimeDir = defaultRuntimeDir()): string {
  return path.join(runtimeDir, `${cluster}.${node}.sock`);
}

export type ControlRequest = Record<string, unknown> & { op: string };
export type ControlReply = Record<string, unknown> & { ok: boolean; error?: string; code?: string };

/** Per-connection context handed to the request handler. */
export interface ControlPeer {
  readonly id: number;
  onClose(fn: () => void): void;
}

export type ControlHandler = (req: ControlRequest, peer: ControlPeer) => Promise<ControlReply> | ControlReply;

const MAX_LINE = 1 << 20;

export class ControlServer {
  private server: net.Server | null = null;
  private nextId = 1;
  private readonly socks = new Set<net.Socket>();

  constructor(readonly socketPath: string, private readonly handler: ControlHandler) {}

  /** Listen; a stale socket file (nobody answering) is replaced. */
  async listen(): Promise<void> {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true, mode: 0o700 });
    if (fs.existsSync(this.socketPath)) {
      const alive = await StackClient.probe(this.socketPath);
      if (alive) throw Object.assign(new Error(`a node stack already answers on ${this.socketPath}`), { code: 'EADDRINUSE' });
      fs.rmSync(this.socketPath, { force: true });
    }
    const srv = net.createServer((s) => this.onConn(s));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.socketPath, () => { srv.off('error', reject); resolve(); });
    });
    try { fs.chmodSync(this.socketPath, 0o600); } catch { /* best effort */ }
    this.server = srv;
  }

  private onConn(s: net.Socket): void {
    this.socks.add(s);
    const closers: (() => void)[] = [];
    const peer: ControlPeer = { id: this.nextId++, onClose: (fn) => { closers.push(fn); } };
    let buf = '';
    let chain = Promise.resolve();
    s.setEncoding('utf8');
    s.on('error', () => { /* client went away */ });
    s.on('close', () => {
      this.socks.delete(s);
      for (const f of closers.splice(0)) {
        try { f(); } catch { /* ignore */ }
      }
    });
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_LINE) { s.destroy(); return; }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        chain = chain.then(async () => {
          let reply: ControlReply;
          try {
            const req = JSON.parse(line) as ControlRequest;
            if (!req || typeof req.op !== 'string') throw new Error('request without op');
            reply = await this.handler(req, peer);
          } catch (e) {
            const err = e as NodeJS.ErrnoException;
            reply = { ok: false, error: err.message, code: err.code };
          }
          if (!s.destroyed) s.write(`${JSON.stringify(reply)}\n`);
        });
      }
    });
  }

  /** An unsolicited event line to every connected client (e.g. fence). */
  broadcast(ev: Record<string, unknown> & { event: string }): void {
    const line = `${JSON.stringify(ev)}\n`;
    for (const s of this.socks) if (!s.destroyed) s.write(line);
  }

  async close(): Promise<void> {
    const srv = this.server;
    this.server = null;
    for (const s of this.socks) s.destroy();
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
    try { fs.rmSync(this.socketPath, { force: true }); } catch { /* ignore */ }
  }
}

/**
 * A client of a running node stack.  Replies come back in request order;
 * lines with an `event` field are events ('fence': the node fenced itself,
 * so a joined mount must fail its I/O with EIO) and are emitted as 'event'.
 */
export class StackClient extends EventEmitter {
  private buf = '';
  private readonly waiting: { resolve: (r: ControlReply) => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    super();
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let msg: ControlReply & { event?: string };
        try { msg = JSON.parse(line) as ControlReply & { event?: string }; } catch (e) { this.waiting.shift()?.reject(e as Error); continue; }
        if (typeof msg.event === 'string') { this.emit('event', msg); continue; }
        this.waiting.shift()?.resolve(msg);
      }
    });
    const fail = (): void => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w.reject(new Error('control connection closed'));
    };
    sock.on('close', fail);
    sock.on('error', fail);
  }

  /** Connect, or null when no stack answers on that path. */
  static connect(socketPath: string, timeoutMs = 2000): Promise<StackClient | null> {
    return new Promise((resolve) => {
      const s = net.createConnection(socketPath);
      const t = setTimeout(() => { s.destroy(); resolve(null); }, timeoutMs);
      s.once('connect', () => { clearTimeout(t); s.removeAllListeners('error'); resolve(new StackClient(s)); });
      s.once('error', () => { clearTimeout(t); resolve(null); });
    });
  }

  /** Is a live stack answering on this path? */
  static async probe(socketPath: string): Promise<boolean> {
    const c = await StackClient.connect(socketPath, 1000);
    if (!c) return false;
    try {
      const r = await Promise.race([c.request({ op: 'ping' }), new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
      return !!r && r.ok === true;
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  request(req: ControlRequest): Promise<ControlReply> {
    if (this.closed) return Promise.reject(new Error('control connection closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** Resolves when the stack closes the connection (it stopped or fenced). */
  closedPromise(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => this.sock.once('close', () => r()));
  }

  close(): void {
    this.closed = true;
    this.sock.end();
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------- heartbeat glue

/** What the stack needs of the node-wide heartbeat (o2hb: src/cluster/heartbeat's Heartbeat). */
export interface NodeHeartbeat extends EventEmitter {
  startLocal(device: string): Promise<{ name: string }>;
  startGlobal(deviceFor: (uuid: string) => string): Promise<void>;
  removeRegion(name: string): Promise<void>;
  /** Clean stop of every region (final generation-0 blocks). */
  stop(): Promise<void>;
  /** o2hb_stop_all_regions: unclean, at once. */
  fence(reason: string): void;
  isNodeLive(n: number): boolean;
  liveNodes(): Set<number>;
  regions(): { name: string; device: string; liveNodes(): Set<number>; setFault?(f: 'none' | 'block-writes' | 'fail-writes' | 'block-reads'): void }[];
}

export type HeartbeatFactory = (nm: NodeManager) => NodeHeartbeat;

/**
 * For tests and benchmarks of the network layer without a disk: every
 * configured node counts as heartbeating, and the control socket can raise
 * node-up/node-down by hand.
 */
export class StaticHeartbeat extends EventEmitter implements NodeHeartbeat {
  private readonly live = new Set<number>();
  constructor(private readonly nodes: readonly number[]) { super(); }
  start(): void { for (const n of this.nodes) this.set(n, true); }
  async startLocal(device: string): Promise<{ name: string }> { return { name: `static:${device}` }; }
  async startGlobal(): Promise<void> { /* nothing on disk */ }
  async removeRegion(): Promise<void> { /* nothing on disk */ }
  async stop(): Promise<void> { for (const n of [...this.live]) this.set(n, false); }
  fence(reason: string): void { this.emit('fence', reason); }
  isNodeLive(n: number): boolean { return this.live.has(n); }
  liveNodes(): Set<number> { return new Set(this.live); }
  regions(): { name: string; device: string; liveNodes(): Set<number> }[] { return []; }
  set(num: number, up: boolean): void {
    if (up && !this.live.has(num)) { this.live.add(num); this.emit('node-up', num, 1n); }
    if (!up && this.live.delete(num)) this.emit('node-down', num);
  }
}

function defaultHeartbeatFactory(nm: NodeManager): NodeHeartbeat {
  // loaded when first needed: it brings the O_DIRECT addon with it
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require('./heartbeat') as { Heartbeat: new (nm: NodeManager) => NodeHeartbeat };
  return new mod.Heartbeat(nm);
}

// ---------------------------------------------------------------- the stack

/** Exit status of a node process that fenced itself. */
export const FENCE_EXIT_CODE = 70;

/** Message type/key of the diagnostic echo handler (tests, benchmark). */
export const TEST_MSG_TYPE = 0xfff0;
export const TEST_MSG_KEY = 0x7e570001;

export interface StackOptions {
  clusterConf: string;
  node?: string;
  o2cbConfig?: string;
  cluster?: string;
  timeouts?: Partial<O2cbTimeouts>;
  /** Control socket path; default <runtime dir>/<cluster>.<node>.sock. */
  controlSocket?: string;
  runtimeDir?: string;
  /** No disk heartbeat: every configured node counts as live (tests, benchmarks). */
  staticHeartbeat?: boolean;
  heartbeatFactory?: HeartbeatFactory;
  /**
   * Global mode: the devices to find the configured regions on (matched by
   * volume UUID).  Local mode ignores it (volumes come with join/addVolume).
   */
  globalDevices?: string[];
  /** Self-fence action; default: log, stop heartbeat, emit 'fence', exit(FENCE_EXIT_CODE). */
  fence?: (reason: string) => void;
  /** Overrides O2NET_QUORUM_DELAY_MS. */
  quorumDelayMs?: number;
  /** Register the diagnostic echo handler (TEST_MSG_TYPE/TEST_MSG_KEY). */
  testHandlers?: boolean;
  log?: (line: string) => void;
}

export interface RegionStatus { region: string; device: string; users: number; liveNodes: number[] }

export interface StackStatus {
  cluster: string;
  node: { name: string; num: number; address: string };
  pid: number;
  controlSocket: string;
  heartbeatMode: 'local' | 'global';
  staticHeartbeat: boolean;
  timeouts: O2cbTimeouts;
  regions: RegionStatus[];
  liveNodes: number[];
  connections: ConnectionInfo[];
  quorum: { heartbeating: number[]; connected: number[]; holds: number; fenced: boolean; lastDecision: QuorumDecision | null };
  /** DLM domains this node is in, with their resource and lock counts */
  dlm: { domain: string; nodes: number[]; recovering: number[]; resources: number; locks: number }[];
}

interface Volume { device: string; region: string; users: Map<number, number> }

export class ClusterStack extends EventEmitter {
  readonly nm: NodeManager;
  readonly net: O2Net;
  readonly quorum: O2Quo;
  readonly hb: NodeHeartbeat;
  /** o2dlm: lives with o2net (one endpoint per node), so in this process */
  readonly dlm: O2Dlm;
  private readonly dlmControl: DlmControl;
  readonly controlSocket: string;
  private readonly opts: StackOptions;
  private readonly log: (line: string) => void;
  private control: ControlServer | null = null;
  /** local mode: volumes by resolved device path, reference-counted per control client */
  private readonly volumes = new Map<string, Volume>();
  private stopping: Promise<void> | null = null;
  private fencedReason: string | null = null;

  private constructor(opts: StackOptions, nm: NodeManager) {
    super();
    this.opts = opts;
    this.nm = nm;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.controlSocket = opts.controlSocket ?? controlSocketPath(nm.cluster.name, nm.localNode.name, opts.runtimeDir);
    this.quorum = new O2Quo({
      thisNode: nm.localNode.num,
      fence: (reason) => this.fence(reason),
      log: (l) => this.log(`o2quo: ${l}`),
    });
    this.net = new O2Net({
      localNode: nm.localNode,
      nodes: nm.cluster.nodes,
      timeouts: nm.timeouts,
      isHeartbeating: (n) => this.hb.isNodeLive(n),
      quorum: this.quorum,
      quorumDelayMs: opts.quorumDelayMs,
      log: this.log,
    });
    this.hb = opts.staticHeartbeat
      ? new StaticHeartbeat(nm.configuredNodeNums())
      : (opts.heartbeatFactory ?? defaultHeartbeatFactory)(nm);
    this.dlm = new O2Dlm({
      localNode: nm.localNode.num,
      net: this.net,
      nodes: nm.cluster.nodes,
      liveNodes: () => this.hb.liveNodes(),
      heartbeatMode: nm.cluster.heartbeatMode,
      regions: () => nm.cluster.heartbeatRegions.map((r) => r.region),
      log: this.log,
    });
    this.dlmControl = new DlmControl(this.dlm);
    // heartbeat events reach o2net first (O2NET_HB_PRI), o2net tells o2quo;
    // the DLM comes after (DLM_HB_NODE_UP_PRI / DLM_HB_NODE_DOWN_PRI)
    this.hb.on('node-up', (num: number, gen: bigint) => {
      this.log(`o2hb: Node ${num} (${nm.nodeByNum(num)?.name ?? '?'}) is up, generation ${gen.toString(16)}`);
      this.net.hbNodeUp(num);
      this.dlm.nodeUp(num);
      this.emit('node-up', num, gen);
    });
    this.hb.on('node-down', (num: number) => {
      this.log(`o2hb: Node ${num} (${nm.nodeByNum(num)?.name ?? '?'}) is down`);
      this.net.hbNodeDown(num);
      this.dlm.nodeDown(num);
      this.emit('node-down', num);
    });
    this.hb.on('fence', (reason: string) => this.quorum.fenceSelf(`heartbeat: ${reason}`));
    this.hb.on('log', (_level: string, msg: string) => this.log(msg));
  }

  /** Load the configuration, start o2net and the control socket (and global heartbeat). */
  static async start(opts: StackOptions): Promise<ClusterStack> {
    const nm = NodeManager.load({ clusterConf: opts.clusterConf, node: opts.node, o2cbConfig: opts.o2cbConfig, timeouts: opts.timeouts, cluster: opts.cluster });
    const st = new ClusterStack(opts, nm);
    st.control = new ControlServer(st.controlSocket, (req, peer) => st.onControl(req, peer));
    await st.control.listen();
    try {
      await st.net.start();
      if (opts.testHandlers) {
        st.net.registerHandler(TEST_MSG_TYPE, TEST_MSG_KEY, 4072, (m) => crc32_le(0, m.payload) | 0);
      }
      if (st.hb instanceof StaticHeartbeat) {
        st.hb.start();
      } else if (nm.cluster.heartbeatMode === 'global') {
        const byUuid = new Map<string, string>();
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        const { readVolumeUuid } = require('./heartbeat') as { readVolumeUuid: (d: string) => string | undefined };
        for (const d of opts.globalDevices ?? []) {
          const u = readVolumeUuid(d);
          if (u) byUuid.set(u, d);
        }
        await st.hb.startGlobal((uuid) => {
          const d = byUuid.get(uuid);
          if (!d) throw Object.assign(new Error(`no device given for heartbeat region ${uuid} (use --device)`), { code: 'ENODEV' });
          return d;
        });
      }
    } catch (e) {
      await st.net.stop();
      await st.control.close();
      throw e;
    }
    st.log(`o2cb: node ${nm.localNode.name} (num ${nm.localNode.num}) of cluster ${nm.cluster.name} online at ${nm.localNode.ipv4Address}:${nm.localNode.ipv4Port}, control socket ${st.controlSocket}`);
    return st;
  }

  get fenced(): boolean { return this.fencedReason !== null; }

  /**
   * Local mode: start (or take another reference on) a volume's heartbeat.
   * In global mode the configured regions already run; nothing to do.
   */
  async addVolume(device: string, user: number): Promise<void> {
    if (this.stopping || this.fenced) throw Object.assign(new Error('the node is stopping'), { code: 'ESHUTDOWN' });
    if (this.nm.cluster.heartbeatMode !== 'local') return;
    const key = path.resolve(device);
    const have = this.volumes.get(key);
    if (have) {
      have.users.set(user, (have.users.get(user) ?? 0) + 1);
      return;
    }
    const reg = await this.hb.startLocal(device);
    this.volumes.set(key, { device, region: reg.name, users: new Map([[user, 1]]) });
    this.log(`o2hb: Heartbeat started on region ${reg.name} (${device})`);
  }

  /** Drop a reference; the last one stops that volume's heartbeat cleanly. */
  async removeVolume(device: string, user: number): Promise<boolean> {
    const key = path.resolve(device);
    const v = this.volumes.get(key);
    if (!v) return false;
    const c = v.users.get(user) ?? 0;
    if (c <= 1) v.users.delete(user); else v.users.set(user, c - 1);
    if (v.users.size > 0) return false;
    this.volumes.delete(key);
    await this.hb.removeRegion(v.region);
    this.log(`o2hb: Heartbeat stopped on region ${v.region} (${v.device})`);
    return true;
  }

  /** o2quo_fence_self */
  private fence(reason: string): void {
    if (this.fencedReason) return;
    this.fencedReason = reason;
    this.log(`*** ocfs2-fuse is fencing this node (${this.nm.localNode.name}, num ${this.nm.localNode.num}): ${reason} ***`);
    // o2hb_stop_all_regions: unclean, no final block; peers see us die by timeout
    try { this.hb.fence(reason); } catch { /* already fenced */ }
    this.control?.broadcast({ event: 'fence', reason, node: this.nm.localNode.num });
    this.emit('fence', reason);
    if (this.opts.fence) {
      this.opts.fence(reason);
    } else {
      // user space cannot reset the host: mounts fail I/O with EIO on
      // 'fence'; the node process ends
      setImmediate(() => process.exit(FENCE_EXIT_CODE));
    }
  }

  liveNodes(): number[] { return [...this.hb.liveNodes()].sort((a, b) => a - b); }

  status(): StackStatus {
    const n = this.nm.localNode;
    const last = this.quorum.decisions.length ? this.quorum.decisions[this.quorum.decisions.length - 1]! : null;
    const usersOf = (region: string): number => {
      for (const v of this.volumes.values()) if (v.region === region) return [...v.users.values()].reduce((a, b) => a + b, 0);
      return 0;
    };
    return {
      cluster: this.nm.cluster.name,
      node: { name: n.name, num: n.num, address: `${n.ipv4Address}:${n.ipv4Port}` },
      pid: process.pid,
      controlSocket: this.controlSocket,
      heartbeatMode: this.nm.cluster.heartbeatMode,
      staticHeartbeat: this.hb instanceof StaticHeartbeat,
      timeouts: { ...this.nm.timeouts },
      regions: this.hb.regions().map((r) => ({
        region: r.name, device: r.device, users: usersOf(r.name),
        liveNodes: [...r.liveNodes()].sort((a, b) => a - b),
      })),
      liveNodes: this.liveNodes(),
      connections: this.net.connections(),
      quorum: {
        heartbeating: [...this.quorum.heartbeating].sort((a, b) => a - b),
        connected: [...this.quorum.connected].sort((a, b) => a - b),
        holds: this.quorum.holdCount,
        fenced: this.quorum.hasFenced,
        lastDecision: last,
      },
      dlm: this.dlm.status().map((d: DomainStatus) => ({
        domain: d.name, nodes: d.domainMap, recovering: d.recoveryMap, resources: d.resources.length,
        locks: d.resources.reduce((a, r) => a + r.granted.length + r.converting.length + r.blocked.length, 0),
      })),
    };
  }

  /** Clean stop: heartbeat regions stop with a final generation-0 block, o2net closes. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = (async () => {
        this.volumes.clear();
        // leave every DLM domain first (migrating what we master), while o2net still runs
        if (!this.fenced) await this.dlm.shutdown().catch((e: Error) => this.log(`o2dlm: leaving: ${e.message}`));
        if (!this.fenced) {
          try { await this.hb.stop(); } catch (e) { this.log(`o2hb: stopping: ${(e as Error).message}`); }
        }
        await this.net.stop();
        if (this.control) await this.control.close();
        this.log(`o2cb: node ${this.nm.localNode.name} left cluster ${this.nm.cluster.name}`);
        this.emit('stopped');
      })();
    }
    return this.stopping;
  }

  // ------------------------------------------------------------ control ops

  private async onControl(req: ControlRequest, peer: ControlPeer): Promise<ControlReply> {
    if (req.op.startsWith('dlm-')) {
      const r = await this.dlmControl.handle(req, peer);
      if (r) return r;
    }
    switch (req.op) {
      case 'ping':
        return { ok: true, pid: process.pid, node: this.nm.localNode.name };
      case 'status':
        return { ok: true, status: this.status() as unknown as Record<string, unknown> };
      case 'join': {
        // a later mount/invocation for this node: its volumes' heartbeat,
        // held for as long as its control connection stays open
        const devices = Array.isArray(req.devices) ? req.devices.map(String) : [];
        const done: string[] = [];
        try {
          for (const d of devices) { await this.addVolume(d, peer.id); done.push(d); }
        } catch (e) {
          for (const d of done) await this.removeVolume(d, peer.id);
          throw e;
        }
        peer.onClose(() => {
          for (const d of done) void this.removeVolume(d, peer.id).catch((e: Error) => this.log(`o2hb: ${e.message}`));
        });
        return { ok: true, pid: process.pid, node: this.nm.localNode.name };
      }
      case 'leave': {
        const devices = Array.isArray(req.devices) ? req.devices.map(String) : [];
        for (const d of devices) await this.removeVolume(d, peer.id);
        return { ok: true };
      }
      case 'send': {
        const payload = Buffer.from(String(req.payload ?? ''), 'hex');
        try {
          const r = await this.net.sendMessage(Number(req.msgType), Number(req.key), payload, Number(req.node));
          return { ok: true, status: r.status };
        } catch (e) {
          return { ok: false, error: (e as Error).message, code: (e as NodeJS.ErrnoException).code, errno: errnoOf(e) };
        }
      }
      case 'bench': {
        const count = Math.max(1, Number(req.count ?? 1000));
        const payload = Buffer.alloc(Math.min(Number(req.size ?? 0), 4072), 0x5a);
        const node = Number(req.node);
        const lat: number[] = [];
        const t0 = performance.now();
        for (let i = 0; i < count; i++) {
          const a = performance.now();
          await this.net.sendMessage(TEST_MSG_TYPE, TEST_MSG_KEY, payload, node);
          lat.push(performance.now() - a);
        }
        return { ok: true, elapsedMs: performance.now() - t0, latMs: lat };
      }
      case 'fault': {
        const nodes = Array.isArray(req.cut) ? req.cut.map(Number) : [];
        this.net.setCut(nodes, req.restore !== true);
        this.log(`o2net: fault hook: network to node(s) ${nodes.join(',')} ${req.restore === true ? 'restored' : 'cut'}`);
        return { ok: true };
      }
      case 'hb-fault': {
        // test hook: hold or fail this node's heartbeat I/O (o2hb's fault injection)
        const mode = String(req.mode);
        if (mode !== 'none' && mode !== 'block-writes' && mode !== 'fail-writes' && mode !== 'block-reads') return { ok: false, error: `bad fault mode '${mode}'` };
        const regs = this.hb.regions();
        for (const r of regs) r.setFault?.(mode);
        this.log(`o2hb: fault hook: ${mode} on ${regs.length} region(s)`);
        return { ok: true, regions: regs.length };
      }
      case 'hb': {
        if (!(this.hb instanceof StaticHeartbeat)) return { ok: false, error: 'hb op needs --static-heartbeat' };
        this.hb.set(Number(req.node), req.up === true);
        return { ok: true };
      }
      case 'stop':
        setImmediate(() => { void this.stop().then(() => this.emit('exit-requested')); });
        return { ok: true };
      default:
        return { ok: false, error: `unknown op '${req.op}'` };
    }
  }
}

export type JoinResult =
  | { kind: 'started'; stack: ClusterStack }
  | { kind: 'joined'; client: StackClient; pid: number };

/**
 * The process model: join the node's running stack if its control socket
 * answers, else start one.  `devices` are this caller's volumes (local mode:
 * their heartbeat runs while the caller stays joined; global mode: the
 * devices holding the configured regions).
 */
export async function joinOrStart(opts: StackOptions, devices: string[]): Promise<JoinResult> {
  const nm = NodeManager.load({ clusterConf: opts.clusterConf, node: opts.node, o2cbConfig: opts.o2cbConfig, timeouts: opts.timeouts, cluster: opts.cluster });
  const sockPath = opts.controlSocket ?? controlSocketPath(nm.cluster.name, nm.localNode.name, opts.runtimeDir);
  for (let attempt = 0; attempt < 3; attempt++) {
    const client = await StackClient.connect(sockPath);
    if (client) {
      const r = await client.request({ op: 'join', devices });
      if (!r.ok) { client.close(); throw Object.assign(new Error(r.error ?? 'join refused'), { code: r.code }); }
      return { kind: 'joined', client, pid: Number(r.pid) };
    }
    let stack: ClusterStack;
    try {
      stack = await ClusterStack.start({ ...opts, controlSocket: sockPath, globalDevices: opts.globalDevices ?? devices });
    } catch (e) {
      // lost a race with another starter: join it instead
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && fs.existsSync(sockPath) && attempt < 2) continue;
      throw e;
    }
    try {
      for (const d of devices) await stack.addVolume(d, 0);
    } catch (e) {
      await stack.stop();
      throw e;
    }
    return { kind: 'started', stack };
  }
  throw new Error(`could not start or join the node stack at ${sockPath}`);
}
