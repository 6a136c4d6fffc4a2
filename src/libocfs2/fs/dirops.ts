/**
 * Directory changes: find an entry with its location, add and remove
 * entries in inline, linear (block) and indexed directories, grow a
 * directory (inline data -> first block, then block by block, a cluster at a
 * time), rewrite "..".  Directories never shrink (as in the kernel).
 *
 * Linear directories (no index): new entries go where ocfs2_find_dir_space_el
 * puts them (the first block, in logical order, with a dirent that fits),
 * found through an in-memory map of each block's largest hole; lookups use
 * an in-memory name -> location map per directory.  Both are built from the
 * disk on first use, are valid for the mount's lifetime (one node writes),
 * follow every change made here, are checked against the directory's
 * generation, and are dropped for directories a failed transaction touched
 * (`rollback`, called by Ocfs2Fs.op).  The number of cached names is bounded.
 *
 * Indexed directories: lookups go through the dx index (dxops.ts); new
 * entries go to the first block of the unindexed free-space list
 * (dr_free_blk -> db_free_next) whose db_free_rec_len fits, new blocks are
 * pushed at the head of the list, full blocks leave it and blocks gaining
 * room by a delete join it again (ocfs2_search_dx_free_list,
 * ocfs2_recalc_free_list, ocfs2_delete_entry_dx).  The list is mirrored in
 * memory and the mirror is checked against the block's trailer before use.
 *
 * Block directories carry a trailer iff the kernel's readers expect one
 * (metaecc volume, or the directory is indexed).  db_free_rec_len is set when
 * a block is formatted, and kept up to date only in indexed directories (as
 * the kernel does).
 */
import { Ocfs2CorruptError, PosixError } from '../errors';
import { OCFS2_INLINE_DATA_FL, OCFS2_INDEXED_DIR_FL, OCFS2_DIR_TRAILER_SIGNATURE, hasSignature } from '../constants';
import {
  DinodeHeader, INLINE_DATA_OFFSET, inodeExtentList, inodeInlineData, writeInodeExtentList,
  extentRecsPerInode, inlineXattrSize, type DinodeHeaderT,
} from '../structs/dinode';
import {
  iterateDirEntries, insertDirEntry, removeDirEntry, findDirEntry, dirHasTrailer, dirBlockArea, dirBlockCheckOffset,
  initEmptyDirArea, initDirTrailer, largestDirHole, dirTrailerOffset, readDirTrailer, dirRecLen, DirBlockTrailer, DirEntryHeader,
  type DirArea, type NewDirEntry,
} from '../structs/dir';
import { emptyExtentList } from '../structs/extent';
import { lookupExtent } from '../extentmap';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import { loadInode, storeInode, patchInode } from './inode';
import type { RwVolumeLike } from './types';
import {
  createDxRoot, dxFind, dxHash, dxInsert, dxNumEntries, dxPrepareInsert, dxRemove, dxFreeHead, dxSetFreeHead, dxTruncate,
} from './dxops';

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

export interface DirOpsOptions {
  /** Upper bound of names held by the in-memory indexes of linear directories (default 1,000,000). */
  maxCachedNames?: number;
}

interface NameLoc { blkno: number; offset: number; inode: number; fileType: number }

/** In-memory index of a linear block directory. */
interface LinearIndex {
  gen: number;
  /** Physical block of each logical block. */
  blocks: number[];
  /** Largest hole (ocfs2_figure_dirent_hole) of each logical block, 0 below OCFS2_DIR_MIN_REC_LEN. */
  holes: number[];
  names: Map<string, NameLoc>;
}

/** Mirror of an indexed directory's free-space list, in list order. */
interface FreeList {
  gen: number;
  order: number[];
  recs: number[];
}

function isInline(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INLINE_DATA_FL) !== 0; }
export function isIndexed(h: DinodeHeaderT): boolean { return (h.i_dyn_features & OCFS2_INDEXED_DIR_FL) !== 0 && h.i_dx_root !== 0; }

const key = (name: Buffer): string => name.toString('latin1');

