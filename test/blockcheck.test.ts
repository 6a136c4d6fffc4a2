/**
 * Metadata ECC against a kernel-written META_ECC volume: every metadata block
 * the kernel wrote must verify, our computed check must equal the stored one,
 * one flipped bit must be corrected and two must be reported.
 */
import t from 'tap';
import { testSeed } from './lib/judges';
import * as fs from 'node:fs';
import { pristineImage } from './lib/refimages';
import { Ocfs2CorruptError } from '../src/libocfs2/errors';
import {
  BlockCheck, CHECK_OFFSET, codeBitOf, computeBlockCheck, dataBitOfCode, hammingEncode, readBlockCheck,
  updateBlockCheck, verifyBlockCheck,
} from '../src/libocfs2/blockcheck';
import { crc32ieee } from '../src/libocfs2/crc32';
import { hasSignature, OCFS2_FEATURE_INCOMPAT_META_ECC } from '../src/libocfs2/constants';
import { probeSuperblock } from '../src/libocfs2/structs/superblock';

/* Where the check lives in the structures other modules define (dir trailer,
 * dx root/leaf, xattr block and bucket): written out here from ocfs2_fs.h so
 * this test covers every kind of ECC-protected block on the volume. */
const OTHER_CHECKS: Record<string, number> = { XATTR01: 0x18, DXDIR01: 0x08, DXLEAF1: 0x08 };
const BUCKET = 4096;

interface Found { blkno: number; kind: string; off: number }

const scanned = new Map<string, Found[]>();

function scanImage(file: string, bs: number): { found: Found[]; blocks: (n: number, count?: number) => Buffer; close: () => void } {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const found: Found[] = scanned.get(file) ?? [];
  const done = scanned.has(file);
  scanned.set(file, found);
  const chunk = Buffer.alloc(4 << 20);
  for (let pos = 0; !done && pos < size; pos += chunk.length) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, pos);
    for (let o = 0; o + bs <= n; o += bs) {
      if (chunk[o] === 0 && chunk[o + bs - 48] === 0) continue;
      const blkno = (pos + o) / bs;
      const b = chunk.subarray(o, o + bs);
      if (hasSignature(b, 0, 'INODE01') || hasSignature(b, 0, 'OCFSV2')) found.push({ blkno, kind: 'dinode', off: CHECK_OFFSET.dinode });
      else if (hasSignature(b, 0, 'EXBLK01')) found.push({ blkno, kind: 'extent block', off: CHECK_OFFSET.extentBlock });
      else if (hasSignature(b, 0, 'GROUP01')) found.push({ blkno, kind: 'group', off: CHECK_OFFSET.groupDesc });
      else if (hasSignature(b, 0, 'REFCNT1')) found.push({ blkno, kind: 'refcount', off: CHECK_OFFSET.refcountBlock });
      else if (hasSignature(b, bs - 64 + 0x10, 'DIRTRL1')) found.push({ blkno, kind: 'dir block', off: bs - 8 });
      else {
        for (const [sig, off] of Object.entries(OTHER_CHECKS)) {
          if (hasSignature(b, 0, sig)) found.push({ blkno, kind: sig, off });
        }
      }
    }
  }
  return {
    found,
    blocks(blkno: number, count = 1): Buffer {
      const b = Buffer.alloc(bs * count);
      fs.readSync(fd, b, 0, b.length, blkno * bs);
      return b;
    },
    close: () => fs.closeSync(fd),
  };
}

