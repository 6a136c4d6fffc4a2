/**
 * The POSIX operations of a read-write OCFS2 volume, by inode block number
 * (the FUSE layer resolves paths).  Every operation is one transaction;
 * `Ocfs2Fs` serialises all modifying operations with one mutex, reads do not
 * take it.
 */
import { randomInt } from 'node:crypto';
import { Mutex } from 'async-mutex';
import { PosixError } from '../errors';
import {
  OCFS2_VALID_FL, OCFS2_ORPHANED_FL, OCFS2_INLINE_DATA_FL, OCFS2_INDEXED_DIR_FL, OCFS2_MAX_FILENAME_LEN,
  OCFS2_INODE_SIGNATURE, OCFS2_LINK_MAX, OCFS2_DX_LINK_MAX, OCFS2_HAS_XATTR_FL, signatureBytes,
  S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, OCFS2_FT_DIR, OCFS2_HAS_REFCOUNT_FL,
} from '../constants';
import { CHECK_OFFSET } from '../blockcheck';
import {
  DinodeHeader, DINODE_ID1_OFFSET, DINODE_ID2_OFFSET, INLINE_DATA_OFFSET, maxInlineData, writeInlineDataHeader, writeInodeExtentList,
  extentRecsPerInode, fastSymlinkChars, setLinksCount, writeRdev, type DinodeHeaderT,
} from '../structs/dinode';
import { emptyExtentList } from '../structs/extent';
import { initDotEntries, fileTypeOfMode, dirHasTrailer, dirBlockArea, initDirTrailer, largestDirHole } from '../structs/dir';
import { systemFileName, ORPHAN_DIR_SYSTEM_INODE } from '../sysfiles';
import { readFile } from '../fileio';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import { DirOps, type EntryLoc } from './dirops';
import { DataOps } from './data';
import { XattrOps } from './xattrops';
import { addLinks, linksOf, loadInode, nowTs, patchInode, setTime, storeInode, type Ts } from './inode';
import type { RwVolumeLike } from './types';
import { QuotaTracker } from '../quota';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

export interface Owner { uid: number; gid: number }

export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  /** undefined = leave; 'now' = current time. */
  atime?: Ts | 'now';
  mtime?: Ts | 'now';
  size?: number;
}

function checkName(name: Buffer): void {
  if (name.length === 0) throw new PosixError('ENOENT');
  if (name.length > OCFS2_MAX_FILENAME_LEN) throw new PosixError('ENAMETOOLONG');
  if (name.includes(0x2f) || name.includes(0)) throw new PosixError('EINVAL');
}

const isDirMode = (m: number) => (m & S_IFMT) === S_IFDIR;

/**
 * Clusters shared through a refcount tree (reflinks) must be copied before a
 * write and have their refcount dropped instead of being freed
 * (refcounttree.c); neither is done yet, so every change that would write,
 * allocate over or free an inode's clusters or xattr values is refused
 * rather than corrupting the other copies.
 */
function refuseShared(h: DinodeHeaderT, what: string): void {
  if (h.i_dyn_features & OCFS2_HAS_REFCOUNT_FL) {
    throw new PosixError('EOPNOTSUPP', `${what}: inode ${h.i_blkno} shares clusters through a refcount tree (copy on write is not supported yet)`);
  }
}

export class Ocfs2Fs {
  readonly vol: Volume;
  readonly dirs: DirOps;
  readonly data: DataOps;
  readonly xattrs: XattrOps;
  /** One writer at a time: every modifying operation runs under this lock. */
  readonly lock = new Mutex();
  private generation = randomInt(0, 2 ** 32 - 1);
  private orphanDir: number | undefined;
  /** Quota accounting of every transaction (a no-op without the quota features). */
  readonly quotas: QuotaTracker;

  constructor(readonly rv: RwVolumeLike) {
    this.vol = rv.vol;
    this.dirs = new DirOps(rv);
    this.data = new DataOps(rv);
    this.xattrs = new XattrOps(rv);
    this.quotas = new QuotaTracker(rv);
    try { this.orphanDir = rv.vol.systemFile(systemFileName(ORPHAN_DIR_SYSTEM_INODE, rv.slot)); } catch { this.orphanDir = undefined; }
  }

