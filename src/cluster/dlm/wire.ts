/**
 * o2dlm wire format (fs/ocfs2/dlm/dlmcommon.h, dlmapi.h): message types,
 * protocol versions, lock modes, flags, statuses and one field table per
 * message payload.  Multi-byte fields are big-endian; names are zero-padded
 * byte arrays; node maps are byte arrays, bit n = byte[n>>3] & (1 << (n&7)).
 */
import { defineStruct, cString } from '../../libocfs2/struct';
import { crc32_le } from '../../libocfs2/crc32';
import { O2NM_MAX_NODES, O2NM_MAX_NAME_LEN, O2NM_MAX_REGIONS } from '../nodemanager';

/* dlmcommon.h: the message types (enum, DLM_MASTER_REQUEST_MSG = 500) */
export enum DlmMsg {
  MASTER_REQUEST = 500,
  UNUSED1 = 501,
  ASSERT_MASTER = 502,
  CREATE_LOCK = 503,
  CONVERT_LOCK = 504,
  PROXY_AST = 505,
  UNLOCK_LOCK = 506,
  DEREF_LOCKRES = 507,
  MIGRATE_REQUEST = 508,
  MIG_LOCKRES = 509,
  QUERY_JOIN = 510,
  ASSERT_JOINED = 511,
  CANCEL_JOIN = 512,
  EXIT_DOMAIN = 513,
  MASTER_REQUERY = 514,
  LOCK_REQUEST = 515,
  RECO_DATA_DONE = 516,
  BEGIN_RECO = 517,
  FINALIZE_RECO = 518,
  QUERY_REGION = 519,
  QUERY_NODEINFO = 520,
  BEGIN_EXIT_DOMAIN = 521,
  DEREF_LOCKRES_DONE = 522,
}

/* dlmcommon.h DLM_MOD_KEY: the key of the join messages (domain-less) */
export const DLM_MOD_KEY = 0x666c6172;

/* dlmdomain.c dlm_protocol: the inter-DLM protocol this node speaks; the fs
 * protocol is ocfs2's (stack_o2cb / ocfs2_lockingver.h: 1.0). */
export const DLM_PROTOCOL = { major: 1, minor: 3 } as const;
export const FS_PROTOCOL = { major: 1, minor: 0 } as const;

/* dlmapi.h */
export const DLM_LVB_LEN = 64;
export const DLM_LOCKID_NAME_MAX = 32;
export enum LkmMode { IV = -1, NL = 0, CR = 1, CW = 2, PR = 3, PW = 4, EX = 5 }
export type LockMode = LkmMode.NL | LkmMode.PR | LkmMode.EX;

export const LKM = {
  LOCAL: 0x80,
  VALBLK: 0x100,
  NOQUEUE: 0x200,
  CONVERT: 0x400,
  UNLOCK: 0x1000,
  CANCEL: 0x2000,
  INVVALBLK: 0x8000,
  FORCE: 0x800000,
  MIGRATION: 0x10000000,
  PUT_LVB: 0x20000000,
  GET_LVB: 0x40000000,
  RECOVERY: 0x80000000,
} as const;

/* dlmapi.h enum dlm_status: travels as a handler's return value */
export enum DlmStatus {
  NORMAL = 0, GRANTED = 1, DENIED = 2, DENIED_NOLOCKS = 3, WORKING = 4, BLOCKED = 5, BLOCKED_ORPHAN = 6,
  DENIED_GRACE_PERIOD = 7, SYSERR = 8, NOSUPPORT = 9, CANCELGRANT = 10, IVLOCKID = 11, SYNC = 12,
  BADTYPE = 13, BADRESOURCE = 14, MAXHANDLES = 15, NOCLINFO = 16, NOLOCKMGR = 17, NOPURGED = 18,
  BADARGS = 19, VOID = 20, NOTQUEUED = 21, IVBUFLEN = 22, CVTUNGRANT = 23, BADPARAM = 24,
  VALNOTVALID = 25, REJECTED = 26, ABORT = 27, CANCEL = 28, IVRESHANDLE = 29, DEADLOCK = 30,
  DENIED_NOASTS = 31, FORWARD = 32, TIMEOUT = 33, IVGROUPID = 34, VERS_CONFLICT = 35,
  BAD_DEVICE_PATH = 36, NO_DEVICE_PERMISSION = 37, NO_CONTROL_DEVICE = 38, RECOVERING = 39,
  MIGRATING = 40, MAXSTATS = 41,
}

