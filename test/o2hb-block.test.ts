import t from 'tap';
import * as fs from 'node:fs';
import {
  O2hbDiskHeartbeatBlock, O2HB_BLOCK_STRUCT_BYTES, o2hbBlockCrc, prepareO2hbBlock, verifyO2hbBlock,
} from '../src/libocfs2/structs/heartbeat';
import { crc32_le } from '../src/libocfs2/crc32';
import { locateHeartbeatArea } from '../src/cluster/heartbeat/locate';
import { pristineImage } from './lib/refimages';

t.test('o2hb_disk_heartbeat_block layout', async (t) => {
  // sizeof(struct o2hb_disk_heartbeat_block) on x86_64: 28 bytes of fields padded to 32.
  t.equal(O2hbDiskHeartbeatBlock.size, O2HB_BLOCK_STRUCT_BYTES);
  t.equal(O2hbDiskHeartbeatBlock.size, 32);
  t.equal(O2hbDiskHeartbeatBlock.offsetOf('hb_seq'), 0);
  t.equal(O2hbDiskHeartbeatBlock.offsetOf('hb_node'), 8);
  t.equal(O2hbDiskHeartbeatBlock.offsetOf('hb_cksum'), 12);
  t.equal(O2hbDiskHeartbeatBlock.offsetOf('hb_generation'), 16);
  t.equal(O2hbDiskHeartbeatBlock.offsetOf('hb_dead_ms'), 24);
});

t.test('round trip and checksum over the whole sector', async (t) => {
  const v = { seq: 0x1234567890n, node: 7, generation: 0xfedcba9876543210n, deadMs: 62000 };
  const b = prepareO2hbBlock(512, v);
  t.equal(b.length, 512);
  const d = O2hbDiskHeartbeatBlock.decode(b);
  t.equal(d.hb_seq, v.seq);
  t.equal(d.hb_node, 7);
  t.equal(d.hb_generation, v.generation);
  t.equal(d.hb_dead_ms, 62000);
  t.equal(b.readBigUInt64LE(0), v.seq, 'little-endian seq');
  t.ok(b.subarray(28).every((x) => x === 0), 'zero after the fields');
  // independent computation: crc of the sector with the checksum field zeroed
  const z = Buffer.from(b);
  z.writeUInt32LE(0, 12);
  t.equal(d.hb_cksum, crc32_le(0, z));
  t.equal(o2hbBlockCrc(b), d.hb_cksum);
  t.ok(verifyO2hbBlock(b));
  const again = O2hbDiskHeartbeatBlock.encode(d, Buffer.alloc(512));
  t.same(again, b, 'decode/encode is byte-identical');
  // any bit flip anywhere in the sector breaks the checksum
  for (const at of [0, 8, 17, 27, 300, 511]) {
    const c = Buffer.from(b);
    c[at]! ^= 0x10;
    t.notOk(verifyO2hbBlock(c), `flip at ${at} detected`);
  }
});

t.test('kernel-written heartbeat blocks in the reference images', async (t) => {
  // Both cluster images were mounted by a real kernel as node 0 and unmounted
  // cleanly: slot 0 holds the kernel's final block (generation 0).
  for (const name of ['cluster-4k-compat', 'cluster-1k-64k-max'] as const) {
    const img = pristineImage(name);
    const area = locateHeartbeatArea(img);
    t.equal(area.blocks, 255, `${name}: 255 slots`);
    t.equal(area.clusterStack, 'o2cb');
    t.equal(area.clusterName, 'ref');
    const fd = fs.openSync(img, 'r');
    const slot0 = Buffer.alloc(512);
    fs.readSync(fd, slot0, 0, 512, area.startBlock * 512);
    fs.closeSync(fd);
    const d = O2hbDiskHeartbeatBlock.decode(slot0);
    t.ok(verifyO2hbBlock(slot0), `${name}: our crc matches the kernel's`);
    t.equal(d.hb_node, 0);
    t.equal(d.hb_generation, 0n, 'clean stop wrote generation 0');
    t.equal(d.hb_dead_ms, 31 * 2000, 'default dead threshold 31');
    t.ok(d.hb_seq > 1_600_000_000n, 'seq is wall-clock seconds');
    const ours = prepareO2hbBlock(512, { seq: d.hb_seq, node: d.hb_node, generation: d.hb_generation, deadMs: d.hb_dead_ms });
    t.same(ours, slot0, `${name}: our block is byte-identical to the kernel's`);
  }
});