  /** Run one modifying operation: under the lock, as one transaction. */
  async op<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.lock.runExclusive(async () => {
      // The directory caches follow the transaction: a failed one leaves them as the disk is.
      const run = (tx: Transaction): Promise<T> => this.quotas.run(tx, fn);
      try {
        return await this.rv.tm.run(run);
      } catch (e) {
        this.dirs.rollback();
        // ocfs2_reserve_clusters_with_limit: on ENOSPC, free the truncate log (own transaction, journal
        // committed) and try once more; the failed transaction left nothing behind.
        if (!(e instanceof PosixError && e.code === 'ENOSPC') || !(await this.rv.alloc.freeTruncateLog?.(this.rv.tm))) throw e;
      } finally { this.dirs.settle(); }
      try { return await this.rv.tm.run(run); } catch (e) { this.dirs.rollback(); throw e; } finally { this.dirs.settle(); }
    });
  }

  /** OCFS2_DX_LINK_MAX on indexed-dirs volumes, else OCFS2_LINK_MAX (ocfs2_link_max). */
  get linkMax(): number { return this.vol.indexedDirs ? OCFS2_DX_LINK_MAX : OCFS2_LINK_MAX; }

  async lookup(dir: number, name: Buffer): Promise<EntryLoc | undefined> {
    return this.dirs.find(dir, name);
  }

  private async header(blkno: number): Promise<DinodeHeaderT> {
    return DinodeHeader.decode((await this.vol.readInode(blkno)).buf, 0);
  }

  /** A new inode block as __ocfs2_mknod_locked leaves it. */
  private async newInode(tx: Transaction, dir: number, mode: number, owner: Owner, rdev: number, t: Ts): Promise<{ blkno: number; buf: Buffer; h: DinodeHeaderT }> {
    const vol = this.vol;
    const sa = await this.rv.alloc.claimInode(tx);
    const parent = await this.header(dir);
    let gid = owner.gid;
    // setgid directories hand their group down, and their setgid bit to subdirectories (inode_init_owner).
    if (parent.i_mode & S_ISGID) {
      gid = parent.i_gid;
      if (isDirMode(mode)) mode |= S_ISGID;
    }
    const buf = Buffer.alloc(vol.blockSize);
    const h: DinodeHeaderT = {
      ...DinodeHeader.zero(),
      i_signature: signatureBytes(OCFS2_INODE_SIGNATURE),
      i_generation: (this.generation = (this.generation + 1) >>> 0),
      i_fs_generation: vol.sb.fsGeneration >>> 0,
      i_blkno: sa.blkno,
      i_suballoc_loc: sa.suballocLoc,
      i_suballoc_bit: sa.suballocBit,
      i_suballoc_slot: sa.suballocSlot,
      i_uid: owner.uid >>> 0,
      i_gid: gid >>> 0,
      i_mode: mode & 0xffff,
      i_flags: OCFS2_VALID_FL,
      i_atime: t.sec, i_ctime: t.sec, i_mtime: t.sec,
      i_atime_nsec: t.nsec, i_ctime_nsec: t.nsec, i_mtime_nsec: t.nsec,
      i_orphaned_slot: 0,
      i_dio_orphaned_slot: 0,
    };
    setLinksCount(h, isDirMode(mode) ? 2 : 1);
    DinodeHeader.encode(h, buf, 0);
    const type = mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) {
      // id1 is part of the header struct: set it there so storeInode keeps it.
      writeRdev(buf, BigInt(rdev >>> 0));
      h.id1 = Buffer.from(buf.subarray(DINODE_ID1_OFFSET, DINODE_ID1_OFFSET + 8));
    }
    if (isDirMode(mode) && vol.inlineData) {
      h.i_dyn_features |= OCFS2_INLINE_DATA_FL;
      writeInlineDataHeader(buf, maxInlineData(vol.blockSize, 0));
    } else if (type !== S_IFLNK) {
      writeInodeExtentList(buf, emptyExtentList(extentRecsPerInode(vol.blockSize, 0)));
    }
    return { blkno: sa.blkno, buf, h };
  }

  private async checkAbsent(dir: number, name: Buffer): Promise<void> {
    checkName(name);
    const dh = await this.header(dir);
    if (!isDirMode(dh.i_mode)) throw new PosixError('ENOTDIR');
    if (linksOf(dh) === 0) throw new PosixError('ENOENT');
    if (await this.dirs.find(dir, name)) throw new PosixError('EEXIST');
  }

  private async touchDir(tx: Transaction, dir: number, t: Ts, links = 0): Promise<void> {
    await patchInode(this.vol, tx, dir, (h) => {
      setTime(h, 'm', t); setTime(h, 'c', t);
      if (links) addLinks(h, links);
    });
  }

  /** create/mknod: regular files, fifos, sockets, device nodes. Returns the new inode. */
  async mknod(dir: number, name: Buffer, mode: number, rdev: number, owner: Owner): Promise<number> {
    const type = mode & S_IFMT || S_IFREG;
    if (![S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK].includes(type)) throw new PosixError('EINVAL');
    return this.op(async (tx) => {
      await this.checkAbsent(dir, name);
      const t = nowTs();
      const ni = await this.newInode(tx, dir, type | (mode & 0o7777), owner, rdev, t);
      storeInode(tx, ni.blkno, ni.buf, ni.h);
      await this.dirs.add(tx, dir, { inode: ni.blkno, fileType: fileTypeOfMode(type), name });
      await this.touchDir(tx, dir, t);
      return ni.blkno;
    });
  }

  async mkdir(dir: number, name: Buffer, mode: number, owner: Owner): Promise<number> {
    return this.op(async (tx) => {
      await this.checkAbsent(dir, name);
      const dh = await this.header(dir);
      if (linksOf(dh) >= this.linkMax) throw new PosixError('EMLINK');
      const t = nowTs();
      const ni = await this.newInode(tx, dir, S_IFDIR | (mode & 0o7777), owner, 0, t);
      await initEmptyDirectory(this.rv, tx, ni, dir);
      await this.dirs.add(tx, dir, { inode: ni.blkno, fileType: OCFS2_FT_DIR, name });
      await this.touchDir(tx, dir, t, 1);
      return ni.blkno;
    });
  }

  async symlink(dir: number, name: Buffer, target: Buffer, owner: Owner): Promise<number> {
    if (target.length === 0) throw new PosixError('ENOENT');
    if (target.length >= 4096) throw new PosixError('ENAMETOOLONG');
    return this.op(async (tx) => {
      await this.checkAbsent(dir, name);
      const t = nowTs();
      const ni = await this.newInode(tx, dir, S_IFLNK | 0o777, owner, 0, t);
      ni.h.i_size = target.length;
      if (target.length + 1 <= fastSymlinkChars(this.vol.blockSize)) {
        // Fast symlink: the target in id2, no clusters.
        target.copy(ni.buf, DINODE_ID2_OFFSET);
        storeInode(tx, ni.blkno, ni.buf, ni.h);
      } else {
        writeInodeExtentList(ni.buf, emptyExtentList(extentRecsPerInode(this.vol.blockSize, 0)));
        storeInode(tx, ni.blkno, ni.buf, ni.h);
        const data = Buffer.alloc(target.length + 1);
        target.copy(data);
        const n = Math.ceil(data.length / this.vol.clusterSize);
        const run = await this.rv.alloc.claimClusters(tx, n, n);
        const out = Buffer.alloc(n * this.vol.clusterSize);
        data.copy(out);
        await tx.writeData(run.start * this.vol.clusterBlocks, out);
        await this.rv.extentTree(ni.blkno).insert(tx, { cpos: 0, clusters: n, blkno: run.start * this.vol.clusterBlocks, flags: 0 });
        await patchInode(this.vol, tx, ni.blkno, (h) => { h.i_clusters = n; });
      }
      await this.dirs.add(tx, dir, { inode: ni.blkno, fileType: fileTypeOfMode(S_IFLNK), name });
      await this.touchDir(tx, dir, t);
      return ni.blkno;
    });
  }

  async link(ino: number, dir: number, name: Buffer): Promise<void> {
    await this.op(async (tx) => {
      const ih = await this.header(ino);
      if (isDirMode(ih.i_mode)) throw new PosixError('EPERM');
      if (linksOf(ih) >= this.linkMax) throw new PosixError('EMLINK');
      await this.checkAbsent(dir, name);
      const t = nowTs();
      await patchInode(this.vol, tx, ino, (h) => { addLinks(h, 1); setTime(h, 'c', t); });
      await this.dirs.add(tx, dir, { inode: ino, fileType: fileTypeOfMode(ih.i_mode), name });
      await this.touchDir(tx, dir, t);
    });
  }

  /**
   * unlink/rmdir.  When the last link goes and `isOpen(ino)` says the inode
   * is still open, it is parked in the slot's orphan directory (name = its
   * block number in 16 hex digits) and `releaseOrphan` deletes it later;
   * otherwise it is deleted at once.  Returns the inode number.
   */
  async unlink(dir: number, name: Buffer, opts: { dir: boolean; isOpen?: (ino: number) => boolean }): Promise<number> {
    return this.op(async (tx) => {
      checkName(name);
      if (name.equals(Buffer.from('.'))) throw new PosixError('EINVAL');
      if (name.equals(Buffer.from('..'))) throw new PosixError('ENOTEMPTY');
      const loc = await this.dirs.find(dir, name);
      if (!loc) throw new PosixError('ENOENT');
      const ih = await this.header(loc.inode);
      const targetIsDir = isDirMode(ih.i_mode);
      if (opts.dir && !targetIsDir) throw new PosixError('ENOTDIR');
      if (!opts.dir && targetIsDir) throw new PosixError('EISDIR');
      if (loc.inode === this.vol.rootBlkno) throw new PosixError('EBUSY');
      if (targetIsDir && !(await this.dirs.isEmpty(loc.inode))) throw new PosixError('ENOTEMPTY');
      const t = nowTs();
      await this.dirs.remove(tx, dir, loc);
      await this.touchDir(tx, dir, t, targetIsDir ? -1 : 0);
      await this.dropLink(tx, loc.inode, targetIsDir, t, opts.isOpen);
      return loc.inode;
    });
  }

  /** One name of `ino` is gone: drop its link count and delete or orphan it at zero. */
  private async dropLink(tx: Transaction, ino: number, isDir: boolean, t: Ts, isOpen?: (ino: number) => boolean): Promise<void> {
    const h = await patchInode(this.vol, tx, ino, (h) => {
      addLinks(h, isDir ? -2 : -1);
      setTime(h, 'c', t);
    });
    if (linksOf(h) > 0) return;
    if (isOpen?.(ino) && this.orphanDir !== undefined) {
      await this.dirs.add(tx, this.orphanDir, { inode: ino, fileType: fileTypeOfMode(h.i_mode), name: orphanName(ino) });
      if (isDir) await this.touchDir(tx, this.orphanDir, t, 1); else await this.touchDir(tx, this.orphanDir, t);
      await patchInode(this.vol, tx, ino, (h) => { h.i_flags |= OCFS2_ORPHANED_FL; h.i_orphaned_slot = this.rv.slot; });
      return;
    }
    await this.deleteInode(tx, ino);
  }

  /**
   * Delete an orphaned inode after its last close (or, with `orphanDir`, one
   * found in a slot's orphan directory at mount: ocfs2_recover_orphans).
   * Like ocfs2_query_inode_wipe, an inode that still has links or lacks
   * OCFS2_ORPHANED_FL is left alone.  Returns whether it was deleted.
   */
  async releaseOrphan(ino: number, orphanDir: number | undefined = this.orphanDir): Promise<boolean> {
    return this.op(async (tx) => {
      const h = await this.header(ino);
      if (!(h.i_flags & OCFS2_VALID_FL) || !(h.i_flags & OCFS2_ORPHANED_FL) || linksOf(h) > 0 || orphanDir === undefined) return false;
      const loc = await this.dirs.find(orphanDir, orphanName(ino));
      if (loc) {
        await this.dirs.remove(tx, orphanDir, loc);
        await this.touchDir(tx, orphanDir, nowTs(), isDirMode(h.i_mode) ? -1 : 0);
      }
      await this.deleteInode(tx, ino);
      return true;
    });
  }

  /** ocfs2_delete_inode: free data and xattrs, clear the dinode, give the bit back. */
  private async deleteInode(tx: Transaction, ino: number): Promise<void> {
    refuseShared(await this.header(ino), 'delete');
    await this.data.freeAll(tx, ino);
    await this.xattrs.freeAll(tx, ino);
    await this.dirs.release(tx, ino);
    const t = nowTs();
    const { buf, h } = await loadInode(this.vol, ino);
    h.i_dtime = t.sec;
    h.i_flags &= ~(OCFS2_VALID_FL | OCFS2_ORPHANED_FL);
    storeInode(tx, ino, buf, h);
    await this.rv.alloc.freeInode(tx, {
      blkno: ino, suballocSlot: h.i_suballoc_slot, suballocBit: h.i_suballoc_bit, suballocLoc: h.i_suballoc_loc,
    });
    // freeInode revokes the block (tx.forget); the cleared dinode must still reach the disk, as
    // ocfs2_remove_inode journals it: a stale VALID inode with a free bit is INODE_ALLOC_REPAIR.
    storeInode(tx, ino, buf, h);
  }

  /** EINVAL if directory `dir` would move below itself into `into` (ocfs2_rename's ancestry check). */
  private async checkNotBelow(dir: number, into: number): Promise<void> {
    let cur = into;
    for (let i = 0; i < 4096 && cur !== this.vol.rootBlkno; i++) {
      if (cur === dir) throw new PosixError('EINVAL');
      const up = await this.dirs.find(cur, Buffer.from('..'));
      if (!up || up.inode === cur) break;
      cur = up.inode;
    }
    if (cur === dir) throw new PosixError('EINVAL');
  }

  /**
   * rename(2) and renameat2(RENAME_NOREPLACE).  Over an existing file, or an
   * empty directory when moving a directory (unless noReplace: EEXIST);
   * ".." and link counts follow a directory that changes parent.
   */
  async rename(sdir: number, sname: Buffer, ddir: number, dname: Buffer, opts: { isOpen?: (ino: number) => boolean; noReplace?: boolean } = {}): Promise<void> {
    await this.op(async (tx) => {
      checkName(sname); checkName(dname);
      const src = await this.dirs.find(sdir, sname);
      if (!src) throw new PosixError('ENOENT');
      const sh = await this.header(src.inode);
      const srcIsDir = isDirMode(sh.i_mode);
      const dh = await this.header(ddir);
      if (!isDirMode(dh.i_mode)) throw new PosixError('ENOTDIR');
      if (srcIsDir && sdir !== ddir) await this.checkNotBelow(src.inode, ddir);
      const dst = await this.dirs.find(ddir, dname);
      if (dst && opts.noReplace) throw new PosixError('EEXIST');
      if (dst && dst.inode === src.inode) return; // same inode: nothing to do (POSIX)
      const t = nowTs();
      if (dst) {
        const th = await this.header(dst.inode);
        const dstIsDir = isDirMode(th.i_mode);
        if (srcIsDir && !dstIsDir) throw new PosixError('ENOTDIR');
        if (!srcIsDir && dstIsDir) throw new PosixError('EISDIR');
        if (dstIsDir && !(await this.dirs.isEmpty(dst.inode))) throw new PosixError('ENOTEMPTY');
        await this.dirs.retarget(tx, ddir, dst, src.inode, fileTypeOfMode(sh.i_mode));
        if (dstIsDir) await this.touchDir(tx, ddir, t, -1);
        await this.dropLink(tx, dst.inode, dstIsDir, t, opts.isOpen);
      } else {
        if (srcIsDir && sdir !== ddir && linksOf(dh) >= this.linkMax) throw new PosixError('EMLINK');
        await this.dirs.add(tx, ddir, { inode: src.inode, fileType: fileTypeOfMode(sh.i_mode), name: dname });
      }
      // The source entry may have moved if the same directory grew: look it up again.
      const src2 = await this.dirs.find(sdir, sname);
      if (!src2 || src2.inode !== src.inode) throw new PosixError('EIO', 'rename: source entry vanished');
      await this.dirs.remove(tx, sdir, src2);
      if (srcIsDir && sdir !== ddir) {
        await this.dirs.setDotDot(tx, src.inode, ddir);
        await this.touchDir(tx, sdir, t, -1);
        await this.touchDir(tx, ddir, t, 1);
      } else {
        await this.touchDir(tx, sdir, t);
        if (sdir !== ddir) await this.touchDir(tx, ddir, t);
      }
      await patchInode(this.vol, tx, src.inode, (h) => setTime(h, 'c', t));
    });
  }

  /**
   * renameat2(RENAME_EXCHANGE): both names exist and swap their inodes in one
   * transaction.  A directory that changes parent gets its ".." rewritten and
   * the parents' link counts follow (ocfs2_rename has no exchange; this is
   * what vfs_rename asks of a filesystem that offers it).
   */
  async exchange(sdir: number, sname: Buffer, ddir: number, dname: Buffer): Promise<void> {
    await this.op(async (tx) => {
      checkName(sname); checkName(dname);
      const a = await this.dirs.find(sdir, sname);
      const b = await this.dirs.find(ddir, dname);
      if (!a || !b) throw new PosixError('ENOENT');
      if (a.inode === b.inode) return;
      const ah = await this.header(a.inode);
      const bh = await this.header(b.inode);
      const aDir = isDirMode(ah.i_mode);
      const bDir = isDirMode(bh.i_mode);
      if (sdir !== ddir) {
        if (aDir) await this.checkNotBelow(a.inode, ddir);
        if (bDir) await this.checkNotBelow(b.inode, sdir);
      }
      const t = nowTs();
      await this.dirs.retarget(tx, sdir, a, b.inode, fileTypeOfMode(bh.i_mode));
      const b2 = await this.dirs.find(ddir, dname);
      if (!b2 || b2.inode !== b.inode) throw new PosixError('EIO', 'exchange: entry vanished');
      await this.dirs.retarget(tx, ddir, b2, a.inode, fileTypeOfMode(ah.i_mode));
      if (sdir !== ddir) {
        if (aDir) await this.dirs.setDotDot(tx, a.inode, ddir);
        if (bDir) await this.dirs.setDotDot(tx, b.inode, sdir);
        const delta = (aDir ? 1 : 0) - (bDir ? 1 : 0);
        await this.touchDir(tx, sdir, t, -delta);
        await this.touchDir(tx, ddir, t, delta);
      } else {
        await this.touchDir(tx, sdir, t);
      }
      await patchInode(this.vol, tx, a.inode, (h) => setTime(h, 'c', t));
      await patchInode(this.vol, tx, b.inode, (h) => setTime(h, 'c', t));
    });
  }

  async setattr(ino: number, a: SetAttr): Promise<void> {
    await this.op(async (tx) => {
      const t = nowTs();
      if (a.size !== undefined) {
        const h = await this.header(ino);
        if (isDirMode(h.i_mode)) throw new PosixError('EISDIR');
        if ((h.i_mode & S_IFMT) !== S_IFREG) throw new PosixError('EINVAL');
        refuseShared(h, 'truncate');
        await this.data.truncate(tx, ino, a.size);
      }
      await patchInode(this.vol, tx, ino, (h) => {
        if (a.mode !== undefined) h.i_mode = (h.i_mode & S_IFMT) | (a.mode & 0o7777);
        if (a.uid !== undefined || a.gid !== undefined) {
          // chown clears setuid, and setgid of group-executable files (as notify_change does).
          if (!isDirMode(h.i_mode)) {
            h.i_mode &= ~S_ISUID;
            if (h.i_mode & 0o010) h.i_mode &= ~S_ISGID;
          }
          if (a.uid !== undefined) h.i_uid = a.uid >>> 0;
          if (a.gid !== undefined) h.i_gid = a.gid >>> 0;
        }
        if (a.atime !== undefined) setTime(h, 'a', a.atime === 'now' ? t : a.atime);
        if (a.mtime !== undefined) setTime(h, 'm', a.mtime === 'now' ? t : a.mtime);
        setTime(h, 'c', t);
      });
    });
  }

  async write(ino: number, pos: number, data: Buffer): Promise<number> {
    return this.op(async (tx) => {
      const h = await this.header(ino);
      if ((h.i_mode & S_IFMT) !== S_IFREG) throw new PosixError(isDirMode(h.i_mode) ? 'EISDIR' : 'EINVAL');
      refuseShared(h, 'write');
      const n = await this.data.write(tx, ino, pos, data);
      // A write by anyone clears setuid/setgid (file_remove_privs); the kernel asks for that through setattr.
      return n;
    });
  }

  async read(ino: number, pos: number, length: number): Promise<Buffer> {
    return readFile(this.vol, await this.vol.readInode(ino), pos, length);
  }

  async fallocate(ino: number, mode: number, offset: number, length: number): Promise<void> {
    await this.op(async (tx) => {
      const h = await this.header(ino);
      if ((h.i_mode & S_IFMT) !== S_IFREG) throw new PosixError(isDirMode(h.i_mode) ? 'EISDIR' : 'ENODEV');
      refuseShared(h, 'fallocate');
      await this.data.fallocate(tx, ino, mode, offset, length);
    });
  }

  async setxattr(ino: number, name: Buffer, value: Buffer, flags: number): Promise<void> {
    await this.op(async (tx) => {
      refuseShared(await this.header(ino), 'setxattr');
      await this.xattrs.set(tx, ino, name, value, flags);
      await patchInode(this.vol, tx, ino, (h) => setTime(h, 'c', nowTs()));
    });
  }

  async removexattr(ino: number, name: Buffer): Promise<void> {
    await this.op(async (tx) => {
      refuseShared(await this.header(ino), 'removexattr');
      await this.xattrs.remove(tx, ino, name);
      await patchInode(this.vol, tx, ino, (h) => setTime(h, 'c', nowTs()));
    });
  }

  async flush(): Promise<void> {
    await this.lock.runExclusive(() => this.rv.tm.flush());
  }

  async statfs(): Promise<{ totalClusters: number; freeClusters: number }> {
    return this.rv.alloc.statfs();
  }
}

