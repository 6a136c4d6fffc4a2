/**
 * setxattr/removexattr as fs/ocfs2/xattr.c stores attributes:
 *  - first in the inode's inline area (created on demand like
 *    ocfs2_xattr_ibody_init: s_xattr_inline_size bytes at the end of the
 *    block, taken from the inline data or the extent list's unused records);
 *  - then in one external XATTR01 block (i_xattr_loc);
 *  - when that block is full, the block becomes an index
 *    (ocfs2_xattr_create_index_block): OCFS2_XATTR_INDEXED, its body a tree
 *    root whose extent list maps name hashes (as cpos) to clusters of 4 KiB
 *    buckets.  The first record starts at hash 0 (fsck and the kernel walk
 *    the records from UINT_MAX down to cpos 0), every later record at the
 *    first hash it holds; the first bucket of a record carries
 *    xh_num_buckets; entries of a bucket are sorted by hash and equal hashes
 *    never span two buckets (ocfs2_xattr_bucket_find looks in one bucket).
 *  - values over 80 bytes live in clusters behind a value root (an extent
 *    list of l_count 1, as the kernel's def_xv) that grows like any extent
 *    tree (ExtentTree via an in-memory root) when the clusters are not
 *    contiguous.
 *
 * Each change re-lays out the attribute storage (inline area, block or
 * buckets) from the list of attributes; value roots are carried over
 * unchanged (an extent block has no owner pointer, so a root may move), so
 * only the changed value is written.  Bucket clusters are reused, claimed one
 * cluster per tree record as the kernel's ocfs2_add_new_xattr_cluster, and
 * freed (with a journal revoke for their blocks) when no longer needed.
 * Nothing of this counts in i_clusters (the kernel's doesn't either).
 */
import { PosixError } from '../errors';
import {
  OCFS2_INLINE_XATTR_FL, OCFS2_HAS_XATTR_FL, OCFS2_INLINE_DATA_FL, OCFS2_XATTR_INLINE_SIZE, OCFS2_XATTR_INDEXED,
  OCFS2_XATTR_BUCKET_SIZE, S_IFMT, S_IFLNK,
} from '../constants';
import {
  inodeExtentList, writeInodeExtentList, inodeInlineData, writeInlineDataHeader, fastSymlinkChars, inlineXattrSize,
  type DinodeHeaderT,
} from '../structs/dinode';
import { EXTENT_REC_SIZE, emptyExtentList, encodeExtentList, extentRecsFitting, type ExtentList } from '../structs/extent';
import {
  splitXattrName, writeXattrArea, decodeXattrBlock, newXattrBlockHeader, XattrBlockHeader, XattrTreeRootHeader,
  XATTR_BLOCK_ATTRS_OFFSET, XATTR_BLOCK_CHECK_OFFSET, XATTR_BUCKET_CHECK_OFFSET, writeXattrBucket, blocksPerXattrBucket,
  xattrBucketsPerCluster, xattrLocalValue, type XattrToStore, type XattrValueRoot,
} from '../structs/xattr';
import { updateBlockCheck } from '../blockcheck';
import { xattrNameHash } from '../dirhash';
import { readMapped } from '../extentmap';
import { listXattrRefs } from '../xattrs';
import { ExtentTree, type ExtentRootAccess, type MetaBlockSource } from '../extenttree';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import { loadInode, storeInode } from './inode';
import type { RwVolumeLike } from './types';

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** XATTR_SIZE_MAX */
const XATTR_SIZE_MAX = 65536;
/** XATTR_NAME_MAX */
const XATTR_NAME_MAX = 255;
/** Offset of xt_list in an indexed xattr block. */
const TREE_LIST_OFFSET = XATTR_BLOCK_ATTRS_OFFSET + XattrTreeRootHeader.size;

/** One attribute as stored: a local value (<= 80 bytes) or a value root. */
interface Attr {
  nameIndex: number;
  shortName: Buffer;
  nameHash: number;
  value?: Buffer;
  root?: { root: XattrValueRoot; valueSize: number };
}

