/**
 * Shared by the o2net / o2quo / cluster-stack tests and the o2net benchmark:
 * a cluster.conf on 127.0.0.x with free ports, node processes running
 * `cluster node` (src/cli/cluster-node.ts), their logs, and a raw o2net
 * client that can impersonate a configured node.
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { StackClient, ControlReply } from '../src/cluster/stack';
import {
  encodeHandshake, encodeFrame, FrameReader, Frame, O2NET_MSG_KEEP_RESP_MAGIC, O2NET_MSG_KEEP_REQ_MAGIC,
  LocalHandshakeParams,
} from '../src/cluster/net/wire';

/** The repository root (this file runs from test/ or, built, from dist/test/). */
export const REPO = ((): string => {
  let d = path.resolve(__dirname, '..');
  if (path.basename(d) === 'dist') d = path.dirname(d);
  return d;
})();

export interface HNode { name: string; num: number; ip: string; port: number }

/**
 * How long the tests wait for an event that takes seconds (a connection, a
 * death, a fence): generous, because these waits only bound a hang; the
 * tests' assertions about order and thresholds are separate.
 */
export const WAIT_MS = 120000;

/** Ports that were free a moment ago on every address we use. */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => { const a = s.address() as net.AddressInfo; s.close(() => resolve(a.port)); });
    });
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

export async function makeNodes(count: number): Promise<HNode[]> {
  const ports = await freePorts(count);
  return ports.map((port, i) => ({ name: `node${i}`, num: i, ip: `127.0.0.${i + 1}`, port }));
}

export function clusterConfText(nodes: HNode[], cluster = 'testclu', mode: 'local' | 'global' = 'local', regions: string[] = []): string {
  let s = `cluster:\n\tnode_count = ${nodes.length}\n\theartbeat_mode = ${mode}\n\tname = ${cluster}\n\n`;
  for (const n of nodes) {
    s += `node:\n\tip_port = ${n.port}\n\tip_address = ${n.ip}\n\tnumber = ${n.num}\n\tname = ${n.name}\n\tcluster = ${cluster}\n\n`;
  }
  for (const r of regions) s += `heartbeat:\n\tregion = ${r}\n\tcluster = ${cluster}\n\n`;
  return s;
}

export interface O2cbVals { threshold: number; idle: number; keepalive: number; reconnect: number }

export function o2cbText(v: O2cbVals): string {
  return `O2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=testclu\nO2CB_HEARTBEAT_THRESHOLD=${v.threshold}\nO2CB_IDLE_TIMEOUT_MS=${v.idle}\nO2CB_KEEPALIVE_DELAY_MS=${v.keepalive}\nO2CB_RECONNECT_DELAY_MS=${v.reconnect}\n`;
}

/** How to run a TypeScript (or built JavaScript) entry point in a child. */
export function nodeArgsFor(script: string): string[] {
  if (script.endsWith('.ts')) {
    const ts = process.execArgv.find((a) => a.includes('@tapjs/typescript'));
    return [ts ?? `--import=${require.resolve('@tapjs/typescript/import').replace(/\.js$/, '.mjs')}`, script];
  }
  return [script];
}

export function cliScript(): string {
  // next to this file's own tree: src/ for TypeScript, dist/src/ when built
  return path.join(__dirname, '..', 'src', 'cli', __filename.endsWith('.ts') ? 'cluster-node.ts' : 'cluster-node.js');
}

export class NodeProc {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;
  private waiters: { re: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];

  constructor(readonly name: string, readonly proc: ChildProcess, readonly controlSocket: string) {
    let partial = '';
    const onChunk = (d: Buffer): void => {
      partial += d.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        this.lines.push(line);
        if (process.env.O2NET_TEST_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
        this.waiters = this.waiters.filter((w) => { if (w.re.test(line)) { w.resolve(line); return false; } return true; });
      }
    };
    proc.stdout?.on('data', onChunk);
    proc.stderr?.on('data', onChunk);
    this.exited = new Promise((r) => proc.on('exit', (code) => {
      this.exitCode = code;
      r(code);
      // nothing more will be logged: fail the waiters now
      setImmediate(() => {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${name}: exited (${String(code)}) before logging ${w.re}; log:\n${this.lines.slice(-30).join('\n')}`));
      });
    }));
  }

  /**
   * Resolves with the first log line (past or future) matching re.  The
   * default wait is long: it bounds events that take seconds, and on a loaded
   * machine (CI runs the whole suite on 2 cores) they can take many more.
   */
  waitFor(re: RegExp, timeoutMs = WAIT_MS): Promise<string> {
    const have = this.lines.find((l) => re.test(l));
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: timed out waiting for ${re} (exit ${String(this.exitCode)}); log:\n${this.lines.slice(-30).join('\n')}`)), timeoutMs);
      this.waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); }, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  }

  /** The stack is up (TypeScript children start slowly on a loaded machine). */
  ready(timeoutMs = 120000): Promise<string> { return this.waitFor(/o2cb: node \S+ \(num \d+\) of cluster \S+ online/, timeoutMs); }

  count(re: RegExp): number { return this.lines.filter((l) => re.test(l)).length; }

  async request(req: Record<string, unknown> & { op: string }): Promise<ControlReply> {
    const c = await StackClient.connect(this.controlSocket);
    if (!c) throw new Error(`${this.name}: control socket ${this.controlSocket} does not answer`);
    try { return await c.request(req); } finally { c.close(); }
  }

  async stop(): Promise<number | null> {
    if (this.exitCode === undefined) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    const c = await this.exited;
    clearTimeout(t);
    return c;
  }
}

export interface SpawnOpts {
  dir: string;
  node: string;
  conf?: string;
  o2cb?: string;
  extra?: string[];
  staticHeartbeat?: boolean;
  env?: NodeJS.ProcessEnv;
}

