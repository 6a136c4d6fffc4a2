/**
 * Truncate log (ocfs2_truncate_log, in id2 of truncate_log:NNNN): cluster
 * ranges freed by truncates that are not yet returned to the global bitmap.
 * t_start is a physical cluster number.  Capacity (bs - 0xC8) / 8 records.
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct } from '../struct';
import { decodeOrCorrupt } from './extent';

export const TruncateLogHeader = defineStruct('ocfs2_truncate_log', 8, 'le', [
  { name: 'tl_count', offset: 0x00, type: 'u16' },
  { name: 'tl_used', offset: 0x02, type: 'u16' },
  { name: 'tl_reserved1', offset: 0x04, type: 'u32' },
] as const);

export const TruncateRec = defineStruct('ocfs2_truncate_rec', 8, 'le', [
  { name: 't_start', offset: 0x00, type: 'u32' },
  { name: 't_clusters', offset: 0x04, type: 'u32' },
] as const);

export type TruncateRecT = ReturnType<typeof TruncateRec.decode>;

export interface TruncateLog {
  count: number;
  used: number;
  reserved1: number;
  /** The used records, [0, used). */
  recs: TruncateRecT[];
}

/** ocfs2_truncate_recs_per_inode given the id2 offset. */
export function truncateRecsFitting(blocksize: number, id2Offset: number): number {
  return Math.max(0, Math.floor((blocksize - id2Offset - TruncateLogHeader.size) / TruncateRec.size));
}

export function decodeTruncateLog(buf: Buffer, off: number, blkno: number): TruncateLog {
  const h = decodeOrCorrupt(TruncateLogHeader, buf, off, blkno);
  const fit = truncateRecsFitting(buf.length, off);
  if (h.tl_count > fit) {
    throw new Ocfs2CorruptError(blkno, 'truncate log tl_count too large', `tl_count ${h.tl_count}, room for ${fit}`);
  }
  if (h.tl_used > h.tl_count) {
    throw new Ocfs2CorruptError(blkno, 'truncate log tl_used beyond tl_count', `tl_used ${h.tl_used}, tl_count ${h.tl_count}`);
  }
  const recs: TruncateRecT[] = [];
  for (let i = 0; i < h.tl_used; i++) {
    recs.push(TruncateRec.decode(buf, off + TruncateLogHeader.size + i * TruncateRec.size));
  }
  return { count: h.tl_count, used: h.tl_used, reserved1: h.tl_reserved1, recs };
}

/**
 * Write the log at `off`: header and the used records.  Slots past tl_used
 * are left alone: the kernel only resets tl_used when it flushes the log, so
 * real logs carry stale records there.
 */
export function encodeTruncateLog(tl: TruncateLog, buf: Buffer, off: number): void {
  if (tl.recs.length !== tl.used || tl.used > tl.count
      || off + TruncateLogHeader.size + tl.count * TruncateRec.size > buf.length) {
    throw new RangeError(`truncate log: ${tl.recs.length} recs, used ${tl.used}, count ${tl.count} do not fit`);
  }
  TruncateLogHeader.encode({ tl_count: tl.count, tl_used: tl.used, tl_reserved1: tl.reserved1 }, buf, off);
  const at = off + TruncateLogHeader.size;
  tl.recs.forEach((r, i) => TruncateRec.encode(r, buf, at + i * TruncateRec.size));
}

/** A record that must not be freed as it stands: its index, field and the failed check. */
export interface TruncateRecProblem { rec: number; field: 't_start' | 't_clusters'; check: string }

/** Records reaching past the volume's `clusters` (ocfs2_replay_truncate_records would free them blindly). */
export function truncateLogRecordProblems(tl: TruncateLog, clusters: number): TruncateRecProblem[] {
  const out: TruncateRecProblem[] = [];
  tl.recs.forEach((r, i) => {
    if (r.t_start >= clusters) out.push({ rec: i, field: 't_start', check: `cluster ${r.t_start} outside the volume (${clusters} clusters)` });
    else if (r.t_start + r.t_clusters > clusters) out.push({ rec: i, field: 't_clusters', check: `${r.t_start}+${r.t_clusters} runs past the volume (${clusters} clusters)` });
  });
  return out;
}
