/**
 * Directory entries (`ocfs2_dir_entry`) and the directory block trailer
 * (`ocfs2_dir_block_trailer`), kernel fs/ocfs2/ocfs2_fs.h and dir.c.
 *
 * A directory area is either one directory block (`bs` bytes, the last 64 of
 * which are the trailer when the directory has one) or the inline-data area
 * of a directory inode (id_data at 0xC8, i_size bytes).  Entries tile the
 * area: each rec_len is a multiple of 4, at least OCFS2_DIR_REC_LEN(name_len),
 * and the last one runs to the end of the area.  Deleting an entry merges its
 * rec_len into the previous entry (or clears inode when it is the first).
 */
import { defineStruct } from '../struct';
import { Ocfs2CorruptError, PosixError } from '../errors';
import {
  OCFS2_DIR_TRAILER_SIGNATURE, OCFS2_MAX_FILENAME_LEN, hasSignature, signatureBytes, signatureText, OCFS2_FT_DIR,
} from '../constants';

/* ---- ocfs2_dir_entry ------------------------------------------------------------------ */

/** Fixed part of a dirent; the name follows at 12 (OCFS2_DIR_MEMBER_LEN). Packed. */
export const DirEntryHeader = defineStruct('ocfs2_dir_entry', 12, 'le', [
  { name: 'inode', offset: 0x00, type: 'u64' },
  { name: 'rec_len', offset: 0x08, type: 'u16' },
  { name: 'name_len', offset: 0x0a, type: 'u8' },
  { name: 'file_type', offset: 0x0b, type: 'u8' },
] as const);
export type DirEntryHeader = ReturnType<typeof DirEntryHeader.decode>;

/** offsetof(struct ocfs2_dir_entry, name) */
export const OCFS2_DIR_MEMBER_LEN = 12;
/** Entries are padded to 4 bytes (OCFS2_DIR_PAD). */
export const OCFS2_DIR_PAD = 4;

/** OCFS2_DIR_REC_LEN: bytes needed by an entry with a name of nameLen bytes. */
export function dirRecLen(nameLen: number): number {
  return (nameLen + OCFS2_DIR_MEMBER_LEN + OCFS2_DIR_PAD - 1) & ~(OCFS2_DIR_PAD - 1);
}

const INODE_OFF = DirEntryHeader.offsetOf('inode');
const REC_LEN_OFF = DirEntryHeader.offsetOf('rec_len');
const NAME_LEN_OFF = DirEntryHeader.offsetOf('name_len');
const FILE_TYPE_OFF = DirEntryHeader.offsetOf('file_type');

/** OCFS2_DIR_MIN_REC_LEN = OCFS2_DIR_REC_LEN(1) = 16: the smallest legal rec_len. */
export const OCFS2_DIR_MIN_REC_LEN = dirRecLen(1);

/** A decoded entry with its position. `offset` is relative to the start of the buffer. */
export interface DirEntry {
  offset: number;
  /** As a number: a corrupt value past 2^53 is rounded, but stays past any volume's end. */
  inode: number;
  /** The exact on-disk value, for messages about a corrupt one. */
  rawInode: bigint;
  recLen: number;
  nameLen: number;
  fileType: number;
  /** The raw name bytes (a copy). */
  name: Buffer;
}

/**
 * Where a directory area lies: `buf[start, start+size)`.  `blkno` is the block
 * reported in errors (the dir block, or the inode block for inline dirs).
 * `start` defaults to 0, `size` to the rest of the buffer.
 */
export interface DirArea {
  readonly blkno: number;
  readonly start?: number;
  readonly size?: number;
}

function areaBounds(buf: Buffer, area: DirArea): { start: number; size: number } {
  const start = area.start ?? 0;
  const size = area.size ?? buf.length - start;
  if (start < 0 || size < 0 || start + size > buf.length) {
    throw new Ocfs2CorruptError(area.blkno, 'directory area outside the buffer',
      `start=${start} size=${size} buffer=${buf.length}`);
  }
  return { start, size };
}