export function spawnNode(o: SpawnOpts): NodeProc {
  const sock = path.join(o.dir, `${o.node}.sock`);
  const args = [
    ...nodeArgsFor(cliScript()), 'cluster', 'node',
    '--cluster-conf', o.conf ?? path.join(o.dir, 'cluster.conf'),
    '--node', o.node,
    '--o2cb-config', o.o2cb ?? path.join(o.dir, 'o2cb'),
    '--control-socket', sock,
    '--test-handlers',
    ...(o.staticHeartbeat === false ? [] : ['--static-heartbeat']),
    ...(o.extra ?? []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', ...(o.env ?? {}) };
  delete env.NODE_OPTIONS;
  const p = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new NodeProc(o.node, p, sock);
}

/**
 * Start nodes one after another in ascending node number, each listening
 * (its "online at" line, printed after o2net listens) before the next one
 * starts; every process goes into `into` at once, for the caller's teardown.
 *
 * Needed with --static-heartbeat: every configured node is "up" from the
 * start, and a higher-numbered node that cannot reach a lower one within the
 * idle timeout gives up until the next heartbeat node-up (tcp.c
 * o2net_start_connect: "stop = nn->nn_sc || (nn->nn_persistent_error &&
 * (nn->nn_persistent_error != -ENOTCONN || timeout == 0))" once
 * o2net_connect_expired set -ENOTCONN), which a static heartbeat never
 * raises.  So an acceptor must listen before its connectors start.
 */
export async function startInOrder(into: NodeProc[], count: number, spawnOne: (num: number) => NodeProc): Promise<NodeProc[]> {
  const out: NodeProc[] = [];
  for (let i = 0; i < count; i++) {
    const p = spawnOne(i);
    into.push(p);
    out.push(p);
    await p.ready();
  }
  return out;
}

/** The idle time (ms) a node logged when its idle timer shut a connection down. */
export function loggedIdleMs(line: string): number {
  const m = /has been idle for (\d+)\.(\d{3}) secs/.exec(line);
  if (!m) throw new Error(`not an idle-timeout line: ${line}`);
  return Number(m[1]) * 1000 + Number(m[2]);
}

/** Wait until `pred` holds, polling. */
export async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function writeCluster(dir: string, nodes: HNode[], v: O2cbVals): void {
  fs.writeFileSync(path.join(dir, 'cluster.conf'), clusterConfText(nodes));
  fs.writeFileSync(path.join(dir, 'o2cb'), o2cbText(v));
}

/** A raw o2net endpoint for impersonating a node (fuzzing, handshake tests). */
export class RawPeer {
  readonly reader = new FrameReader({ expectHandshake: true });
  readonly frames: Frame[] = [];
  closed = false;
  readonly closedAt: Promise<number>;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.reader.push(d);
      try {
        this.reader.takeHandshake();
        for (let f = this.reader.takeFrame(); f; f = this.reader.takeFrame()) {
          this.frames.push(f);
          if (this.autoKeepalive && f.hdr.magic === O2NET_MSG_KEEP_REQ_MAGIC) sock.write(encodeFrame({ magic: O2NET_MSG_KEEP_RESP_MAGIC }));
        }
      } catch { /* the tests look at what the node does */ }
    });
    sock.on('error', () => { /* reset by the node */ });
    this.closedAt = new Promise((r) => sock.on('close', () => { this.closed = true; r(Date.now()); }));
  }

  autoKeepalive = false;

  /** Connect from `fromIp` to the node; resolves once TCP is up. */
  static connect(fromIp: string, to: HNode): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: to.ip, port: to.port, localAddress: fromIp }, () => { s.off('error', reject); resolve(new RawPeer(s)); });
      s.once('error', reject);
    });
  }

  handshake(p: LocalHandshakeParams, version?: bigint): void { this.sock.write(encodeHandshake(p, version)); }

  write(b: Buffer): void { if (!this.sock.destroyed) this.sock.write(b); }

  end(): void { this.sock.end(); }
  destroy(): void { this.sock.destroy(); }
}

/**
 * Connect as a configured node and hand-shake until `node` accepts (logs
 * "Accepted connection from node <as>").  Retried when the node closed the
 * socket first: an acceptor arms o2net_connect_expired at accept (tcp.c
 * o2net_accept_one -> o2net_set_nn_state queues nn_connect_expired), so when
 * this process is stalled for over the idle timeout between its TCP connect
 * and its handshake (a loaded machine), the node rightly gives up on it.
 * `sentAt` is taken just before the accepted handshake was written.
 */
export async function rawHandshake(fromIp: string, to: HNode, p: LocalHandshakeParams, node: NodeProc, as: string, autoKeepalive = false, tries = 5): Promise<{ raw: RawPeer; sentAt: number }> {
  const re = new RegExp(`Accepted connection from node ${as} `);
  for (let i = 1; ; i++) {
    const before = node.count(re);
    const raw = await RawPeer.connect(fromIp, to);
    raw.autoKeepalive = autoKeepalive;
    const sentAt = Date.now();
    raw.handshake(p);
    await until(() => node.count(re) > before || raw.closed, WAIT_MS, `${node.name} accepts ${as}`);
    if (node.count(re) > before && !raw.closed) return { raw, sentAt };
    raw.destroy();
    if (i >= tries) throw new Error(`${node.name} never accepted ${as}; log:\n${node.lines.slice(-30).join('\n')}`);
  }
}

export function handParams(v: O2cbVals, hbIntervalMs = 2000): LocalHandshakeParams {
  return { heartbeatTimeoutMs: hbIntervalMs * (v.threshold - 1), idleTimeoutMs: v.idle, keepaliveDelayMs: v.keepalive, reconnectDelayMs: v.reconnect };
}