function inlineArea(buf: Buffer, blkno: number, h: DinodeHeaderT): DirArea {
  const { count } = inodeInlineData(buf, blkno);
  return { blkno, start: INLINE_DATA_OFFSET, size: Math.min(count, h.i_size) };
}

const T_FREE_REC = DirBlockTrailer.offsetOf('db_free_rec_len');
const T_FREE_NEXT = DirBlockTrailer.offsetOf('db_free_next');

/* ---- lean in-place walks of one dirent area (hot: every insert and remove) -------------------- */

const DE_INODE = DirEntryHeader.offsetOf('inode');
const DE_REC_LEN = DirEntryHeader.offsetOf('rec_len');
const DE_NAME_LEN = DirEntryHeader.offsetOf('name_len');
const DE_FILE_TYPE = DirEntryHeader.offsetOf('file_type');
const DE_NAME = DirEntryHeader.size;
const MIN_REC = dirRecLen(1);

/** ocfs2_check_dir_entry for the entry at `rel` of the area [start, start+size). */
function checkedRecLen(buf: Buffer, start: number, size: number, rel: number, blkno: number): number {
  const at = start + rel;
  if (rel + DE_NAME > size) throw new Ocfs2CorruptError(blkno, 'directory entry header crosses the end of the area', `offset=${rel}`);
  const rlen = buf.readUInt16LE(at + DE_REC_LEN);
  const next = rel + rlen;
  if (rlen < MIN_REC || rlen % 4 !== 0 || rlen < dirRecLen(buf[at + DE_NAME_LEN]!) || next > size
      || (next > size - MIN_REC && next !== size)) {
    throw new Ocfs2CorruptError(blkno, 'bad directory entry', `offset=${rel} rec_len=${rlen} name_len=${buf[at + DE_NAME_LEN]}`);
  }
  return rlen;
}

/** ocfs2_figure_dirent_hole of the entry at absolute offset `at`. */
function holeAt(buf: Buffer, at: number, rlen: number): number {
  return buf.readBigUInt64LE(at + DE_INODE) === 0n ? rlen : rlen - dirRecLen(buf[at + DE_NAME_LEN]!);
}

/** ocfs2_find_max_rec_len: the largest hole of the area, 0 when below OCFS2_DIR_MIN_REC_LEN. */
function maxHole(buf: Buffer, area: DirArea): number {
  const start = area.start ?? 0;
  const size = area.size ?? buf.length - start;
  let best = 0;
  for (let rel = 0; rel < size;) {
    const rlen = checkedRecLen(buf, start, size, rel, area.blkno);
    const h = holeAt(buf, start + rel, rlen);
    if (h > best) best = h;
    rel += rlen;
  }
  return best >= MIN_REC ? best : 0;
}

/**
 * __ocfs2_add_entry on one area: the first entry the new record fits in
 * (ocfs2_dirent_would_fit) is reused (unused) or split (live).  Returns the
 * new entry's absolute offset, or undefined when nothing fits.  EEXIST if
 * the name is met on the way.
 */
function addInArea(buf: Buffer, area: DirArea, e: NewDirEntry): number | undefined {
  const start = area.start ?? 0;
  const size = area.size ?? buf.length - start;
  const need = dirRecLen(e.name.length);
  for (let rel = 0; rel < size;) {
    const rlen = checkedRecLen(buf, start, size, rel, area.blkno);
    const at = start + rel;
    const live = buf.readBigUInt64LE(at + DE_INODE) !== 0n;
    const nlen = buf[at + DE_NAME_LEN]!;
    if (live && nlen === e.name.length && buf.compare(e.name, 0, nlen, at + DE_NAME, at + DE_NAME + nlen) === 0) {
      throw new PosixError('EEXIST');
    }
    if (holeAt(buf, at, rlen) >= need) {
      let to = at;
      let len = rlen;
      if (live) {
        const used = dirRecLen(nlen);
        buf.writeUInt16LE(used, at + DE_REC_LEN);
        to = at + used;
        len = rlen - used;
      }
      // Stale bytes of the old record go (the kernel leaves them; readers ignore them).
      buf.fill(0, to, to + len);
      buf.writeBigUInt64LE(BigInt(e.inode), to + DE_INODE);
      buf.writeUInt16LE(len, to + DE_REC_LEN);
      buf[to + DE_NAME_LEN] = e.name.length;
      buf[to + DE_FILE_TYPE] = e.fileType;
      e.name.copy(buf, to + DE_NAME);
      return to;
    }
    rel += rlen;
  }
  return undefined;
}

