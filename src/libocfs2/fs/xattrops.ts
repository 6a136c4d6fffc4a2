/**
 * setxattr/removexattr: attributes live in the inode's inline area (created
 * on demand like ocfs2_xattr_ibody_init: s_xattr_inline_size bytes at the
 * end of the block, taken from the inline data or the extent list's unused
 * records) and then in one external XATTR01 block.  Values over 80 bytes
 * are stored in clusters behind a value root (one contiguous extent).
 * Bucketed (indexed) xattr blocks are read and freed but not modified.
 */
import { PosixError } from '../errors';
import {
  OCFS2_INLINE_XATTR_FL, OCFS2_HAS_XATTR_FL, OCFS2_INLINE_DATA_FL, OCFS2_XATTR_INLINE_SIZE, S_IFMT, S_IFLNK,
} from '../constants';
import {
  inodeExtentList, writeInodeExtentList, inodeInlineData, writeInlineDataHeader, fastSymlinkChars, inlineXattrSize,
  type DinodeHeaderT,
} from '../structs/dinode';
import { EXTENT_REC_SIZE, emptyExtentList } from '../structs/extent';
import {
  splitXattrName, listXattrArea, writeXattrArea, decodeXattrBlock, newXattrBlockHeader, XattrBlockHeader,
  XATTR_BLOCK_ATTRS_OFFSET, XATTR_BLOCK_CHECK_OFFSET, xattrLocalValue, type XattrToStore, type XattrValueRoot,
  type XattrItem,
} from '../structs/xattr';
import { xattrNameHash } from '../dirhash';
import { readMapped, allLeafExtents } from '../extentmap';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import { loadInode, storeInode } from './inode';
import type { RwVolumeLike } from './types';

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** XATTR_SIZE_MAX */
const XATTR_SIZE_MAX = 65536;

interface Attr { nameIndex: number; shortName: Buffer; value: Buffer }

function isInlineData(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INLINE_DATA_FL) !== 0; }

export class XattrOps {
  constructor(private readonly rv: RwVolumeLike) {}
  private get vol(): Volume { return this.rv.vol; }

  private async itemValue(buf: Buffer, owner: number, item: XattrItem): Promise<Buffer> {
    if (item.local) return xattrLocalValue(buf, item);
    return readMapped(this.vol, item.valueRoot!.list, owner, 0, item.valueSize);
  }

  /** Every attribute with its value, and the value roots to free when rewriting. */
  private async loadAll(ino: number): Promise<{ attrs: Attr[]; roots: XattrValueRoot[]; blockIndexed: boolean }> {
    const vol = this.vol;
    const { buf } = await vol.readInode(ino);
    const { h } = await loadInode(vol, ino);
    const attrs: Attr[] = []; const roots: XattrValueRoot[] = [];
    const take = async (src: Buffer, items: XattrItem[]) => {
      for (const it of items) {
        attrs.push({ nameIndex: it.nameIndex, shortName: it.shortName, value: await this.itemValue(src, ino, it) });
        if (!it.local && it.valueRoot) roots.push(it.valueRoot);
      }
    };
    const inl = inlineXattrSize(h);
    if (inl) await take(buf, listXattrArea(buf, { blkno: ino, headerOffset: vol.blockSize - inl, size: inl }).items);
    let blockIndexed = false;
    if ((h.i_dyn_features & OCFS2_HAS_XATTR_FL) && h.i_xattr_loc) {
      const xb = await vol.readMetaBlock(h.i_xattr_loc, XATTR_BLOCK_CHECK_OFFSET);
      const blk = decodeXattrBlock(xb, h.i_xattr_loc, vol.blockSize, { fsGeneration: vol.sb.fsGeneration });
      if (blk.indexed) blockIndexed = true;
      else await take(xb, blk.attrs!.items);
    }
    return { attrs, roots, blockIndexed };
  }

  private async freeRoots(tx: Transaction, roots: XattrValueRoot[], owner: number): Promise<void> {
    for (const r of roots) {
      for (const e of await allLeafExtents(this.vol, r.list, owner)) {
        await this.rv.alloc.freeClusters(tx, { start: e.blkno / this.vol.clusterBlocks, count: e.clusters });
      }
    }
  }

