/**
 * Directory entries, dir block trailers, indexed-dir root/leaf blocks and the
 * dx name hash, checked against kernel-written reference images.  Block
 * numbers, seeds and the dx index contents come from debugfs.ocfs2 (an
 * independent reader); names come from the images' manifests.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { pristineImage, readManifest, type ReferenceImage } from './lib/refimages';
import {
  DirEntryHeader, DirBlockTrailer, dirRecLen, OCFS2_DIR_MIN_REC_LEN, readDirEntries, liveDirEntries, iterateDirEntries,
  checkDirEntry, findDirEntry, insertDirEntry, removeDirEntry, largestDirHole, initDotEntries, initEmptyDirArea,
  readDirTrailer, initDirTrailer, dirTrailerOffset, dirBlockCheckOffset, dirHasTrailer, newDirWantsTrailer,
  dirBlockArea, fileTypeOfMode, encodeDirEntry, readDirBlock, type DirEntry,
} from '../src/libocfs2/structs/dir';
import {
  DxEntry, DxEntryListHeader, DxRootBlockHeader, DxLeafHeader, DX_ROOT_CHECK_OFFSET, DX_LEAF_CHECK_OFFSET,
  decodeDxRoot, encodeDxRoot, decodeDxLeaf, encodeDxLeaf, dxEntriesPerLeaf, dxEntriesPerRoot, dxRootExtentRecs,
  newDxLeaf, newDxRootHeader, dxEntryListAppend, dxEntryListRemove, compareDxEntries,
} from '../src/libocfs2/structs/dxdir';
import {
  dxNameHash, dxLeafBlockFor, dxHashBlockIndex, uuidHash, hashDependsOnCharSign, type DxHashSeed,
} from '../src/libocfs2/dirhash';
import { computeBlockCheck, readBlockCheck } from '../src/libocfs2/blockcheck';
import { decodeExtentBlock, type ExtentList, type ExtentRec } from '../src/libocfs2/structs/extent';
import { Ocfs2CorruptError } from '../src/libocfs2/errors';
import { OCFS2_FT_DIR, OCFS2_FT_REG_FILE, OCFS2_FT_SYMLINK, S_IFLNK, S_IFREG } from '../src/libocfs2/constants';

/* ---- helpers ------------------------------------------------------------------------------ */

function debugfs(img: string, cmd: string): string {
  return execFileSync('timeout', ['30', 'debugfs.ocfs2', '-R', cmd, img], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Volume {
  img: string;
  fd: number;
  bs: number;
  cs: number;
  blockBits: number;
  clusterBits: number;
  seed: DxHashSeed;
  uuid: Buffer;
  uuidHash: number;
  metaEcc: boolean;
}

const volumes = new Map<string, Volume>();
function volume(name: ReferenceImage): Volume {
  const have = volumes.get(name);
  if (have) return have;
  const img = pristineImage(name);
  const s = debugfs(img, 'stats');
  const num = (re: RegExp): number => {
    const m = re.exec(s);
    if (!m) throw new Error(`debugfs stats: no ${re}`);
    return Number(m[1]);
  };
  const blockBits = num(/Block Size Bits: (\d+)/);
  const clusterBits = num(/Cluster Size Bits: (\d+)/);
  const seeds = /DX Seeds: (\d+) (\d+) (\d+)/.exec(s)!;
  const v: Volume = {
    img, fd: fs.openSync(img, 'r'), blockBits, clusterBits, bs: 1 << blockBits, cs: 2 ** clusterBits,
    seed: { dxSeed: [Number(seeds[1]), Number(seeds[2]), Number(seeds[3])], uuidHash: num(/Hash: (\d+)/) },
    uuid: Buffer.from(/UUID: ([0-9A-F]{32})/.exec(s)![1]!, 'hex'),
    uuidHash: num(/Hash: (\d+)/),
    metaEcc: /Feature Incompat:.*metaecc/.test(s),
  };
  volumes.set(name, v);
  return v;
}
t.teardown(() => { for (const v of volumes.values()) fs.closeSync(v.fd); });

function readBlocks(v: Volume, blkno: number, count = 1): Buffer {
  const b = Buffer.alloc(v.bs * count);
  const n = fs.readSync(v.fd, b, 0, b.length, blkno * v.bs);
  if (n !== b.length) throw new Error(`short read at block ${blkno}`);
  return b;
}

interface Stat {
  inode: number;
  size: number;
  dyn: number;
  dxRoot: number;
  extents: { cpos: number; clusters: number; blkno: number }[];
}
function stat(v: Volume, path: string): Stat {
  const s = debugfs(v.img, `stat ${path}`);
  const extents = [...s.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+0x[0-9a-f]+\s*$/gm)]
    .map((m) => ({ cpos: Number(m[1]), clusters: Number(m[2]), blkno: Number(m[3]) }));
  return {
    inode: Number(/Inode: (\d+)/.exec(s)![1]),
    size: Number(/Size: (\d+)/.exec(s)![1]),
    dyn: Number.parseInt(/Dynamic Features: \(0x([0-9a-f]+)\)/.exec(s)![1]!, 16),
    dxRoot: Number(/Indexed Tree Root: (\d+)/.exec(s)?.[1] ?? 0),
    extents,
  };
}

/** Manifest paths escape bytes outside 0x20..0x7e and '\' as \xHH. */
function unescapePath(p: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\' && p[i + 1] === 'x') { out.push(Number.parseInt(p.slice(i + 2, i + 4), 16)); i += 3; } else out.push(p.charCodeAt(i));
  }
  return Buffer.from(out);
}