/** The trailer's free-list fields, after checking signature, db_blkno and db_parent_dinode. */
function trailerFree(buf: Buffer, bs: number, blkno: number, dir: number): { rec: number; next: number } {
  const off = dirTrailerOffset(bs);
  if (!hasSignature(buf, off + DirBlockTrailer.offsetOf('db_signature'), OCFS2_DIR_TRAILER_SIGNATURE)
      || Number(buf.readBigUInt64LE(off + DirBlockTrailer.offsetOf('db_blkno'))) !== blkno
      || Number(buf.readBigUInt64LE(off + DirBlockTrailer.offsetOf('db_parent_dinode'))) !== dir) {
    readDirTrailer(buf, bs, blkno, dir); // throws the precise error
  }
  return { rec: buf.readUInt16LE(off + T_FREE_REC), next: Number(buf.readBigUInt64LE(off + T_FREE_NEXT)) };
}

export class DirOps {
  private readonly linear = new Map<number, LinearIndex>();
  private readonly free = new Map<number, FreeList>();
  private cachedNames = 0;
  private readonly maxCachedNames: number;
  /** Directories whose caches the running transaction changed. */
  private readonly touched = new Set<number>();

  constructor(private readonly rv: RwVolumeLike, opts: DirOpsOptions = {}) {
    this.maxCachedNames = opts.maxCachedNames ?? 1_000_000;
  }

  private get vol(): Volume { return this.rv.vol; }

  /* ---- cache bookkeeping --------------------------------------------------------------------- */

  /** The transaction failed: forget what it taught the caches. */
  rollback(): void {
    for (const d of this.touched) this.forget(d);
    this.touched.clear();
  }

  /** The transaction is over (committed or rolled back). */
  settle(): void { this.touched.clear(); }

  /** Drop every cache of a directory. */
  forget(dir: number): void {
    const l = this.linear.get(dir);
    if (l) { this.cachedNames -= l.names.size; this.linear.delete(dir); }
    this.free.delete(dir);
  }

  /** Number of names the linear-directory indexes hold (for tests). */
  get cacheSize(): number { return this.cachedNames; }

  private touch(dir: number): void { this.touched.add(dir); }

  private trailerOf(h: DinodeHeaderT): boolean {
    return dirHasTrailer({ inlineData: isInline(h), metaEcc: this.vol.metaEcc, indexedDir: (h.i_dyn_features & OCFS2_INDEXED_DIR_FL) !== 0 });
  }

  private area(blkno: number, trailer: boolean): DirArea {
    return dirBlockArea(blkno, this.vol.blockSize, trailer);
  }

  private async readBlock(blkno: number, trailer: boolean): Promise<Buffer> {
    return this.vol.readMetaBlock(blkno, trailer ? dirBlockCheckOffset(this.vol.blockSize) : null);
  }

  private writeBlock(tx: Transaction, blkno: number, buf: Buffer, trailer: boolean): void {
    tx.writeMeta(blkno, buf, trailer ? dirBlockCheckOffset(this.vol.blockSize) : null);
  }

  private setTrailerFree(buf: Buffer, rec: number, next?: number): void {
    const off = dirTrailerOffset(this.vol.blockSize);
    buf.writeUInt16LE(rec, off + T_FREE_REC);
    if (next !== undefined) buf.writeBigUInt64LE(BigInt(next), off + T_FREE_NEXT);
  }

  private async dirInode(dir: number): Promise<{ buf: Buffer; h: DinodeHeaderT }> {
    const { inode, buf } = await this.vol.readInode(dir);
    if ((inode.mode & 0o170000) !== 0o040000) throw new PosixError('ENOTDIR');
    return { buf, h: DinodeHeader.decode(buf, 0) };
  }

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

