/**
 * File data: writes, truncates and fallocate over inline data and extent
 * trees.  Clusters newly mapped in the middle of a write are zero-filled
 * where the write does not cover them (as ocfs2_write_begin does), so
 * nothing stale is ever readable; unwritten extents become written when data
 * lands in them (the rest of their cluster gets explicit zeros first).
 */
import { PosixError } from '../errors';
import { OCFS2_INLINE_DATA_FL, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN, OCFS2_EXT_UNWRITTEN } from '../constants';
import {
  DINODE_ID2_OFFSET, INLINE_DATA_OFFSET, inodeExtentList, inodeInlineData, maxInlineData, inlineXattrSize,
  writeInlineDataHeader, writeInodeExtentList, extentRecsPerInode, type DinodeHeaderT,
} from '../structs/dinode';
import { emptyExtentList } from '../structs/extent';
import { lookupExtent, allLeafExtents, type LeafExtent } from '../extentmap';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import { loadInode, storeInode, nowTs, setTime } from './inode';
import type { RwVolumeLike } from './types';

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;

/**
 * The largest file size (ocfs2_max_file_offset on 64-bit hosts: s_maxbytes
 * = cluster size << 32 minus one cluster, so that i_clusters and an extent
 * starting at the last offset stay within 32 bits).  Writes at or past it
 * fail with EFBIG and writes crossing it are cut short, as
 * generic_write_check_limits; truncate and fallocate past it are EFBIG.
 */
export function maxFileSize(vol: Volume): number {
  return Math.min(Number.MAX_SAFE_INTEGER, 2 ** 32 * vol.clusterSize - vol.clusterSize);
}

function isInline(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INLINE_DATA_FL) !== 0; }

export class DataOps {
  /**
   * Inodes whose metadata needed for reading their data back changed since
   * the last full flush (size, allocation, unwritten flags, inline data):
   * fdatasync must commit the journal for these (the kernel's
   * I_DIRTY_DATASYNC); for the others flushing the data is enough.  The
   * caller clears it after a full flush.
   */
  readonly datasyncDirty = new Set<number>();

  constructor(private readonly rv: RwVolumeLike) {}
  private get vol(): Volume { return this.rv.vol; }

  /** Write `data` at `pos`; returns the number of bytes written. */
  async write(tx: Transaction, blkno: number, pos: number, data: Buffer): Promise<number> {
    const vol = this.vol;
    const max = maxFileSize(vol);
    if (pos < 0) throw new PosixError('EINVAL');
    if (data.length > 0 && pos >= max) throw new PosixError('EFBIG');
    if (pos + data.length > max) data = data.subarray(0, max - pos);
    const end = pos + data.length;
    let { buf, h } = await loadInode(vol, blkno);
    if (data.length === 0) return 0;
    // An empty extent file on an inline-data volume turns inline on its first write (ocfs2_try_to_write_inline_data).
    if (!isInline(h) && vol.inlineData && h.i_size === 0 && h.i_clusters === 0 && end <= maxInlineData(vol.blockSize, inlineXattrSize(h))) {
      h.i_dyn_features |= OCFS2_INLINE_DATA_FL;
      buf.fill(0, DINODE_ID2_OFFSET, vol.blockSize - inlineXattrSize(h));
      writeInlineDataHeader(buf, maxInlineData(vol.blockSize, inlineXattrSize(h)));
    }
    if (isInline(h)) {
      this.datasyncDirty.add(blkno);
      const { count } = inodeInlineData(buf, blkno);
      if (end <= count) {
        data.copy(buf, INLINE_DATA_OFFSET + pos);
        h.i_size = Math.max(h.i_size, end);
        const t = nowTs(); setTime(h, 'm', t); setTime(h, 'c', t);
        storeInode(tx, blkno, buf, h);
        return data.length;
      }
      await this.convertInline(tx, blkno);
      ({ buf, h } = await loadInode(vol, blkno));
    }
    // A gap after EOF: zero the rest of EOF's cluster first (see zeroPastEof).
    if (pos > h.i_size) await this.zeroPastEof(tx, blkno, h.i_size, pos);
    if (await this.writeExtents(tx, blkno, pos, data) || end > h.i_size) this.datasyncDirty.add(blkno);
    ({ buf, h } = await loadInode(vol, blkno));
    h.i_size = Math.max(h.i_size, end);
    const t = nowTs(); setTime(h, 'm', t); setTime(h, 'c', t);
    storeInode(tx, blkno, buf, h);
    return data.length;
  }