/** Names (raw bytes, hex-keyed) of the manifest entries directly under dir. */
function manifestChildren(img: ReferenceImage, dir: string): Set<string> {
  const prefix = `${dir}/`;
  const out = new Set<string>();
  for (const r of readManifest(img)) {
    if (r.path.startsWith(prefix) && !r.path.slice(prefix.length).includes('/')) {
      out.add(unescapePath(r.path.slice(prefix.length)).toString('hex'));
    }
  }
  return out;
}

/** The stored metaecc check (crc32 and hamming ecc) equals a fresh computation. */
function crcMatches(buf: Buffer, checkOff: number): boolean {
  const want = computeBlockCheck(buf, checkOff);
  const have = readBlockCheck(buf, checkOff);
  return want.crc32e === have.crc32e && want.ecc === have.ecc && have.crc32e !== 0;
}

/** Physical blocks of a directory, in logical order, up to i_size. */
function dirBlocks(v: Volume, st: Stat): number[] {
  const bpc = v.cs / v.bs;
  const out: number[] = [];
  for (const e of st.extents) for (let i = 0; i < e.clusters * bpc; i++) out.push(e.blkno + i);
  return out.slice(0, st.size / v.bs);
}

/* ---- layouts -------------------------------------------------------------------------------- */

t.test('structure sizes and offsets', async (t) => {
  t.equal(DirEntryHeader.size, 12);
  t.equal(DirEntryHeader.offsetOf('file_type'), 11);
  t.equal(DirBlockTrailer.size, 64);
  t.equal(DirBlockTrailer.offsetOf('db_free_rec_len'), 0x0e);
  t.equal(DirBlockTrailer.offsetOf('db_signature'), 0x10);
  t.equal(DirBlockTrailer.offsetOf('db_free_next'), 0x20);
  t.equal(DirBlockTrailer.offsetOf('db_blkno'), 0x28);
  t.equal(DirBlockTrailer.offsetOf('db_parent_dinode'), 0x30);
  t.equal(DirBlockTrailer.offsetOf('db_check'), 0x38);
  t.equal(DxEntry.size, 16);
  t.equal(DxEntryListHeader.size, 8);
  t.equal(DxRootBlockHeader.size, 0xc0);
  t.equal(DxRootBlockHeader.offsetOf('dr_dir_blkno'), 0x30);
  t.equal(DxRootBlockHeader.offsetOf('dr_free_blk'), 0x40);
  t.equal(DxRootBlockHeader.offsetOf('dr_suballoc_loc'), 0x48);
  t.equal(DxLeafHeader.size, 0x28);
  t.equal(DX_ROOT_CHECK_OFFSET, 8);
  t.equal(DX_LEAF_CHECK_OFFSET, 8);
  t.equal(dirTrailerOffset(4096), 4032);
  t.equal(dirBlockCheckOffset(4096), 4088);
  t.equal(dirBlockCheckOffset(512), 504);
  t.same([1, 2, 4, 5, 8, 255].map(dirRecLen), [16, 16, 16, 20, 20, 268]);
  t.equal(OCFS2_DIR_MIN_REC_LEN, 16);
  // Capacities debugfs shows: 243 extent recs / dx entries in a 4K root, 253 in a 4K leaf, 19 recs at 512, 51 at 1K.
  t.equal(dxRootExtentRecs(4096), 243);
  t.equal(dxRootExtentRecs(512), 19);
  t.equal(dxRootExtentRecs(1024), 51);
  t.equal(dxEntriesPerRoot(4096), 243);
  t.equal(dxEntriesPerLeaf(4096), 253);
});

