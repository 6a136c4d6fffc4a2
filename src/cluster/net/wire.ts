/**
 * o2net wire format (fs/ocfs2/cluster/tcp.h, tcp_internal.h): the 32-byte
 * handshake each side sends first, and the 24-byte message header that
 * precedes every frame.  Everything on this wire is big-endian.
 */
import { defineStruct } from '../../libocfs2/struct';
import { Ocfs2Error } from '../../libocfs2/errors';
import { constants as osc } from 'node:os';

/* tcp_internal.h: O2NET_MSG_*_MAGIC */
export const O2NET_MSG_MAGIC = 0xfa55;
export const O2NET_MSG_STATUS_MAGIC = 0xfa56;
export const O2NET_MSG_KEEP_REQ_MAGIC = 0xfa57;
export const O2NET_MSG_KEEP_RESP_MAGIC = 0xfa58;

/* tcp_internal.h: O2NET_PROTOCOL_VERSION 11ULL (the DLM semantics ride on it too) */
export const O2NET_PROTOCOL_VERSION = 11n;

/* heartbeat.h: the heartbeat period; the handshake carries the write timeout
 * derived from it, O2HB_MAX_WRITE_TIMEOUT_MS = 2000 * (dead_threshold - 1). */
export const O2HB_REGION_TIMEOUT_MS = 2000;
export function o2hbMaxWriteTimeoutMs(deadThreshold: number): number {
  return O2HB_REGION_TIMEOUT_MS * (deadThreshold - 1);
}

/* tcp.h defaults */
export const O2NET_IDLE_TIMEOUT_MS_DEFAULT = 30000;
export const O2NET_KEEPALIVE_DELAY_MS_DEFAULT = 2000;
export const O2NET_RECONNECT_DELAY_MS_DEFAULT = 2000;

/** struct o2net_handshake: 2 x be64 + 4 x be32. */
export const O2NetHandshake = defineStruct('o2net_handshake', 32, 'be', [
  { name: 'protocol_version', offset: 0, type: 'u64n' },
  { name: 'connector_id', offset: 8, type: 'u64n' },
  { name: 'o2hb_heartbeat_timeout_ms', offset: 16, type: 'u32' },
  { name: 'o2net_idle_timeout_ms', offset: 20, type: 'u32' },
  { name: 'o2net_keepalive_delay_ms', offset: 24, type: 'u32' },
  { name: 'o2net_reconnect_delay_ms', offset: 28, type: 'u32' },
] as const);
export type O2NetHandshake = ReturnType<typeof O2NetHandshake.decode>;

/** struct o2net_msg: the header in front of every frame. */
export const O2NetMsg = defineStruct('o2net_msg', 24, 'be', [
  { name: 'magic', offset: 0, type: 'u16' },
  { name: 'data_len', offset: 2, type: 'u16' },
  { name: 'msg_type', offset: 4, type: 'u16' },
  { name: 'pad1', offset: 6, type: 'u16' },
  { name: 'sys_status', offset: 8, type: 'u32' },
  // a handler's int return value, two's complement (often -errno)
  { name: 'status', offset: 12, type: 'i32' },
  { name: 'key', offset: 16, type: 'u32' },
  { name: 'msg_num', offset: 20, type: 'u32' },
] as const);
export type O2NetMsg = ReturnType<typeof O2NetMsg.decode>;

export const O2NET_HANDSHAKE_BYTES = O2NetHandshake.size;
export const O2NET_MSG_HEADER_BYTES = O2NetMsg.size;
/* tcp.h: O2NET_MAX_PAYLOAD_BYTES = 4096 - sizeof(struct o2net_msg) */
export const O2NET_MAX_PAYLOAD_BYTES = 4096 - O2NET_MSG_HEADER_BYTES;

/** enum o2net_system_error (tcp_internal.h). */
export enum O2NetSysErr {
  NONE = 0,
  NO_HNDLR = 1,
  OVERFLOW = 2,
  DIED = 3,
}

/** tcp.c o2net_sys_err_translations: what the sender's caller sees. */
/** errno names used here; EHOSTDOWN is missing from @types/node's table. */
export type NetErrCode = keyof typeof osc.errno | 'EHOSTDOWN';
const EXTRA_ERRNO: Record<string, number> = { EHOSTDOWN: 112 };
export function errnoNumber(code: NetErrCode): number {
  return (osc.errno as Record<string, number>)[code] ?? EXTRA_ERRNO[code] ?? osc.errno.EIO;
}

export const SYS_ERR_CODE: Record<number, NetErrCode | undefined> = {
  [O2NetSysErr.NONE]: undefined,
  [O2NetSysErr.NO_HNDLR]: 'ENOPROTOOPT',
  [O2NetSysErr.OVERFLOW]: 'EOVERFLOW',
  [O2NetSysErr.DIED]: 'EHOSTDOWN',
};

/** A send that failed: the kernel's negative return of o2net_send_message. */
export class O2NetError extends Ocfs2Error {
  constructor(readonly code: NetErrCode, message: string, readonly sysStatus?: number) {
    super(message, errnoNumber(code));
  }
}

/** A framing error on an established stream: the connection is closed. */
export class O2NetFramingError extends Ocfs2Error {
  constructor(message: string) { super(message, osc.errno.EPROTO); }
}

export interface LocalHandshakeParams {
  heartbeatTimeoutMs: number;
  idleTimeoutMs: number;
  keepaliveDelayMs: number;
  reconnectDelayMs: number;
}