function isInlineData(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INLINE_DATA_FL) !== 0; }

function cloneList(l: ExtentList): ExtentList {
  return { ...l, recs: l.recs.map((r) => ({ ...r })) };
}

/** ocfs2_xattr_recs_per_xb: the tree root's l_count. */
export function xattrRecsPerBlock(blockSize: number): number {
  return extentRecsFitting(XATTR_BLOCK_ATTRS_OFFSET + XattrTreeRootHeader.size, blockSize);
}

/**
 * A value root held in memory while it is being built or freed; whoever
 * lays out the storage encodes it afterwards.
 */
class MemValueRoot implements ExtentRootAccess {
  constructor(readonly ownerBlkno: number, readonly vr: XattrValueRoot) {}
  async read(): Promise<{ list: ExtentList; lastEbBlk: number }> {
    return { list: cloneList(this.vr.list), lastEbBlk: this.vr.lastEbBlk };
  }
  async write(_tx: Transaction, list: ExtentList, lastEbBlk: number): Promise<void> {
    this.vr.list = cloneList(list);
    this.vr.lastEbBlk = lastEbBlk;
  }
}

/** The bucket tree root of an indexed xattr block (xt_list, xt_last_eb_blk). */
class XattrTreeRootAccess implements ExtentRootAccess {
  constructor(private readonly vol: Volume, readonly ownerBlkno: number) {}
  async read(): Promise<{ list: ExtentList; lastEbBlk: number }> {
    const xb = await this.vol.readMetaBlock(this.ownerBlkno, XATTR_BLOCK_CHECK_OFFSET);
    const blk = decodeXattrBlock(xb, this.ownerBlkno, this.vol.blockSize);
    if (!blk.indexed) throw new PosixError('EIO', `xattr block ${this.ownerBlkno} is not indexed`);
    return { list: cloneList(blk.tree!.list), lastEbBlk: blk.tree!.lastEbBlk };
  }
  async write(tx: Transaction, list: ExtentList, lastEbBlk: number): Promise<void> {
    const xb = Buffer.from(await this.vol.readMetaBlock(this.ownerBlkno, XATTR_BLOCK_CHECK_OFFSET));
    xb.fill(0, TREE_LIST_OFFSET, this.vol.blockSize);
    encodeExtentList(list, xb, TREE_LIST_OFFSET);
    xb.writeBigUInt64LE(BigInt(lastEbBlk), XATTR_BLOCK_ATTRS_OFFSET + XattrTreeRootHeader.offsetOf('xt_last_eb_blk'));
    tx.writeMeta(this.ownerBlkno, xb, XATTR_BLOCK_CHECK_OFFSET);
  }
}

interface Loaded {
  attrs: Attr[];
  /** i_xattr_loc when the inode has an xattr block. */
  xblk: number;
  indexed: boolean;
}

export class XattrOps {
  constructor(private readonly rv: RwVolumeLike) {}
  private get vol(): Volume { return this.rv.vol; }
  private get meta(): MetaBlockSource { return this.rv.alloc; }