t.test('trailer presence rules', async (t) => {
  t.equal(dirHasTrailer({ inlineData: true, metaEcc: true, indexedDir: true }), false);
  t.equal(dirHasTrailer({ inlineData: false, metaEcc: false, indexedDir: false }), false);
  t.equal(dirHasTrailer({ inlineData: false, metaEcc: true, indexedDir: false }), true);
  t.equal(dirHasTrailer({ inlineData: false, metaEcc: false, indexedDir: true }), true);
  t.equal(newDirWantsTrailer({ metaEcc: false, indexedDirsFeature: true }), true);
  t.equal(newDirWantsTrailer({ metaEcc: false, indexedDirsFeature: false }), false);
  t.equal(fileTypeOfMode(S_IFREG | 0o644), OCFS2_FT_REG_FILE);
  t.equal(fileTypeOfMode(S_IFLNK | 0o777), OCFS2_FT_SYMLINK);
});

t.test('round trips', async (t) => {
  const de = { inode: 0x123456789a, rec_len: 0x1234, name_len: 7, file_type: 2 };
  t.same(DirEntryHeader.decode(DirEntryHeader.encode(de)), de);
  const tr = {
    ...DirBlockTrailer.zero(), db_compat_rec_len: 64, db_free_rec_len: 300, db_signature: Buffer.from('DIRTRL1\0'),
    db_free_next: 77, db_blkno: 99, db_parent_dinode: 5, db_check: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]),
  };
  t.same(DirBlockTrailer.decode(DirBlockTrailer.encode(tr)), tr);
  const dx = { dx_major_hash: 0xdeadbeef, dx_minor_hash: 0x01020304, dx_dirent_blk: 2 ** 40 + 3 };
  t.same(DxEntry.decode(DxEntry.encode(dx)), dx);

  // A leaf block: encode -> decode -> encode is byte-identical.
  const leaf = newDxLeaf(1024, 777, 0xabcdef01);
  for (let i = 0; i < 5; i++) dxEntryListAppend(leaf.list, { dx_major_hash: 100 - i, dx_minor_hash: i, dx_dirent_blk: 1000 + i });
  const b1 = encodeDxLeaf(leaf, Buffer.alloc(1024));
  const back = decodeDxLeaf(b1, 777);
  t.same(back, leaf);
  t.same(encodeDxLeaf(back, Buffer.alloc(1024)), b1);
  dxEntryListRemove(back.list, 1);
  t.same(back.list.entries.map((e) => e.dx_major_hash), [100, 98, 97, 96]);
  back.list.entries.sort(compareDxEntries);
  t.same(back.list.entries.map((e) => e.dx_major_hash), [96, 97, 98, 100]);

  // Inline root with entries and extent-list root.
  const hdr = newDxRootHeader({ dr_blkno: 50, dr_dir_blkno: 40, dr_num_entries: 2 });
  const inl = { header: hdr, inline: true, entries: { count: dxEntriesPerRoot(512), entries: [dx], reserved: 0 } };
  const rb = encodeDxRoot(inl, Buffer.alloc(512));
  const rback = decodeDxRoot(rb, 50, { dirBlkno: 40 });
  t.equal(rback.inline, true);
  t.same(rback.entries, inl.entries);
  t.equal(rback.header.dr_flags & 1, 1);
  const ext = {
    header: hdr, inline: false,
    list: { treeDepth: 0, count: dxRootExtentRecs(512), nextFreeRec: 1, reserved1: 0, reserved2: 0n, recs: [{ cpos: 0, clusters: 1, flags: 0, reserved1: 0, blkno: 9000 }] },
  };
  const eb = encodeDxRoot(ext, Buffer.alloc(512));
  t.same(decodeDxRoot(eb, 50).list, ext.list);
  t.throws(() => decodeDxRoot(eb, 51), Ocfs2CorruptError);
  t.throws(() => decodeDxRoot(eb, 50, { dirBlkno: 41 }), Ocfs2CorruptError);
});

