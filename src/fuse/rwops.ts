/**
 * The FUSE operations of a read-write OCFS2 mount: the read-only ops
 * (path lookup, stat, readdir, read, xattrs) plus every modifying operation,
 * translated to libocfs2/fs (Ocfs2Fs), which serialises them.
 *
 * Permission checks are the kernel's (`default_permissions`, including the
 * sticky-directory rule); setgid inheritance is done by Ocfs2Fs.  FUSE 2 has
 * no rename flags: renameat2(RENAME_NOREPLACE/EXCHANGE) is refused by the
 * kernel with EINVAL before it reaches us.  setuid/setgid are cleared on
 * write/truncate by a non-CAP_FSETID writer by the kernel itself
 * (file_remove_privs -> a SETATTR with the new mode), and on chown by
 * Ocfs2Fs.setattr as notify_change does.
 *
 * Open-but-unlinked files: libfuse 2 (without hard_remove) renames an open
 * file it is asked to unlink (or to rename over) to ".fuse_hiddenXXXXXXXXYYYYYYYY"
 * in the same directory, and unlinks that name after the last release.
 * We turn that rename into what the kernel does on unlink: the name goes,
 * and at zero links the inode moves to our slot's orphan directory
 * (Ocfs2Fs.unlink with isOpen); the last release deletes it and the final
 * unlink of the hidden name is a no-op.  The hidden name never exists on
 * disk, and a crash leaves a proper orphan for the next mount to delete.
 * (hard_remove itself cannot be used: libfuse then fails every operation on
 * the open file with ENOENT unless the filesystem sets flag_nullpath_ok,
 * which the binding does not.)
 */
import { PosixError } from '../libocfs2/errors';
import type { Ocfs2Fs, SetAttr } from '../libocfs2/fs';
import type { Ts } from '../libocfs2/fs/inode';
import { Ocfs2FuseOps, type Ocfs2OpsOptions } from './ops';
import type { InodeBlock } from '../libocfs2/volume';
import {
  PATH_ENCODING, toTimespec, type RequestContext, type Stat, type StatFs, type UtimeArg,
} from './binding';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

function split(path: string): { parent: string; name: Buffer } {
  const slash = path.lastIndexOf('/');
  return { parent: slash <= 0 ? '/' : path.slice(0, slash), name: Buffer.from(path.slice(slash + 1), PATH_ENCODING) };
}

function utime(t: UtimeArg): Ts | 'now' | undefined {
  if (t === 'omit') return undefined;
  if (t === 'now') return 'now';
  return toTimespec(t);
}

interface Handle { ino: number }

/** libfuse's hide_node names: ".fuse_hidden" + node id and a counter, 8 hex digits each. */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/;

export class Ocfs2RwFuseOps extends Ocfs2FuseOps {
  private readonly rwHandles = new Map<number, Handle>();
  private readonly openCount = new Map<number, number>();
  /** Hidden path (libfuse's rename of an unlinked open file) -> its inode. */
  private readonly hidden = new Map<string, number>();
  private nextRwFh = 1;

  constructor(readonly fs: Ocfs2Fs, opts: Omit<Ocfs2OpsOptions, 'readOnly'> = {}) {
    super(fs.vol, { ...opts, readOnly: false });
  }

  /** Forget cached path -> inode mappings at and below `path`. */
  protected invalidatePath(path: string): void {
    const cache = this.paths;
    cache.delete(path);
    const prefix = path.endsWith('/') ? path : `${path}/`;
    for (const k of [...cache.keys()]) if (k.startsWith(prefix)) cache.delete(k);
  }

  /** Lookups through Ocfs2Fs: indexed directories by hash, linear ones from the in-memory name index. */
  protected override async lookupChild(parent: InodeBlock, name: Buffer): Promise<{ inode: number } | undefined> {
    if ((parent.inode.mode & S_IFMT) !== S_IFDIR) throw new PosixError('ENOTDIR');
    return this.fs.lookup(parent.inode.blkno, name);
  }

  override async resolve(path: string): Promise<InodeBlock> {
    const h = this.hidden.get(path);
    if (h !== undefined) return this.fs.vol.readInode(h);
    return super.resolve(path);
  }