/* dlmcommon.h enum dlm_ast_type */
export enum DlmAstType { AST = 0, BAST = 1, ASTUNLOCK = 2 }
/* enum dlm_lockres_list */
export enum DlmList { GRANTED = 0, CONVERTING = 1, BLOCKED = 2 }
/* DLM_MASTER_RESP_* */
export enum MasterResp { NO = 0, YES = 1, MAYBE = 2, ERROR = 3 }
export const DLM_ASSERT_RESPONSE_REASSERT = 0x1;
export const DLM_ASSERT_RESPONSE_MASTERY_REF = 0x2;
export const DLM_ASSERT_MASTER_MLE_CLEANUP = 0x1;
export const DLM_ASSERT_MASTER_REQUERY = 0x2;
export const DLM_ASSERT_MASTER_FINISH_MIGRATION = 0x4;
export const DLM_MIGRATE_RESPONSE_MASTERY_REF = 0x1;
export const DLM_MRES_RECOVERY = 0x1;
export const DLM_MRES_MIGRATION = 0x2;
export const DLM_MRES_ALL_DONE = 0x4;
export const DLM_MAX_MIGRATABLE_LOCKS = 240;
export const DLM_FINALIZE_STAGE2 = 0x1;
export enum DerefResp { DONE = 0, INPROG = 1 }
export enum JoinCode { DISALLOW = 0, OK = 1, OK_NO_MAP = 2, PROTOCOL_MISMATCH = 3 }
/* DLM_RECOVERY_LOCK_NAME */
export const DLM_RECOVERY_LOCK_NAME = '$RECOVERY';
/* DLM_LOCK_RES_OWNER_UNKNOWN = O2NM_MAX_NODES */
export const DLM_LOCK_RES_OWNER_UNKNOWN = O2NM_MAX_NODES;
/* heartbeat.h O2HB_MAX_REGION_NAME_LEN */
export const O2HB_MAX_REGION_NAME_LEN = 32;
const NODE_MAP_BYTES = Math.ceil(O2NM_MAX_NODES / 8); // BITS_TO_BYTES(O2NM_MAX_NODES) = 32

const NAME = { type: 'bytes', size: O2NM_MAX_NAME_LEN } as const;

/** struct dlm_master_request (also dlm_assert_master: same layout) */
export const DlmMasterRequest = defineStruct('dlm_master_request', 72, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'namelen', offset: 1, type: 'u8' },
  { name: 'pad1', offset: 2, type: 'u16' },
  { name: 'flags', offset: 4, type: 'u32' },
  { name: 'name', offset: 8, ...NAME },
] as const);
export const DlmAssertMaster = DlmMasterRequest;

/** struct dlm_migrate_request */
export const DlmMigrateRequest = defineStruct('dlm_migrate_request', 72, 'be', [
  { name: 'master', offset: 0, type: 'u8' },
  { name: 'new_master', offset: 1, type: 'u8' },
  { name: 'namelen', offset: 2, type: 'u8' },
  { name: 'pad1', offset: 3, type: 'u8' },
  { name: 'pad2', offset: 4, type: 'u32' },
  { name: 'name', offset: 8, ...NAME },
] as const);

/** struct dlm_master_requery */
export const DlmMasterRequery = defineStruct('dlm_master_requery', 72, 'be', [
  { name: 'pad1', offset: 0, type: 'u8' },
  { name: 'pad2', offset: 1, type: 'u8' },
  { name: 'node_idx', offset: 2, type: 'u8' },
  { name: 'namelen', offset: 3, type: 'u8' },
  { name: 'pad3', offset: 4, type: 'u32' },
  { name: 'name', offset: 8, ...NAME },
] as const);

/** struct dlm_migratable_lockres (header; dlm_migratable_lock[] follows at 112) */
export const DlmMigratableLockres = defineStruct('dlm_migratable_lockres', 112, 'be', [
  { name: 'master', offset: 0, type: 'u8' },
  { name: 'lockname_len', offset: 1, type: 'u8' },
  { name: 'num_locks', offset: 2, type: 'u8' },
  { name: 'flags', offset: 3, type: 'u8' },
  { name: 'total_locks', offset: 4, type: 'u32' },
  { name: 'mig_cookie', offset: 8, type: 'u64n' },
  { name: 'lockname', offset: 16, type: 'bytes', size: DLM_LOCKID_NAME_MAX },
  { name: 'lvb', offset: 48, type: 'bytes', size: DLM_LVB_LEN },
] as const);

