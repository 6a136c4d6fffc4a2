/**
 * The two leading blocks mkfs.ocfs2 writes so OCFS1 tools recognise (and
 * refuse) an OCFS2 volume: ocfs1_vol_disk_hdr at byte 0 and ocfs1_vol_label
 * at byte 512 (ocfs2-kernel/ocfs1_fs_compat.h), only the string fields
 * mkfs fills; everything else in the two blocks is the byte 0x02
 * (format_leading_space memsets them with 2).
 */
import { defineStruct } from '../struct';

/** ocfs1_vol_disk_hdr: the fields mkfs writes (0x00..0x108). */
export const Ocfs1VolDiskHdr = defineStruct('ocfs1_vol_disk_hdr', 0x1b0, 'le', [
  { name: 'minor_version', offset: 0x00, type: 'u32' },
  { name: 'major_version', offset: 0x04, type: 'u32' },
  { name: 'signature', offset: 0x08, type: 'bytes', size: 128 },
  { name: 'mount_point', offset: 0x88, type: 'bytes', size: 128 },
] as const);

/** ocfs1_vol_label (after the 0x30-byte ocfs1_disk_lock; the header's A4 offset comment is off: 0x84 + 64 = 0xC4). */
export const Ocfs1VolLabel = defineStruct('ocfs1_vol_label', 0xc6, 'le', [
  { name: 'label', offset: 0x30, type: 'bytes', size: 64 },
  { name: 'label_len', offset: 0x70, type: 'u16' },
  { name: 'vol_id', offset: 0x72, type: 'bytes', size: 16 },
  { name: 'vol_id_len', offset: 0x82, type: 'u16' },
  { name: 'cluster_name', offset: 0x84, type: 'bytes', size: 64 },
  { name: 'cluster_name_len', offset: 0xc4, type: 'u16' },
] as const);

export const OCFS1_LABEL_OFFSET = 512;
const MARK = 'this is an ocfs2 volume';

/** A field value as strcpy leaves it over 0x02 filler: the string, its NUL, then 0x02s. */
function strcpyOver(size: number, s: string): Buffer {
  const b = Buffer.alloc(size, 2);
  b.write(s, 0, 'latin1');
  b[s.length] = 0;
  return b;
}

/** The 2 * blockSize leading bytes (format_leading_space). */
export function leadingSpace(blockSize: number): Buffer {
  const buf = Buffer.alloc(2 * blockSize, 2);
  const hdr = Ocfs1VolDiskHdr.decode(buf, 0);
  Ocfs1VolDiskHdr.encode({ ...hdr, signature: strcpyOver(128, MARK), mount_point: strcpyOver(128, MARK) }, buf, 0);
  const lbl = Ocfs1VolLabel.decode(buf, OCFS1_LABEL_OFFSET);
  Ocfs1VolLabel.encode({ ...lbl, label: strcpyOver(64, MARK), cluster_name: strcpyOver(64, MARK) }, buf, OCFS1_LABEL_OFFSET);
  return buf;
}
