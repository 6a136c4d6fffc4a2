/**
 * Directory reading: inline directories (entries in the inode's id2 inline
 * data), block directories (extent-mapped blocks of dirents, with a trailer
 * on indexed or metaecc volumes), and indexed lookups through the dx tree.
 */
import { PosixError, Ocfs2CorruptError } from './errors';
import { OCFS2_INLINE_DATA_FL, OCFS2_INDEXED_DIR_FL } from './constants';
import { inodeExtentList, inodeInlineData, INLINE_DATA_OFFSET } from './structs/dinode';
import {
  iterateDirEntries, dirHasTrailer, dirBlockArea, dirBlockCheckOffset, findDirEntry, direntNameProblem, type DirArea, type DirEntry,
} from './structs/dir';
import { decodeDxRoot, decodeDxLeaf, DX_ROOT_CHECK_OFFSET, DX_LEAF_CHECK_OFFSET, type DxEntryList } from './structs/dxdir';
import { dxNameHash, dxLeafBlockFor, hashDependsOnCharSign, type DxHash } from './dirhash';
import { findLeafList, lookupExtent } from './extentmap';
import type { InodeBlock, Volume } from './volume';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

export interface DirEntryInfo {
  name: Buffer;
  inode: number;
  fileType: number;
  /** The directory block (or inline directory inode) holding the entry. */
  blkno?: number;
}

/**
 * A found entry, its inode number checked against the volume before anyone
 * reads it: a bad one is corruption of the block holding the entry, not of
 * the block it names.
 */
function checkedEntry(vol: Volume, e: DirEntryInfo, holder: number): DirEntryInfo {
  if (e.inode <= 2 || e.inode >= vol.dev.blockCount) {
    throw new Ocfs2CorruptError(holder, `directory entry inode ${e.inode} outside the volume`, `entry "${e.name.toString('latin1')}", volume has ${vol.dev.blockCount} blocks`);
  }
  return { name: e.name, inode: e.inode, fileType: e.fileType, blkno: holder };
}

function requireDir(dir: InodeBlock): void {
  if ((dir.inode.mode & S_IFMT) !== S_IFDIR) throw new PosixError('ENOTDIR');
}

function isInline(dir: InodeBlock): boolean {
  return (dir.inode.dynFeatures & OCFS2_INLINE_DATA_FL) !== 0;
}

function inlineArea(dir: InodeBlock): DirArea {
  const data = inodeInlineData(dir.buf, dir.inode.blkno);
  // i_size of an inline dir is id_count; entries tile exactly that area.
  return { blkno: dir.inode.blkno, start: INLINE_DATA_OFFSET, size: Math.min(data.count, dir.inode.size) };
}

/** Number of blocks of a block directory. */
function dirBlocks(vol: Volume, dir: InodeBlock): number {
  if (dir.inode.size % vol.blockSize !== 0) {
    throw new Ocfs2CorruptError(dir.inode.blkno, 'directory i_size is not a multiple of the block size', `i_size ${dir.inode.size}`);
  }
  return dir.inode.size / vol.blockSize;
}

function hasTrailer(vol: Volume, dir: InodeBlock): boolean {
  return dirHasTrailer({
    inlineData: isInline(dir), metaEcc: vol.metaEcc,
    indexedDir: (dir.inode.dynFeatures & OCFS2_INDEXED_DIR_FL) !== 0,
  });
}

/** Physical block of logical block `n` of a block directory. */
async function dirBlockPhys(vol: Volume, dir: InodeBlock, n: number): Promise<number> {
  const cpos = Math.floor(n / vol.clusterBlocks);
  const list = inodeExtentList(dir.buf, dir.inode.blkno);
  const { extent } = await lookupExtent(vol, list, dir.inode.blkno, cpos);
  if (!extent) throw new Ocfs2CorruptError(dir.inode.blkno, 'directory has a hole', `logical block ${n}`);
  return extent.blkno + (n - extent.cpos * vol.clusterBlocks);
}

/** Read one directory block (block check verified on metaecc volumes). */
async function readDirBlock(vol: Volume, blkno: number, trailer: boolean): Promise<Buffer> {
  return vol.readMetaBlock(blkno, trailer ? dirBlockCheckOffset(vol.blockSize) : null);
}