  /** The name index of a linear block directory (built on first use). */
  private async linearIndex(dir: number, h: DinodeHeaderT, buf: Buffer): Promise<LinearIndex> {
    const hit = this.linear.get(dir);
    if (hit && hit.gen === h.i_generation && hit.blocks.length * this.vol.blockSize === h.i_size) {
      // Most recently used last (eviction takes the oldest).
      this.linear.delete(dir);
      this.linear.set(dir, hit);
      return hit;
    }
    this.forget(dir);
    const trailer = this.trailerOf(h);
    const blocks = await this.blockList(dir, h, buf);
    const idx: LinearIndex = { gen: h.i_generation, blocks, holes: [], names: new Map() };
    for (const b of blocks) {
      const db = await this.readBlock(b, trailer);
      if (trailer) readDirTrailer(db, this.vol.blockSize, b, dir);
      const area = this.area(b, trailer);
      for (const e of iterateDirEntries(db, area)) {
        if (e.inode !== 0 && e.nameLen > 0 && !idx.names.has(key(e.name))) {
          idx.names.set(key(e.name), { blkno: b, offset: e.offset, inode: e.inode, fileType: e.fileType });
        }
      }
      idx.holes.push(largestDirHole(db, area));
    }
    this.linear.set(dir, idx);
    this.cachedNames += idx.names.size;
    this.evict(dir);
    return idx;
  }

  private evict(keep: number): void {
    for (const [d, l] of this.linear) {
      if (this.cachedNames <= this.maxCachedNames) break;
      if (d === keep) continue;
      this.cachedNames -= l.names.size;
      this.linear.delete(d);
    }
  }

  /** The mirror of an indexed directory's free-space list (built by walking it on first use). */
  private async freeList(dir: number, h: DinodeHeaderT): Promise<FreeList> {
    const hit = this.free.get(dir);
    if (hit && hit.gen === h.i_generation) return hit;
    const fl: FreeList = { gen: h.i_generation, order: [], recs: [] };
    const limit = h.i_size / this.vol.blockSize + 1;
    for (let b = await dxFreeHead(this.vol, h.i_dx_root, dir); b !== 0;) {
      if (fl.order.length >= limit) throw new Ocfs2CorruptError(h.i_dx_root, 'directory free-space list loops or is too long');
      const t = readDirTrailer(await this.readBlock(b, true), this.vol.blockSize, b, dir);
      fl.order.push(b);
      fl.recs.push(t.db_free_rec_len);
      b = t.db_free_next;
    }
    if (this.free.size > 4096) this.free.delete(this.free.keys().next().value!);
    this.free.set(dir, fl);
    return fl;
  }

  /* ---- lookups ------------------------------------------------------------------------------- */

  /** Find a live entry by name. */
  async find(dirBlkno: number, name: Buffer): Promise<EntryLoc | undefined> {
    const { buf, h } = await this.dirInode(dirBlkno);
    if (isInline(h)) {
      const e = findDirEntry(buf, inlineArea(buf, dirBlkno, h), name);
      return e && { inode: e.inode, fileType: e.fileType, blkno: dirBlkno, offset: e.offset, inline: true, name: e.name };
    }
    if (isIndexed(h)) {
      const r = await dxFind(this.vol, h.i_dx_root, dirBlkno, name);
      return r && { inode: r.entry.inode, fileType: r.entry.fileType, blkno: r.blkno, offset: r.entry.offset, inline: false, name: r.entry.name };
    }
    if (name.length === 0 || name.length > 255) return undefined;
    const l = (await this.linearIndex(dirBlkno, h, buf)).names.get(key(name));
    return l && { inode: l.inode, fileType: l.fileType, blkno: l.blkno, offset: l.offset, inline: false, name: Buffer.from(name) };
  }

  /** True if the directory holds nothing but "." and "..". */
  async isEmpty(dirBlkno: number): Promise<boolean> {
    const { buf, h } = await this.dirInode(dirBlkno);
    const dot = (n: Buffer) => n.length <= 2 && (n.toString() === '.' || n.toString() === '..');
    if (isInline(h)) {
      for (const e of iterateDirEntries(buf, inlineArea(buf, dirBlkno, h))) if (e.inode && !dot(e.name)) return false;
      return true;
    }
    // ocfs2_empty_dir_dx: the index counts the names.
    if (isIndexed(h)) return (await dxNumEntries(this.vol, h.i_dx_root, dirBlkno)) <= 2;
    const idx = await this.linearIndex(dirBlkno, h, buf);
    for (const k of idx.names.keys()) if (k !== '.' && k !== '..') return false;
    return true;
  }