export function encodeHandshake(p: LocalHandshakeParams, protocolVersion = O2NET_PROTOCOL_VERSION): Buffer {
  return O2NetHandshake.encode({
    protocol_version: protocolVersion,
    connector_id: 1n, // o2net_init: always 1, never checked
    o2hb_heartbeat_timeout_ms: p.heartbeatTimeoutMs,
    o2net_idle_timeout_ms: p.idleTimeoutMs,
    o2net_keepalive_delay_ms: p.keepaliveDelayMs,
    o2net_reconnect_delay_ms: p.reconnectDelayMs,
  });
}

/**
 * o2net_check_handshake: version, idle timeout, keepalive delay and heartbeat
 * timeout must equal ours (the reconnect delay is carried but not compared).
 * Returns null when acceptable, else the kernel's wording of the mismatch
 * (without the "node X at ip:port" prefix).
 */
export function checkHandshake(h: O2NetHandshake, local: LocalHandshakeParams): string | null {
  if (h.protocol_version !== O2NET_PROTOCOL_VERSION) {
    return `Advertised net protocol version ${h.protocol_version} but ${O2NET_PROTOCOL_VERSION} is required. Disconnecting.`;
  }
  if (h.o2net_idle_timeout_ms !== local.idleTimeoutMs) {
    return `uses a network idle timeout of ${h.o2net_idle_timeout_ms} ms, but we use ${local.idleTimeoutMs} ms locally. Disconnecting.`;
  }
  if (h.o2net_keepalive_delay_ms !== local.keepaliveDelayMs) {
    return `uses a keepalive delay of ${h.o2net_keepalive_delay_ms} ms, but we use ${local.keepaliveDelayMs} ms locally. Disconnecting.`;
  }
  if (h.o2hb_heartbeat_timeout_ms !== local.heartbeatTimeoutMs) {
    return `uses a heartbeat timeout of ${h.o2hb_heartbeat_timeout_ms} ms, but we use ${local.heartbeatTimeoutMs} ms locally. Disconnecting.`;
  }
  return null;
}

export interface FrameFields {
  magic: number;
  msgType?: number;
  key?: number;
  msgNum?: number;
  sysStatus?: number;
  status?: number;
}

/** One frame: header plus payload (data_len taken from the payload). */
export function encodeFrame(f: FrameFields, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > O2NET_MAX_PAYLOAD_BYTES) {
    throw new O2NetError('EINVAL', `payload of ${payload.length} bytes exceeds O2NET_MAX_PAYLOAD_BYTES ${O2NET_MAX_PAYLOAD_BYTES}`);
  }
  const out = Buffer.alloc(O2NET_MSG_HEADER_BYTES + payload.length);
  O2NetMsg.encode({
    magic: f.magic,
    data_len: payload.length,
    msg_type: f.msgType ?? 0,
    pad1: 0,
    sys_status: f.sysStatus ?? 0,
    status: f.status ?? 0,
    key: f.key ?? 0,
    msg_num: f.msgNum ?? 0,
  }, out, 0);
  payload.copy(out, O2NET_MSG_HEADER_BYTES);
  return out;
}

export interface Frame { hdr: O2NetMsg; payload: Buffer }

const KNOWN_MAGICS = new Set([O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, O2NET_MSG_KEEP_REQ_MAGIC, O2NET_MSG_KEEP_RESP_MAGIC]);

/**
 * Reassembles a byte stream into the handshake and then frames, with the
 * checks o2net_advance_rx / o2net_process_message make: data_len over
 * O2NET_MAX_PAYLOAD_BYTES is -EOVERFLOW as soon as the header is complete,
 * an unknown magic is -EINVAL.  Both throw O2NetFramingError (the caller
 * closes the connection).
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private handshakeDone: boolean;

  constructor(opts: { expectHandshake: boolean } = { expectHandshake: true }) {
    this.handshakeDone = !opts.expectHandshake;
  }

  /** Bytes held that do not yet form a complete unit. */
  get pending(): number { return this.buf.length; }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The handshake, once 32 bytes are in; null until then or after it. */
  takeHandshake(): O2NetHandshake | null {
    if (this.handshakeDone || this.buf.length < O2NET_HANDSHAKE_BYTES) return null;
    const h = O2NetHandshake.decode(this.buf, 0);
    this.buf = this.buf.subarray(O2NET_HANDSHAKE_BYTES);
    this.handshakeDone = true;
    return h;
  }

  get handshakeReceived(): boolean { return this.handshakeDone; }

  /** The next complete frame, or null when more bytes are needed. */
  takeFrame(): Frame | null {
    if (!this.handshakeDone || this.buf.length < O2NET_MSG_HEADER_BYTES) return null;
    const hdr = O2NetMsg.decode(this.buf, 0);
    if (hdr.data_len > O2NET_MAX_PAYLOAD_BYTES) {
      throw new O2NetFramingError(`data_len ${hdr.data_len} exceeds O2NET_MAX_PAYLOAD_BYTES ${O2NET_MAX_PAYLOAD_BYTES} (magic 0x${hdr.magic.toString(16)})`);
    }
    if (!KNOWN_MAGICS.has(hdr.magic)) {
      throw new O2NetFramingError(`bad magic 0x${hdr.magic.toString(16).padStart(4, '0')}`);
    }
    const total = O2NET_MSG_HEADER_BYTES + hdr.data_len;
    if (this.buf.length < total) return null;
    const payload = Buffer.from(this.buf.subarray(O2NET_MSG_HEADER_BYTES, total));
    this.buf = this.buf.subarray(total);
    return { hdr, payload };
  }
}