/** Every live entry (inode != 0), including "." and "..", in on-disk order. */
export async function* iterateDirectory(vol: Volume, dir: InodeBlock): AsyncGenerator<DirEntryInfo> {
  requireDir(dir);
  // An entry whose name cannot be listed is skipped, naming the block that holds it.
  const listable = (e: DirEntry, blkno: number): boolean => {
    const bad = direntNameProblem(e.name);
    if (bad) vol.warn(`block ${blkno}: directory entry at offset ${e.offset} of directory ${dir.inode.blkno} (inode ${e.inode}): ${bad}: entry skipped`);
    return !bad;
  };
  if (isInline(dir)) {
    for (const e of iterateDirEntries(dir.buf, inlineArea(dir))) {
      if (e.inode !== 0 && listable(e, dir.inode.blkno)) yield { name: e.name, inode: e.inode, fileType: e.fileType, blkno: dir.inode.blkno };
    }
    return;
  }
  const trailer = hasTrailer(vol, dir);
  const n = dirBlocks(vol, dir);
  const list = inodeExtentList(dir.buf, dir.inode.blkno);
  let logical = 0;
  while (logical < n) {
    const cpos = Math.floor(logical / vol.clusterBlocks);
    const { extent } = await lookupExtent(vol, list, dir.inode.blkno, cpos);
    if (!extent) throw new Ocfs2CorruptError(dir.inode.blkno, 'directory has a hole', `logical block ${logical}`);
    const extEndBlock = Math.min(n, (extent.cpos + extent.clusters) * vol.clusterBlocks);
    for (; logical < extEndBlock; logical++) {
      const phys = extent.blkno + (logical - extent.cpos * vol.clusterBlocks);
      const buf = await readDirBlock(vol, phys, trailer);
      for (const e of iterateDirEntries(buf, dirBlockArea(phys, vol.blockSize, trailer))) {
        if (e.inode !== 0 && listable(e, phys)) yield { name: e.name, inode: e.inode, fileType: e.fileType, blkno: phys };
      }
    }
  }
}

/**
 * Find `name` in a directory: through the dx index when the directory is
 * indexed, otherwise by scanning.  Returns undefined when absent.
 */
export async function lookupName(vol: Volume, dir: InodeBlock, name: Buffer): Promise<DirEntryInfo | undefined> {
  requireDir(dir);
  if (name.length === 0 || name.length > 255) return undefined;
  if (isInline(dir)) {
    const e = findDirEntry(dir.buf, inlineArea(dir), name);
    return e ? checkedEntry(vol, e, dir.inode.blkno) : undefined;
  }
  if ((dir.inode.dynFeatures & OCFS2_INDEXED_DIR_FL) && dir.inode.dxRoot) {
    const seed = { dxSeed: vol.sb.dxSeed, uuidHash: vol.uuidHash };
    const hit = await dxLookup(vol, dir, name, dxNameHash(name, seed));
    if (hit || !hashDependsOnCharSign(name)) return hit;
    // Kernels built with unsigned char (>= 6.2) hash high bytes differently.
    return dxLookup(vol, dir, name, dxNameHash(name, seed, { unsignedChar: true }));
  }
  for await (const e of iterateDirectory(vol, dir)) {
    if (e.name.equals(name)) return checkedEntry(vol, e, e.blkno ?? dir.inode.blkno);
  }
  return undefined;
}

async function dxLookup(vol: Volume, dir: InodeBlock, name: Buffer, hash: DxHash): Promise<DirEntryInfo | undefined> {
  const rootBlk = dir.inode.dxRoot;
  const rootBuf = await vol.readMetaBlock(rootBlk, DX_ROOT_CHECK_OFFSET);
  const root = decodeDxRoot(rootBuf, rootBlk, { fsGeneration: vol.sb.fsGeneration, dirBlkno: dir.inode.blkno });
  let entries: DxEntryList;
  if (root.inline) {
    entries = root.entries!;
  } else {
    const recs = await findLeafList(vol, root.list!, rootBlk, hash.major >>> 0, { hashed: true });
    const leafAt = dxLeafBlockFor(recs, hash, vol.clusterBits, vol.blockBits);
    if (!leafAt) throw new Ocfs2CorruptError(rootBlk, 'dx tree has no record for hash', `major 0x${(hash.major >>> 0).toString(16)}`);
    const leafBuf = await vol.readMetaBlock(leafAt.blkno, DX_LEAF_CHECK_OFFSET);
    entries = decodeDxLeaf(leafBuf, leafAt.blkno, { fsGeneration: vol.sb.fsGeneration }).list;
  }
  const trailer = hasTrailer(vol, dir);
  const tried = new Set<number>();
  for (const e of entries.entries) {
    if ((e.dx_major_hash >>> 0) !== (hash.major >>> 0) || (e.dx_minor_hash >>> 0) !== (hash.minor >>> 0)) continue;
    if (tried.has(e.dx_dirent_blk)) continue;
    tried.add(e.dx_dirent_blk);
    const buf = await readDirBlock(vol, e.dx_dirent_blk, trailer);
    const de = findDirEntry(buf, dirBlockArea(e.dx_dirent_blk, vol.blockSize, trailer), name);
    if (de) return checkedEntry(vol, de, e.dx_dirent_blk);
  }
  return undefined;
}

export { dirBlockPhys };