  /* ---- add ------------------------------------------------------------------------------------ */

  /**
   * Add an entry (the caller has checked that the name is absent).  Grows
   * the directory (and its index) when needed.  The directory's
   * i_size/i_clusters change here; its times are the caller's.
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
    this.touch(dirBlkno);
    if (isIndexed(h)) await this.addIndexed(tx, dirBlkno, h, e);
    else await this.addLinear(tx, dirBlkno, h, buf, e);
  }

  /** ocfs2_find_dir_space_el + __ocfs2_add_entry: the first block (logical order) with room, else a new block. */
  private async addLinear(tx: Transaction, dir: number, h: DinodeHeaderT, buf: Buffer, e: NewDirEntry): Promise<void> {
    const trailer = this.trailerOf(h);
    const need = dirRecLen(e.name.length);
    for (let attempt = 0; ; attempt++) {
      const idx = await this.linearIndex(dir, h, buf);
      let i = idx.holes.findIndex((x) => x >= need);
      let blk: number;
      if (i < 0) {
        blk = await this.extend(tx, dir, trailer);
        i = idx.blocks.length;
        idx.blocks.push(blk);
        idx.holes.push(0);
      } else {
        blk = idx.blocks[i]!;
      }
      const db = Buffer.from(await this.readBlock(blk, trailer));
      const area = this.area(blk, trailer);
      const off = addInArea(db, area, e);
      if (off === undefined) {
        // The hole map disagrees with the block: rebuild it once.
        if (attempt > 0) throw new Ocfs2CorruptError(blk, 'directory block has no room although its largest hole fits');
        this.forget(dir);
        continue;
      }
      this.writeBlock(tx, blk, db, trailer);
      idx.holes[i] = maxHole(db, area);
      if (!idx.names.has(key(e.name))) this.cachedNames++;
      idx.names.set(key(e.name), { blkno: blk, offset: off, inode: e.inode, fileType: e.fileType });
      return;
    }
  }

  /** ocfs2_prepare_dx_dir_for_insert + __ocfs2_add_entry for an indexed directory. */
  private async addIndexed(tx: Transaction, dir: number, h: DinodeHeaderT, e: NewDirEntry): Promise<void> {
    const vol = this.vol;
    const rootBlk = h.i_dx_root;
    const hash = dxHash(vol, e.name);
    await dxPrepareInsert(vol, this.rv.alloc, tx, rootBlk, dir, hash);
    const need = dirRecLen(e.name.length);
    let fl = await this.freeList(dir, h);
    let i = -1;
    let db: Buffer | undefined;
    for (let attempt = 0; attempt < 2 && !db; attempt++) {
      i = fl.recs.findIndex((r) => r >= need);
      if (i < 0) break;
      const b = fl.order[i]!;
      const cand = Buffer.from(await this.readBlock(b, true));
      const t = trailerFree(cand, vol.blockSize, b, dir);
      if (t.rec === fl.recs[i] && t.next === (fl.order[i + 1] ?? 0)) { db = cand; break; }
      // The mirror disagrees with the disk: walk the list again.
      this.free.delete(dir);
      fl = await this.freeList(dir, h);
      i = -1;
    }
    if (!db) {
      // ocfs2_extend_dir + ocfs2_dx_dir_link_trailer: a new block at the head of the list.
      const nb = await this.extend(tx, dir, true);
      const head = await dxFreeHead(vol, rootBlk, dir);
      db = Buffer.from(await this.readBlock(nb, true));
      this.setTrailerFree(db, dirTrailerOffset(vol.blockSize), head);
      await dxSetFreeHead(vol, tx, rootBlk, dir, nb);
      fl.order.unshift(nb);
      fl.recs.unshift(dirTrailerOffset(vol.blockSize));
      i = 0;
    }
    const blk = fl.order[i]!;
    const area = this.area(blk, true);
    if (addInArea(db, area, e) === undefined) {
      this.free.delete(dir);
      throw new Ocfs2CorruptError(blk, 'directory block has no room although db_free_rec_len fits');
    }
    await dxInsert(vol, tx, rootBlk, dir, hash, blk);
    // ocfs2_recalc_free_list
    const max = maxHole(db, area);
    if (max) {
      this.setTrailerFree(db, max);
      fl.recs[i] = max;
    } else {
      const next = fl.order[i + 1] ?? 0;
      if (i === 0) {
        await dxSetFreeHead(vol, tx, rootBlk, dir, next);
      } else {
        const pb = fl.order[i - 1]!;
        const prev = Buffer.from(await this.readBlock(pb, true));
        this.setTrailerFree(prev, fl.recs[i - 1]!, next);
        this.writeBlock(tx, pb, prev, true);
      }
      this.setTrailerFree(db, 0, 0);
      fl.order.splice(i, 1);
      fl.recs.splice(i, 1);
    }
    this.writeBlock(tx, blk, db, true);
  }

