/**
 * o2dlm: the distributed lock manager peer, speaking the kernel's messages
 * (fs/ocfs2/dlm/) over o2net.
 *
 * One O2Dlm per node process (it owns the DLM_MOD_KEY join handlers and the
 * heartbeat callbacks); one DlmDomain per joined domain (its handlers are
 * registered under the domain key).  It lives wherever the node's o2net
 * endpoint lives: today the `cluster node` process, later the one node
 * daemon that also serves the FUSE mounts.
 *
 * Concurrency: o2net runs a connection's requests one after another, so a
 * handler never waits on the network: it changes state and returns the
 * status at once; anything that must send (ASTs, asserts, recovery data) is
 * queued as work (per target node, in order), as the kernel's dlm thread and
 * dlm_worker do.
 */
import { EventEmitter } from 'node:events';
import { Ocfs2Error } from '../../libocfs2/errors';
import type { IncomingMessage } from '../net/o2net';
import {
  DlmMsg, DLM_MOD_KEY, DLM_PROTOCOL, FS_PROTOCOL, DLM_LVB_LEN, DLM_LOCKID_NAME_MAX, LkmMode, LockMode, LKM,
  DlmStatus, DlmAstType, DlmList, MasterResp, DLM_ASSERT_RESPONSE_MASTERY_REF, DLM_ASSERT_MASTER_FINISH_MIGRATION,
  DLM_MRES_RECOVERY, DLM_MRES_MIGRATION, DLM_MRES_ALL_DONE, DLM_MAX_MIGRATABLE_LOCKS, DLM_FINALIZE_STAGE2,
  DerefResp, JoinCode, DLM_RECOVERY_LOCK_NAME, DLM_LOCK_RES_OWNER_UNKNOWN, DLM_MAX_LEN, O2HB_MAX_REGION_NAME_LEN,
  DlmMasterRequest, DlmAssertMaster, DlmMigrateRequest, DlmMasterRequery, DlmMigratableLockres, DlmMigratableLock,
  DlmCreateLock, DlmConvertLock, DlmUnlockLock, DlmProxyAst, DlmQueryJoinRequest, DlmAssertJoined, DlmCancelJoin,
  DlmQueryRegion, DlmNodeInfo, DlmQueryNodeinfo, DlmExitDomain, DlmLockRequest, DlmBeginReco, DlmRecoDataDone,
  DlmFinalizeReco, DlmDerefLockres, DlmDerefLockresDone, DLM_MIGRATE_RESPONSE_MASTERY_REF,
  domainKey, nameField, nameOf, domainNameOf, nodeMapEncode, nodeMapDecode, packJoinResponse, unpackJoinResponse,
  lockCompatible, modeName, makeCookie, cookieNode,
} from './wire';

// ------------------------------------------------------------------ interfaces

/** What the DLM needs of o2net (O2Net satisfies it). */
export interface DlmNet {
  registerHandler(msgType: number, key: number, maxLen: number, fn: (m: IncomingMessage) => number | Promise<number>, post?: (status: number, m: IncomingMessage) => void): void;
  unregisterHandler(msgType: number, key: number): boolean;
  sendMessage(msgType: number, key: number, payload: Buffer, node: number): Promise<{ status: number }>;
}

export interface DlmNodeConf { num: number; ipv4Address: string; ipv4Port: number }

export interface O2DlmOptions {
  localNode: number;
  net: DlmNet;
  nodes: readonly DlmNodeConf[];
  /** the heartbeat live map (o2hb_fill_node_map) */
  liveNodes: () => Set<number>;
  heartbeatMode: 'local' | 'global';
  /** global mode: the configured region names (QUERY_REGION) */
  regions?: () => string[];
  log?: (line: string) => void;
  /** DLM_PURGE_INTERVAL_MS (8 s); tests lower it */
  purgeIntervalMs?: number;
}

/** An error of the DLM API: the dlm_status and the errno stack_o2cb maps it to. */
export class DlmError extends Ocfs2Error {
  constructor(readonly status: DlmStatus, message: string) {
    super(message, dlmStatusErrno(status));
  }
}

/** stack_o2cb.c dlm_status_to_errno (the subset that matters) */
export function dlmStatusErrno(s: DlmStatus): number {
  switch (s) {
    case DlmStatus.NORMAL: return 0;
    case DlmStatus.NOTQUEUED: return 11; // EAGAIN
    case DlmStatus.CANCELGRANT: return 16; // EBUSY
    case DlmStatus.RECOVERING: return 107; // ENOTCONN
    case DlmStatus.MIGRATING: return 85; // ERESTART
    case DlmStatus.IVLOCKID: case DlmStatus.BADARGS: case DlmStatus.BADPARAM: case DlmStatus.CVTUNGRANT: return 22; // EINVAL
    case DlmStatus.DENIED: return 1; // EPERM
    case DlmStatus.NOLOCKMGR: return 107;
    case DlmStatus.IVBUFLEN: return 36; // ENAMETOOLONG
    default: return 5; // EIO
  }
}

export interface LockOptions { noqueue?: boolean; valblk?: boolean; onBast?: (blockedMode: LockMode) => void }

