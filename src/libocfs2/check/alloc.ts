/**
 * Pass 0 (chain allocators) and the allocator write-back at the end of a
 * repair run.
 *
 * A chain allocator inode (CHAIN_FL) holds cl_next_free_rec chains; each
 * chain is a list of group descriptors linked by bg_next_group, starting at
 * c_blkno.  fsck.ocfs2 pass 0 walks every chain, checks each descriptor
 * (signature, generation, parent, bg_blkno, bg_chain, free bits), and
 * compares c_free/c_total with the sum over the chain (CHAIN_BITS) and the
 * inode's i_used/i_total with the sum over the chains (CHAIN_GROUP_BITS).
 */
import {
  GROUP_BITMAP_OFFSET, GroupDescHeader, countSetBits, decodeChainList, groupIsDiscontig,
  type ChainList,
} from '../structs/group';
import { decodeExtentList, type ExtentList } from '../structs/extent';
import { GROUP_LIST_OFFSET } from '../structs/group';
import { DINODE_ID2_OFFSET, DinodeHeader, readId1Bitmap, writeId1Bitmap, writeInodeChainList } from '../structs/dinode';
import { CHECK_OFFSET, verifyBlockCheck } from '../blockcheck';
import { OCFS2_CHAIN_FL, OCFS2_GROUP_DESC_SIGNATURE, OCFS2_VALID_FL, hasSignature } from '../constants';
import type { CheckContext } from './context';
import type { PassName } from './problems';

/** One group descriptor as found in a chain. */
export interface GroupInfo {
  blkno: number;
  chain: number;
  bits: number;
  /** bg_free_bits_count as on disk. */
  free: number;
  /** Copy of the bitmap (bg_size bytes). */
  bitmap: Buffer;
  /** Discontiguous group extents (cluster runs), or null for a contiguous group. */
  list: ExtentList | null;
  /** Descriptor needs rewriting (a field was repaired). */
  dirty: boolean;
  /** The raw block (a private copy). */
  buf: Buffer;
}

export interface AllocatorInfo {
  name: string;
  blkno: number;
  cl: ChainList;
  groups: GroupInfo[];
  /** Global bitmap (bits are clusters) or a suballocator (bits are blocks). */
  global: boolean;
  /** Inode block copy. */
  buf: Buffer;
  /** The chain list / counts need rewriting. */
  dirty: boolean;
}

function bitsFree(g: GroupInfo): number {
  return g.bits - countSetBits(g.bitmap, g.bits);
}

/** Block of bit `bit` of a suballocator group (bits are blocks; discontiguous groups map through bg_list). */
export function groupBitBlock(ctx: CheckContext, g: GroupInfo, bit: number): number {
  if (!g.list) return g.blkno + bit;
  const bpc = ctx.vol.clusterBlocks;
  let left = bit;
  for (const r of g.list.recs) {
    const n = r.clusters * bpc;
    if (left < n) return r.blkno + left;
    left -= n;
  }
  return -1;
}

/**
 * Walk and verify one chain allocator (pass 0).  Records every group found;
 * with repair, fixes descriptor fields and counts in the returned state
 * (written by `writeAllocator`).
 */
