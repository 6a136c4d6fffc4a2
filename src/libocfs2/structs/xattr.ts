/**
 * Extended attributes (XATTR feature), kernel fs/ocfs2/ocfs2_fs.h and xattr.c.
 *
 * An xattr header (`ocfs2_xattr_header`, 16 bytes + 16-byte entries) heads
 * three kinds of storage:
 *   - in-inode: the last i_xattr_inline_size bytes of the dinode block
 *     (dyn flag INLINE_XATTR_FL), names relative to the header;
 *   - an xattr block "XATTR01" (i_xattr_loc) without OCFS2_XATTR_INDEXED: the
 *     header at 0x30, names relative to the header;
 *   - buckets: with OCFS2_XATTR_INDEXED the block instead holds a tree root
 *     whose extent list maps name hash (as cpos) to clusters of 4 KiB buckets;
 *     each bucket (4096/bs blocks) starts with a header, names relative to the
 *     bucket start, entries sorted by name hash.
 * Names and values are packed downward from the end of the storage, each
 * rounded to 4 bytes (OCFS2_XATTR_SIZE), the value right after its name.  A
 * value of more than 80 bytes lives in clusters described by an
 * `ocfs2_xattr_value_root` (an extent list) stored in place of the value,
 * and the entry's LOCAL bit (0x80 in xe_type) is clear.
 */
import { defineStruct } from '../struct';
import { Ocfs2CorruptError } from '../errors';
import { xattrNameHash } from '../dirhash';
import {
  OCFS2_XATTR_BLOCK_SIGNATURE, OCFS2_XATTR_INDEXED, OCFS2_XATTR_INLINE_SIZE, OCFS2_XATTR_BUCKET_SIZE,
  hasSignature, signatureBytes, signatureText,
} from '../constants';
import { decodeExtentList, decodeOrCorrupt, encodeExtentList, ExtentListHeader, EXTENT_REC_SIZE, type ExtentList } from './extent';

/* ---- constants ------------------------------------------------------------------------------ */

/** xe_type bit: the value is stored in the entry's storage (not in clusters). */
export const OCFS2_XATTR_ENTRY_LOCAL = 0x80;
/** xe_type low 7 bits: the name index (prefix). */
export const OCFS2_XATTR_TYPE_MASK = 0x7f;
export const OCFS2_XATTR_ROUND = 3;
/** Free space kept between the entry table and the names (OCFS2_XATTR_HEADER_GAP). */
export const OCFS2_XATTR_HEADER_GAP = 4;

/** Name indexes (xe_type & 0x7f), fs/ocfs2/xattr.h. */
export const OCFS2_XATTR_INDEX_USER = 1;
export const OCFS2_XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const OCFS2_XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const OCFS2_XATTR_INDEX_TRUSTED = 4;
export const OCFS2_XATTR_INDEX_SECURITY = 5;

/**
 * The prefix of each name index (the handlers' prefixes).  POSIX ACLs are
 * stored under their index with an empty name, so the full name is the
 * prefix alone.
 */
export const XATTR_PREFIXES: Readonly<Record<number, string>> = {
  [OCFS2_XATTR_INDEX_USER]: 'user.',
  [OCFS2_XATTR_INDEX_POSIX_ACL_ACCESS]: 'system.posix_acl_access',
  [OCFS2_XATTR_INDEX_POSIX_ACL_DEFAULT]: 'system.posix_acl_default',
  [OCFS2_XATTR_INDEX_TRUSTED]: 'trusted.',
  [OCFS2_XATTR_INDEX_SECURITY]: 'security.',
};

/** OCFS2_XATTR_SIZE: bytes a name or local value occupies. */
export function xattrSize(n: number): number {
  return (n + OCFS2_XATTR_ROUND) & ~OCFS2_XATTR_ROUND;
}

/**
 * Split a full attribute name into (name index, stored name), as the kernel's
 * handlers do.  Returns undefined for a namespace OCFS2 does not store.
 */