/**
 * The checks of the kernel's `ocfs2_check_dir_entry` for the entry at
 * `start + rel`: rec_len >= 16, rec_len % 4 == 0, rec_len >= REC_LEN(name_len),
 * the entry does not cross the end of the area, and it does not leave a tail
 * shorter than the smallest entry.  Throws Ocfs2CorruptError naming the
 * block, the failed check and the entry's offset.
 */
export function checkDirEntry(buf: Buffer, start: number, size: number, rel: number, blkno: number): void {
  const at = start + rel;
  if (rel < 0 || rel + OCFS2_DIR_MEMBER_LEN > size) {
    throw new Ocfs2CorruptError(blkno, 'directory entry header crosses the end of the area',
      `offset=${rel} size=${size}`);
  }
  const rlen = buf.readUInt16LE(at + REC_LEN_OFF);
  const nameLen = buf[at + NAME_LEN_OFF]!;
  const next = rel + rlen;
  let err: string | undefined;
  if (rlen < OCFS2_DIR_MIN_REC_LEN) err = 'rec_len is smaller than minimal';
  else if (rlen % 4 !== 0) err = 'rec_len % 4 != 0';
  else if (rlen < dirRecLen(nameLen)) err = 'rec_len is too small for name_len';
  else if (next > size) err = 'directory entry overrun';
  else if (next > size - OCFS2_DIR_MIN_REC_LEN && next !== size) err = 'directory entry too close to end';
  if (err) {
    throw new Ocfs2CorruptError(blkno, `bad directory entry: ${err}`,
      `offset=${rel} inode=${buf.readBigUInt64LE(at + INODE_OFF)} rec_len=${rlen} name_len=${nameLen}`);
  }
}

function decodeAt(buf: Buffer, start: number, rel: number): DirEntry {
  const at = start + rel;
  const inode = buf.readBigUInt64LE(at + INODE_OFF);
  // An inode number past the volume is the reader's check (fsck.ocfs2 pass2 DIRENT_INODE_RANGE), not a
  // malformed entry: the walk goes on so that check reports it as fsck does.
  const nameLen = buf[at + NAME_LEN_OFF]!;
  return {
    offset: at,
    inode: Number(inode),
    rawInode: inode,
    recLen: buf.readUInt16LE(at + REC_LEN_OFF),
    nameLen,
    fileType: buf[at + FILE_TYPE_OFF]!,
    name: Buffer.from(buf.subarray(at + OCFS2_DIR_MEMBER_LEN, at + OCFS2_DIR_MEMBER_LEN + nameLen)),
  };
}

/**
 * Every entry of the area in order, including unused ones (inode 0), each
 * validated like the kernel does before use.  For a block with a trailer pass
 * `size = dirTrailerOffset(bs)` so the trailer is not returned (the kernel's
 * walk sees it as an empty entry of rec_len 64).
 */
export function* iterateDirEntries(buf: Buffer, area: DirArea): Generator<DirEntry> {
  const { start, size } = areaBounds(buf, area);
  let rel = 0;
  while (rel < size) {
    checkDirEntry(buf, start, size, rel, area.blkno);
    const de = decodeAt(buf, start, rel);
    yield de;
    rel += de.recLen;
  }
}

/**
 * fsck.ocfs2 pass2 DIRENT_NAME_CHARS: a name holding '/' or NUL can be
 * neither looked up nor listed.  The failed check, or null.
 */
export function direntNameProblem(name: Buffer): string | null {
  if (name.includes(0)) return `name holds a NUL at byte ${name.indexOf(0)}`;
  if (name.includes(0x2f)) return `name holds '/' at byte ${name.indexOf(0x2f)}`;
  return null;
}

/** All entries (including unused ones) as an array. */
export function readDirEntries(buf: Buffer, area: DirArea): DirEntry[] {
  return [...iterateDirEntries(buf, area)];
}

/** The entries that name something (inode != 0). */
export function liveDirEntries(buf: Buffer, area: DirArea): DirEntry[] {
  return readDirEntries(buf, area).filter((e) => e.inode !== 0);
}

