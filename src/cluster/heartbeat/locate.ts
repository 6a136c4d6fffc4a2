/**
 * Find a volume's heartbeat area by raw parsing (no debugfs.ocfs2, no
 * dependency on the full filesystem reader), the way ocfs2-tools'
 * ocfs2_fill_heartbeat_desc (libocfs2/heartbeat.c) does it:
 *   superblock (block 2, probing block sizes 512..4096, signature "OCFSV2")
 *   -> system directory (s_system_dir_blkno) -> entry "heartbeat"
 *   -> its inode must have a single extent (depth 0, one record)
 *   -> start_block = e_blkno << blocksize_bits >> sector_bits  (in sectors)
 *      blocks      = 255 (O2NM_MAX_NODES; the file must hold at least that many)
 *   region name = volume UUID as upper-case hex.
 * Offsets are those of ocfs2_fs.h (see ../shared/reference/ocfs2-format.md §2).
 * TODO(lead): once src/libocfs2 has a volume reader, this may delegate to it;
 * the result shape should stay.
 */
import * as fs from 'node:fs';
import { Ocfs2CorruptError, Ocfs2FormatError } from '../../libocfs2/errors';

export interface HeartbeatArea {
  device: string;
  /** Volume UUID, upper-case hex without dashes: the region name and DLM domain. */
  uuid: string;
  /** First slot, in units of blockBytes (the device sector size). */
  startBlock: number;
  /** Number of slots (255). */
  blocks: number;
  /** Heartbeat block size = the device's logical sector size. */
  blockBytes: number;
  fsBlockSize: number;
  /** s_cluster_info: stack label ("o2cb") and cluster name when the volume records them. */
  clusterStack?: string;
  clusterName?: string;
  /** OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV: the whole device is a heartbeat device. */
  heartbeatDevice: boolean;
  globalHeartbeat: boolean;
}

const SB_SIGNATURE = 'OCFSV2';
const INODE_SIGNATURE = 'INODE01';
const OFF_I_FLAGS = 0x2c;
const OFF_I_DYN_FEATURES = 0x76;
const OFF_ID2 = 0xc0;
// superblock fields (absolute offsets in block 2)
const OFF_S_FEATURE_INCOMPAT = 0xe0;
const OFF_S_SYSTEM_DIR_BLKNO = 0xf0;
const OFF_S_BLOCKSIZE_BITS = 0xf8;
const OFF_S_CLUSTERSIZE_BITS = 0xfc;
const OFF_S_UUID = 0x150;
const OFF_S_CLUSTER_INFO = 0x160; // ci_stack[4], ci_stackflags u8, reserved[3], ci_cluster[16]
const INCOMPAT_HEARTBEAT_DEV = 0x0002;
const INCOMPAT_CLUSTERINFO = 0x4000;
const INCOMPAT_USERSPACE_STACK = 0x0080;
const CLUSTER_O2CB_GLOBAL_HEARTBEAT = 0x01;
const DYN_INLINE_DATA = 0x0001;
const I_FLAG_HEARTBEAT = 0x200;
export const O2NM_MAX_NODES = 255;

function readAt(fd: number, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = fs.readSync(fd, b, 0, len, off);
  if (n !== len) throw new Ocfs2FormatError(`short read at byte ${off}: ${n} of ${len}`);
  return b;
}

function sig(b: Buffer, s: string): boolean {
  return b.toString('latin1', 0, s.length) === s && b[s.length] === 0;
}

/** Look a name up in one directory block region [start, end): returns the inode number or 0. */
function scanDirEntries(b: Buffer, start: number, end: number, name: string): number {
  let off = start;
  while (off + 12 <= end) {
    const ino = Number(b.readBigUInt64LE(off));
    const recLen = b.readUInt16LE(off + 8);
    const nameLen = b[off + 10]!;
    if (recLen < 12 || off + recLen > end) break;
    if (ino !== 0 && nameLen === name.length && b.toString('latin1', off + 12, off + 12 + nameLen) === name) return ino;
    off += recLen;
  }
  return 0;
}