export function splitXattrName(full: Buffer): { nameIndex: number; name: Buffer } | undefined {
  for (const [idx, prefix] of Object.entries(XATTR_PREFIXES)) {
    const p = Buffer.from(prefix);
    const isAcl = Number(idx) === OCFS2_XATTR_INDEX_POSIX_ACL_ACCESS || Number(idx) === OCFS2_XATTR_INDEX_POSIX_ACL_DEFAULT;
    if (isAcl ? full.equals(p) : full.length > p.length && full.subarray(0, p.length).equals(p)) {
      return { nameIndex: Number(idx), name: Buffer.from(full.subarray(p.length)) };
    }
  }
  return undefined;
}

/* ---- structures ------------------------------------------------------------------------------ */

export const XattrEntry = defineStruct('ocfs2_xattr_entry', 16, 'le', [
  { name: 'xe_name_hash', offset: 0x00, type: 'u32' },
  { name: 'xe_name_offset', offset: 0x04, type: 'u16' },
  { name: 'xe_name_len', offset: 0x06, type: 'u8' },
  { name: 'xe_type', offset: 0x07, type: 'u8' },
  { name: 'xe_value_size', offset: 0x08, type: 'u64' },
] as const);
export type XattrEntry = ReturnType<typeof XattrEntry.decode>;

/** Fixed part of the header; xh_entries follow at 0x10.  xh_check is used only in buckets. */
export const XattrHeader = defineStruct('ocfs2_xattr_header', 16, 'le', [
  { name: 'xh_count', offset: 0x00, type: 'u16' },
  { name: 'xh_free_start', offset: 0x02, type: 'u16' },
  { name: 'xh_name_value_len', offset: 0x04, type: 'u16' },
  { name: 'xh_num_buckets', offset: 0x06, type: 'u16' },
  { name: 'xh_check', offset: 0x08, type: 'bytes', size: 8 },
] as const);
export type XattrHeader = ReturnType<typeof XattrHeader.decode>;

/** Fixed part of `ocfs2_xattr_value_root`; xr_list follows at 0x10. */
export const XattrValueRootHeader = defineStruct('ocfs2_xattr_value_root', 16, 'le', [
  { name: 'xr_clusters', offset: 0x00, type: 'u32' },
  { name: 'xr_reserved0', offset: 0x04, type: 'u32' },
  { name: 'xr_last_eb_blk', offset: 0x08, type: 'u64' },
] as const);

/** Fixed part of `ocfs2_xattr_tree_root`; xt_list follows at 0x10. */
export const XattrTreeRootHeader = defineStruct('ocfs2_xattr_tree_root', 16, 'le', [
  { name: 'xt_clusters', offset: 0x00, type: 'u32' },
  { name: 'xt_reserved0', offset: 0x04, type: 'u32' },
  { name: 'xt_last_eb_blk', offset: 0x08, type: 'u64' },
] as const);

