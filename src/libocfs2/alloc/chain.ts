/**
 * One chain allocator inode (ocfs2_fs.h ocfs2_chain_list in id2): the global
 * bitmap (bits are clusters, cl_bpc = 1) or a suballocator (inode_alloc:NNNN,
 * extent_alloc:NNNN: bits are blocks, bit 0 of each group is the group
 * descriptor itself).  Every change goes through the transaction: the group
 * descriptor (bg_free_bits_count, bitmap, bg_contig_free_bits) and the
 * allocator inode (id1.bitmap1.i_used, the chain record's c_free) move
 * together, as ocfs2_block_group_set_bits + ocfs2_alloc_dinode_update_counts.
 *
 * No state is kept here beyond block numbers: everything is re-read through
 * the block layer (pinned copies of this and earlier transactions win), so an
 * aborted transaction leaves nothing stale behind.
 */
import { CHECK_OFFSET } from '../blockcheck';
import { Ocfs2CorruptError } from '../errors';
import {
  inodeChainList, readId1Bitmap, writeId1Bitmap, writeInodeChainList, type Id1BitmapT,
} from '../structs/dinode';
import {
  GROUP_BITMAP_OFFSET, GroupDescHeader, decodeGroupDesc, clearBit, longestZeroRun, setBit, testBit,
  type ChainList, type GroupDesc,
} from '../structs/group';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';

/** Bits claimed in one group. */
export interface BitClaim {
  groupBlkno: number;
  chain: number;
  bit: number;
  count: number;
  /** The group's bg_list when it is discontiguous (suballocators only). */
  discontig: boolean;
  /** Block of the first claimed bit (suballocators; for the global bitmap the caller maps clusters). */
  firstBlkno: number;
}

export interface ClaimOptions {
  /** Try this group first (a goal, or the last group used). */
  firstGroup?: number;
  /** Bits that must be treated as used (e.g. clusters freed earlier in the same transaction). */
  unusable?: (groupBlkno: number, bit: number) => boolean;
}

export interface AllocInodeState {
  buf: Buffer;
  cl: ChainList;
  bm: Id1BitmapT;
}

export class ChainAllocator {
  constructor(
    readonly vol: Volume,
    readonly blkno: number,
    /** True for the global bitmap (cl_bpc = 1, groups at fixed cluster offsets). */
    readonly clusterBitmap: boolean,
  ) {}

  async state(): Promise<AllocInodeState> {
    const { buf } = await this.vol.readInode(this.blkno);
    return { buf, cl: inodeChainList(buf, this.blkno), bm: readId1Bitmap(buf) };
  }

  async readGroup(blkno: number): Promise<{ buf: Buffer; gd: GroupDesc }> {
    const buf = await this.vol.readMetaBlock(blkno, CHECK_OFFSET.groupDesc);
    const gd = decodeGroupDesc(buf, blkno, { fsGeneration: this.vol.sb.fsGeneration, parentDinode: this.blkno });
    return { buf, gd };
  }

  /** Free bits as the inode counts them (i_total - i_used). */
  async freeBits(): Promise<number> {
    const { bm } = await this.state();
    return bm.i_total - bm.i_used;
  }

  /**
   * Claim between `min` and `want` contiguous bits in one group, as
   * ocfs2_claim_suballoc_bits: the chain with the most free bits first, then
   * every other chain.  Returns null when no group has `min` free in a row.
   */
  async claim(tx: Transaction, min: number, want: number, opts: ClaimOptions = {}): Promise<BitClaim | null> {
    const st = await this.state();
    if (st.bm.i_total - st.bm.i_used < min || st.cl.recs.length === 0) return null;
    const tried = new Set<number>();
    const attempt = async (groupBlkno: number): Promise<BitClaim | null> => {
      if (tried.has(groupBlkno)) return null;
      tried.add(groupBlkno);
      const { buf, gd } = await this.readGroup(groupBlkno);
      const found = this.searchGroup(buf, gd, min, want, opts.unusable);
      if (!found) return null;
      return this.applyBits(tx, groupBlkno, found.bit, found.count, true);
    };
    if (opts.firstGroup) {
      const r = await attempt(opts.firstGroup).catch((e: unknown) => {
        if (e instanceof Ocfs2CorruptError) return null; // a stale hint, not corruption of the chain
        throw e;
      });
      if (r) return r;
    }
    // ocfs2_find_victim_chain: the chain with the most free bits first.
    const order = st.cl.recs.map((r, i) => ({ i, free: r.c_free }));
    let victim = 0;
    for (const o of order) if (o.free > order[victim]!.free) victim = o.i;
    const chains = [victim, ...order.map((o) => o.i).filter((i) => i !== victim)];
    for (const chain of chains) {
      const rec = st.cl.recs[chain]!;
      if (rec.c_free < min) continue;
      let g = rec.c_blkno;
      for (let hops = 0; g !== 0; hops++) {
        if (hops > 1_000_000) throw new Ocfs2CorruptError(this.blkno, 'chain loop', `chain ${chain}`);
        const r = await attempt(g);
        if (r) return r;
        g = (await this.readGroup(g)).gd.header.bg_next_group;
      }
    }
    return null;
  }