/** Deterministic PRNG (xorshift32) so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

function flip(b: Buffer, bit: number): void {
  b[bit >> 3] = b[bit >> 3]! ^ (1 << (bit & 7));
}

t.test('hamming code bit numbering', async (t) => {
  // Data bits take the code positions that are not powers of two.
  t.same([0, 1, 2, 3, 4, 10].map(codeBitOf), [3, 5, 6, 7, 9, 15]);
  const wrong: number[] = [];
  for (let i = 0; i < 4096 * 8; i++) if (dataBitOfCode(codeBitOf(i), 4096 * 8) !== i) wrong.push(i);
  t.same(wrong.slice(0, 5), [], 'dataBitOfCode inverts codeBitOf for every bit of a 4K block');
  t.equal(dataBitOfCode(8, 100), -1, 'a parity bit names no data bit');
  t.equal(dataBitOfCode(0, 100), -1);
  const one = Buffer.alloc(4);
  one[1] = 0x01; // data bit 8
  t.equal(hammingEncode(one), codeBitOf(8));
  // Encoding is linear: chunks with a continuing bit offset equal the whole.
  const r = rng(testSeed(t, 7));
  const buf = Buffer.from(Array.from({ length: 512 }, () => Math.floor(r() * 256)));
  const whole = hammingEncode(buf);
  const parts = hammingEncode(buf, 256, 512, hammingEncode(buf, 0, 256), 256 * 8);
  t.equal(parts, whole);
  t.equal(BlockCheck.size, 8);
  // crc32_le(~0) without final inversion is zlib's crc32 inverted.
  const zeroed = Buffer.from(buf);
  zeroed.fill(0, 8, 16);
  t.equal(computeBlockCheck(buf, 8).crc32e, (~crc32ieee(zeroed)) >>> 0);
});

t.test('every metadata block of the META_ECC image verifies', async (t) => {
  const file = pristineImage('cluster-1k-64k-max');
  const fd = fs.openSync(file, 'r');
  const readAt = async (off: number, len: number): Promise<Buffer> => {
    const b = Buffer.alloc(len);
    return b.subarray(0, fs.readSync(fd, b, 0, len, off));
  };
  const probe = await probeSuperblock(readAt);
  fs.closeSync(fd);
  t.ok(probe.sb.incompat & OCFS2_FEATURE_INCOMPAT_META_ECC, 'image has metaecc');
  const bs = probe.blocksize;
  const img = scanImage(file, bs);
  t.teardown(img.close);
  const kinds = new Map<string, number>();
  let bad = 0;
  for (const f of img.found) {
    const b = img.blocks(f.blkno);
    const stored = readBlockCheck(b, f.off);
    const ours = computeBlockCheck(b, f.off);
    if (ours.crc32e !== stored.crc32e || ours.ecc !== stored.ecc) {
      bad++;
      if (bad <= 5) t.fail(`${f.kind} block ${f.blkno}: stored ${JSON.stringify(stored)}, computed ${JSON.stringify(ours)}`);
      continue;
    }
    t.same(verifyBlockCheck(b, f.off, f.blkno), { corrected: false }) || bad++;
    kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
  }
  t.equal(bad, 0, 'no block with a bad check');
  t.comment(`verified: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  for (const k of ['dinode', 'extent block', 'group', 'dir block', 'XATTR01', 'DXDIR01', 'DXLEAF1']) {
    t.ok((kinds.get(k) ?? 0) > 0, `found ${k} blocks`);
  }

  // Xattr buckets: one check over 4 KiB = 4 blocks, at bucket offset 8.
  let buckets = 0;
  for (const f of img.found.filter((x) => x.kind === 'XATTR01')) {
    const xb = img.blocks(f.blkno);
    if (!(xb.readUInt16LE(0x20) & 1)) continue; // not indexed
    const list = 0x40; // xb_attrs.xb_root.xt_list
    const depth = xb.readUInt16LE(list);
    if (depth !== 0) continue;
    for (let i = 0; i < xb.readUInt16LE(list + 4); i++) {
      const rec = list + 16 + i * 16;
      const start = Number(xb.readBigUInt64LE(rec + 8));
      const first = img.blocks(start, BUCKET / bs);
      const n = first.readUInt16LE(6); // xh_num_buckets
      for (let k = 0; k < n; k++) {
        const blkno = start + k * (BUCKET / bs);
        const bucket = img.blocks(blkno, BUCKET / bs);
        t.same(computeBlockCheck(bucket, 8), readBlockCheck(bucket, 8), `bucket at ${blkno}`);
        buckets++;
      }
    }
  }
  t.ok(buckets > 0, `${buckets} xattr buckets verified`);
});

t.test('single-bit errors are corrected, double-bit errors reported', async (t) => {
  const file = pristineImage('cluster-1k-64k-max');
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const bs = 1024;
  const read = (blkno: number, n = 1): Buffer => {
    const b = Buffer.alloc(bs * n);
    fs.readSync(fd, b, 0, b.length, blkno * bs);
    return b;
  };
  const img = scanImage(file, bs);
  img.close();
  const pick = new Map<string, Found>();
  for (const f of img.found) if (!pick.has(f.kind)) pick.set(f.kind, f);
  const r = rng(testSeed(t, 12345));
  for (const f of pick.values()) {
    const orig = read(f.blkno);
    for (let trial = 0; trial < 20; trial++) {
      let bit: number;
      do bit = Math.floor(r() * bs * 8); while (bit >> 3 >= f.off && bit >> 3 < f.off + 8);
      const b = Buffer.from(orig);
      flip(b, bit);
      const res = verifyBlockCheck(b, f.off, f.blkno);
      t.same(res, { corrected: true, bit }, `${f.kind} ${f.blkno}: bit ${bit} corrected`);
      t.ok(b.equals(orig), 'block repaired');
    }
    for (let trial = 0; trial < 10; trial++) {
      const b = Buffer.from(orig);
      const bits = new Set<number>();
      while (bits.size < 2) {
        const x = Math.floor(r() * bs * 8);
        if (!(x >> 3 >= f.off && x >> 3 < f.off + 8)) bits.add(x);
      }
      for (const x of bits) flip(b, x);
      const damaged = Buffer.from(b);
      t.throws(() => verifyBlockCheck(b, f.off, f.blkno),
        { name: 'Ocfs2CorruptError', blkno: f.blkno, check: 'block check (crc32) mismatch', message: new RegExp(`^block ${f.blkno}: `) },
        `${f.kind} ${f.blkno}: two bits reported`);
      t.ok(b.equals(damaged), 'a failed repair leaves the buffer as it was');
    }
    // A flipped ecc bit with an intact crc still verifies (the kernel trusts the crc).
    const e = Buffer.from(orig);
    flip(e, (f.off + 4) * 8 + 3);
    t.same(verifyBlockCheck(e, f.off, f.blkno), { corrected: false });
    // A flipped crc bit cannot be repaired.
    const c = Buffer.from(orig);
    flip(c, f.off * 8 + 5);
    t.throws(() => verifyBlockCheck(c, f.off, f.blkno), Ocfs2CorruptError);
    // Recomputing the check of a block with the check cleared restores it.
    const z = Buffer.from(orig);
    z.fill(0, f.off, f.off + 8);
    updateBlockCheck(z, f.off);
    t.ok(z.equals(orig), `${f.kind}: updateBlockCheck reproduces the kernel's check`);
  }
  t.ok(pick.size >= 5, `tried ${[...pick.keys()].join(', ')}`);

  // A whole 4 KiB bucket: a bit in its third block is corrected too.
  const xf = img.found.find((x) => x.kind === 'XATTR01' && (read(x.blkno).readUInt16LE(0x20) & 1));
  if (xf) {
    const start = Number(read(xf.blkno).readBigUInt64LE(0x40 + 16 + 8));
    const bucket = read(start, BUCKET / bs);
    const orig = Buffer.from(bucket);
    const bit = 2 * bs * 8 + 77;
    flip(bucket, bit);
    t.same(verifyBlockCheck(bucket, 8, start), { corrected: true, bit });
    t.ok(bucket.equals(orig));
  } else {
    t.fail('no indexed xattr block found');
  }
});

t.test('volumes without META_ECC carry zero checks', async (t) => {
  const file = pristineImage('local-4k');
  const img = scanImage(file, 4096);
  t.teardown(img.close);
  let n = 0;
  for (const f of img.found.slice(0, 200)) {
    const c = readBlockCheck(img.blocks(f.blkno), f.off);
    t.same(c, { crc32e: 0, ecc: 0 }, `${f.kind} ${f.blkno}`);
    n++;
  }
  t.ok(n > 50);
});

t.test('bad ranges are refused', async (t) => {
  t.throws(() => computeBlockCheck(Buffer.alloc(16), 12), RangeError);
  t.throws(() => verifyBlockCheck(Buffer.alloc(64), 8, 1, 16, 64), RangeError);
});
