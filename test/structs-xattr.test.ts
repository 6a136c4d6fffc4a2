/**
 * Xattr structures (entries, headers, value roots, xattr blocks, buckets) and
 * the xattr name hash, checked against kernel-written reference images: every
 * attribute of /xattr/* (and trusted.link on /links/fast) must read back with
 * the name and value the manifest records.  Block numbers come from
 * debugfs.ocfs2.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { pristineImage, readManifest, type ReferenceImage } from './lib/refimages';
import {
  XattrEntry, XattrHeader, XattrValueRootHeader, XattrTreeRootHeader, XattrBlockHeader, OCFS2_XATTR_ROOT_SIZE,
  XATTR_BLOCK_CHECK_OFFSET, XATTR_BUCKET_CHECK_OFFSET, XATTR_BLOCK_ATTRS_OFFSET, listInlineXattrs, listXattrArea,
  decodeXattrBlock, listXattrBucket, bucketsInUse, xattrLocalValue, xattrTreeRecFor, writeXattrArea, splitXattrName,
  xattrSize, xattrNameValueSize, blocksPerXattrBucket, xattrBucketsPerCluster, maxXattrEntriesInBucket,
  inlineXattrHeaderOffset, decodeXattrValueRoot, encodeXattrValueRoot, encodeXattrTreeRoot, newXattrBlockHeader,
  OCFS2_XATTR_ENTRY_LOCAL, writeXattrBucket, bucketAlignFreeStart, type XattrItem, type XattrToStore, type XattrValueRoot,
} from '../src/libocfs2/structs/xattr';
import { xattrNameHash } from '../src/libocfs2/dirhash';
import { decodeExtentBlock, type ExtentList, type ExtentRec } from '../src/libocfs2/structs/extent';
import { computeBlockCheck, readBlockCheck, updateBlockCheck } from '../src/libocfs2/blockcheck';
import { Ocfs2CorruptError } from '../src/libocfs2/errors';

/* ---- helpers ------------------------------------------------------------------------------ */

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` };

function debugfs(img: string, cmd: string): string {
  return execFileSync('timeout', ['30', 'debugfs.ocfs2', '-R', cmd, img], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Volume { img: string; fd: number; bs: number; cs: number; uuidHash: number; metaEcc: boolean; fsGen: number }
const volumes = new Map<string, Volume>();
function volume(name: ReferenceImage): Volume {
  const have = volumes.get(name);
  if (have) return have;
  const img = pristineImage(name);
  const s = debugfs(img, 'stats');
  const num = (re: RegExp): number => Number(re.exec(s)![1]);
  const v: Volume = {
    img, fd: fs.openSync(img, 'r'), bs: 2 ** num(/Block Size Bits: (\d+)/), cs: 2 ** num(/Cluster Size Bits: (\d+)/),
    uuidHash: num(/Hash: (\d+)/), metaEcc: /Feature Incompat:.*metaecc/.test(s), fsGen: num(/FS Generation: (\d+)/),
  };
  volumes.set(name, v);
  return v;
}
t.teardown(() => { for (const v of volumes.values()) fs.closeSync(v.fd); });

function readBlocks(v: Volume, blkno: number, count = 1): Buffer {
  const b = Buffer.alloc(v.bs * count);
  if (fs.readSync(v.fd, b, 0, b.length, blkno * v.bs) !== b.length) throw new Error(`short read at ${blkno}`);
  return b;
}

interface XStat { inode: number; dyn: number; xattrBlock: number; inlineSize: number }
function stat(v: Volume, path: string): XStat {
  const s = debugfs(v.img, `stat ${path}`);
  return {
    inode: Number(/Inode: (\d+)/.exec(s)![1]),
    dyn: Number.parseInt(/Dynamic Features: \(0x([0-9a-f]+)\)/.exec(s)![1]!, 16),
    xattrBlock: Number(/Extended Attributes Block: (\d+)/.exec(s)?.[1] ?? 0),
    inlineSize: Number(/Extended Attributes Inline Size: (\d+)/.exec(s)?.[1] ?? 0),
  };
}

function manifestXattrs(img: ReferenceImage, path: string): Map<string, string> {
  const row = readManifest(img).find((r) => r.path === path);
  if (!row) throw new Error(`${path} not in the manifest`);
  const out = new Map<string, string>();
  if (row.xattrs === '-' || row.xattrs === '') return out;
  for (const kv of row.xattrs.split(';')) {
    const eq = kv.indexOf('=');
    out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return out;
}

function checkOk(buf: Buffer, off: number): boolean {
  const want = computeBlockCheck(buf, off);
  const have = readBlockCheck(buf, off);
  return want.crc32e === have.crc32e && want.ecc === have.ecc && have.crc32e !== 0;
}

function leafRecs(v: Volume, list: ExtentList): ExtentRec[] {
  if (list.treeDepth === 0) return list.recs;
  return list.recs.flatMap((r) => leafRecs(v, decodeExtentBlock(readBlocks(v, r.blkno), r.blkno).list));
}

/** Read a non-local value through its value root. */
function readValue(v: Volume, root: XattrValueRoot, size: number): Buffer {
  const recs = leafRecs(v, root.list);
  const bpc = v.cs / v.bs;
  const parts = recs.sort((a, b) => a.cpos - b.cpos).map((r) => readBlocks(v, r.blkno, r.clusters * bpc));
  const clusters = recs.reduce((s, r) => s + r.clusters, 0);
  if (clusters !== root.clusters) throw new Error(`value root xr_clusters ${root.clusters} != extents ${clusters}`);
  return Buffer.concat(parts).subarray(0, size);
}

interface Found { items: { item: XattrItem; buf: Buffer }[]; where: string[] }

/** Every attribute of a file, from the inode body, the xattr block, or its buckets. */
function collect(t: tap.Test, v: Volume, st: XStat): Found {
  const items: Found['items'] = [];
  const where: string[] = [];
  if (st.dyn & 0x4) {
    const ib = readBlocks(v, st.inode);
    for (const item of listInlineXattrs(ib, v.bs, st.inlineSize, st.inode).items) items.push({ item, buf: ib });
    where.push('inline');
  }
  if (st.xattrBlock) {
    const xb = readBlocks(v, st.xattrBlock);
    const blk = decodeXattrBlock(xb, st.xattrBlock, v.bs, { fsGeneration: v.fsGen });
    if (v.metaEcc) t.ok(checkOk(xb, XATTR_BLOCK_CHECK_OFFSET), 'xattr block check at 0x18');
    if (!blk.indexed) {
      for (const item of blk.attrs!.items) items.push({ item, buf: xb });
      where.push('block');
    } else {
      const recs = leafRecs(v, blk.tree!.list);
      t.equal(recs.reduce((s, r) => s + r.clusters, 0), blk.tree!.clusters, 'xt_clusters = sum of the bucket extents');
      const bpb = blocksPerXattrBucket(v.bs);
      for (const r of recs) {
        const first = readBlocks(v, r.blkno, bpb);
        const n = bucketsInUse(first, r.blkno, r.clusters, v.cs);
        for (let i = 0; i < n; i++) {
          const bblk = r.blkno + i * bpb;
          const bucket = readBlocks(v, bblk, bpb);
          if (v.metaEcc) t.ok(checkOk(bucket, XATTR_BUCKET_CHECK_OFFSET), `bucket ${bblk} check over 4 KiB`);
          const list = listXattrBucket(bucket, bblk, v.bs);
          const hashes = list.items.map((x) => x.entry.xe_name_hash);
          if (hashes.some((h, j) => j > 0 && h < hashes[j - 1]!)) t.fail(`bucket ${bblk} entries not sorted by hash`);
          for (const item of list.items) {
            if (xattrTreeRecFor(recs, item.entry.xe_name_hash) !== r) t.fail(`hash of ${item.name} maps to another extent`);
            items.push({ item, buf: bucket });
          }
          where.push(`bucket ${bblk}`);
        }
      }
    }
  }
  return { items, where };
}

const FILES = ['/xattr/small', '/xattr/big', '/xattr/many', '/xattr/trusted', '/xattr/dir', '/links/fast'] as const;

/* ---- layouts -------------------------------------------------------------------------------- */

t.test('structure sizes and offsets', async (t) => {
  t.equal(XattrEntry.size, 16);
  t.equal(XattrEntry.offsetOf('xe_type'), 7);
  t.equal(XattrHeader.size, 16);
  t.equal(XattrHeader.offsetOf('xh_check'), 8);
  t.equal(XattrValueRootHeader.size, 16);
  t.equal(XattrTreeRootHeader.size, 16);
  t.equal(XattrBlockHeader.size, 0x30);
  t.equal(XattrBlockHeader.offsetOf('xb_flags'), 0x20);
  t.equal(XattrBlockHeader.offsetOf('xb_suballoc_loc'), 0x28);
  t.equal(XATTR_BLOCK_CHECK_OFFSET, 0x18);
  t.equal(XATTR_BUCKET_CHECK_OFFSET, 8);
  t.equal(XATTR_BLOCK_ATTRS_OFFSET, 0x30);
  t.equal(OCFS2_XATTR_ROOT_SIZE, 48);
  t.same([0, 1, 4, 5, 13].map(xattrSize), [0, 4, 4, 8, 16]);
  t.equal(xattrNameValueSize(3, 3000), 4 + 48);
  t.equal(xattrNameValueSize(5, 80), 8 + 80);
  t.equal(blocksPerXattrBucket(512), 8);
  t.equal(xattrBucketsPerCluster(65536), 16);
  t.equal(maxXattrEntriesInBucket(4096), 255);
  t.equal(inlineXattrHeaderOffset(4096, 256), 3840);
});

t.test('names and prefixes', async (t) => {
  t.same(splitXattrName(Buffer.from('user.foo')), { nameIndex: 1, name: Buffer.from('foo') });
  t.same(splitXattrName(Buffer.from('trusted.kh')), { nameIndex: 4, name: Buffer.from('kh') });
  t.same(splitXattrName(Buffer.from('security.selinux')), { nameIndex: 5, name: Buffer.from('selinux') });
  t.same(splitXattrName(Buffer.from('system.posix_acl_access')), { nameIndex: 2, name: Buffer.alloc(0) });
  t.same(splitXattrName(Buffer.from('system.posix_acl_default')), { nameIndex: 3, name: Buffer.alloc(0) });
  t.equal(splitXattrName(Buffer.from('user.')), undefined);
  t.equal(splitXattrName(Buffer.from('os2.thing')), undefined);
  t.equal(splitXattrName(Buffer.from('system.posix_acl_accessX')), undefined);
  const h = xattrNameHash(Buffer.from('abc'), 0);
  t.equal(h, ((((0x61 << 5) ^ 0x62) << 5) ^ 0x63) >>> 0);
  t.not(xattrNameHash(Buffer.from('abc'), 1), h);
  const hi = Buffer.from([0x61, 0xe9]);
  t.not(xattrNameHash(hi, 7), xattrNameHash(hi, 7, { unsignedChar: true }), 'signedness matters above 0x7f');
});

t.test('round trips', async (t) => {
  const e = { xe_name_hash: 0xfedcba98, xe_name_offset: 0xf00, xe_name_len: 200, xe_type: 0x81, xe_value_size: 2 ** 40 };
  t.same(XattrEntry.decode(XattrEntry.encode(e)), e);
  const h = { xh_count: 3, xh_free_start: 0x800, xh_name_value_len: 99, xh_num_buckets: 2, xh_check: Buffer.from('ABCDEFGH') };
  t.same(XattrHeader.decode(XattrHeader.encode(h)), h);
  const xb = newXattrBlockHeader({ xb_blkno: 1234, xb_suballoc_slot: 1, xb_suballoc_bit: 9, xb_fs_generation: 0x11223344, xb_flags: 1, xb_suballoc_loc: 77 });
  const blk = XattrBlockHeader.encode(xb, Buffer.alloc(1024));
  const tree = {
    clusters: 3, lastEbBlk: 0, reserved0: 0,
    list: { treeDepth: 0, count: (1024 - 0x50) / 16, nextFreeRec: 1, reserved1: 0, reserved2: 0n, recs: [{ cpos: 0, clusters: 3, flags: 0, reserved1: 0, blkno: 5000 }] },
  };
  encodeXattrTreeRoot(tree, blk);
  const back = decodeXattrBlock(blk, 1234, 1024, { fsGeneration: 0x11223344 });
  t.same(back.header, xb);
  t.equal(back.indexed, true);
  t.same(back.tree, tree);
  t.throws(() => decodeXattrBlock(blk, 1235, 1024), Ocfs2CorruptError);
  t.throws(() => decodeXattrBlock(blk, 1234, 1024, { fsGeneration: 1 }), Ocfs2CorruptError);
  const vr: XattrValueRoot = {
    clusters: 1, lastEbBlk: 0, reserved0: 0,
    list: { treeDepth: 0, count: 1, nextFreeRec: 1, reserved1: 0, reserved2: 0n, recs: [{ cpos: 0, clusters: 1, flags: 0, reserved1: 0, blkno: 42 }] },
  };
  const vb = Buffer.alloc(OCFS2_XATTR_ROOT_SIZE);
  encodeXattrValueRoot(vr, vb, 0);
  t.same(decodeXattrValueRoot(vb, 0, 1), vr);
});

/* ---- real images ------------------------------------------------------------------------------ */

for (const img of ['local-4k', 'local-512-4k', 'cluster-1k-64k-max'] as const) {
  t.test(`${img}: xattrs read back as in the manifest`, async (t) => {
    const v = volume(img);
    const seen: Record<string, string[]> = {};
    for (const path of FILES) {
      const st = stat(v, path);
      const { items, where } = collect(t, v, st);
      seen[path] = where;
      const got = new Map<string, string>();
      let hashOk = 0;
      let shapeOk = 0;
      for (const { item, buf } of items) {
        const value = item.local ? xattrLocalValue(buf, item) : readValue(v, item.valueRoot!, item.valueSize);
        got.set(item.name.toString('latin1'), value.toString('hex'));
        if (item.entry.xe_name_hash === xattrNameHash(item.shortName, v.uuidHash)) hashOk++;
        if (value.length === item.valueSize && item.local === item.valueSize <= 80) shapeOk++;
      }
      t.equal(hashOk, items.length, `${path}: every xe_name_hash is our hash of the stored name`);
      t.equal(shapeOk, items.length, `${path}: value sizes match, local iff <= 80 bytes`);
      t.same(Object.fromEntries([...got].sort()), Object.fromEntries([...manifestXattrs(img, path)].sort()), `${path} (${where.join(', ')})`);
    }
    t.equal(manifestXattrs(img, '/xattr/many').size, 60);
    t.ok(seen['/xattr/big']!.length > 0);
    if (img !== 'local-4k') t.ok(seen['/xattr/many']!.some((w) => w.startsWith('bucket')), 'buckets exercised');
    else t.ok(seen['/xattr/many']!.includes('block'), 'plain xattr block exercised');
  });
}

/* ---- write path: rebuild the kernel's layout ---------------------------------------------------- */

function toStore(v: Volume, items: { item: XattrItem; buf: Buffer }[]): XattrToStore[] {
  return items.map(({ item, buf }) => item.local
    ? { nameIndex: item.nameIndex, shortName: item.shortName, nameHash: item.entry.xe_name_hash, value: xattrLocalValue(buf, item) }
    : { nameIndex: item.nameIndex, shortName: item.shortName, nameHash: item.entry.xe_name_hash, valueRoot: { root: item.valueRoot!, valueSize: item.valueSize } });
}

t.test('writeXattrArea reproduces the kernel-written inline areas and xattr blocks', async (t) => {
  const cases: [ReferenceImage, string, 'inline' | 'block'][] = [
    ['local-4k', '/xattr/small', 'inline'], ['local-4k', '/xattr/big', 'inline'], ['local-4k', '/xattr/trusted', 'inline'],
    ['local-4k', '/xattr/many', 'inline'], ['local-4k', '/xattr/many', 'block'], ['local-4k', '/xattr/dir', 'block'],
    ['local-512-4k', '/xattr/big', 'block'], ['local-512-4k', '/xattr/trusted', 'block'], ['local-512-4k', '/links/fast', 'block'],
    ['cluster-1k-64k-max', '/xattr/big', 'inline'], ['cluster-1k-64k-max', '/xattr/dir', 'block'],
  ];
  for (const [img, path, kind] of cases) {
    const v = volume(img);
    const st = stat(v, path);
    const blkno = kind === 'inline' ? st.inode : st.xattrBlock;
    const orig = readBlocks(v, blkno);
    const area = kind === 'inline'
      ? { blkno, headerOffset: inlineXattrHeaderOffset(v.bs, st.inlineSize), size: st.inlineSize }
      : { blkno, headerOffset: XATTR_BLOCK_ATTRS_OFFSET, size: v.bs - XATTR_BLOCK_ATTRS_OFFSET };
    const items = listXattrArea(orig, area).items.map((item) => ({ item, buf: orig }));
    const copy = Buffer.from(orig);
    copy.fill(0xa5, area.headerOffset, area.headerOffset + area.size);
    t.ok(writeXattrArea(copy, area, toStore(v, items)), `${img} ${path} ${kind}: fits`);
    // The metaecc check (inode 0x80, xattr block 0x18) lies outside the area, so the whole block must match.
    t.same(copy, orig, `${img} ${path} ${kind}: rebuilt byte for byte (${items.length} attrs)`);
  }
  // Too much for the area: refused, nothing written.
  const small = Buffer.alloc(256);
  const tooMany: XattrToStore[] = Array.from({ length: 10 }, (_, i) => ({ nameIndex: 1, shortName: Buffer.from(`n${i}`), nameHash: i, value: Buffer.alloc(20) }));
  t.equal(writeXattrArea(small, { blkno: 1, headerOffset: 0, size: 256 }, tooMany), false);
  t.same(small, Buffer.alloc(256));
  t.throws(() => writeXattrArea(small, { blkno: 1, headerOffset: 0, size: 256 }, [{ nameIndex: 1, shortName: Buffer.from('x'), nameHash: 0, value: Buffer.alloc(81) }]), RangeError);
});

t.test('writeXattrBucket: rebuilt real buckets list the same attributes', async (t) => {
  t.equal(bucketAlignFreeStart(4096, 52, 512), 4096);
  t.equal(bucketAlignFreeStart(3628, 52, 512), 3584, 'would cross 3584: moves down to the boundary');
  t.equal(bucketAlignFreeStart(3636, 52, 512), 3636);
  t.equal(bucketAlignFreeStart(3628, 52, 4096), 3628);
  for (const img of ['local-512-4k', 'cluster-1k-64k-max'] as const) {
    const v = volume(img);
    const st = stat(v, '/xattr/many');
    const blk = decodeXattrBlock(readBlocks(v, st.xattrBlock), st.xattrBlock, v.bs);
    const bpb = blocksPerXattrBucket(v.bs);
    const r = leafRecs(v, blk.tree!.list)[0]!;
    const first = readBlocks(v, r.blkno, bpb);
    const n = bucketsInUse(first, r.blkno, r.clusters, v.cs);
    // The outside judges: our rebuilt buckets written over the kernel's in a copy of the image,
    // then fsck.ocfs2 -fn and debugfs.ocfs2's xattr listing must take them as they took the kernel's.
    const copy = `${v.img}.rebuilt-${process.pid}`;
    execFileSync('cp', ['--sparse=always', v.img, copy]);
    t.teardown(() => fs.rmSync(copy, { force: true }));
    const cfd = fs.openSync(copy, 'r+');
    for (let i = 0; i < n; i++) {
      const orig = readBlocks(v, r.blkno + i * bpb, bpb);
      const o = listXattrBucket(orig, r.blkno, v.bs);
      const oh = XattrHeader.decode(orig, 0);
      const out = Buffer.alloc(4096, 0xcc);
      t.ok(writeXattrBucket(out, v.bs, toStore(v, o.items.map((item) => ({ item, buf: orig }))), oh.xh_num_buckets));
      const back = listXattrBucket(out, 1, v.bs); // also checks that no pair straddles a block
      const h = XattrHeader.decode(out, 0);
      t.equal(h.xh_name_value_len, oh.xh_name_value_len, `${img} bucket ${i}: xh_name_value_len as the kernel's`);
      t.equal(h.xh_num_buckets, oh.xh_num_buckets);
      t.equal(h.xh_free_start, Math.min(...back.items.map((x) => x.entry.xe_name_offset)), 'xh_free_start = lowest name');
      const key = (l: typeof o, b: Buffer) => l.items.map((x) => `${x.name}=${x.entry.xe_name_hash}=${xattrLocalValue(b, x).toString('hex')}`);
      t.same(key(back, out), key(o, orig), `${img} bucket ${i}: same attributes in hash order`);
      const onDisk = out.subarray(0, bpb * v.bs);
      if (v.metaEcc) updateBlockCheck(onDisk, XattrHeader.offsetOf('xh_check'));
      fs.writeSync(cfd, onDisk, 0, onDisk.length, (r.blkno + i * bpb) * v.bs);
    }
    fs.closeSync(cfd);
    const ck = spawnSync('timeout', ['300', 'fsck.ocfs2', '-fn', copy], { encoding: 'utf8', env: SBIN });
    const codes = (x: string): string[] => [...x.matchAll(/^\[([A-Z_]+)\]/gm)].map((m) => m[1]!).sort();
    const base = spawnSync('timeout', ['300', 'fsck.ocfs2', '-fn', v.img], { encoding: 'utf8', env: SBIN });
    t.same(codes(ck.stdout + ck.stderr), codes(base.stdout + base.stderr), `${img}: fsck.ocfs2 -fn finds nothing new in our rebuilt buckets`);
    t.equal(ck.status, base.status, `${img}: fsck.ocfs2 exit status as on the kernel's image`);
    const listing = (f: string): string => debugfs(f, 'xattr -v /xattr/many').replace(/^.*bucket #\d+: \d+$/gm, (l) => l.trim());
    t.equal(listing(copy), listing(v.img), `${img}: debugfs.ocfs2 lists the same entries, bucket by bucket`);
  }
  // A pair straddling a block boundary is corruption in a bucket.
  const bad = Buffer.alloc(4096);
  t.ok(writeXattrBucket(bad, 512, [{ nameIndex: 1, shortName: Buffer.from('abcd'), nameHash: 5, value: Buffer.alloc(40, 1) }]));
  bad.writeUInt16LE(512 - 8, XattrHeader.size + 4);
  t.throws(() => listXattrBucket(bad, 7, 512), Ocfs2CorruptError);
  t.doesNotThrow(() => listXattrBucket(bad, 7, 4096));
  t.equal(writeXattrBucket(Buffer.alloc(4096), 512, Array.from({ length: 40 }, (_, i) => ({ nameIndex: 1, shortName: Buffer.from(`n${i}`), nameHash: i, value: Buffer.alloc(1) }))), false, 'too many entries for the first block');
});