/** struct dlm_migratable_lock: 16 bytes */
export const DlmMigratableLock = defineStruct('dlm_migratable_lock', 16, 'be', [
  { name: 'cookie', offset: 0, type: 'u64n' },
  { name: 'pad1', offset: 8, type: 'u16' },
  { name: 'list', offset: 10, type: 'u8' },
  { name: 'flags', offset: 11, type: 'u8' },
  { name: 'type', offset: 12, type: 'i8' },
  { name: 'convert_type', offset: 13, type: 'i8' },
  { name: 'highest_blocked', offset: 14, type: 'i8' },
  { name: 'node', offset: 15, type: 'u8' },
] as const);
/* DLM_MIG_LOCKRES_MAX_LEN */
export const DLM_MIG_LOCKRES_MAX_LEN = DlmMigratableLockres.size + DlmMigratableLock.size * DLM_MAX_MIGRATABLE_LOCKS;

/** struct dlm_create_lock (dlm_convert_lock: same + lvb[] at 80) */
export const DlmCreateLock = defineStruct('dlm_create_lock', 80, 'be', [
  { name: 'cookie', offset: 0, type: 'u64n' },
  { name: 'flags', offset: 8, type: 'u32' },
  { name: 'pad1', offset: 12, type: 'u8' },
  { name: 'node_idx', offset: 13, type: 'u8' },
  { name: 'requested_type', offset: 14, type: 'i8' },
  { name: 'namelen', offset: 15, type: 'u8' },
  { name: 'name', offset: 16, ...NAME },
] as const);
export const DlmConvertLock = DlmCreateLock;
export const DLM_CONVERT_LOCK_MAX_LEN = DlmConvertLock.size + DLM_LVB_LEN;

/** struct dlm_unlock_lock (+ lvb[] at 80) */
export const DlmUnlockLock = defineStruct('dlm_unlock_lock', 80, 'be', [
  { name: 'cookie', offset: 0, type: 'u64n' },
  { name: 'flags', offset: 8, type: 'u32' },
  { name: 'pad1', offset: 12, type: 'u16' },
  { name: 'node_idx', offset: 14, type: 'u8' },
  { name: 'namelen', offset: 15, type: 'u8' },
  { name: 'name', offset: 16, ...NAME },
] as const);
export const DLM_UNLOCK_LOCK_MAX_LEN = DlmUnlockLock.size + DLM_LVB_LEN;

/** struct dlm_proxy_ast (+ lvb[] at 80) */
export const DlmProxyAst = defineStruct('dlm_proxy_ast', 80, 'be', [
  { name: 'cookie', offset: 0, type: 'u64n' },
  { name: 'flags', offset: 8, type: 'u32' },
  { name: 'node_idx', offset: 12, type: 'u8' },
  { name: 'type', offset: 13, type: 'u8' },
  { name: 'blocked_type', offset: 14, type: 'u8' },
  { name: 'namelen', offset: 15, type: 'u8' },
  { name: 'name', offset: 16, ...NAME },
] as const);
export const DLM_PROXY_AST_MAX_LEN = DlmProxyAst.size + DLM_LVB_LEN;

/** struct dlm_query_join_request */
export const DlmQueryJoinRequest = defineStruct('dlm_query_join_request', 104, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'pad1', offset: 1, type: 'bytes', size: 2 },
  { name: 'name_len', offset: 3, type: 'u8' },
  { name: 'dlm_major', offset: 4, type: 'u8' },
  { name: 'dlm_minor', offset: 5, type: 'u8' },
  { name: 'fs_major', offset: 6, type: 'u8' },
  { name: 'fs_minor', offset: 7, type: 'u8' },
  { name: 'domain', offset: 8, ...NAME },
  { name: 'node_map', offset: 72, type: 'bytes', size: NODE_MAP_BYTES },
] as const);

/** struct dlm_assert_joined (dlm_cancel_join: same layout) */
export const DlmAssertJoined = defineStruct('dlm_assert_joined', 68, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'pad1', offset: 1, type: 'bytes', size: 2 },
  { name: 'name_len', offset: 3, type: 'u8' },
  { name: 'domain', offset: 4, ...NAME },
] as const);
export const DlmCancelJoin = DlmAssertJoined;

