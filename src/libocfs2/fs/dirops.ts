/**
 * Directory changes: find an entry with its location, add and remove
 * entries in inline and block directories, grow a directory (inline data ->
 * first block, then block by block), rewrite "..".
 *
 * Block directories carry a trailer iff the kernel's readers expect one
 * (metaecc volume, or the directory is indexed): db_free_rec_len is kept as
 * ocfs2_find_max_rec_len computes it.  Indexed directories additionally get
 * their dx entries maintained (dxdir.ts in this folder).
 */
import { Ocfs2CorruptError, PosixError } from '../errors';
import { OCFS2_INLINE_DATA_FL, OCFS2_INDEXED_DIR_FL } from '../constants';
import {
  DinodeHeader, INLINE_DATA_OFFSET, inodeExtentList, inodeInlineData, writeInodeExtentList,
  extentRecsPerInode, inlineXattrSize, type DinodeHeaderT,
} from '../structs/dinode';
import {
  iterateDirEntries, insertDirEntry, removeDirEntry, findDirEntry, dirHasTrailer, dirBlockArea, dirBlockCheckOffset,
  initEmptyDirArea, initDirTrailer, largestDirHole, dirTrailerOffset, DirBlockTrailer, DirEntryHeader,
  OCFS2_DIR_MEMBER_LEN, type DirArea, type NewDirEntry,
} from '../structs/dir';
import { emptyExtentList } from '../structs/extent';
import { lookupExtent } from '../extentmap';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import { loadInode, storeInode } from './inode';
import type { RwVolumeLike } from './types';
import { createInlineDxRoot, dxHasRoom, dxInsert, dxRemove } from './dxops';

/** Where a directory entry lives. */
export interface EntryLoc {
  inode: number;
  fileType: number;
  /** The block holding it (the directory inode itself when inline). */
  blkno: number;
  /** Byte offset of the entry in that block. */
  offset: number;
  inline: boolean;
  name: Buffer;
}

function isInline(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INLINE_DATA_FL) !== 0; }
export function isIndexed(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INDEXED_DIR_FL) !== 0; }

function trailerOf(vol: Volume, h: DinodeHeaderT): boolean {
  return dirHasTrailer({ inlineData: isInline(h), metaEcc: vol.metaEcc, indexedDir: isIndexed(h) });
}

function inlineArea(buf: Buffer, blkno: number, h: DinodeHeaderT): DirArea {
  const { count } = inodeInlineData(buf, blkno);
  return { blkno, start: INLINE_DATA_OFFSET, size: Math.min(count, h.i_size) };
}

export class DirOps {
  /** Directory inode -> logical block where the last insert found room. */
  private readonly hint = new Map<number, number>();

  constructor(private readonly rv: RwVolumeLike) {}

  private get vol(): Volume { return this.rv.vol; }

  /** Physical block of every logical block of a block directory. */
  async blockList(dirBlkno: number, h: DinodeHeaderT, buf: Buffer): Promise<number[]> {
    const vol = this.vol;
    const n = h.i_size / vol.blockSize;
    if (!Number.isInteger(n)) throw new Ocfs2CorruptError(dirBlkno, 'directory i_size is not a multiple of the block size');
    const list = inodeExtentList(buf, dirBlkno);
    const out: number[] = [];
    while (out.length < n) {
      const logical = out.length;
      const { extent } = await lookupExtent(vol, list, dirBlkno, Math.floor(logical / vol.clusterBlocks));
      if (!extent) throw new Ocfs2CorruptError(dirBlkno, 'directory has a hole', `logical block ${logical}`);
      const end = Math.min(n, (extent.cpos + extent.clusters) * vol.clusterBlocks);
      for (let l = logical; l < end; l++) out.push(extent.blkno + (l - extent.cpos * vol.clusterBlocks));
    }
    return out;
  }

  private async readBlock(blkno: number, trailer: boolean): Promise<Buffer> {
    return this.vol.readMetaBlock(blkno, trailer ? dirBlockCheckOffset(this.vol.blockSize) : null);
  }