export async function verifyChainAllocator(ctx: CheckContext, name: string, pass: PassName, global: boolean): Promise<AllocatorInfo | null> {
  const vol = ctx.vol;
  let blkno: number;
  try { blkno = vol.systemFile(name); } catch {
    ctx.report(pass, 'SYSTEM_FILE_MISSING', vol.systemDirBlkno, `system file ${name} is missing from the system directory`, false);
    return null;
  }
  const raw = Buffer.from(await vol.dev.readBlock(blkno));
  if (vol.metaEcc) {
    try { verifyBlockCheck(Buffer.from(raw), CHECK_OFFSET.dinode, blkno); } catch {
      ctx.report(pass, 'BAD_CRC32', blkno, `Allocator inode ${blkno} (${name}) has a bad block check`, false);
    }
  }
  const h = DinodeHeader.decode(raw, 0);
  if (!(h.i_flags & OCFS2_VALID_FL) || !(h.i_flags & OCFS2_CHAIN_FL)) {
    ctx.report(pass, 'ALLOCATOR_INVALID', blkno, `Allocator inode ${blkno} (${name}) is not a valid chain allocator`, false);
    return null;
  }
  let cl: ChainList;
  try { cl = decodeChainList(raw, DINODE_ID2_OFFSET, blkno); } catch (e) {
    ctx.report(pass, 'CHAIN_COUNT', blkno, `Allocator inode ${blkno}: ${(e as Error).message}`, false);
    return null;
  }
  const a: AllocatorInfo = { name, blkno, cl, groups: [], global, buf: raw, dirty: false };
  const blocks = vol.dev.blockCount;
  const numGds = Math.floor((h.i_clusters + cl.cpg) / Math.max(1, cl.cpg));
  const maxChainLen = Math.floor((numGds + cl.count) / Math.max(1, cl.count));
  let total = 0;
  let free = 0;
  const seen = new Set<number>();
  for (let ci = 0; ci < cl.recs.length; ci++) {
    const rec = cl.recs[ci]!;
    if (rec.c_blkno !== 0 && rec.c_blkno >= blocks) {
      const fix = ctx.report(pass, 'CHAIN_HEAD_LINK_RANGE', blkno,
        `Chain ${ci} in allocator inode ${blkno} contains an initial block reference to ${rec.c_blkno} which is out of range`, true);
      if (fix) { rec.c_blkno = 0; a.dirty = true; }
    }
    let csTotal = 0;
    let csFree = 0;
    let prev: GroupInfo | null = null;
    let next = rec.c_blkno;
    let depth = 0;
    let truncate = false;
    while (next !== 0 && next < blocks) {
      if (seen.has(next) || depth > maxChainLen) {
        const fix = ctx.report(pass, 'GROUP_CHAIN_LOOP', blkno, `Loop detected in chain ${ci} at block ${rec.c_blkno} (allocator ${blkno})`, true);
        if (fix) truncate = true;
        break;
      }
      seen.add(next);
      const gbuf = Buffer.from(await vol.dev.readBlock(next));
      let eccBad = false;
      if (vol.metaEcc) {
        try { verifyBlockCheck(gbuf, CHECK_OFFSET.groupDesc, next); } catch { eccBad = true; }
      }
      if (!hasSignature(gbuf, 0, OCFS2_GROUP_DESC_SIGNATURE) || eccBad) {
        const fix = ctx.report(pass, 'CHAIN_LINK_MAGIC', blkno,
          `Chain ${ci} in allocator at inode ${blkno} contains a reference at depth ${depth} to block ${next} which doesn't have a valid ${eccBad ? 'checksum' : 'signature'}`, true);
        if (fix) truncate = true;
        break;
      }
      const gh = GroupDescHeader.decode(gbuf, 0);
      if (gh.bg_generation !== (vol.sb.fsGeneration >>> 0)) {
        const fix = ctx.report(pass, 'CHAIN_LINK_GEN', next,
          `Group descriptor at block ${next} has a generation of ${gh.bg_generation.toString(16)} which doesn't match the volume's generation of ${(vol.sb.fsGeneration >>> 0).toString(16)}`, true);
        if (fix) { truncate = true; break; }
      }
      const g: GroupInfo = {
        blkno: next, chain: ci, bits: gh.bg_bits, free: gh.bg_free_bits_count,
        bitmap: Buffer.from(gbuf.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + Math.min(gh.bg_size, vol.blockSize - GROUP_BITMAP_OFFSET))),
        list: null, dirty: false, buf: gbuf,
      };
      if (groupIsDiscontig(gbuf)) {
        try { g.list = decodeExtentList(gbuf, GROUP_LIST_OFFSET, next); } catch (e) {
          ctx.report(pass, 'DISCONTIG_BG_LIST_CORRUPT', next, `Discontiguous group descriptor at block ${next}: ${(e as Error).message}`, false);
        }
      }
      if (gh.bg_parent_dinode !== blkno) {
        const fix = ctx.report(pass, 'GROUP_PARENT', next,
          `Group descriptor at block ${next} is referenced by inode ${blkno} but thinks its parent inode is ${gh.bg_parent_dinode}`, true);
        if (fix) { gh.bg_parent_dinode = blkno; g.dirty = true; }
      }
      if (gh.bg_blkno !== next) {
        const fix = ctx.report(pass, 'GROUP_BLKNO', next, `Group descriptor read from block ${next} claims to be located at block ${gh.bg_blkno}`, true);
        if (fix) { gh.bg_blkno = next; g.dirty = true; }
      }
      if (gh.bg_chain !== ci) {
        const fix = ctx.report(pass, 'GROUP_CHAIN', next, `Group descriptor at block ${next} was found in chain ${ci} but it claims to be in chain ${gh.bg_chain}`, true);
        if (fix) { gh.bg_chain = ci; g.dirty = true; }
      }
      if (g.bits > g.bitmap.length * 8) {
        ctx.report(pass, 'GROUP_BITS', next, `Group descriptor at block ${next} claims ${g.bits} bits but its bitmap holds ${g.bitmap.length * 8}`, false);
        g.bits = g.bitmap.length * 8;
      }
      const maxFree = bitsFree(g);
      // As fsck.ocfs2, flag only a count above the bitmap's (a lower count
      // just wastes space); the repair write-back recounts every group anyway.
      if (g.free > maxFree) {
        const fix = ctx.report(pass, 'GROUP_FREE_BITS', next,
          `Group descriptor at block ${next} claims to have ${g.free} free bits which is more than ${maxFree} bits indicated by the bitmap`, true);
        if (fix) { g.free = maxFree; g.dirty = true; }
      }
      GroupDescHeader.encode({ ...gh, bg_free_bits_count: g.free }, g.buf, 0);
      csTotal += g.bits;
      csFree += g.free;
      a.groups.push(g);
      prev = g;
      next = gh.bg_next_group;
      depth++;
    }
    if (next !== 0 && next >= blocks && !truncate) {
      const fix = ctx.report(pass, 'CHAIN_LINK_RANGE', blkno,
        `Chain ${ci} in allocator at inode ${blkno} contains a reference at depth ${depth} to block ${next} which is out of range`, true);
      if (fix) truncate = true;
    }
    if (truncate) {
      if (prev) { prev.buf.writeBigUInt64LE(0n, GroupDescHeader.offsetOf('bg_next_group')); prev.dirty = true; }
      else { rec.c_blkno = 0; a.dirty = true; }
    }
    if (csTotal !== rec.c_total || csFree !== rec.c_free) {
      const fix = ctx.report(pass, 'CHAIN_BITS', blkno,
        `Chain ${ci} in allocator inode ${blkno} has ${rec.c_free} bits marked free out of ${rec.c_total} total bits but the block groups in the chain have ${csFree} free out of ${csTotal} total`, true);
      if (fix) { rec.c_total = csTotal; rec.c_free = csFree; a.dirty = true; }
    }
    total += csTotal;
    free += csFree;
  }
  const id1 = readId1Bitmap(raw);
  if (id1.i_total !== total || id1.i_used !== total - free) {
    const fix = ctx.report(pass, 'CHAIN_GROUP_BITS', blkno,
      `Allocator inode ${blkno} has ${id1.i_used} bits marked used out of ${id1.i_total} total bits but the chains have ${total - free} used out of ${total} total`, true);
    if (fix) a.dirty = true;
  }
  const clusters = Math.floor(total / Math.max(1, cl.bpc));
  if (h.i_clusters !== clusters) {
    const fix = ctx.report(pass, 'CHAIN_I_CLUSTERS', blkno,
      `Allocator inode ${blkno} has ${clusters} clusters represented in its allocator chains but has an i_clusters value of ${h.i_clusters}`, true);
    if (fix) a.dirty = true;
  }
  if (h.i_size !== clusters * vol.clusterSize) {
    const fix = ctx.report(pass, 'CHAIN_I_SIZE', blkno,
      `Allocator inode ${blkno} has ${clusters} clusters in its chains which account for ${clusters * vol.clusterSize} bytes, but its i_size is ${h.i_size}`, true);
    if (fix) a.dirty = true;
  }
  return a;
}