  private async ino(path: string): Promise<number> {
    return (await this.resolve(path)).inode.blkno;
  }

  private async parentOf(path: string): Promise<{ dir: number; name: Buffer }> {
    const { parent, name } = split(path);
    const d = await this.resolve(parent);
    if ((d.inode.mode & S_IFMT) !== S_IFDIR) throw new PosixError('ENOTDIR');
    return { dir: d.inode.blkno, name };
  }

  private openHandle(ino: number): number {
    const fh = this.nextRwFh++;
    this.rwHandles.set(fh, { ino });
    this.openCount.set(ino, (this.openCount.get(ino) ?? 0) + 1);
    return fh;
  }

  private readonly isOpen = (ino: number): boolean => (this.openCount.get(ino) ?? 0) > 0;

  private async inoOf(path: string, fh: number): Promise<number> {
    const h = this.rwHandles.get(fh);
    return h ? h.ino : this.ino(path);
  }

  override async fgetattr(path: string, fh: number): Promise<Stat> {
    return this.statOf(await this.fs.vol.readInode(await this.inoOf(path, fh)));
  }

  override async open(path: string, _flags: number): Promise<number> {
    const f = await this.resolve(path);
    if ((f.inode.mode & S_IFMT) === S_IFDIR) throw new PosixError('EISDIR');
    return this.openHandle(f.inode.blkno);
  }

  async create(path: string, mode: number, _flags: number, ctx: RequestContext): Promise<number> {
    const { dir, name } = await this.parentOf(path);
    const ino = await this.fs.mknod(dir, name, mode, 0, { uid: ctx.uid, gid: ctx.gid });
    this.invalidatePath(path);
    return this.openHandle(ino);
  }

  override async release(_path: string, fh: number): Promise<void> {
    const h = this.rwHandles.get(fh);
    if (!h) return;
    this.rwHandles.delete(fh);
    const n = (this.openCount.get(h.ino) ?? 1) - 1;
    if (n > 0) { this.openCount.set(h.ino, n); return; }
    this.openCount.delete(h.ino);
    await this.fs.releaseOrphan(h.ino);
  }

  override async read(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const data = await this.fs.read(await this.inoOf(path, fh), position, length);
    data.copy(buf, 0);
    return data.length;
  }

  async write(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    return this.fs.write(await this.inoOf(path, fh), position, buf.subarray(0, length));
  }

  async flush(): Promise<void> { /* data and metadata are written at the end of each operation */ }

  /**
   * fsync commits the journal and flushes the device.  fdatasync only
   * flushes the data when nothing needed to read it back changed since the
   * last commit (ocfs2_sync_file: no I_DIRTY_DATASYNC), else it commits too.
   */
  async fsync(path: string, datasync: boolean, fh: number): Promise<void> {
    const dirty = this.fs.data.datasyncDirty;
    if (datasync) {
      const ino = await this.inoOf(path, fh);
      if (!dirty.has(ino)) { await this.fs.vol.dev.flush(); return; }
    }
    await this.fullFlush();
  }

  private async fullFlush(): Promise<void> {
    this.fs.data.datasyncDirty.clear();
    await this.fs.flush();
  }

  async fsyncdir(): Promise<void> { await this.fullFlush(); }

  async truncate(path: string, size: number): Promise<void> {
    await this.fs.setattr(await this.ino(path), { size });
  }

  async ftruncate(path: string, fh: number, size: number): Promise<void> {
    await this.fs.setattr(await this.inoOf(path, fh), { size });
  }

  async fallocate(path: string, fh: number, mode: number, offset: number, length: number): Promise<void> {
    await this.fs.fallocate(await this.inoOf(path, fh), mode, offset, length);
  }

  async utimens(path: string, atime: UtimeArg, mtime: UtimeArg): Promise<void> {
    const a: SetAttr = {};
    const at = utime(atime); const mt = utime(mtime);
    if (at !== undefined) a.atime = at;
    if (mt !== undefined) a.mtime = mt;
    await this.fs.setattr(await this.ino(path), a);
  }

  async chown(path: string, uid: number | null, gid: number | null): Promise<void> {
    const a: SetAttr = {};
    if (uid !== null) a.uid = uid;
    if (gid !== null) a.gid = gid;
    await this.fs.setattr(await this.ino(path), a);
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.fs.setattr(await this.ino(path), { mode });
  }