  /** Inline data -> an extent list (ocfs2_convert_inline_data_to_extents); the data is rewritten into clusters. */
  async convertInline(tx: Transaction, blkno: number): Promise<void> {
    const vol = this.vol;
    const { buf, h } = await loadInode(vol, blkno);
    const old = Buffer.from(inodeInlineData(buf, blkno).data.subarray(0, h.i_size));
    h.i_dyn_features &= ~OCFS2_INLINE_DATA_FL;
    buf.fill(0, DINODE_ID2_OFFSET, vol.blockSize - inlineXattrSize(h));
    writeInodeExtentList(buf, emptyExtentList(extentRecsPerInode(vol.blockSize, inlineXattrSize(h))));
    storeInode(tx, blkno, buf, h);
    if (old.length > 0) await this.writeExtents(tx, blkno, 0, old);
  }

  /** Map clusters for [cpos, cpos+n) where there are holes; returns nothing, updates i_clusters. */
  private async allocate(tx: Transaction, blkno: number, cpos: number, n: number, unwritten: boolean,
    fill?: (cpos: number, clusters: number, pblk: number) => Promise<void>): Promise<Array<[number, number]>> {
    const fresh: Array<[number, number]> = [];
    const vol = this.vol;
    let c = cpos;
    const end = cpos + n;
    while (c < end) {
      const { buf } = await vol.readInode(blkno);
      const { extent, next } = await lookupExtent(vol, inodeExtentList(buf, blkno), blkno, c);
      if (extent) { c = extent.cpos + extent.clusters; continue; }
      const holeEnd = Math.min(end, next ? next.cpos : end);
      const want = Math.min(holeEnd - c, 0xffff);
      const run = await this.rv.alloc.claimClusters(tx, 1, want);
      const pblk = run.start * vol.clusterBlocks;
      if (fill) await fill(c, run.count, pblk);
      await this.rv.extentTree(blkno).insert(tx, { cpos: c, clusters: run.count, blkno: pblk, flags: unwritten ? OCFS2_EXT_UNWRITTEN : 0 });
      const l = await loadInode(vol, blkno);
      l.h.i_clusters += run.count;
      storeInode(tx, blkno, l.buf, l.h);
      fresh.push([c, c + run.count]);
      c += run.count;
    }
    return fresh;
  }

  /** Write data into an extent-mapped file (allocating holes, converting unwritten clusters); true if the mapping changed. */
  private async writeExtents(tx: Transaction, blkno: number, pos: number, data: Buffer): Promise<boolean> {
    const vol = this.vol;
    const cs = vol.clusterSize;
    const bs = vol.blockSize;
    const end = pos + data.length;
    const c0 = Math.floor(pos / cs);
    const c1 = Math.ceil(end / cs);
    // New clusters: write whole clusters (data where given, zeros elsewhere).
    const fresh = await this.allocate(tx, blkno, c0, c1 - c0, false, async (cpos, clusters, pblk) => {
      const from = cpos * cs;
      const out = Buffer.alloc(clusters * cs);
      const s = Math.max(from, pos); const e = Math.min(from + out.length, end);
      if (e > s) data.copy(out, s - from, s - pos, e - pos);
      await tx.writeData(pblk, out);
    });
    let mapped = fresh.length > 0;
    // Everything is mapped now; copy into existing clusters (fresh ones are rewritten harmlessly).
    let p = pos;
    while (p < end) {
      const cp = Math.floor(p / cs);
      const f = fresh.find(([a, b]) => cp >= a && cp < b);
      if (f) { p = Math.min(end, f[1] * cs); continue; }
      const { buf } = await vol.readInode(blkno);
      const { extent } = await lookupExtent(vol, inodeExtentList(buf, blkno), blkno, Math.floor(p / cs));
      if (!extent) throw new PosixError('EIO', 'write: cluster not mapped after allocation');
      const extStart = extent.cpos * cs;
      const extEnd = Math.min(end, (extent.cpos + extent.clusters) * cs);
      if (extent.flags & OCFS2_EXT_UNWRITTEN) {
        // Whole clusters touched by the write become written: zeros around the data.
        const cA = Math.floor(p / cs); const cB = Math.ceil(extEnd / cs);
        const out = Buffer.alloc((cB - cA) * cs);
        data.copy(out, p - cA * cs, p - pos, extEnd - pos);
        await tx.writeData(extent.blkno + (cA - extent.cpos) * vol.clusterBlocks, out);
        await this.rv.extentTree(blkno).setFlags(tx, cA, cB - cA, 0, OCFS2_EXT_UNWRITTEN);
        mapped = true;
        p = extEnd;
        continue;
      }
      // Block-aligned read-modify-write of [p, extEnd).
      const bA = Math.floor((p - extStart) / bs);
      const bB = Math.ceil((extEnd - extStart) / bs);
      const out = Buffer.alloc((bB - bA) * bs);
      const headPartial = (p - extStart) % bs !== 0;
      const tailPartial = (extEnd - extStart) % bs !== 0;
      if (headPartial) (await vol.dev.readBlocks(extent.blkno + bA, 1)).copy(out, 0);
      if (tailPartial && (bB - 1 > bA || !headPartial)) (await vol.dev.readBlocks(extent.blkno + bB - 1, 1)).copy(out, (bB - 1 - bA) * bs);
      data.copy(out, p - extStart - bA * bs, p - pos, extEnd - pos);
      await tx.writeData(extent.blkno + bA, out);
      p = extEnd;
    }
    return mapped;
  }

