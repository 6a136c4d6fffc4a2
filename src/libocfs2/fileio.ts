/**
 * Reading file contents and symlink targets: inline data (id2.i_data), fast
 * symlinks (target in id2), and extent-mapped data.
 */
import { Ocfs2CorruptError } from './errors';
import { OCFS2_INLINE_DATA_FL } from './constants';
import { inodeExtentList, inodeInlineData, fastSymlinkTarget, validateSymlinkSize } from './structs/dinode';
import { readMappedInto } from './extentmap';
import type { InodeBlock, Volume } from './volume';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/**
 * Read up to `length` bytes at `offset` into `out` (from index 0); returns
 * the byte count (short at end of file, 0 past it).
 */
export async function readFileInto(vol: Volume, f: InodeBlock, offset: number, length: number, out: Buffer): Promise<number> {
  const size = f.inode.size;
  if (offset >= size || length <= 0) return 0;
  const n = Math.min(length, size - offset, out.length);
  if (f.inode.dynFeatures & OCFS2_INLINE_DATA_FL) {
    const { data, count } = inodeInlineData(f.buf, f.inode.blkno);
    if (size > count) throw new Ocfs2CorruptError(f.inode.blkno, 'inline file i_size exceeds id_count', `i_size ${size}, id_count ${count}`);
    data.copy(out, 0, offset, offset + n);
    return n;
  }
  await readMappedInto(vol, inodeExtentList(f.buf, f.inode.blkno), f.inode.blkno, offset, n, out);
  return n;
}

/** Read up to `length` bytes at `offset` (short at end of file, empty past it). */
export async function readFile(vol: Volume, f: InodeBlock, offset: number, length: number): Promise<Buffer> {
  const n = Math.max(0, Math.min(length, f.inode.size - offset));
  const out = Buffer.allocUnsafe(n);
  return out.subarray(0, await readFileInto(vol, f, offset, n, out));
}

/** A symlink's target bytes (fast: in the inode; slow: in its data cluster). */
export async function readSymlink(vol: Volume, f: InodeBlock): Promise<Buffer> {
  if ((f.inode.mode & S_IFMT) !== S_IFLNK) throw new Ocfs2CorruptError(f.inode.blkno, 'not a symlink');
  if (f.inode.clusters === 0) return fastSymlinkTarget(f.buf, f.inode.blkno);
  // i_size sizes the buffer: bounded first (a corrupt 2^32 would stall the daemon).
  validateSymlinkSize({ i_clusters: f.inode.clusters, i_size: f.inode.size }, f.inode.blkno, vol.blockSize, vol.clusterSize);
  const data = await readFile(vol, f, 0, f.inode.size);
  const nul = data.indexOf(0);
  return nul >= 0 ? data.subarray(0, nul) : data;
}