/** struct dlm_query_region */
export const DlmQueryRegion = defineStruct('dlm_query_region', 4 + O2NM_MAX_NAME_LEN + O2HB_MAX_REGION_NAME_LEN * O2NM_MAX_REGIONS, 'be', [
  { name: 'qr_node', offset: 0, type: 'u8' },
  { name: 'qr_numregions', offset: 1, type: 'u8' },
  { name: 'qr_namelen', offset: 2, type: 'u8' },
  { name: 'pad1', offset: 3, type: 'u8' },
  { name: 'qr_domain', offset: 4, ...NAME },
  { name: 'qr_regions', offset: 68, type: 'bytes', size: O2HB_MAX_REGION_NAME_LEN * O2NM_MAX_REGIONS },
] as const);

/** struct dlm_node_info: 8 bytes (ni_ipv4_address is already network order) */
export const DlmNodeInfo = defineStruct('dlm_node_info', 8, 'be', [
  { name: 'ni_nodenum', offset: 0, type: 'u8' },
  { name: 'pad1', offset: 1, type: 'u8' },
  { name: 'ni_ipv4_port', offset: 2, type: 'u16' },
  { name: 'ni_ipv4_address', offset: 4, type: 'u32' },
] as const);

/** struct dlm_query_nodeinfo (header; dlm_node_info[O2NM_MAX_NODES] at 68) */
export const DlmQueryNodeinfo = defineStruct('dlm_query_nodeinfo', 68 + DlmNodeInfo.size * O2NM_MAX_NODES, 'be', [
  { name: 'qn_nodenum', offset: 0, type: 'u8' },
  { name: 'qn_numnodes', offset: 1, type: 'u8' },
  { name: 'qn_namelen', offset: 2, type: 'u8' },
  { name: 'pad1', offset: 3, type: 'u8' },
  { name: 'qn_domain', offset: 4, ...NAME },
] as const);

/** struct dlm_exit_domain (BEGIN_EXIT_DOMAIN too) */
export const DlmExitDomain = defineStruct('dlm_exit_domain', 4, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'pad1', offset: 1, type: 'bytes', size: 3 },
] as const);

/** struct dlm_lock_request (dlm_begin_reco: same layout) */
export const DlmLockRequest = defineStruct('dlm_lock_request', 8, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'dead_node', offset: 1, type: 'u8' },
  { name: 'pad1', offset: 2, type: 'u16' },
  { name: 'pad2', offset: 4, type: 'u32' },
] as const);
export const DlmBeginReco = DlmLockRequest;

/** struct dlm_reco_data_done */
export const DlmRecoDataDone = defineStruct('dlm_reco_data_done', 72, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'dead_node', offset: 1, type: 'u8' },
  { name: 'pad1', offset: 2, type: 'u16' },
  { name: 'pad2', offset: 4, type: 'u32' },
  { name: 'reco_lvb', offset: 8, type: 'bytes', size: DLM_LVB_LEN },
] as const);

/** struct dlm_finalize_reco */
export const DlmFinalizeReco = defineStruct('dlm_finalize_reco', 8, 'be', [
  { name: 'node_idx', offset: 0, type: 'u8' },
  { name: 'dead_node', offset: 1, type: 'u8' },
  { name: 'flags', offset: 2, type: 'u8' },
  { name: 'pad1', offset: 3, type: 'u8' },
  { name: 'pad2', offset: 4, type: 'u32' },
] as const);

/** struct dlm_deref_lockres (dlm_deref_lockres_done: same layout).  pad1/pad2 are host-endian u32/u16 in C; always zero. */
export const DlmDerefLockres = defineStruct('dlm_deref_lockres', 72, 'be', [
  { name: 'pad1', offset: 0, type: 'u32' },
  { name: 'pad2', offset: 4, type: 'u16' },
  { name: 'node_idx', offset: 6, type: 'u8' },
  { name: 'namelen', offset: 7, type: 'u8' },
  { name: 'name', offset: 8, ...NAME },
] as const);
export const DlmDerefLockresDone = DlmDerefLockres;

