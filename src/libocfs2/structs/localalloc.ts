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

/** One failed check of a local alloc: fsck.ocfs2's problem code, the field and the check. */
export interface LocalAllocProblem {
  code: 'LALLOC_SIZE' | 'LALLOC_NZ_USED' | 'LALLOC_NZ_BM' | 'LALLOC_BM_OVERRUN' | 'LALLOC_BM_SIZE' | 'LALLOC_BM_STRADDLE' | 'LALLOC_USED_OVERRUN';
  field: 'la_size' | 'i_used' | 'la_bm_off' | 'i_total';
  check: string;
}

/**
 * fsck.ocfs2 pass1 verify_local_alloc, for any inode with OCFS2_LOCAL_ALLOC_FL:
 * la_size within the block; an unused window (i_total 0) has i_used and
 * la_bm_off 0; a used one starts and ends inside the volume, fits its
 * bitmap, and i_used <= i_total.  `capacity` is localAllocBitmapCapacity.
 */
export function localAllocProblems(
  h: LocalAllocHeaderT, bm: { i_used: number; i_total: number }, capacity: number, clusters: number,
): LocalAllocProblem[] {
  const out: LocalAllocProblem[] = [];
  if (h.la_size > capacity) out.push({ code: 'LALLOC_SIZE', field: 'la_size', check: `${h.la_size} bytes, the block holds ${capacity}` });
  if (bm.i_total === 0) {
    if (bm.i_used !== 0) out.push({ code: 'LALLOC_NZ_USED', field: 'i_used', check: `${bm.i_used} in an unused window` });
    if (h.la_bm_off !== 0) out.push({ code: 'LALLOC_NZ_BM', field: 'la_bm_off', check: `${h.la_bm_off} in an unused window` });
    return out;
  }
  if (h.la_bm_off >= clusters) out.push({ code: 'LALLOC_BM_OVERRUN', field: 'la_bm_off', check: `${h.la_bm_off} outside the volume (${clusters} clusters)` });
  if (bm.i_total > Math.min(h.la_size, capacity) * 8) out.push({ code: 'LALLOC_BM_SIZE', field: 'i_total', check: `${bm.i_total} bits, the bitmap holds ${Math.min(h.la_size, capacity) * 8}` });
  else if (h.la_bm_off < clusters && h.la_bm_off + bm.i_total > clusters) out.push({ code: 'LALLOC_BM_STRADDLE', field: 'i_total', check: `window ${h.la_bm_off}+${bm.i_total} runs past the volume (${clusters} clusters)` });
  if (bm.i_used > bm.i_total) out.push({ code: 'LALLOC_USED_OVERRUN', field: 'i_used', check: `${bm.i_used} > i_total ${bm.i_total}` });
  return out;
}
