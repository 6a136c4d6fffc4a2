/**
 * o2net: TCP messaging between cluster nodes, following fs/ocfs2/cluster/tcp.c.
 *
 * Rules kept from the kernel:
 *  - the node with the higher number connects (o2net_start_connect returns
 *    when this_node <= remote); the lower one only accepts, and refuses a
 *    connection from an unknown address, from a node numbered <= itself, from
 *    a node it does not see heartbeating, or when one is already open
 *    (o2net_accept_one);
 *  - the connector binds its own configured address before connecting;
 *  - both sides send the 32-byte handshake first and check version 11 and
 *    equal idle/keepalive/heartbeat timeouts (o2net_check_handshake); a
 *    mismatch is a persistent -ENOTCONN (no reconnect until heartbeat sees the
 *    node come up again);
 *  - every received frame pushes the idle timer out; a KEEP_REQ goes out after
 *    keepalive_delay of silence; idle_timeout of silence shuts the connection
 *    down and allows a reconnect (nn_timeout);
 *  - every request gets a status reply (NO_HNDLR for an unknown type/key,
 *    OVERFLOW for data_len above the handler's max_len);
 *  - losing a valid connection completes pending sends with DIED and is a
 *    persistent -ENOTCONN: o2quo_conn_err now, o2quo_hb_still_up after
 *    O2NET_QUORUM_DELAY_MS unless heartbeat declares the node down first;
 *  - connect attempts start on heartbeat node-up (first immediately), are
 *    spaced by reconnect_delay, and give up after idle_timeout (connect_expired).
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { errnoOf } from '../../libocfs2/errors';
import {
  FrameReader, Frame, O2NetError, O2NetFramingError, O2NetSysErr, SYS_ERR_CODE, O2NetMsg,
  O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, O2NET_MSG_KEEP_REQ_MAGIC, O2NET_MSG_KEEP_RESP_MAGIC,
  O2NET_MAX_PAYLOAD_BYTES, encodeFrame, encodeHandshake, checkHandshake, LocalHandshakeParams,
  O2HB_REGION_TIMEOUT_MS,
} from './wire';

export interface NetNode { name: string; num: number; ipv4Address: string; ipv4Port: number }

export interface NetTimeouts {
  heartbeatDeadThreshold: number;
  idleTimeoutMs: number;
  keepaliveDelayMs: number;
  reconnectDelayMs: number;
  /** O2HB_REGION_TIMEOUT_MS (2000 in the kernel; only tests lower it). */
  heartbeatIntervalMs?: number;
}

/** The o2quo entry points o2net calls (see quorum/index.ts). */
export interface QuorumHooks {
  hbUp(node: number): void;
  hbDown(node: number): void;
  hbStillUp(node: number): void;
  connUp(node: number): void;
  connErr(node: number): void;
}

export interface IncomingMessage {
  from: number;
  msgType: number;
  key: number;
  msgNum: number;
  payload: Buffer;
}

/** Returns the status sent back (a handler's int return, e.g. -errno). */
export type MessageHandler = (msg: IncomingMessage) => number | Promise<number>;
/** Runs after the status reply has been sent (ASSERT_MASTER uses this). */
export type PostHandler = (status: number, msg: IncomingMessage) => void;

export interface O2NetOptions {
  localNode: NetNode;
  nodes: readonly NetNode[];
  timeouts: NetTimeouts;
  /** o2hb_check_node_heartbeating_from_callback: acceptance needs it. */
  isHeartbeating: (num: number) => boolean;
  quorum?: QuorumHooks;
  /** Overrides (dead_threshold + 2) * O2HB_REGION_TIMEOUT_MS (tests). */
  quorumDelayMs?: number;
  log?: (line: string) => void;
}

interface Handler { msgType: number; key: number; maxLen: number; fn: MessageHandler; post?: PostHandler }

interface StatusWait { resolve: (v: { status: number }) => void; reject: (e: Error) => void }

/** struct o2net_sock_container */
class SockContainer {
  readonly reader = new FrameReader({ expectHandshake: true });
  handshakeOk = false;
  idleTimer: NodeJS.Timeout | null = null;
  keepaliveTimer: NodeJS.Timeout | null = null;
  lastRx = Date.now();
  closed = false;
  /** a framing error was seen: nothing more is parsed, shutdown follows */
  broken = false;
  /** requests are handled one at a time, in order, like the kernel's o2net thread */
  rxChain: Promise<void> = Promise.resolve();
  constructor(readonly sock: net.Socket, readonly node: NetNode, readonly initiated: boolean) {}
}

