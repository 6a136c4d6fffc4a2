/**
 * The FUSE operations of a read-only OCFS2 mount: a thin translation from
 * inode-based FUSE requests to libocfs2 (lookup, stat, readdir, read,
 * readlink, xattrs, statfs, SEEK_DATA/SEEK_HOLE).  All OCFS2 knowledge lives
 * in libocfs2.
 *
 * Node ids are inode block numbers, the root's mapped to FUSE_ROOT_ID;
 * generation = i_generation.  The kernel's references (lookup counts) are
 * kept per node id and given back by FORGET.
 */
import { PosixError, Ocfs2Error } from '../libocfs2/errors';
import { readId1Bitmap, decodeRdev, inodeExtentList } from '../libocfs2/structs/dinode';
import { iterateDirectory, lookupName } from '../libocfs2/directory';
import { readFileInto, readSymlink } from '../libocfs2/fileio';
import { lookupExtent, EXT_UNWRITTEN } from '../libocfs2/extentmap';
import { listXattrRefs, getXattr } from '../libocfs2/xattrs';
import { OCFS2_INLINE_DATA_FL, OCFS2_MAX_FILENAME_LEN, OCFS2_VALID_FL, S_IFDIR, S_IFMT, modeTypeFromFileType } from '../libocfs2/constants';
import type { InodeBlock, Volume } from '../libocfs2/volume';
import {
  FUSE_ROOT_ID, type DirEntry, type Entry, type Opened, type Operations, type RequestContext, type Stat, type StatFs,
} from './binding';

const O_ACCMODE = 0o3;
const O_RDONLY = 0;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/** glibc makedev() for the st_rdev the kernel expects from FUSE. */
function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12) + (major & ~0xfff) * 2 ** 32;
}

export interface Ocfs2OpsOptions {
  readOnly: boolean;
  /** A corruption found in the global bitmap at mount: statfs reports it (EIO) instead of wrong numbers. */
  bitmapProblem?: Ocfs2Error | null;
  log?: (msg: string) => void;
}

/** An open directory: its entries as of opendir (offsets are indexes into it). */
interface DirHandle { ino: number; entries: Array<{ name: Buffer; inode: number; fileType: number }> }

/**
 * The smallest directory entry the kernel's buffer holds (struct fuse_dirent:
 * 24 bytes + a name of 1-8 bytes, 8-aligned) and readdirplus entry (+ 128
 * bytes of fuse_entry_out): a request of `size` bytes takes at most size/32
 * (size/160) entries, so no more are made (readdirplus reads each inode).
 */
const DIRENT_MIN = 32;
const DIRENTPLUS_MIN = 160;

export class Ocfs2FuseOps implements Operations {
  /** Kernel references per node id (lookup replies minus FORGET). */
  protected readonly lookups = new Map<number, number>();
  protected readonly dirHandles = new Map<number, DirHandle>();
  /** Open files: fh -> inode block number. */
  protected readonly files = new Map<number, number>();
  private nextFh = 1;
  private readonly warned = new Set<string>();

  constructor(readonly vol: Volume, private readonly opts: Ocfs2OpsOptions) {}

  /** Log a message once (deduplicated). */
  log(msg: string): void {
    if (this.warned.has(msg)) return;
    if (this.warned.size < 10_000) this.warned.add(msg);
    (this.opts.log ?? ((m: string) => process.stderr.write(`ocfs2-fuse: ${m}\n`)))(msg);
  }

  /** The inode block number of a node id. */
  blk(node: number): number { return node === FUSE_ROOT_ID ? this.vol.rootBlkno : node; }
  /** The node id of an inode block number. */
  node(blk: number): number { return blk === this.vol.rootBlkno ? FUSE_ROOT_ID : blk; }

  protected allocFh(): number { return this.nextFh++; }

  /** A node's inode; a deleted one (the kernel may still hold its id) is ESTALE. */
  async inodeOf(node: number): Promise<InodeBlock> {
    const f = await this.vol.readInode(this.blk(node));
    if (!(f.inode.flags & OCFS2_VALID_FL)) throw new PosixError('ESTALE');
    return f;
  }