/* ---- hashes --------------------------------------------------------------------------------- */

t.test('uuid hash equals the superblock s_uuid_hash', async (t) => {
  for (const img of ['local-4k', 'local-512-4k', 'cluster-1k-64k-max'] as const) {
    const v = volume(img);
    t.equal(uuidHash(v.uuid), v.uuidHash, img);
  }
});

t.test('dx hash basics', async (t) => {
  const seed: DxHashSeed = { dxSeed: [1, 2, 3], uuidHash: 4 };
  t.same(dxNameHash(Buffer.from('.'), seed), { major: 0, minor: 0 });
  t.same(dxNameHash(Buffer.from('..'), seed), { major: 0, minor: 0 });
  const a = dxNameHash(Buffer.from('abc'), seed);
  t.not(a.major, 0);
  t.notSame(dxNameHash(Buffer.from('abd'), seed), a);
  t.notSame(dxNameHash(Buffer.from('abc'), { dxSeed: [1, 3, 3], uuidHash: 4 }), a);
  // Only ASCII: char signedness makes no difference; with a high byte it does.
  t.same(dxNameHash(Buffer.from('abc'), seed, { unsignedChar: true }), a);
  const hi = Buffer.from('caf\xe9', 'latin1');
  t.ok(hashDependsOnCharSign(hi));
  t.notSame(dxNameHash(hi, seed), dxNameHash(hi, seed, { unsignedChar: true }));
  t.equal(dxHashBlockIndex(0xffffffff, 16, 10), 63);
  t.equal(dxHashBlockIndex(0x12345, 12, 12), 0);
  const recs = [{ cpos: 0, clusters: 2, blkno: 100 }, { cpos: 0x10000000, clusters: 1, blkno: 500 }];
  t.same(dxLeafBlockFor(recs, { major: 1, minor: 3 }, 13, 12), { blkno: 100 + 2 + 1, cpos: 1 });
  t.same(dxLeafBlockFor(recs, { major: 5, minor: 0 }, 13, 12), { blkno: 102, cpos: 1 }, 'beyond the rec: last cluster');
  t.same(dxLeafBlockFor(recs, { major: 0x20000000, minor: 2 }, 13, 12), { blkno: 500, cpos: 0x10000000 });
  t.equal(dxLeafBlockFor([{ cpos: 10, clusters: 1, blkno: 1 }], { major: 5, minor: 0 }, 12, 12), undefined);
});

/* ---- indexed directories on real images --------------------------------------------------- */

interface DirScan {
  /** hex name -> dirent block */
  nameBlock: Map<string, number>;
  /** block -> entries */
  blocks: Map<number, DirEntry[]>;
}