  /** Store a value > 80 bytes in fresh clusters; returns the value root. */
  private async storeValue(tx: Transaction, value: Buffer): Promise<XattrValueRoot> {
    const vol = this.vol;
    const n = Math.ceil(value.length / vol.clusterSize);
    const run = await this.rv.alloc.claimClusters(tx, n, n);
    const out = Buffer.alloc(n * vol.clusterSize);
    value.copy(out);
    const blkno = run.start * vol.clusterBlocks;
    await tx.writeData(blkno, out);
    const list = emptyExtentList(1);
    list.nextFreeRec = 1;
    list.recs = [{ cpos: 0, clusters: n, flags: 0, reserved1: 0, blkno }];
    return { clusters: n, lastEbBlk: 0, reserved0: 0, list };
  }

  private async toStore(tx: Transaction, a: Attr): Promise<XattrToStore> {
    const base = { nameIndex: a.nameIndex, shortName: a.shortName, nameHash: xattrNameHash(a.shortName, this.vol.uuidHash) };
    if (a.value.length <= OCFS2_XATTR_INLINE_SIZE) return { ...base, value: a.value };
    return { ...base, valueRoot: { root: await this.storeValue(tx, a.value), valueSize: a.value.length } };
  }

  /** Set up the in-inode xattr area if the inode has room (ocfs2_xattr_ibody_init). */
  private tryInitInline(buf: Buffer, h: DinodeHeaderT): boolean {
    const vol = this.vol;
    const size = vol.sb.raw.s_xattr_inline_size;
    if (!vol.xattrs || size === 0 || inlineXattrSize(h)) return inlineXattrSize(h) > 0;
    if (isInlineData(h)) {
      const { count } = inodeInlineData(buf, h.i_blkno);
      if (count - h.i_size < size) return false;
      writeInlineDataHeader(buf, count - size);
    } else if ((h.i_mode & S_IFMT) === S_IFLNK && h.i_clusters === 0) {
      if (fastSymlinkChars(vol.blockSize) - h.i_size < size) return false;
    } else {
      const el = inodeExtentList(buf, h.i_blkno);
      if ((el.count - el.nextFreeRec) * EXTENT_REC_SIZE < size) return false;
      writeInodeExtentList(buf, { ...el, count: el.count - Math.ceil(size / EXTENT_REC_SIZE) });
    }
    h.i_xattr_inline_size = size;
    h.i_dyn_features |= OCFS2_INLINE_XATTR_FL;
    buf.fill(0, vol.blockSize - size, vol.blockSize);
    return true;
  }

  async set(tx: Transaction, ino: number, full: Buffer, value: Buffer, flags: number): Promise<void> {
    const sp = splitXattrName(full);
    if (!sp) throw new PosixError('EOPNOTSUPP');
    if (!this.vol.xattrs) throw new PosixError('EOPNOTSUPP');
    if (sp.name.length > 255 || (sp.name.length === 0 && sp.nameIndex !== 2 && sp.nameIndex !== 3)) throw new PosixError('ERANGE');
    if (value.length > XATTR_SIZE_MAX) throw new PosixError('E2BIG');
    const { attrs, roots, blockIndexed } = await this.loadAll(ino);
    if (blockIndexed) throw new PosixError('EOPNOTSUPP', 'changing bucketed xattrs is not supported yet');
    const i = attrs.findIndex((a) => a.nameIndex === sp.nameIndex && a.shortName.equals(sp.name));
    if (i >= 0 && (flags & XATTR_CREATE)) throw new PosixError('EEXIST');
    if (i < 0 && (flags & XATTR_REPLACE)) throw new PosixError('ENODATA');
    const next: Attr = { nameIndex: sp.nameIndex, shortName: sp.name, value: Buffer.from(value) };
    if (i >= 0) attrs[i] = next; else attrs.push(next);
    await this.rewrite(tx, ino, attrs, roots);
  }

  async remove(tx: Transaction, ino: number, full: Buffer): Promise<void> {
    const sp = splitXattrName(full);
    if (!sp) throw new PosixError('ENODATA');
    const { attrs, roots, blockIndexed } = await this.loadAll(ino);
    if (blockIndexed) throw new PosixError('EOPNOTSUPP', 'changing bucketed xattrs is not supported yet');
    const i = attrs.findIndex((a) => a.nameIndex === sp.nameIndex && a.shortName.equals(sp.name));
    if (i < 0) throw new PosixError('ENODATA');
    attrs.splice(i, 1);
    await this.rewrite(tx, ino, attrs, roots);
  }