  async mknod(path: string, mode: number, rdev: number, ctx: RequestContext): Promise<void> {
    const { dir, name } = await this.parentOf(path);
    await this.fs.mknod(dir, name, mode, rdev, { uid: ctx.uid, gid: ctx.gid });
    this.invalidatePath(path);
  }

  async mkdir(path: string, mode: number, ctx: RequestContext): Promise<void> {
    const { dir, name } = await this.parentOf(path);
    await this.fs.mkdir(dir, name, mode, { uid: ctx.uid, gid: ctx.gid });
    this.invalidatePath(path);
  }

  async symlink(target: string, path: string, ctx: RequestContext): Promise<void> {
    const { dir, name } = await this.parentOf(path);
    await this.fs.symlink(dir, name, Buffer.from(target, PATH_ENCODING), { uid: ctx.uid, gid: ctx.gid });
    this.invalidatePath(path);
  }

  async link(existing: string, newPath: string): Promise<void> {
    const ino = await this.ino(existing);
    const { dir, name } = await this.parentOf(newPath);
    await this.fs.link(ino, dir, name);
    this.invalidatePath(newPath);
  }

  async unlink(path: string): Promise<void> {
    // libfuse removing the hidden name after the last release: the inode is already gone (or still linked elsewhere).
    if (this.hidden.delete(path)) return;
    const { dir, name } = await this.parentOf(path);
    try {
      await this.fs.unlink(dir, name, { dir: false, isOpen: this.isOpen });
    } finally {
      this.invalidatePath(path);
    }
  }

  async rmdir(path: string): Promise<void> {
    const { dir, name } = await this.parentOf(path);
    try {
      await this.fs.unlink(dir, name, { dir: true, isOpen: this.isOpen });
    } finally {
      this.invalidatePath(path);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const s = await this.parentOf(from);
    const d = await this.parentOf(to);
    if (await this.isHideRename(from, to, s, d)) {
      // libfuse hiding an open file it was asked to unlink: unlink it as the kernel does (orphan at zero links).
      try {
        const ino = await this.fs.unlink(s.dir, s.name, { dir: false, isOpen: this.isOpen });
        this.hidden.set(to, ino);
      } finally {
        this.invalidatePath(from);
      }
      return;
    }
    try {
      await this.fs.rename(s.dir, s.name, d.dir, d.name, { isOpen: this.isOpen });
    } finally {
      this.invalidatePath(from);
      this.invalidatePath(to);
    }
  }

  /** Is rename(from, to) libfuse's hide_node: same directory, a hidden name that does not exist, an open non-directory source? */
  private async isHideRename(from: string, to: string, s: { dir: number; name: Buffer }, d: { dir: number; name: Buffer }): Promise<boolean> {
    if (s.dir !== d.dir || !HIDDEN_NAME.test(d.name.toString('latin1')) || this.hidden.has(to)) return false;
    const src = await this.fs.lookup(s.dir, s.name);
    if (!src || !this.isOpen(src.inode)) return false;
    if ((await this.fs.vol.readInode(src.inode)).inode.mode & S_IFMT & S_IFDIR) return false;
    void from;
    return (await this.fs.lookup(d.dir, d.name)) === undefined;
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    await this.fs.setxattr(await this.ino(path), Buffer.from(name, PATH_ENCODING), value, flags);
  }

  async removexattr(path: string, name: string): Promise<void> {
    await this.fs.removexattr(await this.ino(path), Buffer.from(name, PATH_ENCODING));
  }

  override async statfs(): Promise<StatFs> {
    const s = await this.fs.statfs();
    const per = this.fs.vol.clusterSize / this.fs.vol.blockSize;
    return {
      bsize: this.fs.vol.blockSize, frsize: this.fs.vol.blockSize,
      blocks: s.totalClusters * per, bfree: s.freeClusters * per, bavail: s.freeClusters * per,
      files: s.totalClusters, ffree: s.freeClusters, favail: s.freeClusters, namemax: 255,
    };
  }

  async destroy(): Promise<void> { await this.fullFlush(); }
}