function scanIndexedDir(t: tap.Test, v: Volume, st: Stat): DirScan {
  const nameBlock = new Map<string, number>();
  const blocks = new Map<number, DirEntry[]>();
  let trailersOk = 0;
  let freeOk = 0;
  let crcOk = 0;
  const all = dirBlocks(v, st);
  for (const blk of all) {
    const b = readBlocks(v, blk);
    const { trailer: tr, entries } = readDirBlock(b, blk, v.bs, { hasTrailer: true, dirIno: st.inode });
    if (tr) trailersOk++;
    const area = dirBlockArea(blk, v.bs, true);
    // The entries tile the area exactly up to the trailer.
    const last = entries[entries.length - 1]!;
    if (last.offset + last.recLen !== dirTrailerOffset(v.bs)) t.fail(`block ${blk}: entries do not end at the trailer`);
    if (tr?.db_free_rec_len === largestDirHole(b, area)) freeOk++;
    if (v.metaEcc && crcMatches(b, dirBlockCheckOffset(v.bs))) crcOk++;
    const live = entries.filter((e) => e.inode !== 0);
    blocks.set(blk, live);
    for (const e of live) nameBlock.set(e.name.toString('hex'), blk);
  }
  t.equal(trailersOk, all.length, 'every dir block has a valid trailer');
  t.equal(freeOk, all.length, 'db_free_rec_len is the largest hole of every block');
  if (v.metaEcc) t.equal(crcOk, all.length, 'metaecc CRC at bs-8 matches in every dir block');
  return { nameBlock, blocks };
}

/** Leaf-level records of an extent list, descending through extent blocks. */
function leafRecs(v: Volume, list: ExtentList, blkno: number): ExtentRec[] {
  if (list.treeDepth === 0) return list.recs;
  return list.recs.flatMap((r) => {
    const eb = decodeExtentBlock(readBlocks(v, r.blkno), r.blkno);
    return leafRecs(v, eb.list, r.blkno);
  });
}

function checkDxIndex(t: tap.Test, v: Volume, st: Stat, scan: DirScan, dumpPath: string): void {
  const rootBuf = readBlocks(v, st.dxRoot);
  const root = decodeDxRoot(rootBuf, st.dxRoot, { dirBlkno: st.inode });
  if (v.metaEcc) t.ok(crcMatches(rootBuf, DX_ROOT_CHECK_OFFSET), 'dx root CRC at 0x08');
  t.equal(root.header.dr_num_entries, scan.nameBlock.size, 'dr_num_entries counts every live dirent, . and .. included');

  // debugfs dx_dump: the root's inline entries, or every leaf with its entries.
  const dump = debugfs(v.img, `dx_dump ${dumpPath}`);
  const dumpLists = new Map<number, string[]>();
  let cur: string[] | undefined = root.inline ? [] : undefined;
  if (cur) dumpLists.set(st.dxRoot, cur);
  for (const line of dump.split('\n')) {
    const lm = /Dir Index Leaf: (\d+)/.exec(line);
    if (lm) { cur = []; dumpLists.set(Number(lm[1]), cur); continue; }
    const em = /^\s*\d+\s+\(0x([0-9a-f]+) 0x([0-9a-f]+)\)\s+(\d+)/.exec(line);
    if (em && cur) cur.push(`${Number.parseInt(em[1]!, 16)}/${Number.parseInt(em[2]!, 16)}/${em[3]}`);
  }

  // Our view: block -> entry list, and a lookup from a hash to the list to search.
  const lists = new Map<number, DxEntry[]>();
  let lookup: (h: { major: number; minor: number }) => DxEntry[] | undefined;
  if (root.inline) {
    t.equal(root.header.dr_clusters, 0);
    lists.set(st.dxRoot, root.entries!.entries);
    lookup = () => root.entries!.entries;
  } else {
    const recs = leafRecs(v, root.list!, st.dxRoot);
    t.equal(recs.reduce((s, r) => s + r.clusters, 0), root.header.dr_clusters, 'dr_clusters = sum of the leaf dx extents');
    const bpc = v.cs / v.bs;
    let leafCrcOk = 0;
    for (const r of recs) {
      for (let i = 0; i < r.clusters * bpc; i++) {
        const blk = r.blkno + i;
        const lb = readBlocks(v, blk);
        lists.set(blk, decodeDxLeaf(lb, blk).list.entries);
        if (v.metaEcc && crcMatches(lb, DX_LEAF_CHECK_OFFSET)) leafCrcOk++;
      }
    }
    if (v.metaEcc) t.equal(leafCrcOk, lists.size, 'dx leaf CRC at 0x08');
    const flat = recs.map((r) => ({ cpos: r.cpos, clusters: r.clusters, blkno: r.blkno }));
    lookup = (h) => lists.get(dxLeafBlockFor(flat, h, v.clusterBits, v.blockBits)?.blkno ?? -1);
  }
  t.same([...lists.keys()].sort((a, b) => a - b), [...dumpLists.keys()].sort((a, b) => a - b), 'same entry lists as debugfs');
  let sameAsDump = 0;
  for (const [blk, entries] of lists) {
    const mine = entries.map((e) => `${e.dx_major_hash}/${e.dx_minor_hash}/${e.dx_dirent_blk}`);
    if (JSON.stringify(mine) === JSON.stringify(dumpLists.get(blk))) sameAsDump++;
  }
  t.equal(sameAsDump, lists.size, 'dx entries equal debugfs dx_dump');

  // Every live dirent: our hash, mapped through the dx extents, lands in a list
  // holding (major, minor, its dirent block).
  let found = 0;
  let nonAscii = 0;
  let unsignedWouldMiss = 0;
  for (const [hexName, dblk] of scan.nameBlock) {
    const name = Buffer.from(hexName, 'hex');
    const h = dxNameHash(name, v.seed);
    if (lookup(h)?.some((e) => e.dx_major_hash === h.major && e.dx_minor_hash === h.minor && e.dx_dirent_blk === dblk)) found++;
    else t.fail(`name ${JSON.stringify(name.toString('latin1'))}: hash ${h.major.toString(16)}/${h.minor.toString(16)} not indexed`);
    if (hashDependsOnCharSign(name)) {
      nonAscii++;
      const u = dxNameHash(name, v.seed, { unsignedChar: true });
      if (!lookup(u)?.some((e) => e.dx_major_hash === u.major && e.dx_minor_hash === u.minor)) unsignedWouldMiss++;
    }
  }
  t.equal(found, scan.nameBlock.size, 'every name is indexed where our hash says');
  t.equal(unsignedWouldMiss, nonAscii, 'unsigned-char hashes of non-ASCII names are not what the 6.1 kernel stored');
  // And every dx entry points to a block holding a name with that hash.
  let backOk = 0;
  let total = 0;
  for (const entries of lists.values()) {
    for (const e of entries) {
      total++;
      const names = scan.blocks.get(e.dx_dirent_blk) ?? [];
      if (names.some((d) => { const h = dxNameHash(d.name, v.seed); return h.major === e.dx_major_hash && h.minor === e.dx_minor_hash; })) backOk++;
    }
  }
  t.equal(backOk, total, 'every dx entry points at a dirent with its hash');
  t.equal(total, root.header.dr_num_entries);
}