  private writeBlock(tx: Transaction, blkno: number, buf: Buffer, trailer: boolean): void {
    if (trailer) {
      const off = dirTrailerOffset(this.vol.blockSize) + DirBlockTrailer.offsetOf('db_free_rec_len');
      buf.writeUInt16LE(largestDirHole(buf, dirBlockArea(blkno, this.vol.blockSize, true)), off);
    }
    tx.writeMeta(blkno, buf, trailer ? dirBlockCheckOffset(this.vol.blockSize) : null);
  }

  /** Find a live entry by name. */
  async find(dirBlkno: number, name: Buffer): Promise<EntryLoc | undefined> {
    const { inode: di, buf } = await this.vol.readInode(dirBlkno);
    if ((di.mode & 0o170000) !== 0o040000) throw new PosixError('ENOTDIR');
    const h = DinodeHeader.decode(buf, 0);
    if (isInline(h)) {
      const e = findDirEntry(buf, inlineArea(buf, dirBlkno, h), name);
      return e && { inode: e.inode, fileType: e.fileType, blkno: dirBlkno, offset: e.offset, inline: true, name: e.name };
    }
    const trailer = trailerOf(this.vol, h);
    for (const b of await this.blockList(dirBlkno, h, buf)) {
      const db = await this.readBlock(b, trailer);
      const e = findDirEntry(db, dirBlockArea(b, this.vol.blockSize, trailer), name);
      if (e) return { inode: e.inode, fileType: e.fileType, blkno: b, offset: e.offset, inline: false, name: e.name };
    }
    return undefined;
  }

  /** True if the directory holds nothing but "." and "..". */
  async isEmpty(dirBlkno: number): Promise<boolean> {
    const { buf } = await this.vol.readInode(dirBlkno);
    const h = DinodeHeader.decode(buf, 0);
    const ok = (n: Buffer) => n.length <= 2 && (n.toString() === '.' || n.toString() === '..');
    if (isInline(h)) {
      for (const e of iterateDirEntries(buf, inlineArea(buf, dirBlkno, h))) if (e.inode && !ok(e.name)) return false;
      return true;
    }
    const trailer = trailerOf(this.vol, h);
    for (const b of await this.blockList(dirBlkno, h, buf)) {
      const db = await this.readBlock(b, trailer);
      for (const e of iterateDirEntries(db, dirBlockArea(b, this.vol.blockSize, trailer))) if (e.inode && !ok(e.name)) return false;
    }
    return true;
  }

  /**
   * Add an entry (the caller has checked that the name is absent).  Grows
   * the directory when no block has room.  The directory's i_size/i_clusters
   * change here; its times are the caller's.
   */
  async add(tx: Transaction, dirBlkno: number, e: NewDirEntry): Promise<void> {
    const vol = this.vol;
    let { buf, h } = await loadInode(vol, dirBlkno);
    if (isInline(h)) {
      if (insertDirEntry(buf, inlineArea(buf, dirBlkno, h), e) !== undefined) {
        storeInode(tx, dirBlkno, buf, h);
        return;
      }
      await this.expandInline(tx, dirBlkno);
      ({ buf, h } = await loadInode(vol, dirBlkno));
    }
    const trailer = trailerOf(vol, h);
    const dx = isIndexed(h) ? h.i_dx_root : 0;
    if (dx && !(await dxHasRoom(vol, dx, dirBlkno, e.name))) {
      throw new PosixError('ENOSPC', 'directory index full (dx root/leaf splits are not implemented)');
    }
    const blocks = await this.blockList(dirBlkno, h, buf);
    const start = Math.min(this.hint.get(dirBlkno) ?? 0, blocks.length - 1);
    const order = [...blocks.keys()].slice(start).concat([...blocks.keys()].slice(0, start));
    for (const i of order) {
      const b = blocks[i]!;
      const db = Buffer.from(await this.readBlock(b, trailer));
      if (insertDirEntry(db, dirBlockArea(b, vol.blockSize, trailer), e) !== undefined) {
        this.writeBlock(tx, b, db, trailer);
        this.hint.set(dirBlkno, i);
        if (dx) await dxInsert(vol, tx, dx, dirBlkno, e.name, b);
        return;
      }
    }
    const nb = await this.extend(tx, dirBlkno, trailer);
    const db = Buffer.from(await vol.dev.readBlock(nb));
    if (insertDirEntry(db, dirBlockArea(nb, vol.blockSize, trailer), e) === undefined) {
      throw new PosixError('ENAMETOOLONG');
    }
    this.writeBlock(tx, nb, db, trailer);
    this.hint.set(dirBlkno, blocks.length);
    if (dx) await dxInsert(vol, tx, dx, dirBlkno, e.name, nb);
  }