/** Fixed part of `ocfs2_xattr_block`; the header / tree root union starts at 0x30. */
export const XattrBlockHeader = defineStruct('ocfs2_xattr_block', 0x30, 'le', [
  { name: 'xb_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'xb_suballoc_slot', offset: 0x08, type: 'u16' },
  { name: 'xb_suballoc_bit', offset: 0x0a, type: 'u16' },
  { name: 'xb_fs_generation', offset: 0x0c, type: 'u32' },
  { name: 'xb_blkno', offset: 0x10, type: 'u64' },
  { name: 'xb_check', offset: 0x18, type: 'bytes', size: 8 },
  { name: 'xb_flags', offset: 0x20, type: 'u16' },
  { name: 'xb_reserved0', offset: 0x22, type: 'u16' },
  { name: 'xb_reserved1', offset: 0x24, type: 'u32' },
  { name: 'xb_suballoc_loc', offset: 0x28, type: 'u64' },
] as const);
export type XattrBlockHeader = ReturnType<typeof XattrBlockHeader.decode>;

/** Offset of the xb_attrs union in an xattr block. */
export const XATTR_BLOCK_ATTRS_OFFSET = XattrBlockHeader.size;
/** Metaecc check offset of an xattr block (xb_check, 0x18: not 0x08 as elsewhere). */
export const XATTR_BLOCK_CHECK_OFFSET = XattrBlockHeader.offsetOf('xb_check');
/** Metaecc check offset of a bucket (its header's xh_check); the check covers all 4 KiB. */
export const XATTR_BUCKET_CHECK_OFFSET = XattrHeader.offsetOf('xh_check');
/**
 * OCFS2_XATTR_ROOT_SIZE: a value root with a one-record extent list, the
 * space a non-local value takes in the storage (48 bytes).
 */
export const OCFS2_XATTR_ROOT_SIZE = XattrValueRootHeader.size + ExtentListHeader.size + EXTENT_REC_SIZE;

/** Where the xattr header of an inode's inline area starts: bs - i_xattr_inline_size. */
export function inlineXattrHeaderOffset(blockSize: number, inlineSize: number): number {
  return blockSize - inlineSize;
}

/** ocfs2_blocks_per_xattr_bucket */
export function blocksPerXattrBucket(blockSize: number): number {
  return OCFS2_XATTR_BUCKET_SIZE / blockSize;
}

/** ocfs2_xattr_buckets_per_cluster */
export function xattrBucketsPerCluster(clusterSize: number): number {
  return clusterSize / OCFS2_XATTR_BUCKET_SIZE;
}

/** ocfs2_xattr_max_xe_in_bucket: the entry table lives in the bucket's first block. */
export function maxXattrEntriesInBucket(blockSize: number): number {
  return Math.floor((blockSize - XattrHeader.size) / XattrEntry.size);
}

/** Space one attribute takes in the storage, entry excluded (`namevalue_size`). */
export function xattrNameValueSize(nameLen: number, valueSize: number): number {
  return xattrSize(nameLen) + (valueSize > OCFS2_XATTR_INLINE_SIZE ? OCFS2_XATTR_ROOT_SIZE : xattrSize(valueSize));
}

/* ---- reading ------------------------------------------------------------------------------------ */

export interface XattrValueRoot {
  clusters: number;
  lastEbBlk: number;
  reserved0: number;
  /** Extent list mapping the value's clusters (cpos in clusters of the value). */
  list: ExtentList;
}

export interface XattrItem {
  /** Index of the entry in xh_entries. */
  index: number;
  entry: XattrEntry;
  /** xe_type & 0x7f */
  nameIndex: number;
  /** The stored name (without prefix). */
  shortName: Buffer;
  /** The full name, prefix included. */
  name: Buffer;
  valueSize: number;
  local: boolean;
  /** Absolute offset in the buffer of the stored name. */
  nameOffset: number;
  /** Absolute offset in the buffer of the local value, or of the value root. */
  valueOffset: number;
  /** For non-local values: the value root (read the value from its clusters). */
  valueRoot?: XattrValueRoot;
}

export interface XattrArea {
  /** Block reported in errors (inode, xattr block, or first block of the bucket). */
  readonly blkno: number;
  /** Absolute offset of the xattr header in the buffer; name offsets are relative to it. */
  readonly headerOffset: number;
  /** Bytes of storage from the header to its end (inline size, bs - 0x30, or 4096). */
  readonly size: number;
  /** For buckets: entries must fit in the first block (bs - 16 bytes). */
  readonly maxEntries?: number;
  /** For buckets: the block size; no name+value pair may straddle a block. */
  readonly pairBlockSize?: number;
}

export interface XattrList {
  header: XattrHeader;
  /** Entries with a known name index, in table order (unknown indexes are skipped, like listxattr). */
  items: XattrItem[];
  /** Number of entries skipped for an unknown name index. */
  skipped: number;
}

/** Decode a value root (`ocfs2_xattr_value_root`) at absolute offset `off`, bounded by `end`. */
export function decodeXattrValueRoot(buf: Buffer, off: number, blkno: number, end = buf.length): XattrValueRoot {
  if (off + XattrValueRootHeader.size > end) {
    throw new Ocfs2CorruptError(blkno, 'xattr value root outside the storage', `offset ${off}`);
  }
  const h = decodeOrCorrupt(XattrValueRootHeader, buf, off, blkno);
  return {
    clusters: h.xr_clusters, lastEbBlk: h.xr_last_eb_blk, reserved0: h.xr_reserved0,
    list: decodeExtentList(buf, off + XattrValueRootHeader.size, blkno, end),
  };
}

/** Encode a value root at absolute offset `off`. */
export function encodeXattrValueRoot(vr: XattrValueRoot, buf: Buffer, off: number): void {
  XattrValueRootHeader.encode({ xr_clusters: vr.clusters, xr_reserved0: vr.reserved0, xr_last_eb_blk: vr.lastEbBlk }, buf, off);
  encodeExtentList(vr.list, buf, off + XattrValueRootHeader.size);
}

/**
 * List the attributes of one xattr header, validating every entry: the entry
 * table fits, each name (and local value, or value root) lies inside the
 * storage and does not overlap the entry table, a local value is at most 80
 * bytes and a non-local one more than 80.
 */
export function listXattrArea(buf: Buffer, area: XattrArea): XattrList {
  const { blkno, headerOffset: base, size } = area;
  if (base < 0 || size < XattrHeader.size || base + size > buf.length) {
    throw new Ocfs2CorruptError(blkno, 'xattr storage outside the buffer', `header at ${base}, size ${size}, buffer ${buf.length}`);
  }
  const header = XattrHeader.decode(buf, base);
  const count = header.xh_count;
  const tableEnd = XattrHeader.size + count * XattrEntry.size;
  const maxEntries = area.maxEntries ?? Math.floor((size - XattrHeader.size) / XattrEntry.size);
  if (count > maxEntries || tableEnd > size) {
    throw new Ocfs2CorruptError(blkno, 'xattr header xh_count too large', `xh_count ${count}, room for ${maxEntries}`);
  }
  const items: XattrItem[] = [];
  let skipped = 0;
  for (let i = 0; i < count; i++) {
    const eoff = base + XattrHeader.size + i * XattrEntry.size;
    const entry = decodeOrCorrupt(XattrEntry, buf, eoff, blkno);
    const where = `entry ${i}`;
    const nameRel = entry.xe_name_offset;
    const valueRel = nameRel + xattrSize(entry.xe_name_len);
    const local = (entry.xe_type & OCFS2_XATTR_ENTRY_LOCAL) !== 0;
    if (nameRel < tableEnd || valueRel > size) {
      throw new Ocfs2CorruptError(blkno, 'xattr name outside the storage',
        `${where}: xe_name_offset ${nameRel}, xe_name_len ${entry.xe_name_len}, storage ${tableEnd}..${size}`);
    }
    const valueSize = entry.xe_value_size;
    let valueRoot: XattrValueRoot | undefined;
    if (local) {
      if (valueSize > OCFS2_XATTR_INLINE_SIZE) {
        throw new Ocfs2CorruptError(blkno, 'local xattr value larger than 80 bytes', `${where}: xe_value_size ${valueSize}`);
      }
      if (valueRel + xattrSize(valueSize) > size) {
        throw new Ocfs2CorruptError(blkno, 'xattr value outside the storage', `${where}: value at ${valueRel}, size ${valueSize}`);
      }
    } else {
      if (valueSize <= OCFS2_XATTR_INLINE_SIZE) {
        throw new Ocfs2CorruptError(blkno, 'non-local xattr value of 80 bytes or less', `${where}: xe_value_size ${valueSize}`);
      }
      // XATTR_SIZE_MAX: the VFS never hands ocfs2 a larger value; the size sizes a read buffer.
      if (valueSize > XATTR_SIZE_MAX) {
        throw new Ocfs2CorruptError(blkno, 'xattr xe_value_size larger than XATTR_SIZE_MAX', `${where}: xe_value_size ${valueSize}, max ${XATTR_SIZE_MAX}`);
      }
      if (valueRel + OCFS2_XATTR_ROOT_SIZE > size) {
        throw new Ocfs2CorruptError(blkno, 'xattr value root outside the storage', `${where}: value root at ${valueRel}`);
      }
      valueRoot = decodeXattrValueRoot(buf, base + valueRel, blkno, base + size);
    }
    if (area.pairBlockSize) {
      const end = valueRel + (local ? xattrSize(valueSize) : OCFS2_XATTR_ROOT_SIZE);
      if (Math.floor(nameRel / area.pairBlockSize) !== Math.floor((Math.max(end, nameRel + 1) - 1) / area.pairBlockSize)) {
        throw new Ocfs2CorruptError(blkno, 'xattr name+value crosses a block of the bucket', `${where}: ${nameRel}..${end}`);
      }
    }
    const nameIndex = entry.xe_type & OCFS2_XATTR_TYPE_MASK;
    const prefix = XATTR_PREFIXES[nameIndex];
    if (prefix === undefined) { skipped++; continue; }
    const shortName = Buffer.from(buf.subarray(base + nameRel, base + nameRel + entry.xe_name_len));
    const item: XattrItem = {
      index: i, entry, nameIndex, shortName, name: Buffer.concat([Buffer.from(prefix), shortName]),
      valueSize, local, nameOffset: base + nameRel, valueOffset: base + valueRel,
    };
    if (valueRoot) item.valueRoot = valueRoot;
    items.push(item);
  }
  return { header, items, skipped };
}

/** The bytes of a local value (a copy). */
export function xattrLocalValue(buf: Buffer, item: XattrItem): Buffer {
  if (!item.local) throw new RangeError('xattr value is not local; read it through item.valueRoot');
  return Buffer.from(buf.subarray(item.valueOffset, item.valueOffset + item.valueSize));
}

/** List the in-inode xattrs of a dinode block (call only when INLINE_XATTR_FL is set). */
export function listInlineXattrs(inodeBlock: Buffer, blockSize: number, inlineSize: number, blkno: number): XattrList {
  if (inlineSize < XattrHeader.size || inlineSize > blockSize) {
    throw new Ocfs2CorruptError(blkno, 'bad i_xattr_inline_size', `${inlineSize}`);
  }
  return listXattrArea(inodeBlock, { blkno, headerOffset: inlineXattrHeaderOffset(blockSize, inlineSize), size: inlineSize });
}

export interface XattrTreeRoot {
  clusters: number;
  lastEbBlk: number;
  reserved0: number;
  /** Extent list: cpos = name hash, records = runs of clusters of buckets. */
  list: ExtentList;
}

export interface XattrBlock {
  header: XattrBlockHeader;
  indexed: boolean;
  /** Not indexed: the attributes stored in the block. */
  attrs?: XattrList;
  /** Indexed: the bucket tree root. */
  tree?: XattrTreeRoot;
}

export interface XattrValidateOptions {
  /** The superblock's fs generation; checked when given (the kernel does). */
  fsGeneration?: number;
}

/**
 * Decode and validate an xattr block (`ocfs2_validate_xattr_block`, minus the
 * ECC): signature "XATTR01", xb_blkno equal to the block, fs generation.
 */
export function decodeXattrBlock(buf: Buffer, blkno: number, blockSize: number, opts: XattrValidateOptions = {}): XattrBlock {
  if (buf.length < blockSize) throw new Ocfs2CorruptError(blkno, 'xattr block shorter than the block size', `${buf.length}`);
  if (!hasSignature(buf, 0, OCFS2_XATTR_BLOCK_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, `xattr block signature is ${signatureText(buf, 0)}, expected "${OCFS2_XATTR_BLOCK_SIGNATURE}"`);
  }
  const header = decodeOrCorrupt(XattrBlockHeader, buf, 0, blkno);
  if (header.xb_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'xattr block xb_blkno does not match the block', `xb_blkno=${header.xb_blkno}`);
  }
  if (opts.fsGeneration !== undefined && header.xb_fs_generation !== (opts.fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'xattr block xb_fs_generation mismatch', `found 0x${header.xb_fs_generation.toString(16)}`);
  }
  const indexed = (header.xb_flags & OCFS2_XATTR_INDEXED) !== 0;
  const at = XATTR_BLOCK_ATTRS_OFFSET;
  if (!indexed) {
    return { header, indexed, attrs: listXattrArea(buf, { blkno, headerOffset: at, size: blockSize - at }) };
  }
  const t = decodeOrCorrupt(XattrTreeRootHeader, buf, at, blkno);
  return {
    header, indexed,
    tree: {
      clusters: t.xt_clusters, lastEbBlk: t.xt_last_eb_blk, reserved0: t.xt_reserved0,
      list: decodeExtentList(buf, at + XattrTreeRootHeader.size, blkno, blockSize),
    },
  };
}