for (const img of ['local-4k', 'local-512-4k', 'cluster-1k-64k-max'] as const) {
  t.test(`${img}: /d3000 indexed directory`, async (t) => {
    const v = volume(img);
    const st = stat(v, '/d3000');
    t.equal(st.dyn & 0x8, 0x8, 'IndexedDir');
    t.ok(st.dxRoot > 0);
    const scan = scanIndexedDir(t, v, st);
    const names = new Set(scan.nameBlock.keys());
    const expected = manifestChildren(img, '/d3000');
    t.equal(expected.size, 3000);
    expected.add(Buffer.from('.').toString('hex'));
    expected.add(Buffer.from('..').toString('hex'));
    t.same([...names].sort(), [...expected].sort(), 'the dir blocks hold exactly the manifest names plus . and ..');
    // "." is the first entry of block 0 and points at the directory.
    const first = liveDirEntries(readBlocks(v, dirBlocks(v, st)[0]!), dirBlockArea(0, v.bs, true));
    t.equal(first[0]!.name.toString(), '.');
    t.equal(first[0]!.inode, st.inode);
    t.equal(first[1]!.name.toString(), '..');
    t.equal(first[0]!.fileType, OCFS2_FT_DIR);
    checkDxIndex(t, v, st, scan, '/d3000');
  });
}

t.test('local-512-4k: /names (indexed, non-ASCII names hash with signed char)', async (t) => {
  const v = volume('local-512-4k');
  const st = stat(v, '/names');
  t.equal(st.dyn & 0x8, 0x8, 'IndexedDir');
  const scan = scanIndexedDir(t, v, st);
  const expected = manifestChildren('local-512-4k', '/names');
  for (const n of ['.', '..']) expected.add(Buffer.from(n).toString('hex'));
  t.same([...scan.nameBlock.keys()].sort(), [...expected].sort());
  t.ok([...expected].some((h) => hashDependsOnCharSign(Buffer.from(h, 'hex'))), 'has non-ASCII names');
  checkDxIndex(t, v, st, scan, '/names');
});