  /** Remove the entry at `loc`. */
  async remove(tx: Transaction, dirBlkno: number, loc: EntryLoc): Promise<void> {
    const vol = this.vol;
    const { buf, h } = await loadInode(vol, dirBlkno);
    if (loc.inline) {
      removeDirEntry(buf, inlineArea(buf, dirBlkno, h), loc.offset);
      storeInode(tx, dirBlkno, buf, h);
      return;
    }
    const trailer = trailerOf(vol, h);
    const db = Buffer.from(await this.readBlock(loc.blkno, trailer));
    removeDirEntry(db, dirBlockArea(loc.blkno, vol.blockSize, trailer), loc.offset);
    this.writeBlock(tx, loc.blkno, db, trailer);
    if (isIndexed(h) && h.i_dx_root) await dxRemove(vol, tx, h.i_dx_root, dirBlkno, loc.name, loc.blkno);
  }

  /** Point the entry at `loc` to another inode (rename over an existing name). */
  async retarget(tx: Transaction, dirBlkno: number, loc: EntryLoc, inode: number, fileType: number): Promise<void> {
    const vol = this.vol;
    const patch = (b: Buffer) => {
      b.writeBigUInt64LE(BigInt(inode), loc.offset + DirEntryHeader.offsetOf('inode'));
      b[loc.offset + DirEntryHeader.offsetOf('file_type')] = fileType;
    };
    if (loc.inline) {
      const { buf, h } = await loadInode(vol, dirBlkno);
      patch(buf);
      storeInode(tx, dirBlkno, buf, h);
      return;
    }
    const { buf: ib } = await vol.readInode(dirBlkno);
    const trailer = trailerOf(vol, DinodeHeader.decode(ib, 0));
    const db = Buffer.from(await this.readBlock(loc.blkno, trailer));
    patch(db);
    this.writeBlock(tx, loc.blkno, db, trailer);
  }

  /** Make ".." of `dirBlkno` point at `parent`. */
  async setDotDot(tx: Transaction, dirBlkno: number, parent: number): Promise<void> {
    const loc = await this.find(dirBlkno, Buffer.from('..'));
    if (!loc) throw new Ocfs2CorruptError(dirBlkno, 'directory has no ".." entry');
    await this.retarget(tx, dirBlkno, loc, parent, 2);
  }