/** Encode the tree root of an indexed xattr block (the block header is written by the caller). */
export function encodeXattrTreeRoot(tree: XattrTreeRoot, buf: Buffer): void {
  const at = XATTR_BLOCK_ATTRS_OFFSET;
  XattrTreeRootHeader.encode({ xt_clusters: tree.clusters, xt_reserved0: tree.reserved0, xt_last_eb_blk: tree.lastEbBlk }, buf, at);
  encodeExtentList(tree.list, buf, at + XattrTreeRootHeader.size);
}

/** A fresh xattr block header. */
export function newXattrBlockHeader(o: Partial<XattrBlockHeader> & { xb_blkno: number }): XattrBlockHeader {
  return { ...XattrBlockHeader.zero(), xb_signature: signatureBytes(OCFS2_XATTR_BLOCK_SIGNATURE), ...o };
}

/**
 * List one bucket: `bucket` is the 4096 bytes of the bucket's blocks read
 * contiguously, `blkno` its first block.  The entry table must fit in the
 * first block and no name+value pair may straddle a block.
 */
export function listXattrBucket(bucket: Buffer, blkno: number, blockSize: number): XattrList {
  if (bucket.length < OCFS2_XATTR_BUCKET_SIZE) {
    throw new Ocfs2CorruptError(blkno, 'xattr bucket shorter than 4096 bytes', `${bucket.length}`);
  }
  return listXattrArea(bucket, {
    blkno, headerOffset: 0, size: OCFS2_XATTR_BUCKET_SIZE, maxEntries: maxXattrEntriesInBucket(blockSize),
    pairBlockSize: blockSize,
  });
}

