/**
 * A small read of the o2hb area for mkfs's "is this volume in use?" check:
 * the area is found through the volume's own heartbeat system file
 * (src/cluster/heartbeat/locate.ts), each node's block is decoded and kept
 * when its checksum verifies and it carries a non-zero sequence.
 */
import * as fs from 'node:fs';
import { locateHeartbeatArea, type HeartbeatArea } from '../../cluster/heartbeat/locate';
import { O2hbDiskHeartbeatBlock, verifyO2hbBlock } from '../structs/heartbeat';

export { locateHeartbeatArea };

export interface HbSample { seq: bigint; generation: bigint; node: number }

/** One sample per node slot: null when the block is empty or fails its crc. */
export function decodeO2hbBlocks(device: string, area: HeartbeatArea): Array<HbSample | null> {
  const len = area.blocks * area.blockBytes;
  const buf = Buffer.alloc(len);
  const fd = fs.openSync(device, 'r');
  try {
    fs.readSync(fd, buf, 0, len, area.startBlock * area.blockBytes);
  } finally {
    fs.closeSync(fd);
  }
  const out: Array<HbSample | null> = [];
  for (let i = 0; i < area.blocks; i++) {
    const blk = buf.subarray(i * area.blockBytes, (i + 1) * area.blockBytes);
    const h = O2hbDiskHeartbeatBlock.decode(blk, 0);
    out.push(h.hb_seq !== 0n && verifyO2hbBlock(blk) ? { seq: h.hb_seq, generation: h.hb_generation, node: h.hb_node } : null);
  }
  return out;
}
