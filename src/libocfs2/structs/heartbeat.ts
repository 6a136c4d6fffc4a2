/**
 * o2hb disk heartbeat block (`struct o2hb_disk_heartbeat_block`,
 * fs/ocfs2/cluster/ocfs2_heartbeat.h; ocfs2-tools include/o2cb/ocfs2_heartbeat.h).
 *
 * One block per node, `block_bytes` = the device's logical sector size
 * (512 on every device we meet), little-endian.  The 28 defined bytes are
 * followed by zeros to the end of the sector: o2hb_prepare_block memsets the
 * whole block before filling it, and the checksum covers the whole sector.
 */
import { defineStruct } from '../struct';
import { crc32_le } from '../crc32';

export const O2hbDiskHeartbeatBlock = defineStruct('o2hb_disk_heartbeat_block', 32, 'le', [
  // ktime_get_real_seconds() of the write (0 replaced by 1); peers only test it for change.
  { name: 'hb_seq', offset: 0, type: 'u64n' },
  { name: 'hb_node', offset: 8, type: 'u8' },
  { name: 'hb_pad1', offset: 9, type: 'bytes', size: 3 },
  // crc32_le(0, whole block with hb_cksum = 0) — o2hb_compute_block_crc_le.
  { name: 'hb_cksum', offset: 12, type: 'u32' },
  // random non-zero per region start; 0 = "left cleanly" (final block of a clean stop).
  { name: 'hb_generation', offset: 16, type: 'u64n' },
  // dead_threshold * O2HB_REGION_TIMEOUT_MS; peers only log a mismatch.
  { name: 'hb_dead_ms', offset: 24, type: 'u32' },
] as const);

export type O2hbBlock = ReturnType<typeof O2hbDiskHeartbeatBlock.decode>;

/**
 * Table size 32 = sizeof(struct o2hb_disk_heartbeat_block): 28 bytes of fields
 * padded to the u64 alignment.  The on-disk unit is a whole sector regardless.
 */
export const O2HB_BLOCK_STRUCT_BYTES = 32;

/** crc32_le(0, block) over `blockBytes` bytes with hb_cksum taken as zero. */
export function o2hbBlockCrc(block: Buffer, blockBytes = block.length): number {
  const ck = O2hbDiskHeartbeatBlock.offsetOf('hb_cksum');
  let crc = crc32_le(0, block, 0, ck);
  crc = crc32_le(crc, ZERO4, 0, 4);
  return crc32_le(crc, block, ck + 4, blockBytes) >>> 0;
}
const ZERO4 = new Uint8Array(4);

/** o2hb_prepare_block: a zeroed sector with our fields and the checksum computed last. */
export function prepareO2hbBlock(
  blockBytes: number,
  v: { seq: bigint; node: number; generation: bigint; deadMs: number },
): Buffer {
  const buf = Buffer.alloc(blockBytes);
  O2hbDiskHeartbeatBlock.encode({
    hb_seq: v.seq, hb_node: v.node, hb_pad1: Buffer.alloc(3), hb_cksum: 0,
    hb_generation: v.generation, hb_dead_ms: v.deadMs,
  }, buf, 0);
  buf.writeUInt32LE(o2hbBlockCrc(buf, blockBytes), O2hbDiskHeartbeatBlock.offsetOf('hb_cksum'));
  return buf;
}

/** o2hb_verify_crc */
export function verifyO2hbBlock(block: Buffer, blockBytes = block.length): boolean {
  return block.readUInt32LE(O2hbDiskHeartbeatBlock.offsetOf('hb_cksum')) === o2hbBlockCrc(block, blockBytes);
}