/* ---- inline directory ------------------------------------------------------------------------ */

for (const img of ['local-4k', 'cluster-1k-64k-max'] as const) {
  t.test(`${img}: /d5 inline directory`, async (t) => {
    const v = volume(img);
    const st = stat(v, '/d5');
    t.equal(st.dyn & 0x1, 0x1, 'InlineData');
    const b = readBlocks(v, st.inode);
    // id_data starts at 0xC8 and the entries tile i_size bytes.
    const area = { blkno: st.inode, start: 0xc8, size: st.size };
    const entries = readDirEntries(b, area);
    const last = entries[entries.length - 1]!;
    t.equal(last.offset + last.recLen, 0xc8 + st.size, 'last entry runs to the end of the inline area');
    const names = liveDirEntries(b, area).map((e) => e.name.toString('hex')).sort();
    const expected = manifestChildren(img, '/d5');
    for (const n of ['.', '..']) expected.add(Buffer.from(n).toString('hex'));
    t.same(names, [...expected].sort());
    t.equal(findDirEntry(b, area, Buffer.from('.'))!.inode, st.inode);
    t.equal(findDirEntry(b, area, Buffer.from('no-such-name')), undefined);
  });
}

/* ---- corruption ---------------------------------------------------------------------------------- */

t.test('corrupt entries give Ocfs2CorruptError naming the block and check', async (t) => {
  const v = volume('local-4k');
  const st = stat(v, '/d3000');
  const blk = dirBlocks(v, st)[3]!;
  const orig = readBlocks(v, blk);
  const area = dirBlockArea(blk, v.bs, true);
  const entries = readDirEntries(orig, area);
  t.ok(entries.length > 3);

  const expectCorrupt = (mutate: (b: Buffer) => void, check: RegExp, what: string): void => {
    const b = Buffer.from(orig);
    mutate(b);
    t.throws(() => readDirEntries(b, area), Ocfs2CorruptError, what);
    try { readDirEntries(b, area); } catch (e) {
      t.ok(e instanceof Ocfs2CorruptError && e.blkno === blk && check.test(e.message), `${what}: ${(e as Error).message}`);
    }
  };
  const second = entries[1]!.offset;
  const lastE = entries[entries.length - 1]!;
  expectCorrupt((b) => b.writeUInt16LE(0, second + 8), /smaller than minimal/, 'rec_len 0');
  expectCorrupt((b) => b.writeUInt16LE(entries[1]!.recLen + 2, second + 8), /% 4/, 'rec_len not a multiple of 4');
  expectCorrupt((b) => { b[lastE.offset + 10] = 255; }, /too small for name_len/, 'name_len past the end of the record');
  expectCorrupt((b) => b.writeUInt16LE(lastE.recLen + 64, lastE.offset + 8), /overrun/, 'entry crosses the block end');
  expectCorrupt((b) => b.writeUInt16LE(lastE.recLen - 8, lastE.offset + 8), /too close to end/, 'tail too short for an entry');
  // Lookup and iteration validate too.
  const bad = Buffer.from(orig);
  bad.writeUInt16LE(0, second + 8);
  t.throws(() => findDirEntry(bad, area, Buffer.from('x')), Ocfs2CorruptError);
  t.throws(() => [...iterateDirEntries(bad, area)], Ocfs2CorruptError);
  t.throws(() => checkDirEntry(bad, 0, dirTrailerOffset(v.bs), second, blk), Ocfs2CorruptError);
  // Trailer checks.
  const tb = Buffer.from(orig);
  t.throws(() => readDirTrailer(tb, v.bs, blk + 1), Ocfs2CorruptError, 'db_blkno mismatch');
  t.throws(() => readDirTrailer(tb, v.bs, blk, st.inode + 1), Ocfs2CorruptError, 'parent mismatch');
  tb[dirTrailerOffset(v.bs) + 0x10] = 0x58;
  t.throws(() => readDirTrailer(tb, v.bs, blk), Ocfs2CorruptError, 'bad signature');
  // A dx leaf / root with a bad signature.
  t.throws(() => decodeDxLeaf(orig, blk), Ocfs2CorruptError);
  t.throws(() => decodeDxRoot(orig, blk), Ocfs2CorruptError);
});

