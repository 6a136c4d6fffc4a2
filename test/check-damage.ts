/**
 * Damage a copy of a volume in known ways, for the checker tests: find the
 * structure with libocfs2 (read side), then edit raw bytes in the image and
 * recompute the metaecc check where the damage is not meant to be a bad
 * check.  Each function returns a short description.
 */
import * as fs from 'node:fs';
import { Volume } from '../src/libocfs2/volume';
import { lookupName } from '../src/libocfs2/directory';
import { inodeExtentList, inodeInlineData, INLINE_DATA_OFFSET, DinodeHeader, readId1Bitmap, writeId1Bitmap, inodeChainList, writeInodeChainList } from '../src/libocfs2/structs/dinode';
import { allLeafExtents } from '../src/libocfs2/extentmap';
import { decodeGroupDesc, GroupDescHeader, GROUP_BITMAP_OFFSET, testBit } from '../src/libocfs2/structs/group';
import { CHECK_OFFSET, updateBlockCheck } from '../src/libocfs2/blockcheck';
import { iterateDirEntries } from '../src/libocfs2/structs/dir';
import { dirBlockPhys } from '../src/libocfs2/directory';
import type { InodeBlock } from '../src/libocfs2/volume';

async function withVol<T>(img: string, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const vol = await Volume.open(img, { readOnly: true });
  try { return await fn(vol); } finally { await vol.close(); }
}

async function resolve(vol: Volume, p: string): Promise<InodeBlock> {
  let cur = await vol.readInode(vol.rootBlkno);
  for (const part of p.split('/').filter(Boolean)) {
    const e = await lookupName(vol, cur, Buffer.from(part));
    if (!e) throw new Error(`no ${p}`);
    cur = await vol.readInode(e.inode);
  }
  return cur;
}

function readBlock(img: string, bs: number, b: number): Buffer {
  const fd = fs.openSync(img, 'r');
  try { const buf = Buffer.alloc(bs); fs.readSync(fd, buf, 0, bs, b * bs); return buf; } finally { fs.closeSync(fd); }
}

function writeBlock(img: string, bs: number, b: number, buf: Buffer, checkOffset: number | null, metaEcc: boolean): void {
  if (metaEcc && checkOffset !== null) updateBlockCheck(buf, checkOffset);
  const fd = fs.openSync(img, 'r+');
  try { fs.writeSync(fd, buf, 0, bs, b * bs); } finally { fs.closeSync(fd); }
}

interface Geo { bs: number; ecc: boolean }
const geo = (vol: Volume): Geo => ({ bs: vol.blockSize, ecc: vol.metaEcc });

/** The first group of the global bitmap: block number and header. */
async function firstGlobalGroup(vol: Volume): Promise<{ gb: number; blkno: number }> {
  const gb = vol.systemFile('global_bitmap');
  const { buf } = await vol.readInode(gb);
  const cl = inodeChainList(buf, gb);
  return { gb, blkno: cl.recs[0]!.c_blkno };
}

/** bg_free_bits_count of a global bitmap group raised by 5 (GROUP_FREE_BITS, and the chain sums then disagree). */
export async function damageGroupFreeCount(img: string): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs, ecc } = geo(vol);
    const { blkno } = await firstGlobalGroup(vol);
    const buf = readBlock(img, bs, blkno);
    const off = GroupDescHeader.offsetOf('bg_free_bits_count');
    buf.writeUInt16LE(buf.readUInt16LE(off) + 5, off);
    writeBlock(img, bs, blkno, buf, CHECK_OFFSET.groupDesc, ecc);
    return `group ${blkno} free count +5`;
  });
}

/** Clear the global bitmap bit of a cluster used by `file` (counts adjusted so only the bit is wrong). */
export async function damageClearUsedBit(img: string, file = '/random-1m.bin'): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs, ecc } = geo(vol);
    const f = await resolve(vol, file);
    const ext = (await allLeafExtents(vol, inodeExtentList(f.buf, f.inode.blkno), f.inode.blkno))[0]!;
    const cluster = ext.blkno / vol.clusterBlocks + 1;
    const gbBlk = vol.systemFile('global_bitmap');
    const gbBuf = readBlock(img, bs, gbBlk);
    const cl = inodeChainList(gbBuf, gbBlk);
    const cpg = cl.cpg;
    const gi = Math.floor(cluster / cpg);
    const gblk = gi === 0 ? vol.sb.raw.s_first_cluster_group : gi * cpg * vol.clusterBlocks;
    const buf = readBlock(img, bs, gblk);
    const gd = decodeGroupDesc(buf, gblk);
    const bit = cluster - gi * cpg;
    if (!testBit(gd.bitmap, bit)) throw new Error('bit already clear');
    buf[GROUP_BITMAP_OFFSET + (bit >> 3)] = buf[GROUP_BITMAP_OFFSET + (bit >> 3)]! & ~(1 << (bit & 7));
    const foff = GroupDescHeader.offsetOf('bg_free_bits_count');
    buf.writeUInt16LE(buf.readUInt16LE(foff) + 1, foff);
    writeBlock(img, bs, gblk, buf, CHECK_OFFSET.groupDesc, ecc);
    const rec = cl.recs[gd.header.bg_chain]!;
    rec.c_free += 1;
    writeInodeChainList(gbBuf, cl);
    const id1 = readId1Bitmap(gbBuf);
    writeId1Bitmap(gbBuf, { ...id1, i_used: id1.i_used - 1 });
    writeBlock(img, bs, gbBlk, gbBuf, CHECK_OFFSET.dinode, ecc);
    return `cluster ${cluster} of ${file} cleared in group ${gblk}`;
  });
}

