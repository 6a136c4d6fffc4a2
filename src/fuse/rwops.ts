/**
 * The FUSE operations of a read-write OCFS2 mount: the read-only ops (lookup,
 * stat, readdir, read, xattrs, lseek) plus every modifying operation, by
 * inode, translated to libocfs2/fs (Ocfs2Fs).
 *
 * Permission checks are the kernel's (`default_permissions`, including the
 * sticky-directory rule); setgid inheritance is done by Ocfs2Fs.  setuid and
 * setgid are cleared on write/truncate by a non-CAP_FSETID writer by the
 * kernel itself (file_remove_privs -> a SETATTR with the new mode), and on
 * chown by Ocfs2Fs.setattr as notify_change does.
 *
 * Open-but-unlinked files: the kernel keeps the inode while a file is open
 * and sends RELEASE at the last close.  When the last link of an open inode
 * goes, Ocfs2Fs parks it in the slot's orphan directory (as the kernel's
 * ocfs2_unlink does) and the last release deletes it; a crash leaves a
 * proper orphan for the next mount to delete.
 *
 * Cache policy: every change goes through this mount (one node), so the
 * kernel's page cache stays valid across opens (keep_cache) and attributes
 * and names may be cached; a change made behind the kernel's back must call
 * the FuseMount invalidation API.
 */
import { PosixError } from '../libocfs2/errors';
import type { Ocfs2Fs, SetAttr } from '../libocfs2/fs';
import { OCFS2_ORPHANED_FL, S_IFDIR, S_IFMT } from '../libocfs2/constants';
import { Ocfs2FuseOps, type Ocfs2OpsOptions } from './ops';
import type { InodeBlock } from '../libocfs2/volume';
import type { Entry, Opened, RequestContext, SetattrIn, Stat, StatFs } from './binding';

/** renameat2 flags (linux/fs.h). */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
const O_TRUNC = 0o1000;

export class Ocfs2RwFuseOps extends Ocfs2FuseOps {
  /** Open files per inode block number. */
  private readonly openCount = new Map<number, number>();

  constructor(readonly fs: Ocfs2Fs, opts: Omit<Ocfs2OpsOptions, 'readOnly'> = {}) {
    super(fs.vol, { ...opts, readOnly: false });
  }

  /** Lookups through Ocfs2Fs: indexed directories by hash, linear ones from the in-memory name index. */
  protected override async lookupChild(parent: InodeBlock, name: Buffer): Promise<number | undefined> {
    return (await this.fs.lookup(parent.inode.blkno, name))?.inode;
  }

  private readonly isOpen = (blk: number): boolean => (this.openCount.get(blk) ?? 0) > 0;

  private openHandle(blk: number): number {
    const fh = this.allocFh();
    this.files.set(fh, blk);
    this.openCount.set(blk, (this.openCount.get(blk) ?? 0) + 1);
    return fh;
  }

  private async entry(blk: number): Promise<Entry> {
    return this.entryOf(await this.vol.readInode(blk));
  }

  private async stat(node: number): Promise<Stat> {
    return this.statOf(await this.inodeOf(node));
  }

  override async open(ino: number, flags: number): Promise<Opened> {
    const f = await this.inodeOf(ino);
    if ((f.inode.mode & S_IFMT) === S_IFDIR) throw new PosixError('EISDIR');
    void O_TRUNC; // without FUSE_CAP_ATOMIC_O_TRUNC the kernel truncates with a SETATTR first
    return { fh: this.openHandle(f.inode.blkno), keepCache: true, noFlush: true };
  }

  async create(parent: number, name: Buffer, mode: number, _flags: number, ctx: RequestContext): Promise<Entry & Opened> {
    const blk = await this.fs.mknod(this.blk(parent), name, mode, 0, { uid: ctx.uid, gid: ctx.gid });
    const e = await this.entry(blk);
    return { ...e, fh: this.openHandle(blk), keepCache: true, noFlush: true };
  }

  override async release(_ino: number, fh: number): Promise<void> {
    const blk = this.files.get(fh);
    if (blk === undefined) return;
    this.files.delete(fh);
    const n = (this.openCount.get(blk) ?? 1) - 1;
    if (n > 0) { this.openCount.set(blk, n); return; }
    this.openCount.delete(blk);
    // Only an orphan (unlinked while open) has work at its last close: no transaction otherwise.
    const f = await this.vol.readInode(blk);
    if (f.inode.flags & OCFS2_ORPHANED_FL) await this.fs.releaseOrphan(blk);
  }