export function locateHeartbeatArea(device: string, sectorSize = 512): HeartbeatArea {
  const fd = fs.openSync(device, 'r');
  try {
    let bs = 0;
    let sb: Buffer | undefined;
    for (const probe of [512, 1024, 2048, 4096]) {
      const b = readAt(fd, 2 * probe, probe);
      if (sig(b, SB_SIGNATURE) && 1 << b.readUInt32LE(OFF_S_BLOCKSIZE_BITS) === probe) { bs = probe; sb = b; break; }
    }
    if (!sb) throw new Ocfs2FormatError(`${device}: no OCFS2 superblock (signature ${SB_SIGNATURE} at block 2)`);
    const blockBits = sb.readUInt32LE(OFF_S_BLOCKSIZE_BITS);
    const clusterBits = sb.readUInt32LE(OFF_S_CLUSTERSIZE_BITS);
    const incompat = sb.readUInt32LE(OFF_S_FEATURE_INCOMPAT);
    const uuid = sb.subarray(OFF_S_UUID, OFF_S_UUID + 16).toString('hex').toUpperCase();
    let clusterStack: string | undefined;
    let clusterName: string | undefined;
    let globalHeartbeat = false;
    if (incompat & (INCOMPAT_CLUSTERINFO | INCOMPAT_USERSPACE_STACK)) {
      clusterStack = sb.toString('latin1', OFF_S_CLUSTER_INFO, OFF_S_CLUSTER_INFO + 4).replace(/\0.*$/, '');
      globalHeartbeat = (sb[OFF_S_CLUSTER_INFO + 4]! & CLUSTER_O2CB_GLOBAL_HEARTBEAT) !== 0;
      clusterName = sb.toString('latin1', OFF_S_CLUSTER_INFO + 8, OFF_S_CLUSTER_INFO + 24).replace(/\0.*$/, '');
    }
    const sysdirBlk = Number(sb.readBigUInt64LE(OFF_S_SYSTEM_DIR_BLKNO));
    const dir = readAt(fd, sysdirBlk * bs, bs);
    if (!sig(dir, INODE_SIGNATURE)) throw new Ocfs2CorruptError(sysdirBlk, 'system directory inode signature');
    let hbIno = 0;
    if (dir.readUInt16LE(OFF_I_DYN_FEATURES) & DYN_INLINE_DATA) {
      const idCount = dir.readUInt16LE(OFF_ID2);
      hbIno = scanDirEntries(dir, OFF_ID2 + 8, Math.min(bs, OFF_ID2 + 8 + idCount), 'heartbeat');
    } else {
      const depth = dir.readUInt16LE(OFF_ID2);
      const used = dir.readUInt16LE(OFF_ID2 + 4);
      if (depth !== 0) throw new Ocfs2FormatError(`${device}: system directory extent tree depth ${depth} not supported by the raw locator`);
      for (let r = 0; r < used && !hbIno; r++) {
        const rec = OFF_ID2 + 0x10 + r * 16;
        const clusters = dir.readUInt16LE(rec + 4);
        const blk = Number(dir.readBigUInt64LE(rec + 8));
        const nblocks = (clusters << clusterBits) >> blockBits;
        for (let i = 0; i < nblocks && !hbIno; i++) {
          const db = readAt(fd, (blk + i) * bs, bs);
          hbIno = scanDirEntries(db, 0, bs, 'heartbeat');
        }
      }
    }
    if (!hbIno) throw new Ocfs2CorruptError(sysdirBlk, 'system directory has no "heartbeat" entry');
    const hb = readAt(fd, hbIno * bs, bs);
    if (!sig(hb, INODE_SIGNATURE)) throw new Ocfs2CorruptError(hbIno, 'heartbeat inode signature');
    if (!(hb.readUInt32LE(OFF_I_FLAGS) & I_FLAG_HEARTBEAT)) throw new Ocfs2CorruptError(hbIno, 'heartbeat inode lacks OCFS2_HEARTBEAT_FL');
    const depth = hb.readUInt16LE(OFF_ID2);
    const used = hb.readUInt16LE(OFF_ID2 + 4);
    if (depth !== 0 || used !== 1) throw new Ocfs2CorruptError(hbIno, 'heartbeat file must have exactly one extent (ocfs2_fill_heartbeat_desc)');
    const rec = OFF_ID2 + 0x10;
    const clusters = hb.readUInt16LE(rec + 4);
    const eBlkno = Number(hb.readBigUInt64LE(rec + 8));
    const fileBlocks = (clusters * 2 ** clusterBits) / bs;
    if (fileBlocks < O2NM_MAX_NODES) throw new Ocfs2CorruptError(hbIno, `heartbeat file has ${fileBlocks} blocks, fewer than ${O2NM_MAX_NODES}`);
    if (bs < sectorSize) throw new Ocfs2FormatError(`${device}: block size ${bs} smaller than sector size ${sectorSize}`);
    return {
      device, uuid, startBlock: (eBlkno * bs) / sectorSize, blocks: O2NM_MAX_NODES, blockBytes: sectorSize,
      fsBlockSize: bs, clusterStack, clusterName, heartbeatDevice: (incompat & INCOMPAT_HEARTBEAT_DEV) !== 0, globalHeartbeat,
    };
  } finally {
    fs.closeSync(fd);
  }
}

/** The volume UUID (upper-case hex) of an OCFS2 device or image, or undefined if it is not one. */
export function readVolumeUuid(device: string): string | undefined {
  let fd: number;
  try { fd = fs.openSync(device, 'r'); } catch { return undefined; }
  try {
    for (const probe of [512, 1024, 2048, 4096]) {
      const b = Buffer.alloc(probe);
      if (fs.readSync(fd, b, 0, probe, 2 * probe) !== probe) return undefined;
      if (sig(b, SB_SIGNATURE) && 1 << b.readUInt32LE(OFF_S_BLOCKSIZE_BITS) === probe) {
        return b.subarray(OFF_S_UUID, OFF_S_UUID + 16).toString('hex').toUpperCase();
      }
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