/** struct o2net_node */
class NetNodeState {
  sc: SockContainer | null = null;
  valid = false;
  persistentError: 'ENOTCONN' | null = 'ENOTCONN'; // until we see hb from a node
  timeout = false; // nn_timeout: last connection ended by the idle timer
  lastConnectAttempt = 0;
  connectTimer: NodeJS.Timeout | null = null;
  connectExpired: NodeJS.Timeout | null = null;
  stillUp: NodeJS.Timeout | null = null;
  readonly pending = new Map<number, StatusWait>();
  nextMsgNum = 0;
  /** resolvers of sends waiting for o2net_tx_can_proceed */
  readonly waiters: (() => void)[] = [];
  connectedSince: number | null = null;
  constructor(readonly num: number) {}
}

export interface ConnectionInfo {
  node: number;
  name: string;
  address: string;
  state: 'connected' | 'handshaking' | 'down';
  direction: 'connected-to' | 'accepted-from' | null;
  since: number | null;
  pendingSends: number;
  persistentError: string | null;
}

/** A fault hook: connections to these nodes behave as if the network were cut. */
export interface NetFault { cut: Set<number> }

export class O2Net extends EventEmitter {
  readonly localNode: NetNode;
  private readonly nodesByNum = new Map<number, NetNode>();
  private readonly nodesByIp = new Map<string, NetNode>();
  private readonly nn = new Map<number, NetNodeState>();
  private readonly handlers = new Map<string, Handler>();
  private server: net.Server | null = null;
  private readonly opts: O2NetOptions;
  private readonly log: (line: string) => void;
  private stopped = false;
  readonly fault: NetFault = { cut: new Set() };
  readonly hand: LocalHandshakeParams;
  readonly quorumDelayMs: number;

  constructor(opts: O2NetOptions) {
    super();
    this.opts = opts;
    this.localNode = opts.localNode;
    for (const n of opts.nodes) {
      this.nodesByNum.set(n.num, n);
      this.nodesByIp.set(n.ipv4Address, n);
      if (n.num !== opts.localNode.num) this.nn.set(n.num, new NetNodeState(n.num));
    }
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const t = opts.timeouts;
    if (!(t.idleTimeoutMs > t.keepaliveDelayMs)) {
      throw new O2NetError('EINVAL', `idle timeout ${t.idleTimeoutMs} ms must be greater than keepalive delay ${t.keepaliveDelayMs} ms`);
    }
    this.hand = {
      heartbeatTimeoutMs: (t.heartbeatIntervalMs ?? O2HB_REGION_TIMEOUT_MS) * (t.heartbeatDeadThreshold - 1),
      idleTimeoutMs: t.idleTimeoutMs,
      keepaliveDelayMs: t.keepaliveDelayMs,
      reconnectDelayMs: t.reconnectDelayMs,
    };
    // tcp_internal.h O2NET_QUORUM_DELAY_MS
    this.quorumDelayMs = opts.quorumDelayMs ?? (t.heartbeatDeadThreshold + 2) * (t.heartbeatIntervalMs ?? O2HB_REGION_TIMEOUT_MS);
  }

  private fmt(node: NetNode): string {
    return `node ${node.name} (num ${node.num}) at ${node.ipv4Address}:${node.ipv4Port}`;
  }

  // ------------------------------------------------------------------ listen