  /** One directory entry (the read-write mount answers from the directory caches of libocfs2/fs). */
  protected async lookupChild(parent: InodeBlock, name: Buffer): Promise<number | undefined> {
    return (await lookupName(this.vol, parent, name))?.inode;
  }

  statOf(f: InodeBlock): Stat {
    const i = f.inode;
    const { major, minor } = decodeRdev(i.rdev);
    return {
      ino: i.blkno,
      mode: i.mode,
      uid: i.uid,
      gid: i.gid,
      size: i.size,
      nlink: i.nlink,
      rdev: makedev(major, minor),
      blksize: this.vol.clusterSize,
      // The kernel reports allocated clusters in 512-byte sectors (ocfs2_inode_sector_count).
      blocks: i.clusters * (this.vol.clusterSize / 512),
      atimeNs: i.atime,
      mtimeNs: i.mtime,
      ctimeNs: i.ctime,
    };
  }

  /** The entry for an inode, counting the kernel's new reference. */
  entryOf(f: InodeBlock): Entry {
    const node = this.node(f.inode.blkno);
    this.lookups.set(node, (this.lookups.get(node) ?? 0) + 1);
    return { ino: node, generation: f.inode.generation >>> 0, attr: this.statOf(f) };
  }

  async lookup(parent: number, name: Buffer): Promise<Entry | null> {
    // POSIX: a name longer than NAME_MAX is ENAMETOOLONG, not ENOENT.
    if (name.length > OCFS2_MAX_FILENAME_LEN) throw new PosixError('ENAMETOOLONG');
    const dir = await this.inodeOf(parent);
    if ((dir.inode.mode & S_IFMT) !== S_IFDIR) throw new PosixError('ENOTDIR');
    const child = await this.lookupChild(dir, name);
    if (child === undefined) return null;
    return this.entryOf(await this.vol.readInode(child));
  }

  forget(ino: number, nlookup: number): void {
    const n = (this.lookups.get(ino) ?? 0) - nlookup;
    if (n > 0) this.lookups.set(ino, n); else this.lookups.delete(ino);
  }

  readdirplusAccepted(entries: DirEntry[]): void {
    for (const e of entries) this.lookups.set(e.ino, (this.lookups.get(e.ino) ?? 0) + 1);
  }

  async getattr(ino: number): Promise<Stat> {
    return this.statOf(await this.inodeOf(ino));
  }

  async opendir(ino: number): Promise<Opened> {
    const dir = await this.inodeOf(ino);
    const entries: DirHandle['entries'] = [];
    for await (const e of iterateDirectory(this.vol, dir)) entries.push(e);
    const fh = this.allocFh();
    this.dirHandles.set(fh, { ino, entries });
    return { fh };
  }

  async readdir(ino: number, fh: number, off: number, plus: boolean, size: number): Promise<DirEntry[]> {
    const h = this.dirHandles.get(fh);
    if (!h) throw new PosixError('EBADF');
    const out: DirEntry[] = [];
    const end = Math.min(h.entries.length, off + Math.max(1, Math.floor(size / (plus ? DIRENTPLUS_MIN : DIRENT_MIN))));
    for (let i = off; i < end; i++) {
      const e = h.entries[i]!;
      const d: DirEntry = { name: e.name, ino: this.node(e.inode), mode: modeTypeFromFileType(e.fileType), next: i + 1 };
      const dot = e.name.length <= 2 && (e.name.equals(DOT) || e.name.equals(DOTDOT));
      if (plus && !dot) {
        const f = await this.vol.readInode(e.inode);
        d.entry = { ino: d.ino, generation: f.inode.generation >>> 0, attr: this.statOf(f) };
      }
      out.push(d);
    }
    return out;
  }

  async releasedir(_ino: number, fh: number): Promise<void> {
    this.dirHandles.delete(fh);
  }