  override async read(ino: number, _fh: number, size: number, off: number): Promise<Buffer> {
    return this.fs.read(this.blk(ino), off, size);
  }

  async write(ino: number, _fh: number, data: Buffer, off: number): Promise<number> {
    return this.fs.write(this.blk(ino), off, data);
  }

  async flush(): Promise<void> { /* data and metadata are written at the end of each operation */ }

  /**
   * fsync commits the journal and flushes the device.  fdatasync only
   * flushes the data when nothing needed to read it back changed since the
   * last commit (ocfs2_sync_file: no I_DIRTY_DATASYNC), else it commits too.
   */
  async fsync(ino: number, _fh: number, datasync: boolean): Promise<void> {
    const dirty = this.fs.data.datasyncDirty;
    if (datasync && !dirty.has(this.blk(ino))) { await this.fs.vol.dev.flush(); return; }
    await this.fullFlush();
  }

  private async fullFlush(): Promise<void> {
    this.fs.data.datasyncDirty.clear();
    await this.fs.flush();
  }

  async fsyncdir(): Promise<void> { await this.fullFlush(); }

  async setattr(ino: number, s: SetattrIn): Promise<Stat> {
    const a: SetAttr = {};
    if (s.mode !== undefined) a.mode = s.mode;
    if (s.uid !== undefined) a.uid = s.uid;
    if (s.gid !== undefined) a.gid = s.gid;
    if (s.size !== undefined) a.size = s.size;
    if (s.atime !== undefined) a.atime = s.atime;
    if (s.mtime !== undefined) a.mtime = s.mtime;
    await this.fs.setattr(this.blk(ino), a);
    return this.stat(ino);
  }

  async fallocate(ino: number, _fh: number, mode: number, off: number, len: number): Promise<void> {
    await this.fs.fallocate(this.blk(ino), mode, off, len);
  }

  async mknod(parent: number, name: Buffer, mode: number, rdev: number, ctx: RequestContext): Promise<Entry> {
    return this.entry(await this.fs.mknod(this.blk(parent), name, mode, rdev, { uid: ctx.uid, gid: ctx.gid }));
  }

  async mkdir(parent: number, name: Buffer, mode: number, ctx: RequestContext): Promise<Entry> {
    return this.entry(await this.fs.mkdir(this.blk(parent), name, mode, { uid: ctx.uid, gid: ctx.gid }));
  }

  async symlink(target: Buffer, parent: number, name: Buffer, ctx: RequestContext): Promise<Entry> {
    return this.entry(await this.fs.symlink(this.blk(parent), name, target, { uid: ctx.uid, gid: ctx.gid }));
  }

  async link(ino: number, newParent: number, newName: Buffer): Promise<Entry> {
    await this.fs.link(this.blk(ino), this.blk(newParent), newName);
    return this.entry(this.blk(ino));
  }

  async unlink(parent: number, name: Buffer): Promise<void> {
    await this.fs.unlink(this.blk(parent), name, { dir: false, isOpen: this.isOpen });
  }

  async rmdir(parent: number, name: Buffer): Promise<void> {
    await this.fs.unlink(this.blk(parent), name, { dir: true, isOpen: this.isOpen });
  }

  async rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): Promise<void> {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) throw new PosixError('EINVAL');
    if (flags & RENAME_EXCHANGE) {
      await this.fs.exchange(this.blk(parent), name, this.blk(newParent), newName);
      return;
    }
    await this.fs.rename(this.blk(parent), name, this.blk(newParent), newName, { isOpen: this.isOpen, noReplace: (flags & RENAME_NOREPLACE) !== 0 });
  }

  async setxattr(ino: number, name: Buffer, value: Buffer, flags: number): Promise<void> {
    await this.fs.setxattr(this.blk(ino), name, value, flags);
  }

  async removexattr(ino: number, name: Buffer): Promise<void> {
    await this.fs.removexattr(this.blk(ino), name);
  }

  override async statfs(): Promise<StatFs> {
    const s = await this.fs.statfs();
    return this.statfsOf(s.totalClusters, s.freeClusters);
  }

  async destroy(): Promise<void> { await this.fullFlush(); }
}