/**
 * How many buckets of an extent are in use: xh_num_buckets of the extent's
 * first bucket (`ocfs2_iterate_xattr_buckets`), checked against the extent's
 * capacity (clusters * buckets per cluster).
 */
export function bucketsInUse(firstBucket: Buffer, blkno: number, clusters: number, clusterSize: number): number {
  const n = XattrHeader.decode(firstBucket, 0).xh_num_buckets;
  const cap = clusters * xattrBucketsPerCluster(clusterSize);
  if (n === 0 || n > cap) {
    throw new Ocfs2CorruptError(blkno, 'xattr bucket count out of range', `xh_num_buckets ${n}, extent holds ${cap}`);
  }
  return n;
}

/**
 * Which record of the bucket tree (leaf level) covers a name hash
 * (`ocfs2_xattr_get_rec`): the last record with e_cpos <= hash.
 */
export function xattrTreeRecFor<R extends { cpos: number }>(recs: readonly R[], nameHash: number): R | undefined {
  const h = nameHash >>> 0;
  for (let i = recs.length - 1; i >= 0; i--) if (recs[i]!.cpos <= h) return recs[i];
  return undefined;
}

/* ---- writing (in-inode and block storage) -------------------------------------------------- */

export interface XattrToStore {
  nameIndex: number;
  /** Stored name (without prefix). */
  shortName: Buffer;
  /** Name hash (xattrNameHash of shortName). */
  nameHash: number;
  /** A local value (<= 80 bytes) ... */
  value?: Buffer;
  /** ... or a value root with the full value size. */
  valueRoot?: { root: XattrValueRoot; valueSize: number };
}