  /* ---- remove / retarget ---------------------------------------------------------------------- */

  /** Remove the entry at `loc`. */
  async remove(tx: Transaction, dirBlkno: number, loc: EntryLoc): Promise<void> {
    const vol = this.vol;
    const { buf, h } = await loadInode(vol, dirBlkno);
    if (loc.inline) {
      removeDirEntry(buf, inlineArea(buf, dirBlkno, h), loc.offset);
      storeInode(tx, dirBlkno, buf, h);
      return;
    }
    this.touch(dirBlkno);
    if (isIndexed(h)) { await this.removeIndexed(tx, dirBlkno, h, loc); return; }
    const trailer = this.trailerOf(h);
    const idx = await this.linearIndex(dirBlkno, h, buf);
    const db = Buffer.from(await this.readBlock(loc.blkno, trailer));
    const area = this.area(loc.blkno, trailer);
    removeDirEntry(db, area, loc.offset);
    this.writeBlock(tx, loc.blkno, db, trailer);
    const i = idx.blocks.indexOf(loc.blkno);
    if (i >= 0) idx.holes[i] = maxHole(db, area); else this.forget(dirBlkno);
    if (idx.names.delete(key(loc.name))) this.cachedNames--;
  }

  /** ocfs2_delete_entry_dx: the dirent, the block's free-list state, the dx entry and dr_num_entries. */
  private async removeIndexed(tx: Transaction, dir: number, h: DinodeHeaderT, loc: EntryLoc): Promise<void> {
    const vol = this.vol;
    const rootBlk = h.i_dx_root;
    const db = Buffer.from(await this.readBlock(loc.blkno, true));
    const join = trailerFree(db, vol.blockSize, loc.blkno, dir).rec === 0;
    const area = this.area(loc.blkno, true);
    removeDirEntry(db, area, loc.offset);
    const max = maxHole(db, area);
    const fl = this.free.get(dir);
    if (join) {
      const head = await dxFreeHead(vol, rootBlk, dir);
      this.setTrailerFree(db, max, head);
      await dxSetFreeHead(vol, tx, rootBlk, dir, loc.blkno);
      if (fl) { fl.order.unshift(loc.blkno); fl.recs.unshift(max); }
    } else {
      this.setTrailerFree(db, max);
      if (fl) {
        const i = fl.order.indexOf(loc.blkno);
        if (i >= 0) fl.recs[i] = max; else this.free.delete(dir);
      }
    }
    this.writeBlock(tx, loc.blkno, db, true);
    await dxRemove(vol, tx, rootBlk, dir, loc.name, loc.blkno);
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
    const { h } = await this.dirInode(dirBlkno);
    const trailer = this.trailerOf(h);
    const db = Buffer.from(await this.readBlock(loc.blkno, trailer));
    patch(db);
    this.writeBlock(tx, loc.blkno, db, trailer);
    this.touch(dirBlkno);
    const n = this.linear.get(dirBlkno)?.names.get(key(loc.name));
    if (n) { n.inode = inode; n.fileType = fileType; }
  }