/** Orphan entries are named by the inode's block number, 16 hex digits (OCFS2_ORPHAN_NAMELEN). */
/**
 * The body of a new, empty directory `ni` (its inode already claimed, header
 * in `ni.h`): "." and ".." inline when the volume has inline data, else in
 * one new cluster (with a trailer when the volume wants them), as
 * ocfs2_mknod_locked / libocfs2 ocfs2_init_dir.  Stores the inode.
 */
export async function initEmptyDirectory(
  rv: RwVolumeLike, tx: Transaction, ni: { blkno: number; buf: Buffer; h: DinodeHeaderT }, parent: number,
): Promise<void> {
  const vol = rv.vol;
  if (vol.inlineData) {
    const size = maxInlineData(vol.blockSize, 0);
    if (!(ni.h.i_dyn_features & OCFS2_INLINE_DATA_FL)) {
      ni.h.i_dyn_features |= OCFS2_INLINE_DATA_FL;
      writeInlineDataHeader(ni.buf, size);
    }
    initDotEntries(ni.buf, { blkno: ni.blkno, start: INLINE_DATA_OFFSET, size }, ni.blkno, parent);
    ni.h.i_size = size;
    storeInode(tx, ni.blkno, ni.buf, ni.h);
    return;
  }
  // No inline data: one block with "." and "..".
  const run = await rv.alloc.claimClusters(tx, 1, 1);
  const pblk = run.start * vol.clusterBlocks;
  const db = Buffer.alloc(vol.blockSize);
  const trailer = dirHasTrailer({ inlineData: false, metaEcc: vol.metaEcc, indexedDir: false });
  initDotEntries(db, dirBlockArea(pblk, vol.blockSize, trailer), ni.blkno, parent);
  if (trailer) initDirTrailer(db, vol.blockSize, { blkno: pblk, parentDinode: ni.blkno, freeRecLen: largestDirHole(db, dirBlockArea(pblk, vol.blockSize, true)) });
  if (vol.clusterBlocks > 1) await tx.writeData(pblk + 1, Buffer.alloc(vol.clusterSize - vol.blockSize));
  tx.writeMeta(pblk, db, trailer ? vol.blockSize - 8 : null);
  ni.h.i_size = vol.blockSize;
  ni.h.i_clusters = 1;
  storeInode(tx, ni.blkno, ni.buf, ni.h);
  await rv.extentTree(ni.blkno).insert(tx, { cpos: 0, clusters: 1, blkno: pblk, flags: 0 });
}

export function orphanName(ino: number): Buffer {
  return Buffer.from(ino.toString(16).padStart(16, '0'));
}

void CHECK_OFFSET; void OCFS2_HAS_XATTR_FL; void loadInode;