/**
 * Lay out attributes in a header's storage the way the kernel's block/ibody
 * code leaves it after successive adds: entries in the given order, each
 * name+value packed downward from the end of the storage (the first entry
 * highest).  xh_free_start and xh_name_value_len are written as given (the
 * kernel keeps them at 0 outside buckets).  Clears the whole storage first.
 * Returns false if the attributes do not fit (entries + gap + names/values).
 */
export function writeXattrArea(
  buf: Buffer, area: XattrArea, attrs: readonly XattrToStore[],
  header: { xh_free_start?: number; xh_name_value_len?: number; xh_num_buckets?: number } = {},
): boolean {
  const { headerOffset: base, size } = area;
  let free = size;
  const tableEnd = XattrHeader.size + attrs.length * XattrEntry.size;
  const sizes = attrs.map((a) => {
    if (a.value && a.valueRoot) throw new RangeError('xattr has both a local value and a value root');
    const vsize = a.valueRoot ? a.valueRoot.valueSize : (a.value?.length ?? 0);
    if (!a.valueRoot && vsize > OCFS2_XATTR_INLINE_SIZE) throw new RangeError('local xattr value longer than 80 bytes');
    if (a.valueRoot && vsize <= OCFS2_XATTR_INLINE_SIZE) throw new RangeError('value root for a value of 80 bytes or less');
    return xattrNameValueSize(a.shortName.length, vsize);
  });
  const total = sizes.reduce((s, x) => s + x, 0);
  if (tableEnd + OCFS2_XATTR_HEADER_GAP + total > size) return false;
  buf.fill(0, base, base + size);
  XattrHeader.encode({
    xh_count: attrs.length, xh_free_start: header.xh_free_start ?? 0, xh_name_value_len: header.xh_name_value_len ?? 0,
    xh_num_buckets: header.xh_num_buckets ?? 0, xh_check: Buffer.alloc(8),
  }, buf, base);
  attrs.forEach((a, i) => {
    free -= sizes[i]!;
    const vsize = a.valueRoot ? a.valueRoot.valueSize : (a.value?.length ?? 0);
    XattrEntry.encode({
      xe_name_hash: a.nameHash >>> 0, xe_name_offset: free, xe_name_len: a.shortName.length,
      xe_type: (a.nameIndex & OCFS2_XATTR_TYPE_MASK) | (a.valueRoot ? 0 : OCFS2_XATTR_ENTRY_LOCAL),
      xe_value_size: vsize,
    }, buf, base + XattrHeader.size + i * XattrEntry.size);
    a.shortName.copy(buf, base + free);
    const vat = base + free + xattrSize(a.shortName.length);
    if (a.valueRoot) encodeXattrValueRoot(a.valueRoot.root, buf, vat);
    else a.value?.copy(buf, vat);
  });
  return true;
}