  /**
   * Extending from `eof` to `to`: zero what lies past the old EOF in its
   * cluster.  It is not always zero on disk: an extending write puts its data
   * there before the commit that raises i_size (ordered mode), so after a
   * crash it holds data the file never had (the kernel zeroes it on extension
   * too, ocfs2_zero_extend).
   */
  private async zeroPastEof(tx: Transaction, blkno: number, eof: number, to: number): Promise<void> {
    const cs = this.vol.clusterSize;
    await this.zeroRange(tx, blkno, eof, Math.min(to, Math.ceil(eof / cs) * cs));
  }

  /** Zero [from, to) of the file where it is mapped and written (within one extent-mapped file). */
  private async zeroRange(tx: Transaction, blkno: number, from: number, to: number): Promise<void> {
    const vol = this.vol;
    if (to <= from) return;
    const { buf } = await vol.readInode(blkno);
    for (const ex of await allLeafExtents(vol, inodeExtentList(buf, blkno), blkno)) {
      if (ex.flags & OCFS2_EXT_UNWRITTEN) continue;
      const s = Math.max(from, ex.cpos * vol.clusterSize);
      const e = Math.min(to, (ex.cpos + ex.clusters) * vol.clusterSize);
      if (e <= s) continue;
      await this.zeroMapped(tx, ex, s, e);
    }
  }

  private async zeroMapped(tx: Transaction, ex: LeafExtent, s: number, e: number): Promise<void> {
    const vol = this.vol; const bs = vol.blockSize;
    const base = ex.cpos * vol.clusterSize;
    const bA = Math.floor((s - base) / bs); const bB = Math.ceil((e - base) / bs);
    const step = 256;
    for (let b = bA; b < bB; b += step) {
      const n = Math.min(step, bB - b);
      const out = (s - base) % bs !== 0 || (e - base) % bs !== 0 ? await vol.dev.readBlocks(ex.blkno + b, n) : Buffer.alloc(n * bs);
      const zs = Math.max(s, base + b * bs) - (base + b * bs);
      const ze = Math.min(e, base + (b + n) * bs) - (base + b * bs);
      out.fill(0, zs, ze);
      await tx.writeData(ex.blkno + b, out);
    }
  }

  /** Remove clusters [cpos, cpos+n) from the tree and free them. */
  private async unmap(tx: Transaction, blkno: number, cpos: number, n: number): Promise<void> {
    if (n <= 0) return;
    const removed = await this.rv.extentTree(blkno).remove(tx, cpos, n);
    let total = 0;
    for (const r of removed) {
      await this.rv.alloc.freeClusters(tx, { start: r.blkno / this.vol.clusterBlocks, count: r.clusters });
      total += r.clusters;
    }
    if (total) {
      const l = await loadInode(this.vol, blkno);
      l.h.i_clusters -= total;
      storeInode(tx, blkno, l.buf, l.h);
    }
  }

  /** truncate(2)/ftruncate(2). */
  async truncate(tx: Transaction, blkno: number, size: number): Promise<void> {
    const vol = this.vol;
    this.datasyncDirty.add(blkno);
    if (size > maxFileSize(vol)) throw new PosixError('EFBIG');
    let { buf, h } = await loadInode(vol, blkno);
    if (isInline(h)) {
      const { count } = inodeInlineData(buf, blkno);
      if (size <= count) {
        if (size < h.i_size) buf.fill(0, INLINE_DATA_OFFSET + size, INLINE_DATA_OFFSET + h.i_size);
        h.i_size = size;
        const t = nowTs(); setTime(h, 'm', t); setTime(h, 'c', t);
        storeInode(tx, blkno, buf, h);
        return;
      }
      await this.convertInline(tx, blkno);
      ({ buf, h } = await loadInode(vol, blkno));
    }
    if (size > h.i_size) await this.zeroPastEof(tx, blkno, h.i_size, size);
    if (size < h.i_size || h.i_clusters * vol.clusterSize > size) {
      const keep = Math.ceil(size / vol.clusterSize);
      // Zero the tail of the last kept cluster so a later extension reads zeros.
      await this.zeroRange(tx, blkno, size, keep * vol.clusterSize);
      const { buf: b2 } = await vol.readInode(blkno);
      const all = await allLeafExtents(vol, inodeExtentList(b2, blkno), blkno);
      const last = all.length ? all[all.length - 1]! : undefined;
      if (last && last.cpos + last.clusters > keep) await this.unmap(tx, blkno, keep, last.cpos + last.clusters - keep);
    }
    ({ buf, h } = await loadInode(vol, blkno));
    h.i_size = size;
    const t = nowTs(); setTime(h, 'm', t); setTime(h, 'c', t);
    storeInode(tx, blkno, buf, h);
  }