  /** Every attribute of the inode (values > 80 bytes as their roots, not read). */
  private async loadAll(ino: number): Promise<Loaded> {
    const vol = this.vol;
    const f = await vol.readInode(ino);
    const attrs: Attr[] = [];
    for (const ref of await listXattrRefs(vol, f)) {
      const it = ref.item;
      const a: Attr = { nameIndex: it.nameIndex, shortName: it.shortName, nameHash: it.entry.xe_name_hash >>> 0 };
      if (it.local) a.value = xattrLocalValue(ref.source, it);
      else {
        const r = it.valueRoot!;
        a.root = { root: { ...r, list: cloneList(r.list) }, valueSize: it.valueSize };
      }
      attrs.push(a);
    }
    const h = f.inode;
    const xblk = (h.dynFeatures & OCFS2_HAS_XATTR_FL) && h.xattrLoc ? h.xattrLoc : 0;
    let indexed = false;
    if (xblk) {
      const xb = await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET);
      indexed = decodeXattrBlock(xb, xblk, vol.blockSize, { fsGeneration: vol.sb.fsGeneration }).indexed;
    }
    return { attrs, xblk, indexed };
  }

  /** The value of a stored attribute. */
  async valueOf(ino: number, a: Attr): Promise<Buffer> {
    if (a.value) return a.value;
    return readMapped(this.vol, a.root!.root.list, ino, 0, a.root!.valueSize);
  }

  /** Store a value > 80 bytes in clusters (as many runs as the allocator gives); returns its root. */
  private async storeValue(tx: Transaction, ino: number, value: Buffer): Promise<XattrValueRoot> {
    const vol = this.vol;
    const cs = vol.clusterSize;
    const n = Math.ceil(value.length / cs);
    const vr: XattrValueRoot = { clusters: 0, lastEbBlk: 0, reserved0: 0, list: emptyExtentList(1) };
    const tree = ExtentTree.forRoot(vol, this.meta, new MemValueRoot(ino, vr));
    let c = 0;
    while (c < n) {
      const run = await this.rv.alloc.claimClusters(tx, 1, n - c);
      const count = Math.min(run.count, n - c);
      if (count < run.count) await this.rv.alloc.freeClusters(tx, { start: run.start + count, count: run.count - count });
      const out = Buffer.alloc(count * cs);
      value.copy(out, 0, c * cs, Math.min(value.length, (c + count) * cs));
      const blkno = run.start * vol.clusterBlocks;
      await tx.writeData(blkno, out);
      await tree.insert(tx, { cpos: c, clusters: count, blkno, flags: 0 });
      c += count;
    }
    vr.clusters = n;
    return vr;
  }

  /** Free a value's clusters and its extent blocks (ocfs2_xattr_value_truncate to 0). */
  private async freeValue(tx: Transaction, ino: number, vr: XattrValueRoot): Promise<void> {
    const tree = ExtentTree.forRoot(this.vol, this.meta, new MemValueRoot(ino, { ...vr, list: cloneList(vr.list) }));
    for (const r of await tree.remove(tx, 0, 2 ** 40)) {
      await this.rv.alloc.freeClusters(tx, { start: r.blkno / this.vol.clusterBlocks, count: r.clusters });
    }
  }

  private async makeAttr(tx: Transaction, ino: number, nameIndex: number, shortName: Buffer, value: Buffer): Promise<Attr> {
    const a: Attr = { nameIndex, shortName, nameHash: xattrNameHash(shortName, this.vol.uuidHash) >>> 0 };
    if (value.length <= OCFS2_XATTR_INLINE_SIZE) a.value = Buffer.from(value);
    else a.root = { root: await this.storeValue(tx, ino, value), valueSize: value.length };
    return a;
  }

  async set(tx: Transaction, ino: number, full: Buffer, value: Buffer, flags: number): Promise<void> {
    const sp = splitXattrName(full);
    if (!sp || !this.vol.xattrs) throw new PosixError('EOPNOTSUPP');
    if (sp.name.length > XATTR_NAME_MAX) throw new PosixError('ERANGE');
    if (sp.name.length === 0 && sp.nameIndex !== 2 && sp.nameIndex !== 3) throw new PosixError('EINVAL');
    if (value.length > XATTR_SIZE_MAX) throw new PosixError('E2BIG');
    const { attrs, xblk, indexed } = await this.loadAll(ino);
    const i = attrs.findIndex((a) => a.nameIndex === sp.nameIndex && a.shortName.equals(sp.name));
    if (i >= 0 && (flags & XATTR_CREATE)) throw new PosixError('EEXIST');
    if (i < 0 && (flags & XATTR_REPLACE)) throw new PosixError('ENODATA');
    const old = i >= 0 ? attrs[i]! : undefined;
    if (old?.root) await this.freeValue(tx, ino, old.root.root);
    const next = await this.makeAttr(tx, ino, sp.nameIndex, sp.name, value);
    if (i >= 0) attrs[i] = next; else attrs.push(next);
    await this.layout(tx, ino, attrs, xblk, indexed);
  }

  async remove(tx: Transaction, ino: number, full: Buffer): Promise<void> {
    const sp = splitXattrName(full);
    if (!sp) throw new PosixError('ENODATA');
    const { attrs, xblk, indexed } = await this.loadAll(ino);
    const i = attrs.findIndex((a) => a.nameIndex === sp.nameIndex && a.shortName.equals(sp.name));
    if (i < 0) throw new PosixError('ENODATA');
    const [gone] = attrs.splice(i, 1);
    if (gone?.root) await this.freeValue(tx, ino, gone.root.root);
    await this.layout(tx, ino, attrs, xblk, indexed);
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

  private static toStore(a: Attr): XattrToStore {
    const s: XattrToStore = { nameIndex: a.nameIndex, shortName: a.shortName, nameHash: a.nameHash };
    if (a.root) s.valueRoot = a.root; else s.value = a.value ?? Buffer.alloc(0);
    return s;
  }

  /** Lay out all attributes: inline area first (in order), then the xattr block or its buckets. */
  private async layout(tx: Transaction, ino: number, attrs: Attr[], xblkIn: number, indexedIn: boolean): Promise<void> {
    const vol = this.vol;
    const stores = attrs.map(XattrOps.toStore);
    const { buf, h } = await loadInode(vol, ino);
    let k = 0;
    if (stores.length && this.tryInitInline(buf, h)) {
      const inl = inlineXattrSize(h);
      const area = { blkno: ino, headerOffset: vol.blockSize - inl, size: inl };
      const scratch = Buffer.alloc(vol.blockSize);
      k = stores.length;
      while (k > 0 && !writeXattrArea(scratch, area, stores.slice(0, k))) k--;
      writeXattrArea(buf, area, stores.slice(0, k));
    } else if (inlineXattrSize(h)) {
      const inl = inlineXattrSize(h);
      writeXattrArea(buf, { blkno: ino, headerOffset: vol.blockSize - inl, size: inl }, []);
    }
    const rest = stores.slice(k);
    let xblk = xblkIn;
    let indexed = indexedIn;
    if (rest.length === 0) {
      if (xblk) await this.freeBlock(tx, xblk);
      xblk = 0;
    } else {
      if (!xblk) {
        const sa = await this.rv.alloc.claimMetaBlock(tx);
        xblk = sa.blkno;
        const hdr = newXattrBlockHeader({
          xb_blkno: sa.blkno, xb_suballoc_slot: sa.suballocSlot, xb_suballoc_bit: sa.suballocBit,
          xb_suballoc_loc: sa.suballocLoc, xb_fs_generation: vol.sb.fsGeneration >>> 0,
        });
        const nb = Buffer.alloc(vol.blockSize);
        XattrBlockHeader.encode(hdr, nb, 0);
        writeXattrArea(nb, { blkno: xblk, headerOffset: XATTR_BLOCK_ATTRS_OFFSET, size: vol.blockSize - XATTR_BLOCK_ATTRS_OFFSET }, []);
        tx.writeMeta(xblk, nb, XATTR_BLOCK_CHECK_OFFSET);
        indexed = false;
      }
      const xb = Buffer.from(await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET));
      if (!indexed) {
        if (writeXattrArea(xb, { blkno: xblk, headerOffset: XATTR_BLOCK_ATTRS_OFFSET, size: vol.blockSize - XATTR_BLOCK_ATTRS_OFFSET }, rest)) {
          tx.writeMeta(xblk, xb, XATTR_BLOCK_CHECK_OFFSET);
        } else {
          // The block is full: it becomes the root of a bucket tree (ocfs2_xattr_create_index_block).
          this.makeIndexRoot(tx, xblk, xb);
          await this.layoutBuckets(tx, xblk, rest);
        }
      } else {
        await this.layoutBuckets(tx, xblk, rest);
      }
    }
    h.i_xattr_loc = xblk;
    // HAS_XATTR_FL means "has attributes" (inline or in a block); fsck walks them only with it.
    if (stores.length > 0 || xblk) h.i_dyn_features |= OCFS2_HAS_XATTR_FL;
    else h.i_dyn_features &= ~OCFS2_HAS_XATTR_FL;
    storeInode(tx, ino, buf, h);
  }

  /** Turn a plain xattr block into an empty index root (xt_list with ocfs2_xattr_recs_per_xb records). */
  private makeIndexRoot(tx: Transaction, xblk: number, xb: Buffer): void {
    const vol = this.vol;
    const hdr = XattrBlockHeader.decode(xb, 0);
    hdr.xb_flags |= OCFS2_XATTR_INDEXED;
    XattrBlockHeader.encode(hdr, xb, 0);
    xb.fill(0, XATTR_BLOCK_ATTRS_OFFSET, vol.blockSize);
    XattrTreeRootHeader.encode({ xt_clusters: 0, xt_reserved0: 0, xt_last_eb_blk: 0 }, xb, XATTR_BLOCK_ATTRS_OFFSET);
    encodeExtentList(emptyExtentList(xattrRecsPerBlock(vol.blockSize)), xb, TREE_LIST_OFFSET);
    tx.writeMeta(xblk, xb, XATTR_BLOCK_CHECK_OFFSET);
  }

  /** Group attributes into buckets: sorted by hash, equal hashes together, each bucket filled up. */
  private packBuckets(attrs: XattrToStore[]): XattrToStore[][] {
    const bs = this.vol.blockSize;
    const scratch = Buffer.alloc(OCFS2_XATTR_BUCKET_SIZE);
    const sorted = attrs.map((a, i) => ({ a, i })).sort((x, y) => (x.a.nameHash - y.a.nameHash) || (x.i - y.i)).map((x) => x.a);
    const groups: XattrToStore[][] = [];
    for (const a of sorted) {
      const g = groups[groups.length - 1];
      if (g && g[0]!.nameHash === a.nameHash) g.push(a); else groups.push([a]);
    }
    const buckets: XattrToStore[][] = [];
    let cur: XattrToStore[] = [];
    for (const g of groups) {
      const tryCur = cur.concat(g);
      if (writeXattrBucket(scratch, bs, tryCur)) { cur = tryCur; continue; }
      if (cur.length) buckets.push(cur);
      if (!writeXattrBucket(scratch, bs, g)) throw new PosixError('ENOSPC', 'attributes with one name hash do not fit in a bucket');
      cur = g;
    }
    if (cur.length) buckets.push(cur);
    return buckets;
  }

  /**
   * Write `attrs` into the buckets of the indexed block `xblk`: one cluster
   * per tree record (holding buckets_per_cluster buckets), the clusters of
   * the old records reused first, the rest claimed; clusters no longer needed
   * are freed.
   */
  private async layoutBuckets(tx: Transaction, xblk: number, attrs: XattrToStore[]): Promise<void> {
    const vol = this.vol;
    const bs = vol.blockSize;
    const bpc = xattrBucketsPerCluster(vol.clusterSize);
    const bpb = blocksPerXattrBucket(bs);
    const buckets = this.packBuckets(attrs);
    const records: XattrToStore[][][] = [];
    for (let i = 0; i < buckets.length; i += bpc) records.push(buckets.slice(i, i + bpc));
    const tree = ExtentTree.forRoot(vol, this.meta, new XattrTreeRootAccess(vol, xblk));
    // The clusters of the current records, one by one, for reuse.
    const pool: number[] = [];
    for (const r of await tree.records()) for (let c = 0; c < r.clusters; c++) pool.push(r.blkno / vol.clusterBlocks + c);
    await tree.remove(tx, 0, 2 ** 40);
    for (let ri = 0; ri < records.length; ri++) {
      const rec = records[ri]!;
      let cluster = pool.shift();
      if (cluster === undefined) cluster = (await this.rv.alloc.claimClusters(tx, 1, 1)).start;
      const base = cluster * vol.clusterBlocks;
      for (let bi = 0; bi < rec.length; bi++) {
        const bucket = Buffer.alloc(OCFS2_XATTR_BUCKET_SIZE);
        if (!writeXattrBucket(bucket, bs, rec[bi]!, bi === 0 ? rec.length : 0)) throw new PosixError('EIO', 'xattr bucket layout failed');
        // The check of a bucket covers all of its 4 KiB (ocfs2_block_check_compute_bhs).
        if (vol.metaEcc) updateBlockCheck(bucket, XATTR_BUCKET_CHECK_OFFSET, 0, OCFS2_XATTR_BUCKET_SIZE);
        for (let b = 0; b < bpb; b++) tx.writeMeta(base + bi * bpb + b, bucket.subarray(b * bs, (b + 1) * bs), null);
      }
      const cpos = ri === 0 ? 0 : rec[0]![0]!.nameHash >>> 0;
      await tree.insert(tx, { cpos, clusters: 1, blkno: base, flags: 0 });
    }
    for (const c of pool) await this.freeBucketCluster(tx, c);
    const xb = Buffer.from(await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET));
    XattrTreeRootHeader.encode({
      ...XattrTreeRootHeader.decode(xb, XATTR_BLOCK_ATTRS_OFFSET), xt_clusters: records.length,
    }, xb, XATTR_BLOCK_ATTRS_OFFSET);
    tx.writeMeta(xblk, xb, XATTR_BLOCK_CHECK_OFFSET);
  }

  /** A bucket cluster goes back (truncate log); its journaled blocks are revoked. */
  private async freeBucketCluster(tx: Transaction, cluster: number): Promise<void> {
    const cb = this.vol.clusterBlocks;
    for (let b = 0; b < cb; b++) tx.forget(cluster * cb + b);
    await this.rv.alloc.freeClusters(tx, { start: cluster, count: 1 });
  }

  /** Free an xattr block: its bucket clusters and tree blocks when indexed, then the block itself. */
  private async freeBlock(tx: Transaction, xblk: number): Promise<void> {
    const vol = this.vol;
    const xb = await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET);
    const blk = decodeXattrBlock(xb, xblk, vol.blockSize);
    if (blk.indexed) {
      const tree = ExtentTree.forRoot(vol, this.meta, new XattrTreeRootAccess(vol, xblk));
      for (const r of await tree.remove(tx, 0, 2 ** 40)) {
        for (let c = 0; c < r.clusters; c++) await this.freeBucketCluster(tx, r.blkno / vol.clusterBlocks + c);
      }
    }
    const hh = decodeXattrBlock(await vol.readMetaBlock(xblk, XATTR_BLOCK_CHECK_OFFSET), xblk, vol.blockSize).header;
    tx.forget(xblk);
    await this.rv.alloc.freeMetaBlock(tx, {
      blkno: xblk, suballocSlot: hh.xb_suballoc_slot, suballocBit: hh.xb_suballoc_bit, suballocLoc: hh.xb_suballoc_loc,
    });
  }

  /** Free every attribute's storage (inode deletion): value clusters, buckets, the xattr block. */
  async freeAll(tx: Transaction, ino: number): Promise<void> {
    const { h } = await loadInode(this.vol, ino);
    if (!inlineXattrSize(h) && !(h.i_dyn_features & OCFS2_HAS_XATTR_FL)) return;
    const { attrs, xblk } = await this.loadAll(ino);
    for (const a of attrs) if (a.root) await this.freeValue(tx, ino, a.root.root);
    if (xblk) await this.freeBlock(tx, xblk);
  }
}

void OCFS2_INLINE_XATTR_FL;