  /** ocfs2_block_group_find_clear_bits: the first run of `want`, else the longest run (if >= min). */
  private searchGroup(
    buf: Buffer, gd: GroupDesc, min: number, want: number,
    unusable?: (groupBlkno: number, bit: number) => boolean,
  ): { bit: number; count: number } | null {
    const h = gd.header;
    if (h.bg_free_bits_count < min) return null;
    if (this.clusterBitmap && h.bg_contig_free_bits !== 0 && h.bg_contig_free_bits < min) return null;
    const bm = buf.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + h.bg_size);
    const nbits = h.bg_bits;
    let bestBit = -1;
    let bestLen = 0;
    let runStart = -1;
    for (let i = 0; i <= nbits; i++) {
      if (i < nbits && (i & 7) === 0 && runStart < 0 && bm[i >> 3] === 0xff && i + 8 <= nbits) { i += 7; continue; }
      const free = i < nbits && !testBit(bm, i) && !(unusable && unusable(h.bg_blkno, i));
      if (free) {
        if (runStart < 0) runStart = i;
        if (i - runStart + 1 >= want) return { bit: runStart, count: want };
      } else if (runStart >= 0) {
        if (i - runStart > bestLen) { bestLen = i - runStart; bestBit = runStart; }
        runStart = -1;
      }
    }
    return bestLen >= min && bestLen > 0 ? { bit: bestBit, count: bestLen } : null;
  }

  /**
   * Set (claim) or clear (free) `count` bits from `bit` in a group and move
   * the counts in the group, the chain record and the inode together.
   */
  async applyBits(tx: Transaction, groupBlkno: number, bit: number, count: number, set: boolean): Promise<BitClaim> {
    const { buf: shared, gd } = await this.readGroup(groupBlkno);
    const h = gd.header;
    if (count <= 0 || bit < 0 || bit + count > h.bg_bits) {
      throw new Ocfs2CorruptError(groupBlkno, 'bit range outside the group', `bits ${bit}+${count}, bg_bits ${h.bg_bits}`);
    }
    const buf = Buffer.from(shared);
    const bm = buf.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + h.bg_size);
    for (let i = bit; i < bit + count; i++) {
      if (testBit(bm, i) === set) {
        throw new Ocfs2CorruptError(groupBlkno, set ? 'claiming a bit already in use' : 'freeing a bit not in use', `bit ${i}`);
      }
      if (set) setBit(bm, i); else clearBit(bm, i);
    }
    const free = h.bg_free_bits_count + (set ? -count : count);
    if (free < 0 || free > h.bg_bits) throw new Ocfs2CorruptError(groupBlkno, 'group free count out of range', `${free}`);
    buf.writeUInt16LE(free, GroupDescHeader.offsetOf('bg_free_bits_count'));
    // bg_contig_free_bits: kept exact for cluster groups (the kernel uses it to
    // skip groups), 0 ("unknown") for block groups as ocfs2_block_group_set_bits.
    const contig = this.clusterBitmap ? longestZeroRun(bm, h.bg_bits) : (set ? 0 : h.bg_contig_free_bits);
    buf.writeUInt16LE(contig, GroupDescHeader.offsetOf('bg_contig_free_bits'));
    tx.writeMeta(groupBlkno, buf, CHECK_OFFSET.groupDesc);

    const st = await this.state();
    const ibuf = Buffer.from(st.buf);
    const chain = h.bg_chain;
    const rec = st.cl.recs[chain];
    if (!rec) throw new Ocfs2CorruptError(groupBlkno, 'group bg_chain beyond cl_next_free_rec', `bg_chain ${chain}`);
    rec.c_free += set ? -count : count;
    const used = st.bm.i_used + (set ? count : -count);
    if (rec.c_free < 0 || rec.c_free > rec.c_total || used < 0 || used > st.bm.i_total) {
      throw new Ocfs2CorruptError(this.blkno, 'allocator counts out of range', `chain ${chain} c_free ${rec.c_free}, i_used ${used}`);
    }
    writeInodeChainList(ibuf, st.cl);
    writeId1Bitmap(ibuf, { i_used: used, i_total: st.bm.i_total });
    tx.writeMeta(this.blkno, ibuf, CHECK_OFFSET.dinode);

    let firstBlkno = groupBlkno + bit;
    if (gd.list) {
      const bpc = st.cl.bpc;
      const r = gd.list.recs.find((e) => bit >= e.cpos * bpc && bit < (e.cpos + e.clusters) * bpc);
      if (!r) throw new Ocfs2CorruptError(groupBlkno, 'bit outside the discontiguous group extents', `bit ${bit}`);
      firstBlkno = r.blkno + (bit - r.cpos * bpc);
    }
    return { groupBlkno, chain, bit, count, discontig: gd.list !== null, firstBlkno };
  }
}