/** Find a live entry by name (`ocfs2_search_dirblock` with full validation). */
export function findDirEntry(buf: Buffer, area: DirArea, name: Buffer): DirEntry | undefined {
  for (const de of iterateDirEntries(buf, area)) {
    if (de.inode !== 0 && de.nameLen === name.length && de.name.equals(name)) return de;
  }
  return undefined;
}

/* ---- encoding (write path) -------------------------------------------------------------- */

export interface NewDirEntry {
  inode: number;
  fileType: number;
  name: Buffer;
}

function checkName(name: Buffer): void {
  if (name.length === 0) throw new PosixError('EINVAL', 'empty directory entry name');
  if (name.length > OCFS2_MAX_FILENAME_LEN) throw new PosixError('ENAMETOOLONG');
}

/** Write one entry at absolute offset `at` with the given rec_len (name bytes follow the header). */
export function encodeDirEntry(buf: Buffer, at: number, e: NewDirEntry, recLen: number): void {
  checkName(e.name);
  if (recLen < dirRecLen(e.name.length) || recLen % 4 !== 0 || at + recLen > buf.length) {
    throw new RangeError(`rec_len ${recLen} cannot hold a ${e.name.length}-byte name at ${at}`);
  }
  DirEntryHeader.encode({ inode: e.inode, rec_len: recLen, name_len: e.name.length, file_type: e.fileType }, buf, at);
  e.name.copy(buf, at + OCFS2_DIR_MEMBER_LEN);
}

/** Make the area one empty entry (inode 0) covering all of it. */
export function initEmptyDirArea(buf: Buffer, area: DirArea): void {
  const { start, size } = areaBounds(buf, area);
  buf.fill(0, start, start + size);
  DirEntryHeader.encode({ inode: 0, rec_len: size, name_len: 0, file_type: 0 }, buf, start);
}

/**
 * Write "." and ".." as the kernel's `ocfs2_fill_initial_dirents` does:
 * "." gets REC_LEN(1), ".." the rest of the area.
 */
export function initDotEntries(buf: Buffer, area: DirArea, selfIno: number, parentIno: number): void {
  const { start, size } = areaBounds(buf, area);
  buf.fill(0, start, start + size);
  const dot = OCFS2_DIR_MIN_REC_LEN;
  encodeDirEntry(buf, start, { inode: selfIno, fileType: OCFS2_FT_DIR, name: Buffer.from('.') }, dot);
  encodeDirEntry(buf, start + dot, { inode: parentIno, fileType: OCFS2_FT_DIR, name: Buffer.from('..') }, size - dot);
}

/**
 * Insert a name the way `__ocfs2_add_entry` does: the first entry that is
 * unused and large enough is reused in place; otherwise the first live entry
 * whose slack (rec_len - REC_LEN(name_len)) fits the new record is split.
 * Returns the absolute offset of the new entry, or undefined if the area has
 * no room.  Throws PosixError EEXIST if the name is already present, and
 * Ocfs2CorruptError for a bad entry.
 */
export function insertDirEntry(buf: Buffer, area: DirArea, e: NewDirEntry): number | undefined {
  checkName(e.name);
  const need = dirRecLen(e.name.length);
  const entries = readDirEntries(buf, area); // validates the whole area first
  if (entries.some((d) => d.inode !== 0 && d.name.equals(e.name))) throw new PosixError('EEXIST');
  for (const de of entries) {
    if (de.inode === 0 && de.recLen >= need) {
      encodeDirEntry(buf, de.offset, e, de.recLen);
      return de.offset;
    }
    const used = dirRecLen(de.nameLen);
    if (de.inode !== 0 && de.recLen >= used + need) {
      buf.writeUInt16LE(used, de.offset + REC_LEN_OFF);
      const at = de.offset + used;
      // Clear the tail of the old record so stale name bytes do not linger.
      buf.fill(0, at, de.offset + de.recLen);
      encodeDirEntry(buf, at, e, de.recLen - used);
      return at;
    }
  }
  return undefined;
}