/** dlmcommon.h dlm_is_host_down: errors that mean the peer is gone. */
function isHostDown(e: unknown): boolean {
  const c = (e as NodeJS.ErrnoException)?.code;
  return c === 'EHOSTDOWN' || c === 'ENOTCONN' || c === 'ECONNRESET' || c === 'EPIPE' || c === 'ECONNREFUSED' || c === 'ETIMEDOUT' || c === 'EHOSTUNREACH' || c === 'ENETUNREACH' || c === 'ECONNABORTED';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// --------------------------------------------------------------- lock objects

/* DLM_LOCK_RES_* state bits (dlmcommon.h) */
const RES_RECOVERING = 0x2;
const RES_IN_PROGRESS = 0x10;
const RES_MIGRATING = 0x20;
const RES_DROPPING_REF = 0x40;

/** struct dlm_lock (+ the lksb for our own locks) */
export class DlmLock {
  type: number;
  convertType: number = LkmMode.IV;
  highestBlocked: number = LkmMode.IV;
  /** lksb: the LVB and the DLM_LKSB_{PUT,GET}_LVB flags */
  lvb: Buffer = Buffer.alloc(DLM_LVB_LEN);
  putLvb = false;
  getLvb = false;
  astPending = false;
  bastPending = false;
  /** our CREATE_LOCK is on its way: the master may not have it (dlm_lock lock_pending) */
  createPending = false;
  /** our own lock: wake the waiter of the pending request */
  onAst: ((status: DlmStatus) => void) | null = null;
  onBast: ((m: LockMode) => void) | null = null;
  constructor(readonly cookie: bigint, readonly node: number, type: number, readonly res: LockRes) { this.type = type; }
}

/** struct dlm_lock_resource */
export class LockRes {
  owner: number = DLM_LOCK_RES_OWNER_UNKNOWN;
  state = 0;
  lvb: Buffer = Buffer.alloc(DLM_LVB_LEN);
  readonly granted: DlmLock[] = [];
  readonly converting: DlmLock[] = [];
  readonly blocked: DlmLock[] = [];
  readonly refmap = new Set<number>();
  /** local requests in flight (dlm_lockres_grab_inflight_ref) */
  inflight = 0;
  lastUsed = 0;
  private waiters: (() => void)[] = [];
  constructor(readonly name: Buffer) {}
  get key(): string { return this.name.toString('latin1'); }
  get text(): string { return this.name.toString('latin1').replace(/[^\x20-\x7e]/g, '.'); }
  lists(): [DlmList, DlmLock[]][] { return [[DlmList.GRANTED, this.granted], [DlmList.CONVERTING, this.converting], [DlmList.BLOCKED, this.blocked]]; }
  allLocks(): DlmLock[] { return [...this.granted, ...this.converting, ...this.blocked]; }
  hasLocks(): boolean { return this.granted.length + this.converting.length + this.blocked.length > 0; }
  listOf(lock: DlmLock): DlmLock[] | null {
    for (const [, l] of this.lists()) if (l.includes(lock)) return l;
    return null;
  }
  findLock(cookie: bigint, node: number): DlmLock | null {
    for (const l of this.allLocks()) if (l.cookie === cookie && l.node === node) return l;
    return null;
  }
  remove(lock: DlmLock): void {
    for (const [, l] of this.lists()) { const i = l.indexOf(lock); if (i >= 0) l.splice(i, 1); }
  }
  moveTo(lock: DlmLock, list: DlmLock[]): void { this.remove(lock); list.push(lock); }
  /** __dlm_lockres_state_to_status */
  stateStatus(): DlmStatus {
    if (this.state & RES_RECOVERING) return DlmStatus.RECOVERING;
    if (this.state & RES_MIGRATING) return DlmStatus.MIGRATING;
    if (this.state & RES_IN_PROGRESS) return DlmStatus.FORWARD;
    return DlmStatus.NORMAL;
  }
  changed(): Promise<void> { return new Promise((r) => this.waiters.push(r)); }
  wake(): void { for (const w of this.waiters.splice(0)) w(); }
}

/** struct dlm_master_list_entry */
interface Mle {
  type: 'block' | 'master' | 'migration';
  name: string;
  master: number;
  newMaster: number;
  vote: Set<number>;
  response: Set<number>;
  maybe: Set<number>;
  woken: (() => void)[];
}

/** A granted lock held by a user of the API (dlmglue). */
export class DlmLockHandle {
  /** the lksb LVB: read after a grant with valblk, write before an EX down-convert/unlock with valblk */
  lvb: Buffer = Buffer.alloc(DLM_LVB_LEN);
  constructor(readonly domain: DlmDomain, readonly name: string, readonly lock: DlmLock) {}
  get mode(): LockMode { return this.lock.type as LockMode; }
  get cookie(): bigint { return this.lock.cookie; }
  convert(mode: LockMode, opts: Omit<LockOptions, 'onBast'> = {}): Promise<void> { return this.domain.convert(this, mode, opts); }
  unlock(opts: { valblk?: boolean } = {}): Promise<DlmStatus> { return this.domain.unlock(this, LKM.UNLOCK | (opts.valblk ? LKM.VALBLK : 0)); }
  cancel(): Promise<DlmStatus> { return this.domain.unlock(this, LKM.CANCEL); }
}

enum DomainState { NEW, JOINED, IN_SHUTDOWN, LEAVING }

// --------------------------------------------------------------- the node DLM

export class O2Dlm extends EventEmitter {
  readonly node: number;
  readonly net: DlmNet;
  readonly domains = new Map<string, DlmDomain>();
  readonly opts: O2DlmOptions;
  readonly log: (line: string) => void;
  private readonly loggedOnce = new Set<string>();

  constructor(opts: O2DlmOptions) {
    super();
    this.opts = opts;
    this.node = opts.localNode;
    this.net = opts.net;
    this.log = opts.log ?? (() => { /* quiet */ });
    // dlm_register_net_handlers: the join handlers, once per node, under DLM_MOD_KEY
    const reg = (t: DlmMsg, fn: (m: IncomingMessage) => number): void =>
      this.net.registerHandler(t, DLM_MOD_KEY, DLM_MAX_LEN[t]!, (m) => this.guard(m, fn));
    reg(DlmMsg.QUERY_JOIN, (m) => this.queryJoinHandler(m));
    reg(DlmMsg.ASSERT_JOINED, (m) => this.assertJoinedHandler(m));
    reg(DlmMsg.CANCEL_JOIN, (m) => this.cancelJoinHandler(m));
    reg(DlmMsg.QUERY_REGION, (m) => this.queryRegionHandler(m));
    reg(DlmMsg.QUERY_NODEINFO, (m) => this.queryNodeinfoHandler(m));
  }

  /** Bad input is logged once per (type, sender, reason) and answered; the node stays up. */
  badMessage(m: IncomingMessage, why: string): void {
    const k = `${m.msgType}:${m.from}:${why}`;
    if (this.loggedOnce.has(k)) return;
    this.loggedOnce.add(k);
    this.log(`o2dlm: bad message type ${m.msgType} (${DlmMsg[m.msgType] ?? '?'}) from node ${m.from}: ${why}`);
  }

  /** Runs a handler; an exception (a bug or malformed input) is answered with -EINVAL, never crashes. */
  guard(m: IncomingMessage, fn: (m: IncomingMessage) => number): number {
    try {
      return fn(m);
    } catch (e) {
      this.badMessage(m, `handler failed: ${(e as Error).message}`);
      return -22;
    }
  }

  /** Payload shorter than the struct: the kernel would read past it; we answer -EINVAL. */
  short(m: IncomingMessage, size: number): boolean {
    if (m.payload.length >= size) return false;
    this.badMessage(m, `truncated: ${m.payload.length} < ${size} bytes`);
    return true;
  }

  private domainForJoin(field: Buffer, len: number): DlmDomain | undefined {
    const n = domainNameOf(field, len);
    return n === null ? undefined : this.domains.get(n);
  }

  /** dlm_query_join_handler */
  private queryJoinHandler(m: IncomingMessage): number {
    if (this.short(m, DlmQueryJoinRequest.size)) return packJoinResponse(JoinCode.DISALLOW);
    const q = DlmQueryJoinRequest.decode(m.payload);
    if (q.node_idx !== m.from) { this.badMessage(m, `QUERY_JOIN for node ${q.node_idx}`); return packJoinResponse(JoinCode.DISALLOW); }
    if (!this.opts.liveNodes().has(q.node_idx)) {
      this.log(`o2dlm: node ${q.node_idx} queried join but is not in our live map`);
      return packJoinResponse(JoinCode.DISALLOW);
    }
    const dlm = this.domainForJoin(q.domain, q.name_len);
    if (!dlm || dlm.state === DomainState.LEAVING || dlm.state === DomainState.IN_SHUTDOWN) return packJoinResponse(JoinCode.OK_NO_MAP);
    // the joiner must see every node of our domain
    const theirs = nodeMapDecode(q.node_map);
    for (const n of dlm.domainMap) {
      if (!theirs.has(n)) {
        this.log(`o2dlm: ${dlm.name}: node ${q.node_idx} tried to join without node ${n} in its map`);
        return packJoinResponse(JoinCode.DISALLOW);
      }
    }
    if (dlm.state === DomainState.NEW && dlm.joiningNode === null) return packJoinResponse(JoinCode.OK_NO_MAP);
    if ((dlm.joiningNode !== null && dlm.joiningNode !== q.node_idx) || dlm.recoveryMap.size > 0 || dlm.recoveryMap.has(q.node_idx) || dlm.domainMap.has(q.node_idx)) {
      return packJoinResponse(JoinCode.DISALLOW);
    }
    // dlm_query_join_proto_check / dlm_protocol_compare: same major, our minor <= theirs
    if (q.dlm_major !== dlm.dlmProto.major || dlm.dlmProto.minor > q.dlm_minor || q.fs_major !== dlm.fsProto.major || dlm.fsProto.minor > q.fs_minor) {
      this.log(`o2dlm: ${dlm.name}: node ${q.node_idx} speaks DLM ${q.dlm_major}.${q.dlm_minor} fs ${q.fs_major}.${q.fs_minor}, we ${dlm.dlmProto.major}.${dlm.dlmProto.minor}/${dlm.fsProto.major}.${dlm.fsProto.minor}: protocol mismatch`);
      return packJoinResponse(JoinCode.PROTOCOL_MISMATCH);
    }
    dlm.joiningNode = q.node_idx;
    return packJoinResponse(JoinCode.OK, dlm.dlmProto.minor, dlm.fsProto.minor);
  }

  /** dlm_assert_joined_handler */
  private assertJoinedHandler(m: IncomingMessage): number {
    if (this.short(m, DlmAssertJoined.size)) return -22;
    const a = DlmAssertJoined.decode(m.payload);
    const dlm = this.domainForJoin(a.domain, a.name_len);
    if (dlm) {
      if (dlm.joiningNode !== a.node_idx || a.node_idx !== m.from) {
        this.badMessage(m, `ASSERT_JOINED from node ${a.node_idx} but the joining node is ${String(dlm.joiningNode)}`);
        return 0; // dlm_assert_joined_handler only acts for the joining node
      }
      // Alright, this node has officially joined our domain.
      if (dlm.recoveryMap.size > 0) return -11; // -EAGAIN while recovering
      dlm.domainMap.add(a.node_idx);
      dlm.joiningNode = null;
      this.log(`o2dlm: Node ${a.node_idx} joins domain ${dlm.name} ( ${[...dlm.domainMap].sort((x, y) => x - y).join(' ')} ) ${dlm.domainMap.size} nodes`);
      dlm.mleNodeUp(a.node_idx);
    }
    return 0;
  }

  /** dlm_cancel_join_handler */
  private cancelJoinHandler(m: IncomingMessage): number {
    if (this.short(m, DlmCancelJoin.size)) return -22;
    const c = DlmCancelJoin.decode(m.payload);
    const dlm = this.domainForJoin(c.domain, c.name_len);
    if (dlm && dlm.joiningNode === c.node_idx) dlm.joiningNode = null;
    return 0;
  }

  /** dlm_query_region_handler: the same heartbeat mode and region set */
  private queryRegionHandler(m: IncomingMessage): number {
    if (this.short(m, DlmQueryRegion.size)) return -22;
    const q = DlmQueryRegion.decode(m.payload);
    const dlm = this.domainForJoin(q.qr_domain, q.qr_namelen);
    if (!dlm) return -22;
    if (dlm.joiningNode !== q.qr_node) return -22;
    const ours = this.opts.heartbeatMode === 'global' ? (this.opts.regions?.() ?? []) : [];
    if ((q.qr_numregions > 0) !== (this.opts.heartbeatMode === 'global')) {
      this.log(`o2dlm: ${dlm.name}: node ${q.qr_node} uses a different heartbeat mode`);
      return -22;
    }
    const theirs: string[] = [];
    for (let i = 0; i < Math.min(q.qr_numregions, 32); i++) theirs.push(q.qr_regions.subarray(i * O2HB_MAX_REGION_NAME_LEN, (i + 1) * O2HB_MAX_REGION_NAME_LEN).toString('latin1').replace(/\0.*$/s, ''));
    if (theirs.length !== ours.length || theirs.some((r) => !ours.includes(r))) return -22;
    return 0;
  }

  /** dlm_query_nodeinfo_handler: the node lists must match both ways */
  private queryNodeinfoHandler(m: IncomingMessage): number {
    if (this.short(m, DlmQueryNodeinfo.size)) return -22;
    const q = DlmQueryNodeinfo.decode(m.payload);
    const dlm = this.domainForJoin(q.qn_domain, q.qn_namelen);
    if (!dlm || dlm.joiningNode !== q.qn_nodenum) return -22;
    const theirs = decodeNodeinfo(m.payload, q.qn_numnodes);
    return nodeListsMatch(theirs, this.opts.nodes) ? 0 : -22;
  }

  /** dlm_register_domain: join (or return the joined) domain. */
  async register(name: string, fsProto: { major: number; minor: number } = FS_PROTOCOL): Promise<DlmDomain> {
    if (Buffer.byteLength(name, 'latin1') >= 64 || name.length === 0) throw new DlmError(DlmStatus.BADARGS, `domain name '${name}' must be 1..63 bytes`);
    const have = this.domains.get(name);
    if (have) {
      if (have.state === DomainState.JOINED) { have.users++; return have; }
      throw new DlmError(DlmStatus.SYSERR, `domain ${name} is ${DomainState[have.state]}`);
    }
    const dlm = new DlmDomain(this, name, fsProto);
    this.domains.set(name, dlm);
    try {
      await dlm.join();
    } catch (e) {
      dlm.unregisterHandlers();
      this.domains.delete(name);
      throw e;
    }
    return dlm;
  }

  /** heartbeat node-up (DLM_HB_NODE_UP_PRI: after o2net) */
  nodeUp(n: number): void { for (const d of this.domains.values()) d.hbNodeUp(n); }
  /** heartbeat node-down */
  nodeDown(n: number): void { for (const d of this.domains.values()) d.hbNodeDown(n); }

  status(): DomainStatus[] { return [...this.domains.values()].map((d) => d.status()); }

  async shutdown(): Promise<void> {
    for (const d of [...this.domains.values()]) { d.users = 1; await d.unregister().catch((e: Error) => this.log(`o2dlm: ${d.name}: leaving: ${e.message}`)); }
    for (const t of [DlmMsg.QUERY_JOIN, DlmMsg.ASSERT_JOINED, DlmMsg.CANCEL_JOIN, DlmMsg.QUERY_REGION, DlmMsg.QUERY_NODEINFO]) this.net.unregisterHandler(t, DLM_MOD_KEY);
  }
}

function ipv4ToU32(ip: string): number {
  const p = ip.split('.').map(Number);
  return (((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
}

/** dlm_send_nodeinfo: the payload of our configured nodes */
export function encodeNodeinfo(self: number, domain: string, nodes: readonly DlmNodeConf[]): Buffer {
  const b = DlmQueryNodeinfo.encode({ qn_nodenum: self, qn_numnodes: nodes.length, qn_namelen: domain.length, pad1: 0, qn_domain: nameField(Buffer.from(domain, 'latin1')) });
  nodes.forEach((n, i) => DlmNodeInfo.encode({ ni_nodenum: n.num, pad1: 0, ni_ipv4_port: n.ipv4Port, ni_ipv4_address: ipv4ToU32(n.ipv4Address) }, b, 68 + i * DlmNodeInfo.size));
  return b;
}

function decodeNodeinfo(b: Buffer, count: number): { num: number; port: number; addr: number }[] {
  const out: { num: number; port: number; addr: number }[] = [];
  for (let i = 0; i < Math.min(count, 255); i++) {
    const n = DlmNodeInfo.decode(b, 68 + i * DlmNodeInfo.size);
    out.push({ num: n.ni_nodenum, port: n.ni_ipv4_port, addr: n.ni_ipv4_address });
  }
  return out;
}

/** dlm_match_nodes: every node of each list is in the other with the same address and port */
function nodeListsMatch(theirs: { num: number; port: number; addr: number }[], ours: readonly DlmNodeConf[]): boolean {
  if (theirs.length !== ours.length) return false;
  for (const o of ours) {
    const t = theirs.find((x) => x.num === o.num);
    if (!t || t.port !== o.ipv4Port || t.addr !== ipv4ToU32(o.ipv4Address)) return false;
  }
  return true;
}

export interface LockStatus { cookie: string; node: number; type: string; convertType: string; list: string; highestBlocked: string }
export interface ResStatus { name: string; owner: number; state: string[]; refmap: number[]; lvb: string; granted: LockStatus[]; converting: LockStatus[]; blocked: LockStatus[] }
export interface DomainStatus { name: string; key: string; state: string; domainMap: number[]; recoveryMap: number[]; dlmProto: string; recoveryMaster: number | null; resources: ResStatus[] }

// ------------------------------------------------------------------ a domain

export class DlmDomain extends EventEmitter {
  readonly key: number;
  readonly node: number;
  state = DomainState.NEW;
  users = 1;
  joiningNode: number | null = null;
  readonly domainMap = new Set<number>();
  readonly liveMap = new Set<number>();
  readonly recoveryMap = new Set<number>();
  /** exit_domain_map: nodes that sent BEGIN_EXIT_DOMAIN (never a migration target) */
  readonly exitingMap = new Set<number>();
  readonly dlmProto = { ...DLM_PROTOCOL } as { major: number; minor: number };
  readonly fsProto: { major: number; minor: number };
  readonly res = new Map<string, LockRes>();
  private readonly mles = new Map<string, Mle>();
  private nextCookie = 1n;
  private readonly evictionCbs = new Set<(node: number) => void>();
  /** the reco context: dlm->reco */
  reco = { newMaster: DLM_LOCK_RES_OWNER_UNKNOWN, deadNode: DLM_LOCK_RES_OWNER_UNKNOWN, active: false, nodeData: new Map<number, 'init' | 'requested' | 'done' | 'dead'>() };
  private recoWaiters: (() => void)[] = [];
  private recoRunning = false;
  private readonly dirty = new Set<LockRes>();
  private threadScheduled = false;
  private readonly sendChains = new Map<number, Promise<void>>();
  private purgeTimer: NodeJS.Timeout | null = null;
  private readonly purgeIntervalMs: number;
  private readonly log: (l: string) => void;

  constructor(readonly dlm: O2Dlm, readonly name: string, fsProto: { major: number; minor: number }) {
    super();
    this.node = dlm.node;
    this.key = domainKey(name);
    this.fsProto = { ...fsProto };
    this.log = (l) => dlm.log(`o2dlm: ${name}: ${l}`);
    this.purgeIntervalMs = dlm.opts.purgeIntervalMs ?? 8000;
  }

  // --------------------------------------------------------------- join

  private registerHandlers(): void {
    // a node outside our domain map (never joined, or dead) cannot change the domain's state
    const member = (fn: (m: IncomingMessage) => number) => (m: IncomingMessage): number => {
      if (!this.domainMap.has(m.from)) { this.dlm.badMessage(m, `node ${m.from} is not in domain ${this.name}`); return -22; }
      return fn(m);
    };
    const reg = (t: DlmMsg, fn: (m: IncomingMessage) => number, post?: (s: number, m: IncomingMessage) => void): void =>
      this.dlm.net.registerHandler(t, this.key, DLM_MAX_LEN[t]!, (m) => this.dlm.guard(m, member(fn)), post);
    reg(DlmMsg.MASTER_REQUEST, (m) => this.masterRequestHandler(m));
    reg(DlmMsg.ASSERT_MASTER, (m) => this.assertMasterHandler(m));
    reg(DlmMsg.CREATE_LOCK, (m) => this.createLockHandler(m));
    reg(DlmMsg.CONVERT_LOCK, (m) => this.convertLockHandler(m));
    reg(DlmMsg.UNLOCK_LOCK, (m) => this.unlockLockHandler(m));
    reg(DlmMsg.PROXY_AST, (m) => this.proxyAstHandler(m));
    reg(DlmMsg.EXIT_DOMAIN, (m) => this.exitDomainHandler(m));
    reg(DlmMsg.BEGIN_EXIT_DOMAIN, (m) => this.beginExitDomainHandler(m));
    reg(DlmMsg.DEREF_LOCKRES, (m) => this.derefHandler(m));
    reg(DlmMsg.DEREF_LOCKRES_DONE, (m) => this.derefDoneHandler(m));
    reg(DlmMsg.MIGRATE_REQUEST, (m) => this.migrateRequestHandler(m));
    reg(DlmMsg.MIG_LOCKRES, (m) => this.migLockresHandler(m));
    reg(DlmMsg.MASTER_REQUERY, (m) => this.masterRequeryHandler(m));
    reg(DlmMsg.LOCK_REQUEST, (m) => this.lockRequestHandler(m));
    reg(DlmMsg.RECO_DATA_DONE, (m) => this.recoDataDoneHandler(m));
    reg(DlmMsg.BEGIN_RECO, (m) => this.beginRecoHandler(m));
    reg(DlmMsg.FINALIZE_RECO, (m) => this.finalizeRecoHandler(m));
  }

  unregisterHandlers(): void {
    for (const t of [DlmMsg.MASTER_REQUEST, DlmMsg.ASSERT_MASTER, DlmMsg.CREATE_LOCK, DlmMsg.CONVERT_LOCK, DlmMsg.UNLOCK_LOCK, DlmMsg.PROXY_AST,
      DlmMsg.EXIT_DOMAIN, DlmMsg.BEGIN_EXIT_DOMAIN, DlmMsg.DEREF_LOCKRES, DlmMsg.DEREF_LOCKRES_DONE, DlmMsg.MIGRATE_REQUEST, DlmMsg.MIG_LOCKRES,
      DlmMsg.MASTER_REQUERY, DlmMsg.LOCK_REQUEST, DlmMsg.RECO_DATA_DONE, DlmMsg.BEGIN_RECO, DlmMsg.FINALIZE_RECO]) this.dlm.net.unregisterHandler(t, this.key);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.purgeTimer = null;
  }

  private send(t: DlmMsg, payload: Buffer, to: number, key = this.key): Promise<{ status: number }> {
    return this.dlm.net.sendMessage(t, key, payload, to);
  }

  /** dlm_join_domain / dlm_try_to_join_domain, retried with backoff for up to 90 s */
  async join(): Promise<void> {
    this.registerHandlers();
    const deadline = Date.now() + 90000;
    for (;;) {
      const r = await this.tryJoin();
      if (r === 'ok') break;
      if (Date.now() > deadline) throw new DlmError(DlmStatus.SYSERR, `could not join domain ${this.name}: ${r}`);
      await sleep(((Date.now() & 3) + 1) * 200);
    }
    this.state = DomainState.JOINED;
    this.purgeTimer = setInterval(() => this.purgeUnused(), Math.max(50, this.purgeIntervalMs / 2));
    this.purgeTimer.unref?.();
    this.log(`joined domain (nodes ${[...this.domainMap].sort((a, b) => a - b).join(' ')}), DLM protocol ${this.dlmProto.major}.${this.dlmProto.minor}, fs protocol ${this.fsProto.major}.${this.fsProto.minor}`);
  }

  private async tryJoin(): Promise<'ok' | string> {
    const live = this.dlm.opts.liveNodes();
    for (const n of live) this.liveMap.add(n);
    this.joiningNode = this.node;
    const yes = new Set<number>();
    const q = DlmQueryJoinRequest.encode({
      node_idx: this.node, pad1: Buffer.alloc(2), name_len: this.name.length,
      dlm_major: DLM_PROTOCOL.major, dlm_minor: DLM_PROTOCOL.minor, fs_major: this.fsProto.major, fs_minor: this.fsProto.minor,
      domain: nameField(Buffer.from(this.name, 'latin1')), node_map: nodeMapEncode(live),
    });
    let dlmMinor: number = DLM_PROTOCOL.minor;
    let fsMinor = this.fsProto.minor;
    let fail: string | null = null;
    for (const n of [...live].sort((a, b) => a - b)) {
      if (n === this.node) continue;
      let code: number;
      try {
        const r = unpackJoinResponse((await this.send(DlmMsg.QUERY_JOIN, q, n, DLM_MOD_KEY)).status);
        code = r.code;
        if (code === JoinCode.OK) { dlmMinor = Math.min(dlmMinor, r.dlmMinor); fsMinor = Math.min(fsMinor, r.fsMinor); }
      } catch (e) {
        // -ENOPROTOOPT: no DLM over there, as good as OK_NO_MAP; a dead link likewise
        if ((e as NodeJS.ErrnoException).code === 'ENOPROTOOPT' || isHostDown(e)) code = JoinCode.OK_NO_MAP;
        else throw e;
      }
      if (code === JoinCode.PROTOCOL_MISMATCH) {
        await this.cancelJoin(yes);
        this.joiningNode = null;
        throw new DlmError(DlmStatus.VERS_CONFLICT, `node ${n} refused our protocol: -EPROTO`);
      }
      if (code === JoinCode.OK) yes.add(n);
      else if (code === JoinCode.DISALLOW) { fail = `node ${n} said DISALLOW`; break; }
      else if (code !== JoinCode.OK_NO_MAP) { fail = `node ${n} answered join code ${code}`; break; }
    }
    // the live map changed under us: retry
    const now = this.dlm.opts.liveNodes();
    if (!fail && (now.size !== live.size || [...live].some((n) => !now.has(n)))) fail = 'live map changed';
    if (fail) {
      await this.cancelJoin(yes);
      this.joiningNode = null;
      return fail;
    }
    this.dlmProto.minor = dlmMinor;
    this.fsProto.minor = fsMinor;
    if (this.dlmProto.minor > 0) {
      for (const n of yes) {
        try {
          const a = (await this.send(DlmMsg.QUERY_NODEINFO, encodeNodeinfo(this.node, this.name, this.dlm.opts.nodes), n, DLM_MOD_KEY)).status;
          const rq = this.encodeQueryRegion();
          const b = (await this.send(DlmMsg.QUERY_REGION, rq, n, DLM_MOD_KEY)).status;
          if (a !== 0 || b !== 0) fail = `node ${n} refused our ${a !== 0 ? 'node list' : 'heartbeat regions'} (${a !== 0 ? a : b})`;
        } catch (e) { fail = `node ${n}: ${(e as Error).message}`; }
        if (fail) break;
      }
      if (fail) {
        await this.cancelJoin(yes);
        this.joiningNode = null;
        throw new DlmError(DlmStatus.SYSERR, fail);
      }
    }
    this.domainMap.clear();
    for (const n of yes) this.domainMap.add(n);
    this.domainMap.add(this.node);
    for (const n of yes) {
      for (;;) {
        try {
          const r = await this.send(DlmMsg.ASSERT_JOINED, DlmAssertJoined.encode({ node_idx: this.node, pad1: Buffer.alloc(2), name_len: this.name.length, domain: nameField(Buffer.from(this.name, 'latin1')) }), n, DLM_MOD_KEY);
          if (r.status === -11 && this.dlm.opts.liveNodes().has(n)) { await sleep(100); continue; }
        } catch (e) { if (!isHostDown(e)) throw e; }
        break;
      }
    }
    this.joiningNode = null;
    return 'ok';
  }

  private encodeQueryRegion(): Buffer {
    const regions = this.dlm.opts.heartbeatMode === 'global' ? (this.dlm.opts.regions?.() ?? []) : [];
    const rb = Buffer.alloc(O2HB_MAX_REGION_NAME_LEN * 32);
    regions.slice(0, 32).forEach((r, i) => Buffer.from(r, 'latin1').copy(rb, i * O2HB_MAX_REGION_NAME_LEN, 0, O2HB_MAX_REGION_NAME_LEN));
    return DlmQueryRegion.encode({ qr_node: this.node, qr_numregions: regions.length, qr_namelen: this.name.length, pad1: 0, qr_domain: nameField(Buffer.from(this.name, 'latin1')), qr_regions: rb });
  }

  private async cancelJoin(yes: Set<number>): Promise<void> {
    const p = DlmCancelJoin.encode({ node_idx: this.node, pad1: Buffer.alloc(2), name_len: this.name.length, domain: nameField(Buffer.from(this.name, 'latin1')) });
    for (const n of yes) await this.send(DlmMsg.CANCEL_JOIN, p, n, DLM_MOD_KEY).catch(() => undefined);
  }

  /** dlm_unregister_domain: migrate what we master, drop our refs, tell everyone. */
  async unregister(): Promise<void> {
    if (--this.users > 0) return;
    if (this.state !== DomainState.JOINED) return;
    this.state = DomainState.IN_SHUTDOWN;
    const others = (): number[] => [...this.domainMap].filter((n) => n !== this.node);
    const ex = DlmExitDomain.encode({ node_idx: this.node, pad1: Buffer.alloc(3) });
    if (this.dlmProto.minor >= 2) for (const n of others()) await this.send(DlmMsg.BEGIN_EXIT_DOMAIN, ex, n).catch(() => undefined);
    // dlm_migrate_all_locks: until nothing we master is referenced elsewhere
    for (let pass = 0; pass < 100; pass++) {
      await this.waitRecovery();
      let busy = false;
      for (const res of [...this.res.values()]) {
        if (res.hasLocks() && res.allLocks().some((l) => l.node === this.node)) {
          this.log(`leaving with a lock of ours on ${res.text}: dropping it`);
          for (const l of res.allLocks().filter((x) => x.node === this.node)) res.remove(l);
        }
        if (res.owner === this.node) {
          if (res.refmap.size > 0 || res.hasLocks()) { busy = true; await this.migrateLockres(res).catch((e: Error) => this.log(`migrating ${res.text}: ${e.message}`)); }
          else this.res.delete(res.key);
        } else if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN && !(res.state & RES_RECOVERING)) {
          await this.dropRef(res);
        }
      }
      if (!busy && [...this.res.values()].every((r) => r.owner !== this.node)) break;
      await sleep(50);
    }
    this.state = DomainState.LEAVING;
    for (const n of others()) await this.send(DlmMsg.EXIT_DOMAIN, ex, n).catch(() => undefined);
    this.unregisterHandlers();
    this.dlm.domains.delete(this.name);
    this.log('left domain');
  }

  // --------------------------------------------------------- membership

  hbNodeUp(n: number): void {
    this.liveMap.add(n);
    // mles learn of new nodes when they join the domain (ASSERT_JOINED)
  }

  /** dlm_hb_node_down_cb / __dlm_hb_node_down */
  hbNodeDown(n: number): void {
    this.liveMap.delete(n);
    if (n === this.node) return;
    if (this.joiningNode === n) this.joiningNode = null;
    this.exitingMap.delete(n);
    if (!this.domainMap.has(n)) return;
    this.domainMap.delete(n);
    this.recoveryMap.add(n);
    this.log(`node ${n} died: recovery needed (domain ${[...this.domainMap].sort((a, b) => a - b).join(' ')})`);
    // the eviction callbacks: this is how the filesystem learns of the death
    for (const cb of this.evictionCbs) { try { cb(n); } catch (e) { this.log(`eviction callback: ${(e as Error).message}`); } }
    this.emit('eviction', n);
    this.mleNodeDown(n);
    if (this.reco.newMaster === n) { this.reco.newMaster = DLM_LOCK_RES_OWNER_UNKNOWN; }
    if (this.reco.nodeData.has(n)) this.reco.nodeData.set(n, 'dead');
    this.kickRecovery();
  }

  registerEvictionCallback(cb: (node: number) => void): () => void {
    this.evictionCbs.add(cb);
    return () => { this.evictionCbs.delete(cb); };
  }

  private exitDomainHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmExitDomain.size)) return -22;
    const e = DlmExitDomain.decode(m.payload);
    if (e.node_idx !== m.from) { this.dlm.badMessage(m, `EXIT_DOMAIN for node ${e.node_idx}`); return 0; }
    this.exitingMap.delete(e.node_idx);
    if (this.domainMap.delete(e.node_idx)) this.log(`Node ${e.node_idx} leaves domain ( ${[...this.domainMap].sort((a, b) => a - b).join(' ')} )`);
    for (const r of this.res.values()) { r.refmap.delete(e.node_idx); }
    this.mleNodeDown(e.node_idx);
    return 0;
  }

  private beginExitDomainHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmExitDomain.size)) return -22;
    const e = DlmExitDomain.decode(m.payload);
    this.log(`Node ${e.node_idx} is leaving the domain`);
    this.exitingMap.add(e.node_idx);
    return 0;
  }

  // ------------------------------------------------------------ helpers

  private decodeName(m: IncomingMessage, field: Buffer, len: number): Buffer | null {
    const n = nameOf(field, len, DLM_LOCKID_NAME_MAX);
    if (!n) this.dlm.badMessage(m, `bad name length ${len}`);
    return n;
  }

  private lookup(name: Buffer): LockRes | undefined { return this.res.get(name.toString('latin1')); }

  private newRes(name: Buffer): LockRes {
    const r = new LockRes(name);
    r.lastUsed = Date.now();
    this.res.set(r.key, r);
    return r;
  }

  private joined(): boolean { return this.state === DomainState.JOINED || this.state === DomainState.IN_SHUTDOWN; }

  /** Sends in order per target node (the ASTs of one lock must not overtake each other). */
  private queueSend(to: number, t: DlmMsg, payload: Buffer, onDone?: (status: number | Error) => void): void {
    const prev = this.sendChains.get(to) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        const r = await this.send(t, payload, to);
        onDone?.(r.status);
      } catch (e) {
        onDone?.(e as Error);
      }
    });
    this.sendChains.set(to, next);
  }

  // ------------------------------------------------------------ mastery

  mleNodeUp(n: number): void {
    for (const mle of this.mles.values()) { if (mle.type !== 'migration') { mle.vote.add(n); } this.wakeMle(mle); }
  }

  /** dlm_mle_node_down / dlm_clean_master_list */
  private mleNodeDown(n: number): void {
    for (const [k, mle] of this.mles) {
      mle.vote.delete(n); mle.response.delete(n); mle.maybe.delete(n);
      if (mle.type === 'block' && mle.maybe.size === 0) { this.mles.delete(k); }
      if (mle.type === 'migration' && (mle.master === n || mle.newMaster === n)) {
        this.mles.delete(k);
        const r = this.res.get(k);
        if (r && mle.newMaster === n) { r.owner = mle.master === n ? DLM_LOCK_RES_OWNER_UNKNOWN : mle.master; }
      }
      if (mle.master === n) mle.master = DLM_LOCK_RES_OWNER_UNKNOWN;
      this.wakeMle(mle);
    }
    for (const r of this.res.values()) r.wake();
  }

  private wakeMle(mle: Mle): void { for (const w of mle.woken.splice(0)) w(); }

  /** dlm_get_lock_resource: find or master the resource */
  private async getLockResource(name: Buffer, flags: number): Promise<LockRes> {
    for (;;) {
      let res = this.lookup(name);
      if (res) {
        if (res.state & RES_DROPPING_REF) { await res.changed(); continue; }
        if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN) return res;
        if (res.state & RES_IN_PROGRESS) { await res.changed(); continue; }
        if (res.state & RES_RECOVERING) { await this.waitRecovery(); continue; }
      }
      // recovery first, except for $RECOVERY itself
      const isReco = name.toString('latin1') === DLM_RECOVERY_LOCK_NAME;
      if (!isReco && (this.recoveryMap.size > 0 || this.reco.active)) { await this.waitRecovery(); continue; }
      if (!res) res = this.newRes(name);
      res.state |= RES_IN_PROGRESS;
      res.inflight++;
      try {
        await this.masterResource(res, flags);
      } finally {
        res.inflight--;
        res.state &= ~RES_IN_PROGRESS;
        res.wake();
      }
      if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN) return res;
    }
  }

  private async masterResource(res: LockRes, _flags: number): Promise<void> {
    const k = res.key;
    let mle = this.mles.get(k);
    let blocked = false;
    if (mle && mle.type === 'migration') {
      // a migration is on its way: wait for its assert
      while (this.mles.get(k) === mle && mle.master === DLM_LOCK_RES_OWNER_UNKNOWN) await new Promise<void>((r) => { mle!.woken.push(r); setTimeout(r, 1000); });
    }
    if (mle && mle.type === 'block') {
      blocked = true;
      mle.type = 'master';
    } else if (!mle || mle.type === 'migration') {
      mle = { type: 'master', name: k, master: DLM_LOCK_RES_OWNER_UNKNOWN, newMaster: DLM_LOCK_RES_OWNER_UNKNOWN, vote: new Set(), response: new Set(), maybe: new Set(), woken: [] };
      this.mles.set(k, mle);
    }
    const m = mle;
    if (m.master !== DLM_LOCK_RES_OWNER_UNKNOWN) { res.owner = m.master; this.mles.delete(k); return; }
    for (const n of this.domainMap) if (n !== this.node) m.vote.add(n);
    m.maybe.add(this.node);
    const req = DlmMasterRequest.encode({ node_idx: this.node, namelen: res.name.length, pad1: 0, flags: 0, name: nameField(res.name) });
    for (let round = 0; ; round++) {
      if (!blocked) {
        for (const n of [...m.vote].sort((a, b) => a - b)) {
          if (m.response.has(n)) continue;
          for (;;) {
            let resp: number;
            try { resp = (await this.send(DlmMsg.MASTER_REQUEST, req, n)).status; } catch (e) {
              this.log(`master request for ${res.text} to node ${n}: ${(e as Error).message}`);
              await sleep(100);
              break;
            }
            if (resp === MasterResp.YES) { m.response.add(n); m.master = n; }
            else if (resp === MasterResp.NO) m.response.add(n);
            else if (resp === MasterResp.MAYBE) { m.response.add(n); m.maybe.add(n); }
            else if (resp === MasterResp.ERROR) { await sleep(50); continue; }
            else this.log(`master request for ${res.text}: node ${n} answered ${resp}`);
            break;
          }
          if (m.master !== DLM_LOCK_RES_OWNER_UNKNOWN && m.master <= n) break;
        }
      }
      if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN) break; // an assert came in
      if (m.master !== DLM_LOCK_RES_OWNER_UNKNOWN) { res.owner = m.master; break; }
      const votingDone = [...m.vote].every((n) => m.response.has(n) || !this.domainMap.has(n));
      if (votingDone && !blocked) {
        const lowest = Math.min(...[...m.maybe].filter((n) => n === this.node || this.domainMap.has(n)));
        if (lowest === this.node) {
          res.owner = this.node;
          m.master = this.node;
          await this.doAssertMaster(res, [...this.domainMap].filter((n) => n !== this.node), 0);
          break;
        }
      }
      // wait for an assert (or a node-map change), then recheck (DLM_MASTERY_TIMEOUT_MS)
      await new Promise<void>((r) => { m.woken.push(r); setTimeout(r, 5000); });
      if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN) break;
      if (m.master !== DLM_LOCK_RES_OWNER_UNKNOWN) { res.owner = m.master; break; }
      if (blocked && [...m.maybe].filter((n) => n !== this.node && this.domainMap.has(n)).length === 0) {
        // nothing left to block on (dlm_restart_lock_mastery): master it ourselves
        blocked = false;
        m.response.clear();
        m.maybe = new Set([this.node]);
      }
      if (round > 20 && round % 20 === 0) this.log(`still mastering ${res.text} (blocked=${blocked})`);
    }
    if (this.mles.get(k) === m) this.mles.delete(k);
  }

  /** dlm_do_assert_master */
  private async doAssertMaster(res: LockRes, nodes: number[], flags: number): Promise<void> {
    const p = DlmAssertMaster.encode({ node_idx: this.node, namelen: res.name.length, pad1: 0, flags, name: nameField(res.name) });
    await Promise.all(nodes.map(async (n) => {
      try {
        const r = (await this.send(DlmMsg.ASSERT_MASTER, p, n)).status;
        if (r < 0) this.log(`assert master of ${res.text}: node ${n} answered ${r}`);
        else if (r & DLM_ASSERT_RESPONSE_MASTERY_REF) res.refmap.add(n);
      } catch (e) {
        if (!isHostDown(e)) this.log(`assert master of ${res.text} to ${n}: ${(e as Error).message}`);
      }
    }));
  }

  /** dlm_master_request_handler */
  private masterRequestHandler(m: IncomingMessage): number {
    if (!this.joined()) return MasterResp.NO;
    if (this.dlm.short(m, DlmMasterRequest.size)) return MasterResp.ERROR;
    const q = DlmMasterRequest.decode(m.payload);
    if (q.namelen > DLM_LOCKID_NAME_MAX) return DlmStatus.IVBUFLEN;
    const name = this.decodeName(m, q.name, q.namelen);
    if (!name) return DlmStatus.IVBUFLEN;
    const res = this.lookup(name);
    const k = name.toString('latin1');
    if (res) {
      if (res.state & (RES_RECOVERING | RES_MIGRATING)) return MasterResp.ERROR;
      if (res.owner === this.node) {
        res.refmap.add(q.node_idx);
        // clean up the mles the requester caused on other nodes
        this.queueAssert(res, [...this.domainMap].filter((n) => n !== this.node && n !== q.node_idx));
        return MasterResp.YES;
      }
      if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN) return MasterResp.NO;
      const mle = this.mles.get(k);
      if (!mle) return MasterResp.MAYBE;
      if (mle.type === 'block' || mle.type === 'migration') { mle.maybe.add(q.node_idx); return MasterResp.NO; }
      if (mle.master === this.node) { res.refmap.add(q.node_idx); return MasterResp.YES; }
      if (mle.master !== DLM_LOCK_RES_OWNER_UNKNOWN) return MasterResp.NO;
      mle.maybe.add(q.node_idx);
      return MasterResp.MAYBE;
    }
    const mle = this.mles.get(k);
    if (!mle) {
      this.mles.set(k, { type: 'block', name: k, master: DLM_LOCK_RES_OWNER_UNKNOWN, newMaster: DLM_LOCK_RES_OWNER_UNKNOWN, vote: new Set(), response: new Set(), maybe: new Set([q.node_idx]), woken: [] });
      return MasterResp.NO;
    }
    if (mle.master === this.node) return MasterResp.YES;
    mle.maybe.add(q.node_idx);
    return mle.type === 'master' && mle.master === DLM_LOCK_RES_OWNER_UNKNOWN ? MasterResp.MAYBE : MasterResp.NO;
  }

  private queueAssert(res: LockRes, nodes: number[]): void {
    if (nodes.length === 0) return;
    void this.doAssertMaster(res, nodes, 0);
  }

  /** dlm_assert_master_handler */
  private assertMasterHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmAssertMaster.size)) return -22;
    const a = DlmAssertMaster.decode(m.payload);
    const name = this.decodeName(m, a.name, a.namelen);
    if (!name) return -22;
    const k = name.toString('latin1');
    if (a.node_idx !== m.from) { this.dlm.badMessage(m, `assert for node ${a.node_idx}`); return -22; }
    const finish = (a.flags & DLM_ASSERT_MASTER_FINISH_MIGRATION) !== 0;
    const mle = this.mles.get(k);
    const res = this.lookup(name);
    let ret = 0;
    if (mle) {
      if (mle.type === 'migration' && !finish && mle.newMaster !== a.node_idx) {
        this.dlm.badMessage(m, `assert for ${k} during its migration to ${mle.newMaster}`);
      }
      mle.master = a.node_idx;
      this.wakeMle(mle);
      if (mle.type !== 'master') this.mles.delete(k);
      if (mle.type === 'master') ret |= DLM_ASSERT_RESPONSE_MASTERY_REF;
    }
    if (res) {
      if (res.owner === this.node && !finish && !(res.state & RES_MIGRATING)) {
        this.dlm.badMessage(m, `node ${a.node_idx} asserts mastery of ${res.text} which we master`);
        return -22;
      }
      res.owner = a.node_idx;
      if (finish) res.state &= ~RES_MIGRATING;
      if (!(res.state & RES_IN_PROGRESS)) res.wake();
      ret |= DLM_ASSERT_RESPONSE_MASTERY_REF;
      if (res.hasLocks() || res.inflight > 0 || mle) ret |= DLM_ASSERT_RESPONSE_MASTERY_REF;
      res.wake();
    }
    if (!res) ret &= ~DLM_ASSERT_RESPONSE_MASTERY_REF;
    return ret;
  }

  // -------------------------------------------------------- lock entry points

  private newCookie(): bigint { return makeCookie(this.node, this.nextCookie++); }

  /** dlmlock (new lock): resolves with the granted lock handle. */
  async lock(nameStr: string | Buffer, mode: LockMode, opts: LockOptions & { recovery?: boolean } = {}): Promise<DlmLockHandle> {
    const name = typeof nameStr === 'string' ? Buffer.from(nameStr, 'latin1') : nameStr;
    if (name.length < 1 || name.length > DLM_LOCKID_NAME_MAX) throw new DlmError(DlmStatus.IVBUFLEN, `lock name length ${name.length}`);
    if (mode !== LkmMode.NL && mode !== LkmMode.PR && mode !== LkmMode.EX) throw new DlmError(DlmStatus.BADPARAM, `mode ${String(mode)}`);
    if (this.state !== DomainState.JOINED) throw new DlmError(DlmStatus.REJECTED, `domain ${this.name} is not joined`);
    let flags = (opts.noqueue ? LKM.NOQUEUE : 0) | (opts.recovery ? LKM.RECOVERY : 0);
    if (opts.valblk && mode >= LkmMode.PR) flags |= LKM.VALBLK | LKM.GET_LVB;
    for (;;) {
      if (!opts.recovery) await this.waitRecovery();
      const res = await this.getLockResource(name, flags);
      const lock = new DlmLock(this.newCookie(), this.node, mode, res);
      lock.getLvb = (flags & LKM.GET_LVB) !== 0;
      lock.onBast = opts.onBast ?? null;
      const granted = new Promise<DlmStatus>((r) => { lock.onAst = r; });
      res.inflight++;
      let st: DlmStatus;
      try {
        st = res.owner === this.node ? this.lockMaster(res, lock, flags) : await this.lockRemote(res, lock, flags);
      } finally { res.inflight--; res.lastUsed = Date.now(); }
      if (st === DlmStatus.RECOVERING || st === DlmStatus.MIGRATING || st === DlmStatus.FORWARD || st === DlmStatus.NOLOCKMGR) {
        await sleep(50);
        continue;
      }
      if (st !== DlmStatus.NORMAL) throw new DlmError(st, `lock ${name.toString('latin1')} ${modeName(mode)}: ${DlmStatus[st]}`);
      const handle = new DlmLockHandle(this, name.toString('latin1'), lock);
      await granted;
      lock.lvb.copy(handle.lvb);
      return handle;
    }
  }

  /** dlmlock_master */
  private lockMaster(res: LockRes, lock: DlmLock, flags: number): DlmStatus {
    if (res.state & (RES_RECOVERING | RES_MIGRATING | RES_IN_PROGRESS)) return res.stateStatus();
    if (this.canGrantNewLock(res, lock)) {
      res.granted.push(lock);
      this.queueAst(lock);
    } else if (flags & LKM.NOQUEUE) {
      return DlmStatus.NOTQUEUED;
    } else {
      res.blocked.push(lock);
    }
    this.dirtyRes(res);
    return DlmStatus.NORMAL;
  }

  /** dlm_can_grant_new_lock */
  private canGrantNewLock(res: LockRes, lock: DlmLock): boolean {
    for (const t of res.granted) if (!lockCompatible(t.type, lock.type)) return false;
    for (const t of res.converting) if (!lockCompatible(t.type, lock.type) || !lockCompatible(t.convertType, lock.type)) return false;
    return true;
  }

  /** dlmlock_remote: the lock waits on our blocked list until the master's AST */
  private async lockRemote(res: LockRes, lock: DlmLock, flags: number): Promise<DlmStatus> {
    if (res.state & (RES_RECOVERING | RES_MIGRATING | RES_IN_PROGRESS)) return res.stateStatus();
    res.blocked.push(lock);
    lock.createPending = true;
    const p = DlmCreateLock.encode({ cookie: lock.cookie, flags: flags >>> 0, pad1: 0, node_idx: this.node, requested_type: lock.type, namelen: res.name.length, name: nameField(res.name) });
    let st: DlmStatus;
    try {
      st = (await this.send(DlmMsg.CREATE_LOCK, p, res.owner)).status;
    } catch (e) {
      if (!isHostDown(e)) throw e;
      st = DlmStatus.RECOVERING;
      // the lock stays pending (left out of recovery data) until it is reverted below
      await this.waitNodeDeath(res.owner);
    }
    lock.createPending = false;
    if (st !== DlmStatus.NORMAL && res.blocked.includes(lock)) {
      // dlm_revert_pending_lock
      res.remove(lock);
    } else if (st !== DlmStatus.NORMAL && res.granted.includes(lock)) {
      this.log(`create of ${res.text} answered ${DlmStatus[st]} but already granted`);
      st = DlmStatus.NORMAL;
    }
    return st;
  }

  /** dlmlock(LKM_CONVERT) */
  async convert(h: DlmLockHandle, mode: LockMode, opts: { noqueue?: boolean; valblk?: boolean } = {}): Promise<void> {
    const lock = h.lock;
    if (mode !== LkmMode.NL && mode !== LkmMode.PR && mode !== LkmMode.EX) throw new DlmError(DlmStatus.BADPARAM, `mode ${String(mode)}`);
    let flags = LKM.CONVERT | (opts.noqueue ? LKM.NOQUEUE : 0) | (opts.valblk ? LKM.VALBLK : 0);
    for (;;) {
      await this.waitRecovery();
      const res = lock.res;
      if (res.owner === DLM_LOCK_RES_OWNER_UNKNOWN || res.state & (RES_RECOVERING | RES_MIGRATING)) { await sleep(50); continue; }
      const granted = new Promise<DlmStatus>((r) => { lock.onAst = r; });
      h.lvb.copy(lock.lvb);
      let st: DlmStatus;
      if (res.owner === this.node) st = this.convertMaster(res, lock, mode, flags);
      else st = await this.convertRemote(res, lock, mode, flags);
      if (st === DlmStatus.RECOVERING || st === DlmStatus.MIGRATING || st === DlmStatus.FORWARD) { await sleep(50); flags &= ~(LKM.PUT_LVB | LKM.GET_LVB); continue; }
      if (st !== DlmStatus.NORMAL) { lock.onAst = null; throw new DlmError(st, `convert ${h.name} ${modeName(lock.type)}->${modeName(mode)}: ${DlmStatus[st]}`); }
      await granted;
      if (lock.type >= LkmMode.PR && opts.valblk) lock.lvb.copy(h.lvb);
      res.lastUsed = Date.now();
      return;
    }
  }

  /** __dlmconvert_master */
  private convertMaster(res: LockRes, lock: DlmLock, type: number, flags: number): DlmStatus {
    if (res.state & (RES_RECOVERING | RES_MIGRATING | RES_IN_PROGRESS)) return res.stateStatus();
    if (!res.granted.includes(lock)) return DlmStatus.DENIED;
    if (lock.convertType !== LkmMode.IV) return DlmStatus.DENIED;
    if (type === lock.type) return DlmStatus.DENIED;
    if (flags & LKM.VALBLK) {
      if (lock.type === LkmMode.EX) lock.putLvb = true;
      else if (type > LkmMode.NL) lock.getLvb = true;
    }
    let grant = type <= lock.type; // an in-place down-convert
    if (!grant) {
      grant = true;
      for (const t of res.granted) if (t !== lock && !lockCompatible(t.type, type)) grant = false;
      for (const t of res.converting) if (!lockCompatible(t.type, type) || !lockCompatible(t.convertType, type)) grant = false;
    }
    if (grant) {
      if (lock.putLvb) { lock.lvb.copy(res.lvb); }
      lock.type = type;
      this.queueAst(lock);
      this.dirtyRes(res);
      return DlmStatus.NORMAL;
    }
    if (flags & LKM.NOQUEUE) { lock.putLvb = lock.getLvb = false; return DlmStatus.NOTQUEUED; }
    lock.convertType = type;
    res.moveTo(lock, res.converting);
    this.dirtyRes(res);
    return DlmStatus.NORMAL;
  }

  /** dlmconvert_remote */
  private async convertRemote(res: LockRes, lock: DlmLock, type: number, flags: number): Promise<DlmStatus> {
    if (!res.granted.includes(lock) || lock.convertType !== LkmMode.IV) return DlmStatus.DENIED;
    res.moveTo(lock, res.converting);
    lock.convertType = type;
    let f = flags;
    let lvb: Buffer | null = null;
    if (f & LKM.VALBLK) {
      if (lock.type === LkmMode.EX) { f |= LKM.PUT_LVB; lock.putLvb = true; lvb = lock.lvb; }
      else if (type === LkmMode.NL) f &= ~LKM.VALBLK;
      else { f |= LKM.GET_LVB; lock.getLvb = true; }
    }
    const hdr = DlmConvertLock.encode({ cookie: lock.cookie, flags: f >>> 0, pad1: 0, node_idx: this.node, requested_type: type, namelen: res.name.length, name: nameField(res.name) });
    let st: DlmStatus;
    try {
      st = (await this.send(DlmMsg.CONVERT_LOCK, lvb ? Buffer.concat([hdr, lvb]) : hdr, res.owner)).status;
    } catch (e) {
      if (!isHostDown(e)) throw e;
      // the master died: the lock stays on converting; recovery hands it to the new master
      await this.waitNodeDeath(res.owner);
      return DlmStatus.NORMAL;
    }
    if (st !== DlmStatus.NORMAL && res.converting.includes(lock)) {
      // dlm_revert_pending_convert
      res.moveTo(lock, res.granted);
      lock.convertType = LkmMode.IV;
      lock.putLvb = lock.getLvb = false;
    }
    return st;
  }

  /** dlmunlock (LKM_UNLOCK or LKM_CANCEL) */
  async unlock(h: DlmLockHandle, flags: number): Promise<DlmStatus> {
    const lock = h.lock;
    if (flags & LKM.VALBLK) h.lvb.copy(lock.lvb);
    for (;;) {
      const res = lock.res;
      if (!res.listOf(lock)) return DlmStatus.IVLOCKID;
      if (res.owner === DLM_LOCK_RES_OWNER_UNKNOWN || res.state & (RES_RECOVERING | RES_MIGRATING)) { await sleep(50); continue; }
      let st: DlmStatus;
      if (res.owner === this.node) st = this.unlockMaster(res, lock, flags);
      else st = await this.unlockRemote(res, lock, flags);
      if (st === DlmStatus.RECOVERING || st === DlmStatus.MIGRATING || st === DlmStatus.FORWARD) { await sleep(50); continue; }
      res.lastUsed = Date.now();
      if (st === DlmStatus.NORMAL && (flags & LKM.CANCEL) && lock.onAst) {
        // a cancelled request: its waiter learns it will never be granted
        const w = lock.onAst; lock.onAst = null; w(DlmStatus.CANCEL);
      }
      if (st !== DlmStatus.NORMAL && st !== DlmStatus.CANCELGRANT) throw new DlmError(st, `${flags & LKM.CANCEL ? 'cancel' : 'unlock'} ${h.name}: ${DlmStatus[st]}`);
      return st;
    }
  }

  /** dlmunlock_common on the master: dlm_get_unlock_actions / dlm_get_cancel_actions */
  private unlockMaster(res: LockRes, lock: DlmLock, flags: number): DlmStatus {
    if (res.state & (RES_RECOVERING | RES_MIGRATING | RES_IN_PROGRESS)) return res.stateStatus();
    let st = DlmStatus.NORMAL;
    if (flags & LKM.CANCEL) {
      if (res.blocked.includes(lock)) res.remove(lock);
      else if (res.converting.includes(lock)) { res.moveTo(lock, res.granted); lock.convertType = LkmMode.IV; lock.putLvb = lock.getLvb = false; }
      else if (res.granted.includes(lock)) st = DlmStatus.CANCELGRANT;
      else return DlmStatus.IVLOCKID;
    } else {
      if (!res.granted.includes(lock)) return DlmStatus.DENIED;
      // LVB written only from an EX holder (dlmunlock_common: LKM_VALBLK && type == EX)
      if ((flags & (LKM.VALBLK | LKM.PUT_LVB)) && lock.type === LkmMode.EX) lock.lvb.copy(res.lvb);
      res.remove(lock);
    }
    this.dirtyRes(res);
    return st;
  }

  /** dlmunlock_remote */
  private async unlockRemote(res: LockRes, lock: DlmLock, flags: number): Promise<DlmStatus> {
    let f = flags;
    let lvb: Buffer | null = null;
    if ((f & LKM.VALBLK) && lock.type === LkmMode.EX && !(f & LKM.CANCEL)) { f |= LKM.PUT_LVB; lvb = lock.lvb; }
    const hdr = DlmUnlockLock.encode({ cookie: lock.cookie, flags: f >>> 0, pad1: 0, node_idx: this.node, namelen: res.name.length, name: nameField(res.name) });
    let st: DlmStatus;
    try {
      st = (await this.send(DlmMsg.UNLOCK_LOCK, lvb ? Buffer.concat([hdr, lvb]) : hdr, res.owner)).status;
    } catch (e) {
      if (!isHostDown(e)) throw e;
      // master down: complete locally, recovery hands on the state
      st = DlmStatus.NORMAL;
    }
    if (st === DlmStatus.NORMAL) {
      if (f & LKM.CANCEL) {
        if (res.blocked.includes(lock)) res.remove(lock);
        else if (res.converting.includes(lock)) { res.moveTo(lock, res.granted); lock.convertType = LkmMode.IV; lock.putLvb = lock.getLvb = false; }
      } else res.remove(lock);
    }
    return st;
  }

  // ------------------------------------------------------- master handlers

  private masterResFor(m: IncomingMessage, field: Buffer, len: number): { res?: LockRes; status?: number } {
    if (!this.joined()) return { status: DlmStatus.REJECTED };
    const name = this.decodeName(m, field, len);
    if (!name) return { status: DlmStatus.IVBUFLEN };
    const res = this.lookup(name);
    if (!res) return { status: DlmStatus.IVLOCKID };
    if (res.state & (RES_RECOVERING | RES_MIGRATING)) return { status: res.stateStatus() };
    if (res.owner !== this.node) return { status: res.owner === DLM_LOCK_RES_OWNER_UNKNOWN ? DlmStatus.FORWARD : DlmStatus.IVLOCKID };
    return { res };
  }

  /** dlm_create_lock_handler */
  private createLockHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmCreateLock.size)) return DlmStatus.BADARGS;
    const c = DlmCreateLock.decode(m.payload);
    if (c.node_idx !== m.from) { this.dlm.badMessage(m, `CREATE_LOCK for node ${c.node_idx}`); return DlmStatus.BADARGS; }
    if (c.requested_type !== LkmMode.NL && c.requested_type !== LkmMode.PR && c.requested_type !== LkmMode.EX) { this.dlm.badMessage(m, `mode ${c.requested_type}`); return DlmStatus.BADARGS; }
    if (cookieNode(c.cookie) !== c.node_idx) { this.dlm.badMessage(m, 'cookie of another node'); return DlmStatus.BADARGS; }
    const { res, status } = this.masterResFor(m, c.name, c.namelen);
    if (!res) return status!;
    if (res.findLock(c.cookie, c.node_idx)) { this.dlm.badMessage(m, 'duplicate cookie'); return DlmStatus.BADARGS; }
    const lock = new DlmLock(c.cookie, c.node_idx, c.requested_type, res);
    if (c.flags & LKM.GET_LVB) lock.getLvb = true;
    res.refmap.add(c.node_idx);
    return this.lockMaster(res, lock, c.flags);
  }

  /** dlm_convert_lock_handler */
  private convertLockHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmConvertLock.size)) return DlmStatus.BADARGS;
    const c = DlmConvertLock.decode(m.payload);
    if (c.requested_type !== LkmMode.NL && c.requested_type !== LkmMode.PR && c.requested_type !== LkmMode.EX) { this.dlm.badMessage(m, `mode ${c.requested_type}`); return DlmStatus.BADARGS; }
    if ((c.flags & (LKM.PUT_LVB | LKM.GET_LVB)) === (LKM.PUT_LVB | LKM.GET_LVB)) return DlmStatus.BADARGS;
    if ((c.flags & LKM.PUT_LVB) && m.payload.length < DlmConvertLock.size + DLM_LVB_LEN) { this.dlm.badMessage(m, 'PUT_LVB without an LVB'); return DlmStatus.BADARGS; }
    const { res, status } = this.masterResFor(m, c.name, c.namelen);
    if (!res) return status!;
    const lock = res.findLock(c.cookie, c.node_idx);
    if (!lock) return DlmStatus.IVLOCKID;
    if (c.flags & LKM.PUT_LVB) m.payload.copy(lock.lvb, 0, DlmConvertLock.size, DlmConvertLock.size + DLM_LVB_LEN);
    return this.convertMaster(res, lock, c.requested_type, c.flags);
  }

  /** dlm_unlock_lock_handler */
  private unlockLockHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmUnlockLock.size)) return DlmStatus.BADARGS;
    const u = DlmUnlockLock.decode(m.payload);
    if ((u.flags & (LKM.UNLOCK | LKM.CANCEL)) === (LKM.UNLOCK | LKM.CANCEL) || !(u.flags & (LKM.UNLOCK | LKM.CANCEL))) return DlmStatus.BADARGS;
    if ((u.flags & LKM.PUT_LVB) && m.payload.length < DlmUnlockLock.size + DLM_LVB_LEN) { this.dlm.badMessage(m, 'PUT_LVB without an LVB'); return DlmStatus.BADARGS; }
    const { res, status } = this.masterResFor(m, u.name, u.namelen);
    if (!res) return status!;
    const lock = res.findLock(u.cookie, u.node_idx);
    if (!lock) return DlmStatus.IVLOCKID;
    if (u.flags & LKM.PUT_LVB) m.payload.copy(lock.lvb, 0, DlmUnlockLock.size, DlmUnlockLock.size + DLM_LVB_LEN);
    return this.unlockMaster(res, lock, u.flags);
  }

  /** dlm_proxy_ast_handler: the master granted (AST) or wants us to release (BAST) */
  private proxyAstHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmProxyAst.size)) return DlmStatus.BADARGS;
    const p = DlmProxyAst.decode(m.payload);
    if (p.type !== DlmAstType.AST && p.type !== DlmAstType.BAST) { this.dlm.badMessage(m, `ast type ${p.type}`); return DlmStatus.BADARGS; }
    if ((p.flags & LKM.GET_LVB) && p.type === DlmAstType.AST && m.payload.length < DlmProxyAst.size + DLM_LVB_LEN) { this.dlm.badMessage(m, 'GET_LVB without an LVB'); return DlmStatus.BADARGS; }
    const name = this.decodeName(m, p.name, p.namelen);
    if (!name) return DlmStatus.IVBUFLEN;
    const res = this.lookup(name);
    if (!res) return DlmStatus.IVLOCKID;
    if (res.state & RES_RECOVERING) return DlmStatus.RECOVERING;
    const lock = res.findLock(p.cookie, p.node_idx);
    if (!lock || p.node_idx !== this.node) return DlmStatus.IVLOCKID;
    if (p.type === DlmAstType.BAST) {
      if (!res.granted.includes(lock) && !res.converting.includes(lock)) return DlmStatus.NORMAL; // stale
      this.localBast(lock, p.blocked_type);
      return DlmStatus.NORMAL;
    }
    if (res.granted.includes(lock) && lock.convertType === LkmMode.IV) {
      this.dlm.badMessage(m, `AST for an already granted lock on ${res.text}`);
      return DlmStatus.NORMAL;
    }
    res.moveTo(lock, res.granted);
    if (lock.convertType !== LkmMode.IV) { lock.type = lock.convertType; lock.convertType = LkmMode.IV; }
    if (p.flags & LKM.GET_LVB) m.payload.copy(lock.lvb, 0, DlmProxyAst.size, DlmProxyAst.size + DLM_LVB_LEN);
    lock.putLvb = lock.getLvb = false;
    this.localAst(lock);
    return DlmStatus.NORMAL;
  }

  // ------------------------------------------------- the dlm thread, ASTs

  private dirtyRes(res: LockRes): void {
    this.dirty.add(res);
    this.kickThread();
  }

  private kickThread(): void {
    if (this.threadScheduled) return;
    this.threadScheduled = true;
    setImmediate(() => { this.threadScheduled = false; this.runThread(); });
  }

  private runThread(): void {
    for (const res of [...this.dirty]) {
      this.dirty.delete(res);
      if (res.owner !== this.node || res.state & (RES_RECOVERING | RES_MIGRATING)) continue;
      this.shuffleLists(res);
    }
  }

  /** dlm_shuffle_lists: converting queue first, then blocked; one BAST per blocked level */
  shuffleLists(res: LockRes): void {
    const blocks = (lock: DlmLock, target: DlmLock, want: number): boolean => {
      if (lock === target || lockCompatible(lock.type, want)) return false;
      if (lock.highestBlocked === LkmMode.IV) this.queueBast(lock);
      if (lock.highestBlocked < want) lock.highestBlocked = want;
      return true;
    };
    for (;;) {
      let progressed = false;
      const conv = res.converting[0];
      if (conv) {
        let can = true;
        for (const l of res.granted) if (blocks(l, conv, conv.convertType)) can = false;
        for (const l of res.converting) if (blocks(l, conv, conv.convertType)) can = false;
        if (can) {
          conv.type = conv.convertType;
          conv.convertType = LkmMode.IV;
          res.moveTo(conv, res.granted);
          this.queueAst(conv);
          continue;
        }
      }
      const blk = res.blocked[0];
      if (blk) {
        let can = true;
        for (const l of res.granted) if (blocks(l, blk, blk.type)) can = false;
        for (const l of res.converting) if (blocks(l, blk, blk.type)) can = false;
        if (can) {
          res.moveTo(blk, res.granted);
          this.queueAst(blk);
          progressed = true;
        }
      }
      if (!progressed) break;
    }
  }

  /** __dlm_queue_ast + the flush: the grant reaches the lock's node */
  private queueAst(lock: DlmLock): void {
    // an AST obsoletes a pending BAST
    if (lock.bastPending) { lock.bastPending = false; lock.highestBlocked = LkmMode.IV; }
    lock.astPending = true;
    const res = lock.res;
    // dlm_update_lvb
    const getLvb = lock.getLvb;
    if (lock.getLvb) res.lvb.copy(lock.lvb);
    else if (lock.putLvb) lock.lvb.copy(res.lvb);
    lock.putLvb = lock.getLvb = false;
    if (lock.node === this.node) { setImmediate(() => { lock.astPending = false; this.localAst(lock); }); return; }
    const hdr = DlmProxyAst.encode({ cookie: lock.cookie, flags: getLvb ? LKM.GET_LVB : 0, node_idx: lock.node, type: DlmAstType.AST, blocked_type: 0, namelen: res.name.length, name: nameField(res.name) });
    this.queueSend(lock.node, DlmMsg.PROXY_AST, getLvb ? Buffer.concat([hdr, res.lvb]) : hdr, (r) => {
      lock.astPending = false;
      if (r instanceof Error) { if (!isHostDown(r)) this.log(`AST to node ${lock.node} for ${res.text}: ${r.message}`); }
      else if (r !== DlmStatus.NORMAL) this.log(`AST to node ${lock.node} for ${res.text} answered ${DlmStatus[r] ?? r}`);
    });
  }

  private queueBast(lock: DlmLock): void {
    lock.bastPending = true;
    const res = lock.res;
    setImmediate(() => {
      if (!lock.bastPending) return;
      lock.bastPending = false;
      const hi = lock.highestBlocked;
      lock.highestBlocked = LkmMode.IV;
      if (hi <= LkmMode.IV || !res.listOf(lock)) return;
      if (lock.node === this.node) { this.localBast(lock, hi); return; }
      const p = DlmProxyAst.encode({ cookie: lock.cookie, flags: 0, node_idx: lock.node, type: DlmAstType.BAST, blocked_type: hi, namelen: res.name.length, name: nameField(res.name) });
      this.queueSend(lock.node, DlmMsg.PROXY_AST, p, (r) => { if (r instanceof Error && !isHostDown(r)) this.log(`BAST to node ${lock.node}: ${r.message}`); });
    });
  }

  private localAst(lock: DlmLock): void {
    const w = lock.onAst;
    lock.onAst = null;
    w?.(DlmStatus.NORMAL);
  }

  private localBast(lock: DlmLock, blocked: number): void {
    try { lock.onBast?.(blocked as LockMode); } catch (e) { this.log(`BAST callback: ${(e as Error).message}`); }
  }

  // ------------------------------------------------------- refs and purge

  /** dlm_run_purge_list: drop unused resources (DLM_PURGE_INTERVAL_MS after last use) */
  private purgeUnused(): void {
    if (this.state !== DomainState.JOINED || this.recoveryMap.size > 0 || this.reco.active) return;
    const now = Date.now();
    for (const res of [...this.res.values()]) {
      if (res.hasLocks() || res.inflight > 0 || res.state & (RES_IN_PROGRESS | RES_RECOVERING | RES_MIGRATING | RES_DROPPING_REF)) continue;
      if (now - res.lastUsed < this.purgeIntervalMs) continue;
      if (this.mles.has(res.key)) continue;
      if (res.owner === this.node) {
        if (res.refmap.size === 0) this.res.delete(res.key);
      } else if (res.owner !== DLM_LOCK_RES_OWNER_UNKNOWN) {
        void this.dropRef(res);
      } else this.res.delete(res.key);
    }
  }

  /** dlm_drop_lockres_ref: DEREF_LOCKRES to the master, then forget the resource */
  private async dropRef(res: LockRes): Promise<void> {
    res.state |= RES_DROPPING_REF;
    const p = DlmDerefLockres.encode({ pad1: 0, pad2: 0, node_idx: this.node, namelen: res.name.length, name: nameField(res.name) });
    try {
      const r = (await this.send(DlmMsg.DEREF_LOCKRES, p, res.owner)).status;
      if (r !== DerefResp.DONE && r !== DerefResp.INPROG) this.log(`deref of ${res.text} at node ${res.owner} answered ${r}`);
    } catch (e) {
      if (!isHostDown(e)) this.log(`deref of ${res.text}: ${(e as Error).message}`);
    }
    if (this.res.get(res.key) === res) this.res.delete(res.key);
    res.state &= ~RES_DROPPING_REF;
    res.wake();
  }

  /** dlm_deref_lockres_handler */
  private derefHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmDerefLockres.size)) return -22;
    const d = DlmDerefLockres.decode(m.payload);
    const name = this.decodeName(m, d.name, d.namelen);
    if (!name) return -22;
    if (d.node_idx !== m.from) { this.dlm.badMessage(m, `DEREF for node ${d.node_idx}`); return -22; }
    const res = this.lookup(name);
    if (!res) { this.dlm.badMessage(m, `DEREF of unknown ${name.toString('latin1')}`); return -22; }
    if (res.state & RES_RECOVERING || res.allLocks().some((l) => l.node === d.node_idx)) {
      // the kernel queues the deref behind recovery and answers INPROG, then DEREF_LOCKRES_DONE
      res.refmap.delete(d.node_idx);
      return DerefResp.DONE;
    }
    res.refmap.delete(d.node_idx);
    res.lastUsed = Date.now();
    return DerefResp.DONE;
  }

  private derefDoneHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmDerefLockresDone.size)) return -22;
    const d = DlmDerefLockresDone.decode(m.payload);
    const name = this.decodeName(m, d.name, d.namelen);
    if (!name) return -22;
    const res = this.lookup(name);
    if (res && res.state & RES_DROPPING_REF) { this.res.delete(res.key); res.state &= ~RES_DROPPING_REF; res.wake(); }
    return 0;
  }

  // ------------------------------------------------------------ migration

  private migCookie = 1n;

  /** dlm_migrate_lockres: hand a resource we master to a node that uses it */
  private async migrateLockres(res: LockRes): Promise<void> {
    const users = new Set<number>([...res.refmap, ...res.allLocks().map((l) => l.node)]);
    users.delete(this.node);
    // dlm_pick_migration_target: a node using it that is not leaving too
    const target = [...users].filter((n) => this.domainMap.has(n) && !this.exitingMap.has(n)).sort((a, b) => a - b)[0];
    if (target === undefined) { this.res.delete(res.key); return; }
    res.state |= RES_MIGRATING;
    const others = [...this.domainMap].filter((n) => n !== this.node);
    const mr = DlmMigrateRequest.encode({ master: this.node, new_master: target, namelen: res.name.length, pad1: 0, pad2: 0, name: nameField(res.name) });
    for (const n of others) await this.send(DlmMsg.MIGRATE_REQUEST, mr, n).catch(() => undefined);
    await this.sendOneLockres(res, target, DLM_MRES_MIGRATION);
    // the target asserts FINISH_MIGRATION to everyone (us included)
    const deadline = Date.now() + 30000;
    while (res.owner === this.node && Date.now() < deadline && this.domainMap.has(target)) await Promise.race([res.changed(), sleep(200)]);
    if (res.owner === this.node) { res.state &= ~RES_MIGRATING; throw new Error(`migration of ${res.text} to ${target} did not finish`); }
    this.log(`migrated ${res.text} to node ${target}`);
    this.res.delete(res.key);
  }

  /** dlm_send_one_lockres: MIG_LOCKRES messages, DLM_MAX_MIGRATABLE_LOCKS at a time */
  private async sendOneLockres(res: LockRes, to: number, flags: number): Promise<void> {
    const locks: { lock: DlmLock; list: DlmList }[] = [];
    for (const [li, l] of res.lists()) for (const lock of l) if (flags & DLM_MRES_MIGRATION || (lock.node === this.node && !lock.createPending)) locks.push({ lock, list: li });
    const cookie = this.migCookie++ | (BigInt(this.node) << 56n);
    const total = locks.length;
    let sent = 0;
    do {
      const chunk = locks.slice(sent, sent + DLM_MAX_MIGRATABLE_LOCKS);
      sent += chunk.length;
      // dlm_prepare_lvb_for_migration: in recovery the LVB is the one our PR/EX lock holds
      let lvb = res.lvb;
      if (flags & DLM_MRES_RECOVERY) {
        const mine = res.granted.find((l) => l.node === this.node && l.type >= LkmMode.PR);
        lvb = mine ? mine.lvb : Buffer.alloc(DLM_LVB_LEN);
      }
      const hdr = DlmMigratableLockres.encode({
        master: flags & DLM_MRES_RECOVERY ? this.reco.deadNode : this.node, lockname_len: res.name.length, num_locks: chunk.length,
        flags: flags | (sent >= total ? DLM_MRES_ALL_DONE : 0), total_locks: total, mig_cookie: total > DLM_MAX_MIGRATABLE_LOCKS ? cookie : 0n,
        lockname: nameField(res.name, DLM_LOCKID_NAME_MAX), lvb,
      });
      const body = Buffer.alloc(chunk.length * DlmMigratableLock.size);
      chunk.forEach(({ lock, list }, i) => DlmMigratableLock.encode({ cookie: lock.cookie, pad1: 0, list, flags: 0, type: lock.type, convert_type: lock.convertType, highest_blocked: lock.highestBlocked, node: lock.node }, body, i * DlmMigratableLock.size));
      if (chunk.length === 0 && flags & DLM_MRES_RECOVERY) {
        // dlm_add_dummy_lock: tells the recovery master we hold a ref
        const d = Buffer.alloc(DlmMigratableLock.size);
        DlmMigratableLock.encode({ cookie: 0n, pad1: 0, list: DlmList.BLOCKED, flags: 0, type: LkmMode.IV, convert_type: LkmMode.IV, highest_blocked: LkmMode.IV, node: this.node }, d);
        hdr[2] = 1;
        await this.send(DlmMsg.MIG_LOCKRES, Buffer.concat([hdr, d]), to);
        return;
      }
      const r = (await this.send(DlmMsg.MIG_LOCKRES, Buffer.concat([hdr, body]), to)).status;
      if (r < 0) throw new Error(`MIG_LOCKRES to ${to} answered ${r}`);
    } while (sent < total);
  }

  /** dlm_migrate_request_handler: a migration mle until FINISH_MIGRATION */
  private migrateRequestHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmMigrateRequest.size)) return -22;
    const q = DlmMigrateRequest.decode(m.payload);
    const name = this.decodeName(m, q.name, q.namelen);
    if (!name) return -22;
    if (q.master !== m.from) { this.dlm.badMessage(m, `MIGRATE_REQUEST from ${m.from} for master ${q.master}`); return -22; }
    const k = name.toString('latin1');
    const res = this.lookup(name);
    if (res) res.state |= RES_MIGRATING;
    this.mles.set(k, { type: 'migration', name: k, master: DLM_LOCK_RES_OWNER_UNKNOWN, newMaster: q.new_master, vote: new Set(), response: new Set(), maybe: new Set(), woken: [] });
    return res ? DLM_MIGRATE_RESPONSE_MASTERY_REF : 0;
  }

  private readonly incoming = new Map<string, { res: LockRes; got: number }>();

  /** dlm_mig_lockres_handler (MIGRATION or RECOVERY) */
  private migLockresHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmMigratableLockres.size)) return -22;
    const h = DlmMigratableLockres.decode(m.payload);
    if (m.payload.length < DlmMigratableLockres.size + h.num_locks * DlmMigratableLock.size || h.num_locks > DLM_MAX_MIGRATABLE_LOCKS) { this.dlm.badMessage(m, `num_locks ${h.num_locks} beyond the payload`); return -22; }
    if (!(h.flags & (DLM_MRES_RECOVERY | DLM_MRES_MIGRATION)) || (h.flags & DLM_MRES_RECOVERY && h.flags & DLM_MRES_MIGRATION)) { this.dlm.badMessage(m, `flags ${h.flags}`); return -22; }
    const name = this.decodeName(m, h.lockname, h.lockname_len);
    if (!name) return -22;
    const recovery = (h.flags & DLM_MRES_RECOVERY) !== 0;
    if (recovery && (this.reco.newMaster !== this.node || h.master !== this.reco.deadNode)) { this.dlm.badMessage(m, `recovery data for dead node ${h.master} but we recover ${this.reco.deadNode}`); return -22; }
    let res = this.lookup(name);
    if (!res) { res = this.newRes(name); res.owner = DLM_LOCK_RES_OWNER_UNKNOWN; }
    if (recovery) res.state |= RES_RECOVERING; else res.state |= RES_MIGRATING;
    for (let i = 0; i < h.num_locks; i++) {
      const ml = DlmMigratableLock.decode(m.payload, DlmMigratableLockres.size + i * DlmMigratableLock.size);
      if (ml.cookie === 0n && ml.type === LkmMode.IV && ml.list === DlmList.BLOCKED) { res.refmap.add(ml.node); continue; } // dummy lock
      if (ml.list > DlmList.BLOCKED || ![LkmMode.NL, LkmMode.PR, LkmMode.EX].includes(ml.type)) { this.dlm.badMessage(m, 'bad migratable lock'); continue; }
      let lock = res.findLock(ml.cookie, ml.node);
      if (!lock) {
        lock = new DlmLock(ml.cookie, ml.node, ml.type, res);
      } else res.remove(lock);
      lock.type = ml.type;
      lock.convertType = ml.convert_type;
      lock.highestBlocked = LkmMode.IV;
      const list = ml.list === DlmList.GRANTED ? res.granted : ml.list === DlmList.CONVERTING ? res.converting : res.blocked;
      list.push(lock);
      if (ml.node !== this.node) res.refmap.add(ml.node);
      // dlm_process_recovery_data: the LVB comes from a PR/EX holder
      if (ml.list === DlmList.GRANTED && (ml.type === LkmMode.EX || ml.type === LkmMode.PR) && !h.lvb.every((b) => b === 0)) h.lvb.copy(res.lvb);
    }
    if (!recovery) {
      res.refmap.add(m.from);
      if (!h.lvb.every((b) => b === 0)) h.lvb.copy(res.lvb);
      if (h.flags & DLM_MRES_ALL_DONE) {
        // dlm_finish_migration: we are the master now; tell everyone
        const mle = this.mles.get(res.key);
        if (mle && mle.type === 'migration') this.mles.delete(res.key);
        res.owner = this.node;
        res.state &= ~RES_MIGRATING;
        const all = [...this.domainMap].filter((n) => n !== this.node);
        const r = res;
        void (async () => {
          const p = DlmAssertMaster.encode({ node_idx: this.node, namelen: r.name.length, pad1: 0, flags: DLM_ASSERT_MASTER_FINISH_MIGRATION, name: nameField(r.name) });
          await Promise.all(all.map((n) => this.send(DlmMsg.ASSERT_MASTER, p, n).catch(() => undefined)));
          this.dirtyRes(r);
          // our own locks that waited for the old master: their ASTs may have been in flight
          r.wake();
        })();
      }
    }
    return 0;
  }

  /** dlm_master_requery_handler: the status is the owner's number, or unknown */
  private masterRequeryHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmMasterRequery.size)) return DLM_LOCK_RES_OWNER_UNKNOWN;
    const q = DlmMasterRequery.decode(m.payload);
    const name = this.decodeName(m, q.name, q.namelen);
    if (!name) return DLM_LOCK_RES_OWNER_UNKNOWN;
    const res = this.lookup(name);
    if (!res) return DLM_LOCK_RES_OWNER_UNKNOWN;
    if (res.owner === this.node) res.refmap.add(q.node_idx);
    return res.owner;
  }

  // ------------------------------------------------------------- recovery

  /** dlm_wait_for_recovery */
  async waitRecovery(): Promise<void> {
    while (this.recoveryMap.size > 0 || this.reco.active) {
      await new Promise<void>((r) => { this.recoWaiters.push(r); setTimeout(r, 500); });
    }
  }

  private async waitNodeDeath(n: number): Promise<void> {
    // dlm_wait_for_node_death: heartbeat must agree (DLM_NODE_DEATH_WAIT_MAX)
    const until = Date.now() + 5000;
    while (this.domainMap.has(n) && Date.now() < until) await sleep(100);
    await this.waitRecovery();
  }

  private wakeReco(): void { for (const w of this.recoWaiters.splice(0)) w(); }

  kickRecovery(): void {
    if (this.recoRunning) return;
    this.recoRunning = true;
    void this.recoveryThread().catch((e: Error) => this.log(`recovery: ${e.message}`)).finally(() => { this.recoRunning = false; this.wakeReco(); if (this.recoveryMap.size > 0) setTimeout(() => this.kickRecovery(), 200); });
  }

  /** dlm_do_recovery: one dead node at a time */
  private async recoveryThread(): Promise<void> {
    while (this.recoveryMap.size > 0 && this.joined()) {
      if (this.reco.deadNode === DLM_LOCK_RES_OWNER_UNKNOWN || !this.recoveryMap.has(this.reco.deadNode)) {
        this.reco.deadNode = Math.min(...this.recoveryMap);
        this.reco.newMaster = DLM_LOCK_RES_OWNER_UNKNOWN;
      }
      this.localRecoveryCleanup(this.reco.deadNode);
      if (this.reco.newMaster === DLM_LOCK_RES_OWNER_UNKNOWN) {
        await this.pickRecoveryMaster();
        continue;
      }
      if (this.reco.newMaster === this.node) {
        await this.remasterLocks();
      } else {
        // another node recovers: wait for its FINALIZE (or its death)
        await new Promise<void>((r) => { this.recoWaiters.push(r); setTimeout(r, 1000); });
      }
    }
  }

  /** dlm_pick_recovery_master: whoever gets $RECOVERY EX (NOQUEUE) recovers */
  private async pickRecoveryMaster(): Promise<void> {
    const dead = this.reco.deadNode;
    let h: DlmLockHandle | null = null;
    try {
      h = await this.lock(DLM_RECOVERY_LOCK_NAME, LkmMode.EX, { noqueue: true, recovery: true });
    } catch (e) {
      if (!(e instanceof DlmError && e.status === DlmStatus.NOTQUEUED)) this.log(`$RECOVERY: ${(e as Error).message}`);
    }
    if (h) {
      if (this.reco.newMaster === DLM_LOCK_RES_OWNER_UNKNOWN && this.recoveryMap.has(dead)) {
        this.log(`node ${this.node} (me) is the Recovery Master for the dead node ${dead}`);
        this.reco.newMaster = this.node;
        const p = DlmBeginReco.encode({ node_idx: this.node, dead_node: dead, pad1: 0, pad2: 0 });
        for (const n of [...this.domainMap].filter((x) => x !== this.node)) {
          for (let tries = 0; tries < 50; tries++) {
            try {
              const r = (await this.send(DlmMsg.BEGIN_RECO, p, n)).status;
              if (r === -11) { await sleep(100); continue; } // -EAGAIN: it is still busy with a previous recovery
            } catch (e) { if (!isHostDown(e)) this.log(`BEGIN_RECO to ${n}: ${(e as Error).message}`); }
            break;
          }
        }
      }
      await h.unlock().catch(() => undefined);
    } else {
      // wait for the winner's BEGIN_RECO
      const until = Date.now() + 3000;
      while (this.reco.newMaster === DLM_LOCK_RES_OWNER_UNKNOWN && this.recoveryMap.has(dead) && Date.now() < until) {
        await new Promise<void>((r) => { this.recoWaiters.push(r); setTimeout(r, 200); });
      }
    }
  }

  /** dlm_begin_reco_handler */
  private beginRecoHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmBeginReco.size)) return -22;
    const b = DlmBeginReco.decode(m.payload);
    if (b.node_idx !== m.from) { this.dlm.badMessage(m, `BEGIN_RECO for master ${b.node_idx}`); return -22; }
    if (!this.joined()) return 0;
    if (!this.domainMap.has(b.dead_node) && !this.recoveryMap.has(b.dead_node)) { this.dlm.badMessage(m, `BEGIN_RECO for node ${b.dead_node} which is not in the domain`); return -22; }
    if (this.reco.newMaster !== DLM_LOCK_RES_OWNER_UNKNOWN && this.reco.newMaster !== b.node_idx && this.reco.active) return -11;
    if (!this.recoveryMap.has(b.dead_node)) {
      // we may not have seen the death yet (heartbeat lag): take the word of the recovery master
      if (!this.domainMap.has(b.dead_node) && b.dead_node !== this.node) { /* already recovered or never here */ }
      if (this.domainMap.has(b.dead_node)) this.hbNodeDown(b.dead_node);
    }
    this.reco.deadNode = b.dead_node;
    this.reco.newMaster = b.node_idx;
    this.reco.active = true;
    this.wakeReco();
    return 0;
  }

  /** dlm_do_local_recovery_cleanup: what we master loses the dead node's locks; what it mastered waits */
  private localRecoveryCleanup(dead: number): void {
    for (const res of this.res.values()) {
      if (res.owner === dead) {
        res.state |= RES_RECOVERING;
        // locks of the dead node on our copy are gone; ours stay and travel to the new master
        for (const l of res.allLocks()) if (l.node === dead) res.remove(l);
      } else if (res.owner === this.node) {
        let hadEx = false;
        for (const l of res.allLocks()) {
          if (l.node !== dead) continue;
          // dlm_revalidate_lvb: the dead node may have changed the LVB under EX
          if ((res.granted.includes(l) || res.converting.includes(l)) && l.type === LkmMode.EX) hadEx = true;
          res.remove(l);
        }
        if (hadEx) res.lvb.fill(0);
        res.refmap.delete(dead);
        this.dirtyRes(res);
      }
    }
  }

  /** dlm_remaster_locks: collect every node's locks on the dead node's resources */
  private async remasterLocks(): Promise<void> {
    const dead = this.reco.deadNode;
    this.reco.active = true;
    const nodes = [...this.domainMap].filter((n) => n !== this.node);
    this.reco.nodeData = new Map(nodes.map((n) => [n, 'init' as const]));
    const lr = DlmLockRequest.encode({ node_idx: this.node, dead_node: dead, pad1: 0, pad2: 0 });
    for (const n of nodes) {
      try {
        const r = (await this.send(DlmMsg.LOCK_REQUEST, lr, n)).status;
        this.reco.nodeData.set(n, r < 0 ? 'dead' : 'requested');
      } catch (e) { this.reco.nodeData.set(n, 'dead'); if (!isHostDown(e)) this.log(`LOCK_REQUEST to ${n}: ${(e as Error).message}`); }
    }
    while ([...this.reco.nodeData.values()].some((s) => s === 'requested' || s === 'init')) {
      if (!this.recoveryMap.has(dead)) return;
      await new Promise<void>((r) => { this.recoWaiters.push(r); setTimeout(r, 200); });
    }
    // our own view: the dead node's resources become ours
    this.finishLocalRecovery(dead, this.node);
    const f1 = DlmFinalizeReco.encode({ node_idx: this.node, dead_node: dead, flags: 0, pad1: 0, pad2: 0 });
    const f2 = DlmFinalizeReco.encode({ node_idx: this.node, dead_node: dead, flags: DLM_FINALIZE_STAGE2, pad1: 0, pad2: 0 });
    const live = [...this.domainMap].filter((n) => n !== this.node);
    for (const n of live) await this.send(DlmMsg.FINALIZE_RECO, f1, n).catch(() => undefined);
    for (const n of live) await this.send(DlmMsg.FINALIZE_RECO, f2, n).catch(() => undefined);
    this.log(`recovery of node ${dead} done (master ${this.node})`);
    this.recoveryDone(dead);
  }

  private recoveryDone(dead: number): void {
    this.recoveryMap.delete(dead);
    this.reco = { newMaster: DLM_LOCK_RES_OWNER_UNKNOWN, deadNode: DLM_LOCK_RES_OWNER_UNKNOWN, active: false, nodeData: new Map() };
    this.wakeReco();
    for (const r of this.res.values()) r.wake();
  }

  /** dlm_finish_local_lockres_recovery */
  private finishLocalRecovery(dead: number, newMaster: number): void {
    for (const res of [...this.res.values()]) {
      if (!(res.state & RES_RECOVERING) && res.owner !== dead) continue;
      res.owner = newMaster;
      res.state &= ~RES_RECOVERING;
      if (newMaster === this.node) {
        for (const l of res.allLocks()) if (l.node === dead || l.createPending) res.remove(l);
        res.refmap.delete(dead);
        // no surviving PR/EX holder can vouch for the LVB: it is zero (o2dlm's rule)
        if (!res.allLocks().some((l) => l.type >= LkmMode.PR && res.granted.includes(l))) res.lvb.fill(0);
        // our own granted locks need no AST; waiting ones will get theirs from the shuffle
        this.dirtyRes(res);
      }
      res.wake();
    }
  }

  /** dlm_request_all_locks_handler: queue the sending of our locks */
  private lockRequestHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmLockRequest.size)) return -22;
    const l = DlmLockRequest.decode(m.payload);
    if (l.node_idx !== m.from) { this.dlm.badMessage(m, `LOCK_REQUEST for master ${l.node_idx}`); return -22; }
    if (!this.joined()) return -22;
    if (this.reco.newMaster !== l.node_idx || this.reco.deadNode !== l.dead_node) {
      // BEGIN_RECO may not have arrived if this node saw the death late
      if (!this.recoveryMap.has(l.dead_node) && !this.domainMap.has(l.dead_node)) { /* unknown to us: still answer with our data */ }
      this.reco.newMaster = l.node_idx;
      this.reco.deadNode = l.dead_node;
      this.reco.active = true;
    }
    const master = l.node_idx;
    const dead = l.dead_node;
    void (async () => {
      this.localRecoveryCleanup(dead);
      try {
        for (const res of [...this.res.values()]) {
          if (res.owner !== dead && !(res.state & RES_RECOVERING)) continue;
          await this.sendOneLockres(res, master, DLM_MRES_RECOVERY);
        }
        await this.send(DlmMsg.RECO_DATA_DONE, DlmRecoDataDone.encode({ node_idx: this.node, dead_node: dead, pad1: 0, pad2: 0, reco_lvb: Buffer.alloc(DLM_LVB_LEN) }), master);
      } catch (e) { this.log(`sending recovery data to ${master}: ${(e as Error).message}`); }
    })();
    return 0;
  }

  /** dlm_reco_data_done_handler */
  private recoDataDoneHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmRecoDataDone.size)) return -22;
    const d = DlmRecoDataDone.decode(m.payload);
    if (this.reco.deadNode !== d.dead_node || this.reco.newMaster !== this.node) { this.dlm.badMessage(m, `RECO_DATA_DONE for dead node ${d.dead_node} but we recover ${this.reco.deadNode}`); return -22; }
    if (!this.reco.nodeData.has(d.node_idx)) { this.dlm.badMessage(m, `RECO_DATA_DONE from node ${d.node_idx} that we did not ask`); return -22; }
    this.reco.nodeData.set(d.node_idx, 'done');
    this.wakeReco();
    return 0;
  }

  /** dlm_finalize_reco_handler: stage 1 takes the new owner, stage 2 ends recovery */
  private finalizeRecoHandler(m: IncomingMessage): number {
    if (this.dlm.short(m, DlmFinalizeReco.size)) return -22;
    const f = DlmFinalizeReco.decode(m.payload);
    if (this.reco.newMaster !== f.node_idx || this.reco.deadNode !== f.dead_node) { this.dlm.badMessage(m, `FINALIZE_RECO from ${f.node_idx} for ${f.dead_node}, expected ${this.reco.newMaster}/${this.reco.deadNode}`); return -22; }
    if (f.flags & DLM_FINALIZE_STAGE2) {
      this.recoveryDone(f.dead_node);
    } else {
      this.finishLocalRecovery(f.dead_node, f.node_idx);
    }
    return 0;
  }

  // --------------------------------------------------------------- status

  status(): DomainStatus {
    const ls = (l: DlmLock, list: string): LockStatus => ({ cookie: `${cookieNode(l.cookie)}:${(l.cookie & 0x00ffffffffffffffn).toString()}`, node: l.node, type: modeName(l.type), convertType: modeName(l.convertType), list, highestBlocked: modeName(l.highestBlocked) });
    const st = (s: number): string[] => [s & RES_RECOVERING ? 'RECOVERING' : '', s & RES_IN_PROGRESS ? 'IN_PROGRESS' : '', s & RES_MIGRATING ? 'MIGRATING' : '', s & RES_DROPPING_REF ? 'DROPPING_REF' : ''].filter(Boolean);
    return {
      name: this.name, key: this.key.toString(16).padStart(8, '0'), state: DomainState[this.state],
      domainMap: [...this.domainMap].sort((a, b) => a - b), recoveryMap: [...this.recoveryMap].sort((a, b) => a - b),
      dlmProto: `${this.dlmProto.major}.${this.dlmProto.minor}`,
      recoveryMaster: this.reco.newMaster === DLM_LOCK_RES_OWNER_UNKNOWN ? null : this.reco.newMaster,
      resources: [...this.res.values()].sort((a, b) => a.key.localeCompare(b.key)).map((r) => ({
        name: r.text, owner: r.owner, state: st(r.state), refmap: [...r.refmap].sort((a, b) => a - b), lvb: r.lvb.toString('hex'),
        granted: r.granted.map((l) => ls(l, 'granted')), converting: r.converting.map((l) => ls(l, 'converting')), blocked: r.blocked.map((l) => ls(l, 'blocked')),
      })),
    };
  }
}