/* ---- write path --------------------------------------------------------------------------------- */

t.test('insert / remove entries in a real block', async (t) => {
  const v = volume('local-4k');
  const st = stat(v, '/d3000');
  const blk = dirBlocks(v, st)[5]!;
  const b = readBlocks(v, blk);
  const area = dirBlockArea(blk, v.bs, true);
  const before = liveDirEntries(b, area);
  const victim = before[4]!;
  const prev = before[3]!;
  removeDirEntry(b, area, victim.offset);
  const after = liveDirEntries(b, area);
  t.equal(after.length, before.length - 1);
  t.notOk(after.some((e) => e.name.equals(victim.name)));
  t.equal(after[3]!.recLen, prev.recLen + victim.recLen, 'merged into the previous entry');
  t.throws(() => removeDirEntry(b, area, victim.offset), { name: 'PosixError' });

  const nm = Buffer.from('a-brand-new-name');
  const at = insertDirEntry(b, area, { inode: 4242, fileType: OCFS2_FT_REG_FILE, name: nm })!;
  t.ok(at !== undefined);
  const got = findDirEntry(b, area, nm)!;
  t.equal(got.inode, 4242);
  t.equal(got.offset, at);
  t.equal(liveDirEntries(b, area).length, before.length);
  t.throws(() => insertDirEntry(b, area, { inode: 1, fileType: 1, name: nm }), { name: 'PosixError' }, 'EEXIST');
  // Free three neighbours (one merged hole), then fill the block until it refuses.
  const cur = liveDirEntries(b, area);
  for (const e of cur.slice(6, 9)) removeDirEntry(b, area, e.offset);
  const base = liveDirEntries(b, area).length;
  let n = 0;
  while (insertDirEntry(b, area, { inode: 10000 + n, fileType: 1, name: Buffer.from(`fill-${n}-${'x'.repeat(40)}`) }) !== undefined) n++;
  t.ok(n > 0, `${n} more names fit`);
  t.ok(largestDirHole(b, area) < dirRecLen(47), 'no hole left for another such name');
  t.equal(liveDirEntries(b, area).length, base + n);
  const trailer = readDirTrailer(b, v.bs, blk, st.inode);
  t.equal(trailer.db_blkno, blk, 'trailer untouched');
});

t.test('fresh directory block with dots and trailer', async (t) => {
  for (const bs of [512, 4096]) {
    const b = Buffer.alloc(bs, 0xee);
    const area = dirBlockArea(1234, bs, true);
    initDotEntries(b, area, 77, 5);
    initDirTrailer(b, bs, { blkno: 1234, parentDinode: 77, freeRecLen: largestDirHole(b, area) });
    const e = readDirEntries(b, area);
    t.same(e.map((x) => [x.name.toString(), x.inode, x.recLen]), [['.', 77, 16], ['..', 5, bs - 64 - 16]]);
    const tr = readDirTrailer(b, bs, 1234, 77);
    t.equal(tr.db_compat_rec_len, 64);
    t.equal(tr.db_free_rec_len, bs - 64 - 16 - 16);
    // Old code sees the trailer as an empty dirent: the whole block walks cleanly.
    const whole = readDirEntries(b, { blkno: 1234 });
    t.same(whole.map((x) => x.inode), [77, 5, 0]);
    initEmptyDirArea(b, area);
    t.same(readDirEntries(b, area).map((x) => [x.inode, x.recLen]), [[0, bs - 64]]);
    t.equal(largestDirHole(b, area), bs - 64);
  }
  t.throws(() => encodeDirEntry(Buffer.alloc(64), 0, { inode: 1, fileType: 1, name: Buffer.alloc(256, 0x61) }, 64), { name: 'PosixError' });
});