/**
 * Remove the live entry at absolute offset `at` (`__ocfs2_delete_entry`):
 * its rec_len is added to the previous entry's, or, when it is the first
 * entry of the area, its inode is cleared.  Throws PosixError ENOENT if no
 * live entry starts there.
 */
export function removeDirEntry(buf: Buffer, area: DirArea, at: number): void {
  let prev: DirEntry | undefined;
  for (const de of iterateDirEntries(buf, area)) {
    if (de.offset === at) {
      if (de.inode === 0) break;
      if (prev) buf.writeUInt16LE(prev.recLen + de.recLen, prev.offset + REC_LEN_OFF);
      buf.writeBigUInt64LE(0n, at + INODE_OFF);
      return;
    }
    prev = de;
  }
  throw new PosixError('ENOENT', `no directory entry at offset ${at}`);
}

/**
 * Largest free hole in the area, as `ocfs2_find_max_rec_len` computes it for
 * db_free_rec_len: an unused entry counts whole, a live one its slack; holes
 * smaller than OCFS2_DIR_MIN_REC_LEN count as 0.  `area.size` should stop at
 * the trailer.
 */
export function largestDirHole(buf: Buffer, area: DirArea): number {
  let best = 0;
  for (const de of iterateDirEntries(buf, area)) {
    const hole = de.inode === 0 ? de.recLen : de.recLen - dirRecLen(de.nameLen);
    if (hole > best) best = hole;
  }
  return best >= OCFS2_DIR_MIN_REC_LEN ? best : 0;
}

/* ---- file types ---------------------------------------------------------------------------- */

/** ocfs2_type_by_mode, defined once in constants.ts (kept under this name for its callers). */
export { fileTypeFromMode as fileTypeOfMode } from '../constants';

/* ---- ocfs2_dir_block_trailer -------------------------------------------------------------- */

/**
 * The last 64 bytes of a directory block when the directory has a trailer.
 * Its first 12 bytes mirror a dirent (inode 0, rec_len 64, name_len 0), so
 * code unaware of trailers sees an empty entry.  The 0x20/0x30 offset
 * comments in ocfs2_fs.h are off by 8: blkno is at 0x28, check at 0x38.
 */
export const DirBlockTrailer = defineStruct('ocfs2_dir_block_trailer', 64, 'le', [
  { name: 'db_compat_inode', offset: 0x00, type: 'u64' },
  { name: 'db_compat_rec_len', offset: 0x08, type: 'u16' },
  { name: 'db_compat_name_len', offset: 0x0a, type: 'u8' },
  { name: 'db_reserved0', offset: 0x0b, type: 'u8' },
  { name: 'db_reserved1', offset: 0x0c, type: 'u16' },
  { name: 'db_free_rec_len', offset: 0x0e, type: 'u16' },
  { name: 'db_signature', offset: 0x10, type: 'bytes', size: 8 },
  { name: 'db_reserved2', offset: 0x18, type: 'u64' },
  { name: 'db_free_next', offset: 0x20, type: 'u64' },
  { name: 'db_blkno', offset: 0x28, type: 'u64' },
  { name: 'db_parent_dinode', offset: 0x30, type: 'u64' },
  { name: 'db_check', offset: 0x38, type: 'bytes', size: 8 },
] as const);
export type DirBlockTrailer = ReturnType<typeof DirBlockTrailer.decode>;

export const OCFS2_DIR_TRAILER_SIZE = DirBlockTrailer.size;

/** Offset of the trailer in a block (`ocfs2_dir_trailer_blk_off`). */
export function dirTrailerOffset(blockSize: number): number {
  return blockSize - OCFS2_DIR_TRAILER_SIZE;
}

/** Offset of the metaecc block check of a directory block (db_check): bs - 8. */
export function dirBlockCheckOffset(blockSize: number): number {
  return dirTrailerOffset(blockSize) + DirBlockTrailer.offsetOf('db_check');
}

/**
 * `ocfs2_supports_dir_trailer`: a directory's blocks carry trailers iff it is
 * not inline and (the volume has META_ECC or the directory is indexed).
 */