/* The handler max_len registered for each type (dlmdomain.c dlm_register_domain_handlers, dlm_register_net_handlers). */
export const DLM_MAX_LEN: Record<number, number> = {
  [DlmMsg.MASTER_REQUEST]: DlmMasterRequest.size,
  [DlmMsg.ASSERT_MASTER]: DlmAssertMaster.size,
  [DlmMsg.CREATE_LOCK]: DlmCreateLock.size,
  [DlmMsg.CONVERT_LOCK]: DLM_CONVERT_LOCK_MAX_LEN,
  [DlmMsg.UNLOCK_LOCK]: DLM_UNLOCK_LOCK_MAX_LEN,
  [DlmMsg.PROXY_AST]: DLM_PROXY_AST_MAX_LEN,
  [DlmMsg.EXIT_DOMAIN]: DlmExitDomain.size,
  [DlmMsg.DEREF_LOCKRES]: DlmDerefLockres.size,
  [DlmMsg.MIGRATE_REQUEST]: DlmMigrateRequest.size,
  [DlmMsg.MIG_LOCKRES]: DLM_MIG_LOCKRES_MAX_LEN,
  [DlmMsg.MASTER_REQUERY]: DlmMasterRequery.size,
  [DlmMsg.LOCK_REQUEST]: DlmLockRequest.size,
  [DlmMsg.RECO_DATA_DONE]: DlmRecoDataDone.size,
  [DlmMsg.BEGIN_RECO]: DlmBeginReco.size,
  [DlmMsg.FINALIZE_RECO]: DlmFinalizeReco.size,
  [DlmMsg.BEGIN_EXIT_DOMAIN]: DlmExitDomain.size,
  [DlmMsg.DEREF_LOCKRES_DONE]: DlmDerefLockresDone.size,
  [DlmMsg.QUERY_JOIN]: DlmQueryJoinRequest.size,
  [DlmMsg.ASSERT_JOINED]: DlmAssertJoined.size,
  [DlmMsg.CANCEL_JOIN]: DlmCancelJoin.size,
  [DlmMsg.QUERY_REGION]: DlmQueryRegion.size,
  [DlmMsg.QUERY_NODEINFO]: DlmQueryNodeinfo.size,
};

// ------------------------------------------------------------------ helpers

/** stack_o2cb.c: the domain key is crc32_le(0, name, strlen(name)). */
export function domainKey(name: string): number {
  return crc32_le(0, Buffer.from(name, 'latin1')) >>> 0;
}

/** A name into a fixed zero-padded field, and its length. */
export function nameField(name: Buffer, size = O2NM_MAX_NAME_LEN): Buffer {
  const b = Buffer.alloc(size);
  name.copy(b, 0, 0, Math.min(size, name.length));
  return b;
}

/** The first namelen bytes of a name field; null when namelen is out of range. */
export function nameOf(field: Buffer, namelen: number, max = field.length): Buffer | null {
  if (namelen < 1 || namelen > max || namelen > field.length) return null;
  return Buffer.from(field.subarray(0, namelen));
}

export function domainNameOf(field: Buffer, len: number): string | null {
  const b = nameOf(field, len);
  return b ? b.toString('latin1') : null;
}

export function nodeMapEncode(nodes: Iterable<number>): Buffer {
  const b = Buffer.alloc(NODE_MAP_BYTES);
  for (const n of nodes) if (n >= 0 && n < O2NM_MAX_NODES) b[n >> 3]! |= 1 << (n & 7);
  return b;
}

export function nodeMapDecode(b: Buffer): Set<number> {
  const s = new Set<number>();
  for (let n = 0; n < Math.min(O2NM_MAX_NODES, b.length * 8); n++) if (b[n >> 3]! & (1 << (n & 7))) s.add(n);
  return s;
}

/** dlm_query_join_response packing: the big-endian bytes [code, dlm_minor, fs_minor, 0] as the int status. */
export function packJoinResponse(code: JoinCode, dlmMinor = 0, fsMinor = 0): number {
  return ((code << 24) | (dlmMinor << 16) | (fsMinor << 8)) | 0;
}
export function unpackJoinResponse(status: number): { code: number; dlmMinor: number; fsMinor: number } {
  const u = status >>> 0;
  return { code: u >>> 24, dlmMinor: (u >>> 16) & 0xff, fsMinor: (u >>> 8) & 0xff };
}

/** dlmcommon.h dlm_lock_compatible */
export function lockCompatible(existing: number, request: number): boolean {
  if (request === LkmMode.NL || existing === LkmMode.NL) return true;
  if (request === LkmMode.EX) return false;
  return existing === LkmMode.PR;
}

/** dlm_lock_mode_name */
export function modeName(m: number): string {
  return m === LkmMode.EX ? 'EX' : m === LkmMode.PR ? 'PR' : m === LkmMode.NL ? 'NL' : m === LkmMode.IV ? 'IV' : 'UNKNOWN';
}

export function cookieNode(cookie: bigint): number { return Number((cookie >> 56n) & 0xffn); }
export function cookieSeq(cookie: bigint): bigint { return cookie & 0x00ffffffffffffffn; }
export function makeCookie(node: number, seq: bigint): bigint { return (BigInt(node) << 56n) | (seq & 0x00ffffffffffffffn); }

export { cString };