  /** Lay out all attributes again: inline area first (in order), the rest in the xattr block. */
  private async rewrite(tx: Transaction, ino: number, attrs: Attr[], oldRoots: XattrValueRoot[]): Promise<void> {
    const vol = this.vol;
    await this.freeRoots(tx, oldRoots, ino);
    const stores: XattrToStore[] = [];
    for (const a of attrs) stores.push(await this.toStore(tx, a));
    const { buf, h } = await loadInode(vol, ino);
    let k = 0;
    if (stores.length && this.tryInitInline(buf, h)) {
      const inl = inlineXattrSize(h);
      const area = { blkno: ino, headerOffset: vol.blockSize - inl, size: inl };
      k = stores.length;
      while (k > 0 && !writeXattrArea(Buffer.alloc(vol.blockSize), area, stores.slice(0, k))) k--;
      writeXattrArea(buf, area, stores.slice(0, k));
    } else if (inlineXattrSize(h)) {
      const inl = inlineXattrSize(h);
      writeXattrArea(buf, { blkno: ino, headerOffset: vol.blockSize - inl, size: inl }, []);
    }
    const rest = stores.slice(k);
    const hasBlock = (h.i_dyn_features & OCFS2_HAS_XATTR_FL) !== 0 && h.i_xattr_loc !== 0;
    if (rest.length === 0) {
      if (hasBlock) {
        await this.freeBlock(tx, h.i_xattr_loc);
        h.i_xattr_loc = 0;
      }
    } else {
      let xblk = h.i_xattr_loc;
      let hdr: ReturnType<typeof XattrBlockHeader.decode>;
      if (!hasBlock) {
        const sa = await this.rv.alloc.claimMetaBlock(tx);
        xblk = sa.blkno;
        hdr = newXattrBlockHeader({
          xb_blkno: sa.blkno, xb_suballoc_slot: sa.suballocSlot, xb_suballoc_bit: sa.suballocBit,
          xb_suballoc_loc: sa.suballocLoc, xb_fs_generation: vol.sb.fsGeneration >>> 0,
        });
      } else {
        hdr = XattrBlockHeader.decode(await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET), 0);
      }
      const xb = Buffer.alloc(vol.blockSize);
      XattrBlockHeader.encode(hdr, xb, 0);
      if (!writeXattrArea(xb, { blkno: xblk, headerOffset: XATTR_BLOCK_ATTRS_OFFSET, size: vol.blockSize - XATTR_BLOCK_ATTRS_OFFSET }, rest)) {
        throw new PosixError('ENOSPC', 'xattrs do not fit in the inode and one xattr block');
      }
      tx.writeMeta(xblk, xb, XATTR_BLOCK_CHECK_OFFSET);
      h.i_xattr_loc = xblk;
    }
    // HAS_XATTR_FL means "has attributes" (inline or in a block); fsck walks them only with it.
    if (stores.length > 0) h.i_dyn_features |= OCFS2_HAS_XATTR_FL;
    else if (!h.i_xattr_loc) h.i_dyn_features &= ~OCFS2_HAS_XATTR_FL;
    storeInode(tx, ino, buf, h);
  }

  private async freeBlock(tx: Transaction, xblk: number): Promise<void> {
    const vol = this.vol;
    const xb = await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET);
    const blk = decodeXattrBlock(xb, xblk, vol.blockSize);
    if (blk.indexed) {
      for (const e of await allLeafExtents(vol, blk.tree!.list, xblk)) {
        await this.rv.alloc.freeClusters(tx, { start: e.blkno / vol.clusterBlocks, count: e.clusters });
      }
    }
    const hh = blk.header;
    tx.forget(xblk);
    await this.rv.alloc.freeMetaBlock(tx, {
      blkno: xblk, suballocSlot: hh.xb_suballoc_slot, suballocBit: hh.xb_suballoc_bit, suballocLoc: hh.xb_suballoc_loc,
    });
  }

  /** Free every attribute's storage (inode deletion). */
  async freeAll(tx: Transaction, ino: number): Promise<void> {
    const { h } = await loadInode(this.vol, ino);
    if (!inlineXattrSize(h) && !(h.i_dyn_features & OCFS2_HAS_XATTR_FL)) return;
    const { roots, blockIndexed } = await this.loadAll(ino);
    await this.freeRoots(tx, roots, ino);
    if (blockIndexed) {
      // Values in buckets are not walked here: their clusters leak until fsck (documented limitation).
    }
    if ((h.i_dyn_features & OCFS2_HAS_XATTR_FL) && h.i_xattr_loc) await this.freeBlock(tx, h.i_xattr_loc);
  }
}