export function dirHasTrailer(o: { inlineData: boolean; metaEcc: boolean; indexedDir: boolean }): boolean {
  if (o.inlineData) return false;
  return o.metaEcc || o.indexedDir;
}

/**
 * `ocfs2_new_dir_wants_trailer`: blocks of a directory being created (or
 * expanded out of inline data) get trailers iff the volume has META_ECC or
 * the INDEXED_DIRS feature (the dir's own indexed flag is not set yet).
 */
export function newDirWantsTrailer(o: { metaEcc: boolean; indexedDirsFeature: boolean }): boolean {
  return o.metaEcc || o.indexedDirsFeature;
}

/** The dirent area of a block: the whole block, or up to the trailer. */
export function dirBlockArea(blkno: number, blockSize: number, hasTrailer: boolean): DirArea {
  return { blkno, start: 0, size: hasTrailer ? dirTrailerOffset(blockSize) : blockSize };
}

/**
 * Decode and validate the trailer of a directory block as
 * `ocfs2_check_dir_trailer` does: signature "DIRTRL1", db_blkno equal to the
 * block's number and, when given, db_parent_dinode equal to the directory
 * inode.  Block checks (metaecc) are the caller's business.
 */
export function readDirTrailer(buf: Buffer, blockSize: number, blkno: number, parentDinode?: number): DirBlockTrailer {
  const off = dirTrailerOffset(blockSize);
  if (off < 0 || blockSize > buf.length) {
    throw new Ocfs2CorruptError(blkno, 'directory block shorter than its block size', `have ${buf.length}`);
  }
  const sigAt = off + DirBlockTrailer.offsetOf('db_signature');
  if (!hasSignature(buf, sigAt, OCFS2_DIR_TRAILER_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, `directory trailer signature is ${signatureText(buf, sigAt)}, expected "${OCFS2_DIR_TRAILER_SIGNATURE}"`);
  }
  const t = DirBlockTrailer.decode(buf, off);
  if (t.db_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'directory trailer db_blkno does not match the block', `db_blkno=${t.db_blkno}`);
  }
  if (parentDinode !== undefined && t.db_parent_dinode !== parentDinode) {
    throw new Ocfs2CorruptError(blkno, 'directory trailer db_parent_dinode does not match the directory',
      `db_parent_dinode=${t.db_parent_dinode} dir=${parentDinode}`);
  }
  return t;
}

/** `ocfs2_init_dir_trailer`: write a fresh trailer (free_next 0, check zero). */
export function initDirTrailer(buf: Buffer, blockSize: number, o: { blkno: number; parentDinode: number; freeRecLen: number }): void {
  const off = dirTrailerOffset(blockSize);
  buf.fill(0, off, off + OCFS2_DIR_TRAILER_SIZE);
  DirBlockTrailer.encode({
    ...DirBlockTrailer.zero(),
    db_compat_rec_len: OCFS2_DIR_TRAILER_SIZE,
    db_free_rec_len: o.freeRecLen,
    db_signature: signatureBytes(OCFS2_DIR_TRAILER_SIGNATURE),
    db_blkno: o.blkno,
    db_parent_dinode: o.parentDinode,
  }, buf, off);
}

export interface DirBlockContents {
  /** Every entry up to the trailer (or the block end), unused ones included. */
  entries: DirEntry[];
  /** The validated trailer, when the directory has trailers. */
  trailer?: DirBlockTrailer;
}

/**
 * Read one directory block the way `ocfs2_read_dir_block` + a walk do: the
 * trailer is validated first when the directory has one (signature, db_blkno
 * and, given `dirIno`, db_parent_dinode), then every entry up to it.
 */
export function readDirBlock(buf: Buffer, blkno: number, blockSize: number, o: { hasTrailer: boolean; dirIno?: number }): DirBlockContents {
  const trailer = o.hasTrailer ? readDirTrailer(buf, blockSize, blkno, o.dirIno) : undefined;
  const entries = readDirEntries(buf, dirBlockArea(blkno, blockSize, o.hasTrailer));
  return trailer ? { entries, trailer } : { entries };
}