  /**
   * ocfs2_expand_inline_dir (without creating an index): one cluster, the
   * inline entries copied into its first block, the last entry stretched to
   * the end of the block (or the trailer).
   */
  private async expandInline(tx: Transaction, dirBlkno: number): Promise<void> {
    const vol = this.vol;
    const { buf, h } = await loadInode(vol, dirBlkno);
    const area = inlineArea(buf, dirBlkno, h);
    const entries = [...iterateDirEntries(buf, area)];
    const run = await this.rv.alloc.claimClusters(tx, 1, 1);
    const blk = run.start * vol.clusterBlocks;
    // On indexed-dirs volumes the new block directory is indexed at once (fsck wants an index).
    const indexed = vol.indexedDirs;
    const trailer = dirHasTrailer({ inlineData: false, metaEcc: vol.metaEcc, indexedDir: indexed });
    const db = Buffer.alloc(vol.blockSize);
    const areaEnd = trailer ? dirTrailerOffset(vol.blockSize) : vol.blockSize;
    buf.copy(db, 0, area.start!, area.start! + area.size!);
    const last = entries[entries.length - 1]!;
    const lastRel = last.offset - area.start!;
    db.writeUInt16LE(areaEnd - lastRel, lastRel + DirEntryHeader.offsetOf('rec_len'));
    if (trailer) initDirTrailer(db, vol.blockSize, { blkno: blk, parentDinode: dirBlkno, freeRecLen: 0 });
    // The rest of the cluster's blocks are initialised when the directory grows into them.
    const zero = Buffer.alloc(vol.clusterSize - vol.blockSize);
    if (zero.length) await tx.writeData(blk + 1, zero);
    this.writeBlock(tx, blk, db, trailer);
    h.i_dyn_features &= ~OCFS2_INLINE_DATA_FL;
    buf.fill(0, INLINE_DATA_OFFSET - 8, buf.length - inlineXattrSize(h));
    writeInodeExtentList(buf, emptyExtentList(extentRecsPerInode(vol.blockSize, inlineXattrSize(h))));
    h.i_size = vol.blockSize;
    storeInode(tx, dirBlkno, buf, h);
    await this.rv.extentTree(dirBlkno).insert(tx, { cpos: 0, clusters: 1, blkno: blk, flags: 0 });
    const after = await loadInode(vol, dirBlkno);
    after.h.i_clusters = 1;
    if (indexed) {
      const names = entries.filter((d) => d.inode !== 0 && d.nameLen > 0).map((d) => d.name);
      after.h.i_dx_root = await createInlineDxRoot(vol, this.rv.alloc, tx, dirBlkno, blk, names);
      after.h.i_dyn_features |= OCFS2_INDEXED_DIR_FL;
    }
    storeInode(tx, dirBlkno, after.buf, after.h);
    void OCFS2_DIR_MEMBER_LEN;
  }

  /** Add one empty block at the end of a block directory; returns its number. */
  private async extend(tx: Transaction, dirBlkno: number, trailer: boolean): Promise<number> {
    const vol = this.vol;
    let { buf, h } = await loadInode(vol, dirBlkno);
    const logical = h.i_size / vol.blockSize;
    let phys: number;
    if (logical < h.i_clusters * vol.clusterBlocks) {
      const { extent } = await lookupExtent(vol, inodeExtentList(buf, dirBlkno), dirBlkno, Math.floor(logical / vol.clusterBlocks));
      if (!extent) throw new Ocfs2CorruptError(dirBlkno, 'directory has a hole', `logical block ${logical}`);
      phys = extent.blkno + (logical - extent.cpos * vol.clusterBlocks);
    } else {
      const run = await this.rv.alloc.claimClusters(tx, 1, 1);
      phys = run.start * vol.clusterBlocks;
      if (vol.clusterBlocks > 1) await tx.writeData(phys + 1, Buffer.alloc(vol.clusterSize - vol.blockSize));
      await this.rv.extentTree(dirBlkno).insert(tx, { cpos: h.i_clusters, clusters: 1, blkno: phys, flags: 0 });
      ({ buf, h } = await loadInode(vol, dirBlkno));
      h.i_clusters += 1;
    }
    const db = Buffer.alloc(vol.blockSize);
    initEmptyDirArea(db, dirBlockArea(phys, vol.blockSize, trailer));
    if (trailer) initDirTrailer(db, vol.blockSize, { blkno: phys, parentDinode: dirBlkno, freeRecLen: 0 });
    this.writeBlock(tx, phys, db, trailer);
    h.i_size += vol.blockSize;
    storeInode(tx, dirBlkno, buf, h);
    return phys;
  }
}
