/**
 * The FUSE operations of a read-only OCFS2 mount: a thin translation from
 * path-based FUSE calls to libocfs2 (path lookup, stat, readdir, read,
 * readlink, xattrs, statfs).  All OCFS2 knowledge lives in libocfs2.
 */
import { LRUCache } from 'lru-cache';
import { PosixError, Ocfs2Error } from '../libocfs2/errors';
import { readId1Bitmap, decodeRdev } from '../libocfs2/structs/dinode';
import { iterateDirectory, lookupName } from '../libocfs2/directory';
import { readFileInto, readSymlink } from '../libocfs2/fileio';
import { listXattrRefs, getXattr } from '../libocfs2/xattrs';
import type { InodeBlock, Volume } from '../libocfs2/volume';
import { PATH_ENCODING, type Operations, type Stat, type StatFs, type RequestContext } from './binding';

/**
 * How the binding hands names over: names are raw bytes on disk and cross
 * the binding as binary strings (one char per byte), so every name,
 * UTF-8 or not, round-trips exactly.
 */
const NAME_ENCODING: BufferEncoding = PATH_ENCODING;

const O_ACCMODE = 0o3;
const O_RDONLY = 0;

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

export class Ocfs2FuseOps implements Operations {
  /** path -> inode block number; valid for the mount's lifetime on a read-only mount. */
  protected readonly paths = new LRUCache<string, number>({ max: 200_000 });
  private readonly handles = new Map<number, number>();
  private nextFh = 1;
  private readonly warned = new Set<string>();

  constructor(private readonly vol: Volume, private readonly opts: Ocfs2OpsOptions) {}

  /** Log a message once (deduplicated). */
  log(msg: string): void {
    if (this.warned.has(msg)) return;
    if (this.warned.size < 10_000) this.warned.add(msg);
    (this.opts.log ?? ((m: string) => process.stderr.write(`ocfs2-fuse: ${m}\n`)))(msg);
  }

  /** Resolve an absolute path to an inode, one component at a time. */
  async resolve(path: string): Promise<InodeBlock> {
    const cached = this.paths.get(path);
    if (cached !== undefined) return this.vol.readInode(cached);
    if (path === '/' || path === '') {
      this.paths.set('/', this.vol.rootBlkno);
      return this.vol.readInode(this.vol.rootBlkno);
    }
    const slash = path.lastIndexOf('/');
    const parentPath = slash <= 0 ? '/' : path.slice(0, slash);
    const parent = await this.resolve(parentPath);
    const name = Buffer.from(path.slice(slash + 1), NAME_ENCODING);
    const e = await this.lookupChild(parent, name);
    if (!e) throw new PosixError('ENOENT');
    this.paths.set(path, e.inode);
    return this.vol.readInode(e.inode);
  }

  /** One path component (the read-write mount answers from the directory caches of libocfs2/fs). */
  protected async lookupChild(parent: InodeBlock, name: Buffer): Promise<{ inode: number } | undefined> {
    return lookupName(this.vol, parent, name);
  }

  statOf(f: InodeBlock): Stat {
    const i = f.inode;
    const { major, minor } = decodeRdev(i.rdev);
    return {
      mode: i.mode,
      uid: i.uid,
      gid: i.gid,
      size: i.size,
      nlink: i.nlink,
      ino: i.blkno,
      rdev: makedev(major, minor),
      blksize: this.vol.clusterSize,
      // The kernel reports allocated clusters in 512-byte sectors (ocfs2_inode_sector_count).
      blocks: i.clusters * (this.vol.clusterSize / 512),
      atimeNs: i.atime,
      mtimeNs: i.mtime,
      ctimeNs: i.ctime,
    };
  }

  async getattr(path: string): Promise<Stat> {
    return this.statOf(await this.resolve(path));
  }

  async fgetattr(path: string, fh: number): Promise<Stat> {
    const blkno = this.handles.get(fh);
    return this.statOf(blkno !== undefined ? await this.vol.readInode(blkno) : await this.resolve(path));
  }

  async readdir(path: string): Promise<string[]> {
    const dir = await this.resolve(path);
    const names: string[] = [];
    for await (const e of iterateDirectory(this.vol, dir)) names.push(e.name.toString(NAME_ENCODING));
    return names;
  }

  async open(path: string, flags: number): Promise<number> {
    if (this.opts.readOnly && (flags & O_ACCMODE) !== O_RDONLY) throw new PosixError('EROFS');
    const f = await this.resolve(path);
    if ((f.inode.mode & 0o170000) === 0o040000) throw new PosixError('EISDIR');
    const fh = this.nextFh++;
    this.handles.set(fh, f.inode.blkno);
    return fh;
  }

  async release(_path: string, fh: number): Promise<void> {
    this.handles.delete(fh);
  }

  async read(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const blkno = this.handles.get(fh);
    const f = blkno !== undefined ? await this.vol.readInode(blkno) : await this.resolve(path);
    return readFileInto(this.vol, f, position, length, buf);
  }

  async readlink(path: string): Promise<string> {
    const f = await this.resolve(path);
    if ((f.inode.mode & 0o170000) !== 0o120000) throw new PosixError('EINVAL');
    return (await readSymlink(this.vol, f)).toString(NAME_ENCODING);
  }

  async listxattr(path: string): Promise<string[]> {
    const f = await this.resolve(path);
    return (await listXattrRefs(this.vol, f)).map((r) => r.name.toString(NAME_ENCODING));
  }

  async getxattr(path: string, name: string): Promise<Buffer | null> {
    const f = await this.resolve(path);
    return (await getXattr(this.vol, f, Buffer.from(name, NAME_ENCODING))) ?? null;
  }

  async statfs(): Promise<StatFs> {
    if (this.opts.bitmapProblem) throw this.opts.bitmapProblem;
    const bm = await this.vol.readInode(this.vol.systemFile('global_bitmap'));
    const { i_total, i_used } = readId1Bitmap(bm.buf);
    // As ocfs2_statfs: counts in blocks of the volume's block size, files = cluster bits.
    const perCluster = this.vol.clusterSize / this.vol.blockSize;
    const free = Math.max(0, i_total - i_used);
    return {
      bsize: this.vol.blockSize, frsize: this.vol.blockSize,
      blocks: i_total * perCluster, bfree: free * perCluster, bavail: free * perCluster,
      files: i_total, ffree: free, favail: free, namemax: 255,
    };
  }

  async access(path: string, _mode: number, _ctx: RequestContext): Promise<void> {
    // Permission checks are the kernel's (default_permissions); we only check existence.
    await this.resolve(path);
  }
}

export function isCorruption(err: unknown): err is Ocfs2Error {
  return err instanceof Ocfs2Error && err.name === 'Ocfs2CorruptError';
}