/* ---- writing (buckets) -------------------------------------------------------------------------- */

/**
 * `ocfs2_bucket_align_free_start`: in a bucket a name+value pair must not
 * straddle a block (the kernel reads it through one buffer_head), so an
 * allocation that would cross a block boundary moves down to end at it.
 */
export function bucketAlignFreeStart(freeStart: number, size: number, blockSize: number): number {
  if (Math.floor((freeStart - size) / blockSize) !== Math.floor((freeStart - 1) / blockSize)) {
    return freeStart - (freeStart % blockSize);
  }
  return freeStart;
}

/**
 * Lay out a whole bucket (4096 bytes): entries sorted by name hash (the
 * order lookups binary-search), name+value pairs packed downward from the end
 * without crossing a block boundary, xh_free_start = the lowest name offset
 * (4096 when empty), xh_name_value_len = the sum of the pairs' sizes,
 * xh_num_buckets as given (only the first bucket of an extent carries it).
 * xh_check is left zero for the caller's metaecc pass.  Returns false (and
 * writes nothing) if the attributes do not fit.
 */
export function writeXattrBucket(
  bucket: Buffer, blockSize: number, attrs: readonly XattrToStore[], numBuckets = 0,
): boolean {
  if (bucket.length < OCFS2_XATTR_BUCKET_SIZE) throw new RangeError('bucket buffer shorter than 4096 bytes');
  if (attrs.length > maxXattrEntriesInBucket(blockSize)) return false;
  const sorted = [...attrs].sort((a, b) => (a.nameHash >>> 0) - (b.nameHash >>> 0));
  const sizes = sorted.map((a) => {
    const vsize = a.valueRoot ? a.valueRoot.valueSize : (a.value?.length ?? 0);
    if (!a.valueRoot && vsize > OCFS2_XATTR_INLINE_SIZE) throw new RangeError('local xattr value longer than 80 bytes');
    if (a.valueRoot && vsize <= OCFS2_XATTR_INLINE_SIZE) throw new RangeError('value root for a value of 80 bytes or less');
    return xattrNameValueSize(a.shortName.length, vsize);
  });
  const offsets: number[] = [];
  let free = OCFS2_XATTR_BUCKET_SIZE;
  for (const sz of sizes) {
    if (sz > blockSize) return false;
    free = bucketAlignFreeStart(free, sz, blockSize) - sz;
    offsets.push(free);
  }
  const tableEnd = XattrHeader.size + sorted.length * XattrEntry.size;
  if (free < tableEnd + OCFS2_XATTR_HEADER_GAP) return false;
  bucket.fill(0, 0, OCFS2_XATTR_BUCKET_SIZE);
  XattrHeader.encode({
    xh_count: sorted.length, xh_free_start: free, xh_name_value_len: sizes.reduce((s, x) => s + x, 0),
    xh_num_buckets: numBuckets, xh_check: Buffer.alloc(8),
  }, bucket, 0);
  sorted.forEach((a, i) => {
    const at = offsets[i]!;
    const vsize = a.valueRoot ? a.valueRoot.valueSize : (a.value?.length ?? 0);
    XattrEntry.encode({
      xe_name_hash: a.nameHash >>> 0, xe_name_offset: at, xe_name_len: a.shortName.length,
      xe_type: (a.nameIndex & OCFS2_XATTR_TYPE_MASK) | (a.valueRoot ? 0 : OCFS2_XATTR_ENTRY_LOCAL),
      xe_value_size: vsize,
    }, bucket, XattrHeader.size + i * XattrEntry.size);
    a.shortName.copy(bucket, at);
    const vat = at + xattrSize(a.shortName.length);
    if (a.valueRoot) encodeXattrValueRoot(a.valueRoot.root, bucket, vat);
    else a.value?.copy(bucket, vat);
  });
  return true;
}

/** Linux XATTR_SIZE_MAX: the largest value setxattr(2) accepts. */
export const XATTR_SIZE_MAX = 65536;

/**
 * fsck.ocfs2 xattr.c check_xattr_entry (XATTR_HASH_INVALID): xe_name_hash is
 * ocfs2_xattr_name_hash of the stored name (either char signedness: kernels
 * built with unsigned char hash high bytes differently).  The failed check, or null.
 */
export function xattrNameHashProblem(item: XattrItem, uuidHash: number): string | null {
  const stored = item.entry.xe_name_hash >>> 0;
  if (stored === (xattrNameHash(item.shortName, uuidHash) >>> 0)) return null;
  if (stored === (xattrNameHash(item.shortName, uuidHash, { unsignedChar: true }) >>> 0)) return null;
  return `entry ${item.index} xe_name_hash 0x${stored.toString(16)} is not the hash of its name`;
}
