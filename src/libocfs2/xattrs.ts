/**
 * Extended attributes (read side): in-inode (INLINE_XATTR_FL, the last
 * i_xattr_inline_size bytes of the inode block), an external XATTR01 block
 * (i_xattr_loc, HAS_XATTR_FL), whose attributes sit either in the block or,
 * when indexed, in 4 KiB buckets reached through an extent tree keyed by
 * name hash.  Values over 80 bytes live in clusters mapped by a value root.
 */
import { OCFS2_HAS_XATTR_FL, OCFS2_INLINE_XATTR_FL, OCFS2_XATTR_BUCKET_SIZE } from './constants';
import {
  listInlineXattrs, decodeXattrBlock, listXattrBucket, bucketsInUse, xattrLocalValue,
  blocksPerXattrBucket, XATTR_BLOCK_CHECK_OFFSET, type XattrItem,
} from './structs/xattr';
import { verifyBlockCheck } from './blockcheck';
import { XattrHeader } from './structs/xattr';
import { allLeafExtents, readMapped } from './extentmap';
import type { InodeBlock, Volume } from './volume';

/** An attribute and where its value is. */
export interface XattrRef {
  name: Buffer;
  valueSize: number;
  /** The buffer holding the entry (inode block, xattr block or bucket). */
  source: Buffer;
  item: XattrItem;
}

async function readBucket(vol: Volume, blkno: number): Promise<Buffer> {
  const n = blocksPerXattrBucket(vol.blockSize);
  const bucket = await vol.dev.readBlocks(blkno, n);
  // xh_check covers the whole 4 KiB bucket (multi-block check).
  if (vol.metaEcc) verifyBlockCheck(bucket, XattrHeader.offsetOf('xh_check'), blkno, 0, OCFS2_XATTR_BUCKET_SIZE);
  return bucket;
}

/** Every attribute of an inode, in storage order (inline, then block/buckets). */
export async function listXattrRefs(vol: Volume, f: InodeBlock): Promise<XattrRef[]> {
  const out: XattrRef[] = [];
  const { inode, buf } = f;
  if (inode.dynFeatures & OCFS2_INLINE_XATTR_FL) {
    for (const item of listInlineXattrs(buf, vol.blockSize, inode.xattrInlineSize, inode.blkno).items) {
      out.push({ name: item.name, valueSize: item.valueSize, source: buf, item });
    }
  }
  if ((inode.dynFeatures & OCFS2_HAS_XATTR_FL) && inode.xattrLoc) {
    const xb = await vol.readMetaBlock(inode.xattrLoc, XATTR_BLOCK_CHECK_OFFSET);
    const block = decodeXattrBlock(xb, inode.xattrLoc, vol.blockSize, { fsGeneration: vol.sb.fsGeneration });
    if (!block.indexed) {
      for (const item of block.attrs!.items) out.push({ name: item.name, valueSize: item.valueSize, source: xb, item });
    } else {
      const bpb = blocksPerXattrBucket(vol.blockSize);
      for (const ext of await allLeafExtents(vol, block.tree!.list, inode.xattrLoc, { hashed: true })) {
        const first = await readBucket(vol, ext.blkno);
        const n = bucketsInUse(first, ext.blkno, ext.clusters, vol.clusterSize);
        for (let i = 0; i < n; i++) {
          const bblk = ext.blkno + i * bpb;
          const bucket = i === 0 ? first : await readBucket(vol, bblk);
          for (const item of listXattrBucket(bucket, bblk, vol.blockSize).items) {
            out.push({ name: item.name, valueSize: item.valueSize, source: bucket, item });
          }
        }
      }
    }
  }
  return out;
}

/** The value of an attribute. */
export async function readXattrValue(vol: Volume, owner: number, ref: XattrRef): Promise<Buffer> {
  if (ref.item.local) return xattrLocalValue(ref.source, ref.item);
  const root = ref.item.valueRoot!;
  return readMapped(vol, root.list, owner, 0, ref.valueSize);
}

/** getxattr: the value, or undefined when the inode has no such attribute. */
export async function getXattr(vol: Volume, f: InodeBlock, name: Buffer): Promise<Buffer | undefined> {
  for (const ref of await listXattrRefs(vol, f)) {
    if (ref.name.equals(name)) return readXattrValue(vol, f.inode.blkno, ref);
  }
  return undefined;
}