  /** fallocate(2): mode 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE. */
  async fallocate(tx: Transaction, blkno: number, mode: number, offset: number, length: number): Promise<void> {
    const vol = this.vol;
    this.datasyncDirty.add(blkno);
    if (offset < 0 || length <= 0) throw new PosixError('EINVAL');
    const end = offset + length;
    if (end > maxFileSize(vol)) throw new PosixError('EFBIG');
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) throw new PosixError('EOPNOTSUPP');
    // ocfs2_fallocate: every mode needs the unwritten-extents feature.
    if (!(vol.sb.roCompat & OCFS2_FEATURE_RO_COMPAT_UNWRITTEN)) throw new PosixError('EOPNOTSUPP');
    let { h } = await loadInode(vol, blkno);
    if (mode & FALLOC_FL_PUNCH_HOLE) {
      if (!(mode & FALLOC_FL_KEEP_SIZE)) throw new PosixError('EOPNOTSUPP');
      if (isInline(h)) {
        const l = await loadInode(vol, blkno);
        const s = Math.min(offset, l.h.i_size); const e = Math.min(end, l.h.i_size);
        if (e > s) l.buf.fill(0, INLINE_DATA_OFFSET + s, INLINE_DATA_OFFSET + e);
        const t = nowTs(); setTime(l.h, 'm', t); setTime(l.h, 'c', t);
        storeInode(tx, blkno, l.buf, l.h);
        return;
      }
      const cs = vol.clusterSize;
      const cA = Math.ceil(offset / cs); const cB = Math.floor(end / cs);
      if (cB > cA) {
        await this.zeroRange(tx, blkno, offset, cA * cs);
        await this.zeroRange(tx, blkno, cB * cs, end);
        await this.unmap(tx, blkno, cA, cB - cA);
      } else {
        await this.zeroRange(tx, blkno, offset, end);
      }
    } else {
      if (isInline(h)) {
        if (end <= inodeInlineData((await loadInode(vol, blkno)).buf, blkno).count) {
          // Fits inline: nothing to allocate.
          const l = await loadInode(vol, blkno);
          if (!(mode & FALLOC_FL_KEEP_SIZE) && end > l.h.i_size) l.h.i_size = end;
          const t = nowTs(); setTime(l.h, 'c', t); setTime(l.h, 'm', t);
          storeInode(tx, blkno, l.buf, l.h);
          return;
        }
        await this.convertInline(tx, blkno);
      }
      // ocfs2_allocate_unwritten_extents: holes in the range become unwritten extents, also past
      // i_size with KEEP_SIZE (i_clusters grows, i_size stays: what fsck.ocfs2 1.8.7 calls INODE_SPARSE_SIZE
      // on the kernel's own files too).
      const c0 = Math.floor(offset / vol.clusterSize); const c1 = Math.ceil(end / vol.clusterSize);
      await this.allocate(tx, blkno, c0, c1 - c0, true);
      ({ h } = await loadInode(vol, blkno));
      if (!(mode & FALLOC_FL_KEEP_SIZE) && end > h.i_size) {
        const l = await loadInode(vol, blkno); l.h.i_size = end;
        setTime(l.h, 'c', nowTs());
        storeInode(tx, blkno, l.buf, l.h);
      }
    }
    // __ocfs2_change_file_space: ctime and mtime, whatever the mode.
    const l = await loadInode(vol, blkno);
    const t = nowTs(); setTime(l.h, 'c', t); setTime(l.h, 'm', t);
    storeInode(tx, blkno, l.buf, l.h);
  }

  /** Free every cluster of a file (before its inode is released). */
  async freeAll(tx: Transaction, blkno: number): Promise<void> {
    const { h, buf } = await loadInode(this.vol, blkno);
    if (isInline(h) || h.i_clusters === 0) return;
    const all = await allLeafExtents(this.vol, inodeExtentList(buf, blkno), blkno);
    if (!all.length) return;
    const last = all[all.length - 1]!;
    await this.unmap(tx, blkno, 0, last.cpos + last.clusters);
  }
}