/** Replace a group's bitmap with `want` (bits beyond bg_bits untouched); returns true when it changed. */
export function setGroupBitmap(g: GroupInfo, want: Buffer): boolean {
  if (want.equals(g.bitmap)) return false;
  want.copy(g.bitmap);
  g.free = bitsFree(g);
  g.dirty = true;
  return true;
}

/**
 * Write back an allocator after repairs: every changed group descriptor
 * (bitmap, free count), then the chain records and the inode's
 * i_used/i_total/i_clusters/i_size recomputed from the groups.
 */
export async function writeAllocator(ctx: CheckContext, a: AllocatorInfo): Promise<void> {
  const vol = ctx.vol;
  await ctx.tm.run(async (tx) => {
    for (const g of a.groups) {
      if (g.free !== bitsFree(g)) { g.free = bitsFree(g); g.dirty = true; }
      if (!g.dirty) continue;
      const buf = g.buf;
      g.bitmap.copy(buf, GROUP_BITMAP_OFFSET);
      buf.writeUInt16LE(g.free, GroupDescHeader.offsetOf('bg_free_bits_count'));
      tx.writeMeta(g.blkno, buf, CHECK_OFFSET.groupDesc);
      g.dirty = false;
    }
    let total = 0;
    let free = 0;
    let changed = a.dirty;
    a.cl.recs.forEach((rec, ci) => {
      const gs = a.groups.filter((g) => g.chain === ci);
      const t = gs.reduce((s, g) => s + g.bits, 0);
      const f = gs.reduce((s, g) => s + g.free, 0);
      if (rec.c_total !== t || rec.c_free !== f) { rec.c_total = t; rec.c_free = f; changed = true; }
      total += t;
      free += f;
    });
    const buf = a.buf;
    const id1 = readId1Bitmap(buf);
    const h = DinodeHeader.decode(buf, 0);
    const clusters = Math.floor(total / Math.max(1, a.cl.bpc));
    if (id1.i_total !== total || id1.i_used !== total - free || h.i_clusters !== clusters
        || h.i_size !== clusters * vol.clusterSize) changed = true;
    if (!changed) return;
    writeInodeChainList(buf, a.cl);
    writeId1Bitmap(buf, { i_total: total, i_used: total - free });
    buf.writeUInt32LE(clusters, DinodeHeader.offsetOf('i_clusters'));
    buf.writeBigUInt64LE(BigInt(clusters * vol.clusterSize), DinodeHeader.offsetOf('i_size'));
    tx.writeMeta(a.blkno, buf, CHECK_OFFSET.dinode);
    a.dirty = false;
  });
}