/* ---- corruption ------------------------------------------------------------------------------------- */

t.test('corrupt xattr storage gives Ocfs2CorruptError naming the block', async (t) => {
  const v = volume('local-4k');
  const st = stat(v, '/xattr/trusted');
  const ib = readBlocks(v, st.inode);
  const base = inlineXattrHeaderOffset(v.bs, st.inlineSize);
  const list = () => listInlineXattrs(b, v.bs, st.inlineSize, st.inode);
  let b = Buffer.from(ib);
  t.equal(list().items.length, 2);
  const expect = (mutate: (x: Buffer) => void, re: RegExp, what: string): void => {
    b = Buffer.from(ib);
    mutate(b);
    try { list(); t.fail(`${what}: no error`); } catch (e) {
      t.ok(e instanceof Ocfs2CorruptError && e.blkno === st.inode && re.test(e.message), `${what}: ${(e as Error).message}`);
    }
  };
  const e0 = base + XattrHeader.size;
  expect((x) => x.writeUInt16LE(200, base), /xh_count/, 'xh_count too large');
  expect((x) => x.writeUInt16LE(st.inlineSize - 2, e0 + 4), /name outside/, 'name offset past the end');
  expect((x) => x.writeUInt16LE(4, e0 + 4), /name outside/, 'name inside the entry table');
  expect((x) => { x[e0 + 7] = x[e0 + 7]! & ~OCFS2_XATTR_ENTRY_LOCAL; }, /80 bytes or less/, 'non-local small value');
  expect((x) => x.writeUInt32LE(81, e0 + 8), /larger than 80/, 'local value too big');
  expect((x) => x.writeUInt32LE(60, e0 + 8), /value outside/, 'local value past the end');
  t.throws(() => listInlineXattrs(ib, v.bs, 4097, st.inode), Ocfs2CorruptError, 'bad inline size');
  // Unknown name index: skipped like listxattr does, and counted.
  b = Buffer.from(ib);
  b[e0 + 7] = (b[e0 + 7]! & OCFS2_XATTR_ENTRY_LOCAL) | 9;
  const l = list();
  t.equal(l.items.length, 1);
  t.equal(l.skipped, 1);
  // Bad xattr block signature / bucket count.
  t.throws(() => decodeXattrBlock(ib, st.inode, v.bs), Ocfs2CorruptError);
  const zero = Buffer.alloc(4096);
  t.throws(() => bucketsInUse(zero, 99, 1, 4096), Ocfs2CorruptError);
});