  /** o2net_start_listening: bind the local node's ip:port, then conn_up(self). */
  async start(): Promise<void> {
    const srv = net.createServer({ noDelay: true }, (s) => this.acceptOne(s));
    srv.on('error', (e) => this.log(`o2net: listener error: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(new O2NetError('EADDRINUSE', `o2net: Error while binding socket at ${this.localNode.ipv4Address}:${this.localNode.ipv4Port}: ${e.message}`));
      srv.once('error', onErr);
      srv.listen({ host: this.localNode.ipv4Address, port: this.localNode.ipv4Port, backlog: 64 }, () => {
        srv.off('error', onErr);
        resolve();
      });
    });
    this.server = srv;
    this.opts.quorum?.connUp(this.localNode.num);
  }

  /** o2net_stop_listening: disconnect every node, close the listener. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const nn of this.nn.values()) this.disconnectNode(nn.num);
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
    this.opts.quorum?.connErr(this.localNode.num);
  }

  get listening(): boolean { return this.server !== null; }

  // --------------------------------------------------------------- handlers

  private hkey(msgType: number, key: number): string { return `${msgType}:${key >>> 0}`; }

  /** o2net_register_handler: EEXIST for a duplicate (type, key). */
  registerHandler(msgType: number, key: number, maxLen: number, fn: MessageHandler, post?: PostHandler): void {
    if (maxLen > O2NET_MAX_PAYLOAD_BYTES || maxLen < 0) throw new O2NetError('EINVAL', `max_len for message handler out of range: ${maxLen}`);
    if (!msgType || msgType > 0xffff) throw new O2NetError('EINVAL', `bad message type: ${msgType}`);
    const k = this.hkey(msgType, key);
    if (this.handlers.has(k)) throw new O2NetError('EEXIST', `handler for type ${msgType} key ${(key >>> 0).toString(16).padStart(8, '0')} already registered`);
    this.handlers.set(k, { msgType, key: key >>> 0, maxLen, fn, post });
  }

  unregisterHandler(msgType: number, key: number): boolean {
    return this.handlers.delete(this.hkey(msgType, key));
  }

  // ------------------------------------------------------------ nn state

  private state(num: number): NetNodeState {
    const s = this.nn.get(num);
    if (!s) throw new O2NetError('EINVAL', `node ${num} is not configured`);
    return s;
  }

  /** o2net_set_nn_state: the single place connection state changes. */
  private setNnState(nn: NetNodeState, sc: SockContainer | null, valid: boolean, err: 'ENOTCONN' | null): void {
    const wasValid = nn.valid;
    const wasErr = nn.persistentError;
    const oldSc = nn.sc;
    if (wasValid && !valid && err === null) err = 'ENOTCONN';

    nn.sc = sc;
    nn.valid = valid;
    nn.persistentError = err;

    if (nn.persistentError || nn.valid) {
      const w = nn.waiters.splice(0);
      for (const f of w) f();
    }

    // Only the loss of a connection that was valid is a quorum event (tcp.c
    // o2net_set_nn_state: "if (was_valid && !was_err && nn->nn_persistent_error)");
    // a node that never got through (refused handshake, connect expired)
    // keeps its o2quo hold instead, so no decision and no fence follow.
    if (wasValid && !wasErr && nn.persistentError) {
      this.opts.quorum?.connErr(nn.num);
      this.clearTimer(nn, 'stillUp');
      nn.stillUp = setTimeout(() => {
        nn.stillUp = null;
        this.opts.quorum?.hbStillUp(nn.num);
      }, this.quorumDelayMs);
      nn.stillUp.unref?.();
    }

    if (wasValid && !valid) {
      if (oldSc) this.log(`o2net: No longer connected to ${this.fmt(oldSc.node)}`);
      // o2net_complete_nodes_nsw: pending sends end with DIED
      const pend = [...nn.pending.values()];
      nn.pending.clear();
      for (const p of pend) p.reject(new O2NetError('EHOSTDOWN', `node ${nn.num} died before replying`, O2NetSysErr.DIED));
      nn.connectedSince = null;
      this.emit('disconnected', nn.num);
    }

    if (!wasValid && valid && sc) {
      this.opts.quorum?.connUp(nn.num);
      this.clearTimer(nn, 'connectExpired');
      nn.connectedSince = Date.now();
      this.log(`o2net: ${this.localNode.num > sc.node.num ? 'Connected to' : 'Accepted connection from'} ${this.fmt(sc.node)}`);
      this.emit('connected', nn.num);
    }

    if (!valid && !this.stopped) {
      const rd = this.hand.reconnectDelayMs;
      let delay = nn.lastConnectAttempt + rd - Date.now();
      if (delay > rd || delay < 0) delay = 0;
      if (!nn.connectTimer) {
        nn.connectTimer = setTimeout(() => { nn.connectTimer = null; this.startConnect(nn); }, delay);
      }
      // only the first queueing of connect_expired counts
      if (!nn.connectExpired) {
        nn.connectExpired = setTimeout(() => { nn.connectExpired = null; this.connectExpired(nn); }, delay + this.hand.idleTimeoutMs);
      }
    }

    if (oldSc && oldSc !== sc) this.shutdownSc(oldSc);
  }

  private clearTimer(nn: NetNodeState, which: 'connectTimer' | 'connectExpired' | 'stillUp'): void {
    const t = nn[which];
    if (t) clearTimeout(t);
    nn[which] = null;
  }

  private ensureShutdown(nn: NetNodeState, sc: SockContainer, err: 'ENOTCONN' | null): void {
    if (nn.sc === sc) this.setNnState(nn, null, false, err);
  }

  /** o2net_shutdown_sc: timers off, socket closed. */
  private shutdownSc(sc: SockContainer): void {
    if (sc.closed) return;
    sc.closed = true;
    if (sc.idleTimer) clearTimeout(sc.idleTimer);
    if (sc.keepaliveTimer) clearTimeout(sc.keepaliveTimer);
    sc.idleTimer = sc.keepaliveTimer = null;
    sc.sock.destroy();
    const nn = this.nn.get(sc.node.num);
    if (nn) this.ensureShutdown(nn, sc, null);
  }

  // ------------------------------------------------------------ connecting

  /** o2net_start_connect */
  private startConnect(nn: NetNodeState): void {
    if (this.stopped) return;
    if (this.localNode.num <= nn.num) return; // we're greater: we initiate
    const node = this.nodesByNum.get(nn.num);
    if (!node) return;
    const stop = nn.sc !== null || (nn.persistentError !== null && (nn.persistentError !== 'ENOTCONN' || !nn.timeout));
    if (stop) return;
    nn.lastConnectAttempt = Date.now();

    if (this.fault.cut.has(nn.num)) {
      // a cut network: the SYN goes nowhere; report a failed attempt
      this.log(`o2net: Connect attempt to ${this.fmt(node)} failed with errno -110`);
      this.setNnState(nn, null, false, null);
      return;
    }

    const sock = new net.Socket();
    const sc = new SockContainer(sock, node, true);
    this.setNnState(nn, sc, false, null);
    this.attachSocket(sc);
    sock.connect({ host: node.ipv4Address, port: node.ipv4Port, localAddress: this.localNode.ipv4Address }, () => {
      sock.setNoDelay(true);
      // o2net_sc_connect_completed: send our handshake
      this.sendRaw(sc, encodeHandshake(this.hand));
    });
  }

  /** o2net_connect_expired */
  private connectExpired(nn: NetNodeState): void {
    if (!nn.valid && !this.stopped) {
      this.log(`o2net: No connection established with node ${nn.num} after ${(this.hand.idleTimeoutMs / 1000).toFixed(3)} seconds, giving up.`);
      this.setNnState(nn, null, false, 'ENOTCONN');
    }
  }

  /** o2net_disconnect_node: don't reconnect until it's heartbeating again. */
  disconnectNode(num: number): void {
    const nn = this.nn.get(num);
    if (!nn) return;
    nn.timeout = false;
    this.setNnState(nn, null, false, 'ENOTCONN');
    this.clearTimer(nn, 'connectExpired');
    this.clearTimer(nn, 'connectTimer');
    this.clearTimer(nn, 'stillUp');
  }

  /** o2net_hb_node_up_cb (o2net runs first among heartbeat callbacks). */
  hbNodeUp(num: number): void {
    this.opts.quorum?.hbUp(num);
    if (num === this.localNode.num) return;
    const nn = this.nn.get(num);
    if (!nn) return;
    // ensure an immediate connect attempt
    nn.lastConnectAttempt = Date.now() - (this.hand.reconnectDelayMs + 1);
    nn.timeout = false;
    if (nn.persistentError) this.setNnState(nn, null, false, null);
    else if (!nn.sc && !nn.connectTimer) this.setNnState(nn, null, false, null);
  }

  /** o2net_hb_node_down_cb */
  hbNodeDown(num: number): void {
    this.opts.quorum?.hbDown(num);
    if (num !== this.localNode.num) this.disconnectNode(num);
  }

  // -------------------------------------------------------------- accepting

  private peerAddress(s: net.Socket): { ip: string; port: number } {
    let ip = s.remoteAddress ?? '';
    if (ip.startsWith('::ffff:')) ip = ip.slice(7);
    return { ip, port: s.remotePort ?? 0 };
  }

  /** o2net_accept_one */
  private acceptOne(s: net.Socket): void {
    s.on('error', () => { /* refused sockets may reset */ });
    if (this.stopped) { s.destroy(); return; }
    s.setNoDelay(true);
    const { ip, port } = this.peerAddress(s);
    const node = this.nodesByIp.get(ip);
    if (!node) {
      this.log(`o2net: Attempt to connect from unknown node at ${ip}:${port}`);
      s.destroy();
      this.emit('refused', { ip, port, reason: 'unknown' });
      return;
    }
    if (this.localNode.num >= node.num) {
      const l = this.localNode;
      this.log(`o2net: Unexpected connect attempt seen at node '${l.name}' (${l.num}, ${l.ipv4Address}:${l.ipv4Port}) from node '${node.name}' (${node.num}, ${ip}:${port})`);
      s.destroy();
      this.emit('refused', { ip, port, reason: 'direction' });
      return;
    }
    if (this.fault.cut.has(node.num)) { s.destroy(); return; }
    if (!this.opts.isHeartbeating(node.num)) {
      // happens all the time when the other node sees our heartbeat first
      this.log(`o2net: attempt to connect from node '${node.name}' at ${ip}:${port} but it isn't heartbeating`);
      s.destroy();
      this.emit('refused', { ip, port, reason: 'not-heartbeating' });
      return;
    }
    const nn = this.state(node.num);
    if (nn.sc) {
      this.log(`o2net: Attempt to connect from node '${node.name}' at ${ip}:${port} but it already has an open connection`);
      s.destroy();
      this.emit('refused', { ip, port, reason: 'busy' });
      return;
    }
    const sc = new SockContainer(s, node, false);
    nn.timeout = false;
    this.setNnState(nn, sc, false, null);
    this.attachSocket(sc);
    this.sendRaw(sc, encodeHandshake(this.hand));
  }

  // ------------------------------------------------------------------ rx/tx

  private attachSocket(sc: SockContainer): void {
    const s = sc.sock;
    s.on('data', (chunk: Buffer) => this.onData(sc, chunk));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (!sc.closed && !sc.handshakeOk && sc.initiated) {
        this.log(`o2net: Connect attempt to ${this.fmt(sc.node)} failed with errno ${e.code ?? e.message}`);
      }
    });
    s.on('close', () => {
      if (sc.closed) return;
      if (sc.reader.pending > 0) {
        this.log(`o2net: Connection to ${this.fmt(sc.node)} closed with ${sc.reader.pending} bytes of a truncated ${sc.reader.handshakeReceived ? 'message' : 'handshake'}`);
      } else if (sc.handshakeOk) {
        this.log(`o2net: Connection to ${this.fmt(sc.node)} shutdown, state 7`);
      }
      this.shutdownSc(sc);
    });
  }

  private sendRaw(sc: SockContainer, buf: Buffer): boolean {
    if (sc.closed || sc.sock.destroyed) return false;
    if (this.fault.cut.has(sc.node.num)) return true; // blackholed
    sc.sock.write(buf);
    return true;
  }

  private onData(sc: SockContainer, chunk: Buffer): void {
    if (sc.closed || sc.broken) return;
    if (this.fault.cut.has(sc.node.num)) return; // the network is cut: nothing arrives
    const nn = this.state(sc.node.num);
    sc.reader.push(chunk);
    try {
      if (!sc.handshakeOk) {
        const h = sc.reader.takeHandshake();
        if (!h) return;
        const why = checkHandshake(h, this.hand);
        if (why) {
          this.log(`o2net: ${this.fmt(sc.node)} ${why}`);
          this.emit('handshake-refused', { node: sc.node.num, reason: why });
          // don't bother reconnecting until heartbeat sees it again
          this.ensureShutdown(nn, sc, 'ENOTCONN');
          this.shutdownSc(sc);
          return;
        }
        sc.handshakeOk = true;
        if (nn.sc === sc) {
          this.resetIdleTimer(sc);
          nn.timeout = false;
          this.setNnState(nn, sc, true, null);
        }
      }
      for (;;) {
        const f = sc.reader.takeFrame();
        if (!f) break;
        this.processMessage(sc, nn, f);
        if (sc.closed || sc.broken) return;
      }
    } catch (e) {
      const why = e instanceof O2NetFramingError ? e.message : `malformed input: ${(e as Error).message}`;
      this.log(`o2net: framing error from ${this.fmt(sc.node)}: ${why}; closing the connection`);
      this.emit('framing-error', { node: sc.node.num, reason: why });
      // the kernel handles frames one by one, so the requests that came
      // before the bad frame are answered before the connection goes down;
      // not permanent: a failed read can retry (o2net_rx_until_empty)
      sc.broken = true;
      void sc.rxChain.then(() => {
        this.ensureShutdown(nn, sc, null);
        this.shutdownSc(sc);
      });
    }
  }

  /** o2net_process_message */
  private processMessage(sc: SockContainer, nn: NetNodeState, f: Frame): void {
    this.postponeIdle(sc);
    const h = f.hdr;
    switch (h.magic) {
      case O2NET_MSG_STATUS_MAGIC: {
        const w = nn.pending.get(h.msg_num);
        if (!w) return; // stale or unknown id: the kernel ignores it
        nn.pending.delete(h.msg_num);
        const code = SYS_ERR_CODE[h.sys_status];
        if (h.sys_status === O2NetSysErr.NONE) w.resolve({ status: h.status });
        else if (code) w.reject(new O2NetError(code, `node ${nn.num} answered sys_status ${h.sys_status} (${O2NetSysErr[h.sys_status]})`, h.sys_status));
        else w.reject(new O2NetError('EIO', `node ${nn.num} answered unknown sys_status ${h.sys_status}`, h.sys_status));
        return;
      }
      case O2NET_MSG_KEEP_REQ_MAGIC:
        this.sendRaw(sc, encodeFrame({ magic: O2NET_MSG_KEEP_RESP_MAGIC }));
        return;
      case O2NET_MSG_KEEP_RESP_MAGIC:
        return;
      case O2NET_MSG_MAGIC:
        break;
      default:
        throw new O2NetFramingError(`bad magic 0x${h.magic.toString(16)}`);
    }
    // requests run one after another; replies/keepalives above never wait on them
    sc.rxChain = sc.rxChain.then(() => this.handleRequest(sc, f));
  }

  private async handleRequest(sc: SockContainer, f: Frame): Promise<void> {
    const h = f.hdr;
    const nmh = this.handlers.get(this.hkey(h.msg_type, h.key));
    let sys = O2NetSysErr.NONE;
    let status = 0;
    const msg: IncomingMessage = { from: sc.node.num, msgType: h.msg_type, key: h.key, msgNum: h.msg_num, payload: f.payload };
    if (!nmh) {
      sys = O2NetSysErr.NO_HNDLR;
      this.emit('no-handler', { from: sc.node.num, msgType: h.msg_type, key: h.key });
    } else if (h.data_len > nmh.maxLen) {
      sys = O2NetSysErr.OVERFLOW;
    } else {
      try {
        status = await nmh.fn(msg);
      } catch (e) {
        status = -errnoOf(e);
        this.log(`o2net: handler for type ${h.msg_type} key ${h.key.toString(16).padStart(8, '0')} failed: ${(e as Error).message}`);
      }
    }
    // o2net_send_status_magic: the incoming header, magic twiddled, no payload
    const reply = O2NetMsg.encode({ ...h, magic: O2NET_MSG_STATUS_MAGIC, data_len: 0, sys_status: sys, status: status | 0 });
    this.sendRaw(sc, reply);
    if (nmh?.post) {
      try { nmh.post(status, msg); } catch (e) { this.log(`o2net: post handler failed: ${(e as Error).message}`); }
    }
  }

  // --------------------------------------------------------- idle/keepalive

  /** o2net_sc_reset_idle_timer */
  private resetIdleTimer(sc: SockContainer): void {
    if (sc.closed) return;
    if (sc.keepaliveTimer) clearTimeout(sc.keepaliveTimer);
    sc.keepaliveTimer = setTimeout(() => {
      sc.keepaliveTimer = null;
      this.sendRaw(sc, encodeFrame({ magic: O2NET_MSG_KEEP_REQ_MAGIC }));
    }, this.hand.keepaliveDelayMs);
    sc.lastRx = Date.now();
    if (sc.idleTimer) clearTimeout(sc.idleTimer);
    sc.idleTimer = setTimeout(() => { sc.idleTimer = null; this.idleTimer(sc); }, this.hand.idleTimeoutMs);
  }

  /** o2net_sc_postpone_idle: only pushes out an existing timer. */
  private postponeIdle(sc: SockContainer): void {
    if (sc.idleTimer) this.resetIdleTimer(sc);
  }

  /** o2net_idle_timer */
  private idleTimer(sc: SockContainer): void {
    const ms = Date.now() - sc.lastRx;
    this.log(`o2net: Connection to ${this.fmt(sc.node)} has been idle for ${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')} secs, shutting it down.`);
    const nn = this.nn.get(sc.node.num);
    if (nn) nn.timeout = true; // the next connect attempt may proceed
    this.emit('idle-timeout', sc.node.num);
    this.shutdownSc(sc);
  }

  // ------------------------------------------------------------------ send

  /** o2net_tx_can_proceed as a promise: a valid connection or a persistent error. */
  private waitTx(nn: NetNodeState): Promise<SockContainer> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (nn.persistentError) {
          reject(new O2NetError(nn.persistentError, `no connection to node ${nn.num}`));
        } else if (nn.valid && nn.sc) {
          resolve(nn.sc);
        } else {
          nn.waiters.push(check);
        }
      };
      check();
    });
  }

  /**
   * o2net_send_message: send a request and wait for the status reply.  As in
   * the kernel there is no timeout: it ends with the reply, or with
   * EHOSTDOWN when the connection dies, or ENOTCONN if there is none.
   * A reply with sys_status other than NONE rejects (ENOPROTOOPT for no
   * handler, EOVERFLOW for too long a payload).
   */
  async sendMessage(msgType: number, key: number, payload: Buffer, targetNode: number): Promise<{ status: number }> {
    if (this.stopped) throw new O2NetError('ESRCH', 'o2net is not running');
    if (payload.length > O2NET_MAX_PAYLOAD_BYTES) throw new O2NetError('EINVAL', `total payload len ${payload.length} too large`);
    if (targetNode === this.localNode.num) throw new O2NetError('ELOOP', 'message to self');
    const nn = this.state(targetNode);
    const sc = await this.waitTx(nn);
    // msg_num: the lowest free id is what idr_alloc gives; any unused id will do
    let id = nn.nextMsgNum;
    while (nn.pending.has(id)) id = (id + 1) & 0x7fffffff;
    nn.nextMsgNum = (id + 1) & 0x7fffffff;
    const frame = encodeFrame({ magic: O2NET_MSG_MAGIC, msgType, key: key >>> 0, msgNum: id }, payload);
    return new Promise((resolve, reject) => {
      nn.pending.set(id, { resolve, reject });
      if (!this.sendRaw(sc, frame)) {
        nn.pending.delete(id);
        reject(new O2NetError('EPIPE', `connection to node ${targetNode} is closed`));
      }
    });
  }

  // ---------------------------------------------------------------- status

  /** o2net_fill_node_map: nodes with a usable connection. */
  connectedNodes(): number[] {
    return [...this.nn.values()].filter((n) => n.valid && !n.persistentError).map((n) => n.num).sort((a, b) => a - b);
  }

  isConnected(num: number): boolean {
    const n = this.nn.get(num);
    return !!n && n.valid;
  }

  connections(): ConnectionInfo[] {
    const out: ConnectionInfo[] = [];
    for (const nn of [...this.nn.values()].sort((a, b) => a.num - b.num)) {
      const node = this.nodesByNum.get(nn.num)!;
      out.push({
        node: nn.num,
        name: node.name,
        address: `${node.ipv4Address}:${node.ipv4Port}`,
        state: nn.valid ? 'connected' : nn.sc ? 'handshaking' : 'down',
        direction: nn.sc ? (nn.sc.initiated ? 'connected-to' : 'accepted-from') : null,
        since: nn.connectedSince,
        pendingSends: nn.pending.size,
        persistentError: nn.persistentError,
      });
    }
    return out;
  }

  /** Fault hook: make the network to these nodes behave as cut (or restore it). */
  setCut(nodes: Iterable<number>, cut: boolean): void {
    for (const n of nodes) {
      if (cut) this.fault.cut.add(n); else this.fault.cut.delete(n);
    }
  }
}
