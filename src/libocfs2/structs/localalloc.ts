/**
 * Local alloc (ocfs2_local_alloc, in id2 of local_alloc:NNNN): a per-slot
 * window of the global bitmap.  Clusters [la_bm_off, la_bm_off + i_total)
 * are marked used in the global bitmap while the window is held; la_bitmap
 * says which of them are really used.  i_total / i_used live in the inode's
 * id1.bitmap1.  Empty state: i_total = i_used = la_bm_off = 0, la_size =
 * blocksize - 0xD0 (as mkfs writes it).
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct } from '../struct';
import { decodeOrCorrupt } from './extent';

export const LocalAllocHeader = defineStruct('ocfs2_local_alloc', 16, 'le', [
  { name: 'la_bm_off', offset: 0x00, type: 'u32' },
  { name: 'la_size', offset: 0x04, type: 'u16' },
  { name: 'la_reserved1', offset: 0x06, type: 'u16' },
  { name: 'la_reserved2', offset: 0x08, type: 'u64n' },
] as const);

export type LocalAllocHeaderT = ReturnType<typeof LocalAllocHeader.decode>;

export interface LocalAlloc {
  header: LocalAllocHeaderT;
  /** la_size bytes of bitmap (a copy). */
  bitmap: Buffer;
}

/** ocfs2_local_alloc_size: the bitmap runs to the end of the inode block. */
export function localAllocBitmapCapacity(blocksize: number, id2Offset: number): number {
  return blocksize - id2Offset - LocalAllocHeader.size;
}

/** Decode the local alloc at `off` (the inode's id2) of a block `blkno`. */
export function decodeLocalAlloc(buf: Buffer, off: number, blkno: number): LocalAlloc {
  const header = decodeOrCorrupt(LocalAllocHeader, buf, off, blkno);
  const at = off + LocalAllocHeader.size;
  if (at + header.la_size > buf.length) {
    throw new Ocfs2CorruptError(blkno, 'local alloc la_size beyond the block', `la_size ${header.la_size}`);
  }
  return { header, bitmap: Buffer.from(buf.subarray(at, at + header.la_size)) };
}

export function encodeLocalAlloc(la: LocalAlloc, buf: Buffer, off: number): void {
  if (off + LocalAllocHeader.size + la.header.la_size > buf.length) {
    throw new RangeError(`local alloc: la_size ${la.header.la_size} does not fit`);
  }
  LocalAllocHeader.encode(la.header, buf, off);
  const at = off + LocalAllocHeader.size;
  buf.fill(0, at, at + la.header.la_size);
  la.bitmap.copy(buf, at, 0, la.header.la_size);
}