  async open(ino: number, flags: number): Promise<Opened> {
    if (this.opts.readOnly && (flags & O_ACCMODE) !== O_RDONLY) throw new PosixError('EROFS');
    const f = await this.inodeOf(ino);
    if ((f.inode.mode & S_IFMT) === S_IFDIR) throw new PosixError('EISDIR');
    const fh = this.allocFh();
    this.files.set(fh, f.inode.blkno);
    // Nothing changes under a read-only mount: the page cache stays valid across opens.
    return { fh, keepCache: true, noFlush: true };
  }

  async release(_ino: number, fh: number): Promise<void> {
    this.files.delete(fh);
  }

  async read(ino: number, _fh: number, size: number, off: number): Promise<Buffer> {
    const f = await this.inodeOf(ino);
    const n = Math.max(0, Math.min(size, f.inode.size - off));
    const buf = Buffer.allocUnsafe(n);
    return buf.subarray(0, await readFileInto(this.vol, f, off, n, buf));
  }

  /**
   * SEEK_DATA / SEEK_HOLE from the extent map: holes and unwritten extents
   * are holes (they read as zeros), inline data is all data; ENXIO at or
   * past the end of the file (lseek(2)).
   */
  async lseek(ino: number, _fh: number, off: number, whence: number): Promise<number> {
    const f = await this.inodeOf(ino);
    const size = f.inode.size;
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new PosixError('EINVAL');
    if (off < 0 || off >= size) throw new PosixError('ENXIO');
    if (f.inode.dynFeatures & OCFS2_INLINE_DATA_FL) return whence === SEEK_DATA ? off : size;
    const cs = this.vol.clusterSize;
    const list = inodeExtentList(f.buf, f.inode.blkno);
    let cpos = Math.floor(off / cs);
    for (;;) {
      const pos = Math.max(off, cpos * cs);
      if (pos >= size) {
        if (whence === SEEK_HOLE) return size;
        throw new PosixError('ENXIO');
      }
      const { extent, next } = await lookupExtent(this.vol, list, f.inode.blkno, cpos);
      const isData = extent !== undefined && !(extent.flags & EXT_UNWRITTEN);
      if (isData === (whence === SEEK_DATA)) return pos;
      if (extent) cpos = extent.cpos + extent.clusters;
      else if (next) cpos = next.cpos;
      else if (whence === SEEK_DATA) throw new PosixError('ENXIO');
      else return pos;
    }
  }

  async readlink(ino: number): Promise<Buffer> {
    const f = await this.inodeOf(ino);
    if ((f.inode.mode & S_IFMT) !== 0o120000) throw new PosixError('EINVAL');
    return readSymlink(this.vol, f);
  }

  async listxattr(ino: number): Promise<Buffer[]> {
    return (await listXattrRefs(this.vol, await this.inodeOf(ino))).map((r) => r.name);
  }

  async getxattr(ino: number, name: Buffer): Promise<Buffer | null> {
    return (await getXattr(this.vol, await this.inodeOf(ino), name)) ?? null;
  }

  async statfs(): Promise<StatFs> {
    if (this.opts.bitmapProblem) throw this.opts.bitmapProblem;
    const bm = await this.vol.readInode(this.vol.systemFile('global_bitmap'));
    const { i_total, i_used } = readId1Bitmap(bm.buf);
    return this.statfsOf(i_total, Math.max(0, i_total - i_used));
  }

  /** As ocfs2_statfs: counts in blocks of the volume's block size, files = cluster bits. */
  protected statfsOf(totalClusters: number, freeClusters: number): StatFs {
    const per = this.vol.clusterSize / this.vol.blockSize;
    return {
      bsize: this.vol.blockSize, frsize: this.vol.blockSize,
      blocks: totalClusters * per, bfree: freeClusters * per, bavail: freeClusters * per,
      files: totalClusters, ffree: freeClusters, favail: freeClusters, namemax: OCFS2_MAX_FILENAME_LEN,
    };
  }

  async access(ino: number, _mask: number, _ctx: RequestContext): Promise<void> {
    // Permission checks are the kernel's (default_permissions); we only check existence.
    await this.inodeOf(ino);
  }
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

export function isCorruption(err: unknown): err is Ocfs2Error {
  return err instanceof Ocfs2Error && err.name === 'Ocfs2CorruptError';
}