  /** Make ".." of `dirBlkno` point at `parent`. */
  async setDotDot(tx: Transaction, dirBlkno: number, parent: number): Promise<void> {
    const loc = await this.find(dirBlkno, Buffer.from('..'));
    if (!loc) throw new Ocfs2CorruptError(dirBlkno, 'directory has no ".." entry');
    await this.retarget(tx, dirBlkno, loc, parent, 2);
  }

  /**
   * The directory inode is being deleted: its index (dx leaves, dx extent
   * blocks, root) is freed and the caches forgotten.  Its dirent blocks are
   * the data code's (freed with the inode's extents).
   */
  async release(tx: Transaction, dirBlkno: number): Promise<void> {
    this.forget(dirBlkno);
    this.touch(dirBlkno);
    const { h } = await loadInode(this.vol, dirBlkno);
    if (!(h.i_dyn_features & OCFS2_INDEXED_DIR_FL) || !h.i_dx_root) return;
    await dxTruncate(this.vol, this.rv.alloc, tx, h.i_dx_root, dirBlkno);
    await patchInode(this.vol, tx, dirBlkno, (x) => { x.i_dx_root = 0; x.i_dyn_features &= ~OCFS2_INDEXED_DIR_FL; });
  }

  /* ---- growth --------------------------------------------------------------------------------- */

  /**
   * ocfs2_expand_inline_dir: one cluster, the inline entries copied into its
   * first block, the last entry stretched to the end of the block (or the
   * trailer); on indexed-dirs volumes the directory is indexed at once
   * (ocfs2_dx_dir_attach_index), its first block heading the free list.
   */
  private async expandInline(tx: Transaction, dirBlkno: number): Promise<void> {
    const vol = this.vol;
    this.forget(dirBlkno);
    this.touch(dirBlkno);
    const { buf, h } = await loadInode(vol, dirBlkno);
    const area = inlineArea(buf, dirBlkno, h);
    const entries = [...iterateDirEntries(buf, area)];
    const indexed = vol.indexedDirs;
    const trailer = dirHasTrailer({ inlineData: false, metaEcc: vol.metaEcc, indexedDir: indexed });
    const run = await this.rv.alloc.claimClusters(tx, 1, 1);
    const blk = run.start * vol.clusterBlocks;
    const db = Buffer.alloc(vol.blockSize);
    const areaEnd = trailer ? dirTrailerOffset(vol.blockSize) : vol.blockSize;
    buf.copy(db, 0, area.start!, area.start! + area.size!);
    const last = entries[entries.length - 1]!;
    const lastRel = last.offset - area.start!;
    db.writeUInt16LE(areaEnd - lastRel, lastRel + DirEntryHeader.offsetOf('rec_len'));
    // ocfs2_expand_last_dirent: the largest hole after the stretch.
    const free = largestDirHole(db, this.area(blk, trailer));
    if (trailer) initDirTrailer(db, vol.blockSize, { blkno: blk, parentDinode: dirBlkno, freeRecLen: free });
    // The rest of the cluster's blocks are initialised when the directory grows into them.
    if (vol.clusterBlocks > 1) await tx.writeData(blk + 1, Buffer.alloc(vol.clusterSize - vol.blockSize));
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
      after.h.i_dx_root = await createDxRoot(vol, this.rv.alloc, tx, dirBlkno, blk, names, free ? blk : 0);
      after.h.i_dyn_features |= OCFS2_INDEXED_DIR_FL;
    }
    storeInode(tx, dirBlkno, after.buf, after.h);
  }

  /**
   * ocfs2_extend_dir / ocfs2_do_extend_dir: one empty block at the end of a
   * block directory (a new cluster when the last one is used up); with a
   * trailer whose db_free_rec_len is the whole dirent area.  Returns its
   * number.  Linking it into an index's free list is the caller's.
   */
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
    const area = this.area(phys, trailer);
    initEmptyDirArea(db, area);
    if (trailer) initDirTrailer(db, vol.blockSize, { blkno: phys, parentDinode: dirBlkno, freeRecLen: area.size! });
    this.writeBlock(tx, phys, db, trailer);
    h.i_size += vol.blockSize;
    storeInode(tx, dirBlkno, buf, h);
    return phys;
  }
}