/** Point the first extent of `a` at the clusters of `b` (doubly claimed clusters; a's own become unused). */
export async function damageDoubleClaim(img: string, a = '/text/seq.txt', b = '/text/lorem-50k.txt'): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs, ecc } = geo(vol);
    const fa = await resolve(vol, a);
    const fb = await resolve(vol, b);
    const la = inodeExtentList(fa.buf, fa.inode.blkno);
    const lb = await allLeafExtents(vol, inodeExtentList(fb.buf, fb.inode.blkno), fb.inode.blkno);
    if (la.treeDepth !== 0 || la.recs.length === 0) throw new Error(`${a} is not a flat extent-mapped file`);
    if (la.recs[0]!.clusters > lb[0]!.clusters) throw new Error(`${b} is too small`);
    const buf = readBlock(img, bs, fa.inode.blkno);
    // id2.i_list: 16-byte header, then records; e_blkno at +8 of the first record.
    buf.writeBigUInt64LE(BigInt(lb[0]!.blkno), 0xc0 + 16 + 8);
    writeBlock(img, bs, fa.inode.blkno, buf, CHECK_OFFSET.dinode, ecc);
    return `${a} (inode ${fa.inode.blkno}) now maps block ${lb[0]!.blkno} of ${b}`;
  });
}

/** Change the link count of `file` to `n`. */
export async function damageLinkCount(img: string, file = '/small/s100', n = 5): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs, ecc } = geo(vol);
    const f = await resolve(vol, file);
    const buf = readBlock(img, bs, f.inode.blkno);
    buf.writeUInt16LE(n, DinodeHeader.offsetOf('i_links_count'));
    writeBlock(img, bs, f.inode.blkno, buf, CHECK_OFFSET.dinode, ecc);
    return `inode ${f.inode.blkno} (${file}) nlink ${f.inode.nlink} -> ${n}`;
  });
}

/**
 * Make an entry of an inline directory (default /d5) name an inode block that
 * is not allocated (a free slot of the same inode group): the entry dangles
 * and the inode it named is no longer referenced.
 */
export async function damageDanglingEntry(img: string, dir = '/d5'): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs, ecc } = geo(vol);
    const d = await resolve(vol, dir);
    let blk: number;
    let area: { blkno: number; start: number; size: number };
    let checkOffset: number | null;
    if (d.inode.dynFeatures & 1) {
      const { count } = inodeInlineData(d.buf, d.inode.blkno);
      blk = d.inode.blkno;
      area = { blkno: blk, start: INLINE_DATA_OFFSET, size: Math.min(count, d.inode.size) };
      checkOffset = CHECK_OFFSET.dinode;
    } else {
      blk = await dirBlockPhys(vol, d, 0);
      area = { blkno: blk, start: 0, size: bs - (vol.metaEcc || vol.indexedDirs ? 64 : 0) };
      checkOffset = vol.metaEcc ? bs - 8 : null;
    }
    const buf = readBlock(img, bs, blk);
    const victim = [...iterateDirEntries(buf, area)].find((e) => e.inode !== 0 && e.name.toString() !== '.' && e.name.toString() !== '..');
    if (!victim) throw new Error(`${dir} has no entries`);
    const target = await freeInodeSlot(vol, victim.inode);
    buf.writeBigUInt64LE(BigInt(target), victim.offset);
    writeBlock(img, bs, blk, buf, checkOffset, ecc);
    return `${dir}/${victim.name.toString()} now names free inode block ${target} (was ${victim.inode})`;
  });
}

/** A block of some inode allocator group whose allocator bit is clear (never bit 0, the descriptor). */
async function freeInodeSlot(vol: Volume, _near: number): Promise<number> {
  for (const name of vol.systemFileNames().filter((n) => n.startsWith('inode_alloc') || n === 'global_inode_alloc')) {
    const ib = vol.systemFile(name);
    const { buf } = await vol.readInode(ib);
    for (const rec of inodeChainList(buf, ib).recs) {
      for (let g = rec.c_blkno; g !== 0;) {
        const gd = decodeGroupDesc(await vol.readMetaBlock(g, CHECK_OFFSET.groupDesc), g);
        if (!gd.list) {
          for (let bit = gd.header.bg_bits - 1; bit > 0; bit--) if (!testBit(gd.bitmap, bit)) return g + bit;
        }
        g = gd.header.bg_next_group;
      }
    }
  }
  throw new Error('no free inode slot');
}

/** Break the signature of the group at the head of chain 1 of the global bitmap (a broken chain). */
export async function damageBrokenChain(img: string, chain = 1): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs } = geo(vol);
    const gb = vol.systemFile('global_bitmap');
    const { buf } = await vol.readInode(gb);
    const cl = inodeChainList(buf, gb);
    const blkno = cl.recs[Math.min(chain, cl.recs.length - 1)]!.c_blkno;
    const g = readBlock(img, bs, blkno);
    g.write('BROKEN!', 0, 'latin1');
    writeBlock(img, bs, blkno, g, null, false);
    return `group ${blkno} signature destroyed`;
  });
}

/** Flip two bits of a reserved field of a directory inode without updating its block check (metaecc volumes). */
export async function damageBadCheck(img: string, dir = '/d3000'): Promise<string> {
  return withVol(img, async (vol) => {
    const { bs } = geo(vol);
    const d = await resolve(vol, dir);
    const buf = readBlock(img, bs, d.inode.blkno);
    const at = DinodeHeader.offsetOf('i_reserved2') + 3;
    buf[at] = buf[at]! ^ 0x22;
    writeBlock(img, bs, d.inode.blkno, buf, null, false);
    return `directory inode ${d.inode.blkno} (${dir}) changed without its check`;
  });
}
