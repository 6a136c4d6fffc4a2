/**
 * OCFS2 on-disk constants: signatures, feature bits, inode/extent/journal
 * flags, directory file types and size limits.  Values are those of
 * ocfs2_fs.h (kernel fs/ocfs2/ocfs2_fs.h == ocfs2-tools include/ocfs2-kernel/
 * ocfs2_fs.h); printable names are those debugfs.ocfs2 prints
 * (libocfs2/feature_string.c, debugfs.ocfs2/dump.c).
 */

/* ---- version, locations, limits ---------------------------------------- */

/** The kernel mounts only revision 0.90. */
export const OCFS2_MAJOR_REV_LEVEL = 0;
export const OCFS2_MINOR_REV_LEVEL = 90;

/** The superblock is block 2 in units of the volume's own block size. */
export const OCFS2_SUPER_BLOCK_BLKNO = 2;

export const OCFS2_MIN_CLUSTERSIZE = 4096;
export const OCFS2_MAX_CLUSTERSIZE = 1048576;
export const OCFS2_MIN_BLOCKSIZE = 512;
/** Blocks cannot be bigger than the smallest cluster. */
export const OCFS2_MAX_BLOCKSIZE = OCFS2_MIN_CLUSTERSIZE;
/** The block sizes mkfs can produce, in the order the kernel probes them. */
export const OCFS2_BLOCK_SIZES = [512, 1024, 2048, 4096] as const;

/** statfs f_type. */
export const OCFS2_SUPER_MAGIC = 0x7461636f;

export const OCFS2_MAX_FILENAME_LEN = 255;
/** s_max_slots limit (the old slot map holds 255 u16 in a 512-byte block). */
export const OCFS2_MAX_SLOTS = 255;
/** Slot number meaning "none": -1, stored as 0xFFFF in le16 fields. */
export const OCFS2_INVALID_SLOT = -1;
export const OCFS2_INVALID_SLOT_U16 = 0xffff;

export const OCFS2_VOL_UUID_LEN = 16;
export const OCFS2_MAX_VOL_LABEL_LEN = 64;
export const OCFS2_STACK_LABEL_LEN = 4;
export const OCFS2_CLUSTER_NAME_LEN = 16;
/** The classic in-kernel cluster stack name in s_cluster_info.ci_stack. */
export const OCFS2_CLASSIC_CLUSTER_STACK = 'o2cb';

/** The kernel refuses a journal smaller than 4 MiB. */
export const OCFS2_MIN_JOURNAL_SIZE = 4 * 1024 * 1024;
/** Default local alloc window, in megabytes. */
export const OCFS2_DEFAULT_LOCAL_ALLOC_SIZE = 8;
/** Default (and minimum) in-inode xattr area, bytes. */
export const OCFS2_MIN_XATTR_INLINE_SIZE = 256;
/** Xattr values longer than this are stored outside the entry. */
export const OCFS2_XATTR_INLINE_SIZE = 80;
export const OCFS2_XATTR_BUCKET_SIZE = 4096;

export const OCFS2_LINK_MAX = 32000;
/** Indexed directories may exceed OCFS2_LINK_MAX using i_links_count_hi. */
export const OCFS2_DX_LINK_MAX = 2 ** 31 - 1;
export const OCFS2_LINKS_HI_SHIFT = 16;

/** Suballocator group bitmaps never exceed 256 bytes (2048 bits). */
export const OCFS2_MAX_BG_BITMAP_SIZE = 256;

/** Backup superblocks sit at byte 1 GiB << 2i, i = 0..5. */
export const OCFS2_BACKUP_SB_START = 2 ** 30;
export const OCFS2_MAX_BACKUP_SUPERBLOCKS = 6;

/** s_cluster_info.ci_stackflags */
export const OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT = 0x01;

/** superblock s_state */
export const OCFS2_ERROR_FS = 0x1;

/* ---- signatures ---------------------------------------------------------- */

export const OCFS2_SUPER_BLOCK_SIGNATURE = 'OCFSV2';
export const OCFS2_INODE_SIGNATURE = 'INODE01';
export const OCFS2_EXTENT_BLOCK_SIGNATURE = 'EXBLK01';
export const OCFS2_GROUP_DESC_SIGNATURE = 'GROUP01';
export const OCFS2_XATTR_BLOCK_SIGNATURE = 'XATTR01';
export const OCFS2_DIR_TRAILER_SIGNATURE = 'DIRTRL1';
export const OCFS2_DX_ROOT_SIGNATURE = 'DXDIR01';
export const OCFS2_DX_LEAF_SIGNATURE = 'DXLEAF1';
export const OCFS2_REFCOUNT_BLOCK_SIGNATURE = 'REFCNT1';

/** The 8-byte signature field as stored: the string, NUL padded (a fresh copy). */
export function signatureBytes(sig: string): Buffer {
  return Buffer.from(storedSignature(sig));
}

/** signatureBytes, shared and read-only: every block read checks one (hot path). */
const storedSignatures = new Map<string, Buffer>();
function storedSignature(sig: string): Buffer {
  let b = storedSignatures.get(sig);
  if (!b) {
    b = Buffer.alloc(8);
    b.write(sig, 0, 'latin1');
    storedSignatures.set(sig, b);
  }
  return b;
}

/**
 * Does the 8-byte signature field at `off` hold `sig`?  The kernel compares
 * with strcmp for the 7-character signatures (so byte 7 must be NUL) and with
 * memcmp(strlen) for the superblock's "OCFSV2".
 */
export function hasSignature(buf: Buffer, off: number, sig: string): boolean {
  if (off < 0 || off + 8 > buf.length) return false;
  const n = sig === OCFS2_SUPER_BLOCK_SIGNATURE ? sig.length : sig.length + 1;
  return buf.compare(storedSignature(sig), 0, n, off, off + n) === 0;
}

/** Printable form of a signature field, for error messages. */
export function signatureText(buf: Buffer, off: number): string {
  const raw = buf.subarray(off, Math.min(off + 8, buf.length));
  const nul = raw.indexOf(0);
  return JSON.stringify(raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1'));
}

/* ---- feature flags ---------------------------------------------------------- */

export const OCFS2_FEATURE_COMPAT_BACKUP_SB = 0x0001;
export const OCFS2_FEATURE_COMPAT_JBD2_SB = 0x0002;

/** Heartbeat-only device: never mountable. */
export const OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV = 0x0002;
export const OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG = 0x0004;
export const OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT = 0x0008;
export const OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC = 0x0010;
export const OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG = 0x0020;
export const OCFS2_FEATURE_INCOMPAT_INLINE_DATA = 0x0040;
export const OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK = 0x0080;
export const OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP = 0x0100;
export const OCFS2_FEATURE_INCOMPAT_XATTR = 0x0200;
export const OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS = 0x0400;
export const OCFS2_FEATURE_INCOMPAT_META_ECC = 0x0800;
export const OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE = 0x1000;
export const OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG = 0x2000;
export const OCFS2_FEATURE_INCOMPAT_CLUSTERINFO = 0x4000;
export const OCFS2_FEATURE_INCOMPAT_APPEND_DIO = 0x8000;

export const OCFS2_FEATURE_RO_COMPAT_UNWRITTEN = 0x0001;
export const OCFS2_FEATURE_RO_COMPAT_USRQUOTA = 0x0002;
export const OCFS2_FEATURE_RO_COMPAT_GRPQUOTA = 0x0004;

/** What the kernel supports: other incompat bits refuse mounting, other
 * ro_compat bits refuse a read-write mount, compat bits are ignored. */
export const OCFS2_FEATURE_COMPAT_SUPP = OCFS2_FEATURE_COMPAT_BACKUP_SB | OCFS2_FEATURE_COMPAT_JBD2_SB;
export const OCFS2_FEATURE_INCOMPAT_SUPP =
  OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT | OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC
  | OCFS2_FEATURE_INCOMPAT_INLINE_DATA | OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP
  | OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK | OCFS2_FEATURE_INCOMPAT_XATTR
  | OCFS2_FEATURE_INCOMPAT_META_ECC | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS
  | OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE | OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG
  | OCFS2_FEATURE_INCOMPAT_CLUSTERINFO | OCFS2_FEATURE_INCOMPAT_APPEND_DIO;
export const OCFS2_FEATURE_RO_COMPAT_SUPP =
  OCFS2_FEATURE_RO_COMPAT_UNWRITTEN | OCFS2_FEATURE_RO_COMPAT_USRQUOTA | OCFS2_FEATURE_RO_COMPAT_GRPQUOTA;

type FeatureKind = 'compat' | 'incompat' | 'ro_compat';

/** ocfs2_feature_names[] in libocfs2/feature_string.c: name and print order. */
export const FEATURE_NAMES: ReadonlyArray<{ name: string; kind: FeatureKind; bit: number }> = [
  { name: 'heartbeat-device', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV },
  { name: 'aborted-resize', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG },
  { name: 'local', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT },
  { name: 'sparse', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC },
  { name: 'extended-slotmap', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP },
  { name: 'aborted-tunefs', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG },
  { name: 'userspace-stack', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK },
  { name: 'backup-super', kind: 'compat', bit: OCFS2_FEATURE_COMPAT_BACKUP_SB },
  { name: 'unwritten', kind: 'ro_compat', bit: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN },
  { name: 'inline-data', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_INLINE_DATA },
  { name: 'strict-journal-super', kind: 'compat', bit: OCFS2_FEATURE_COMPAT_JBD2_SB },
  { name: 'metaecc', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_META_ECC },
  { name: 'xattr', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_XATTR },
  { name: 'indexed-dirs', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS },
  { name: 'usrquota', kind: 'ro_compat', bit: OCFS2_FEATURE_RO_COMPAT_USRQUOTA },
  { name: 'grpquota', kind: 'ro_compat', bit: OCFS2_FEATURE_RO_COMPAT_GRPQUOTA },
  { name: 'refcount', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE },
  { name: 'discontig-bg', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG },
  { name: 'clusterinfo', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_CLUSTERINFO },
  { name: 'append-dio', kind: 'incompat', bit: OCFS2_FEATURE_INCOMPAT_APPEND_DIO },
];

/**
 * Names of the set feature bits in debugfs.ocfs2's order, with "unknown"
 * appended when a bit has no name (as ocfs2_snprint_feature_flags does).
 * debugfs prints each kind on its own line: featureNames(c, 0, 0) etc.
 */
export function featureNames(compat: number, incompat: number, rocompat: number): string[] {
  const have: Record<FeatureKind, number> = { compat, incompat, ro_compat: rocompat };
  const found: Record<FeatureKind, number> = { compat: 0, incompat: 0, ro_compat: 0 };
  const out: string[] = [];
  for (const f of FEATURE_NAMES) {
    if ((have[f.kind] & f.bit) !== 0) {
      out.push(f.name);
      found[f.kind] |= f.bit;
    }
  }
  if (found.compat !== (compat >>> 0) || found.incompat !== (incompat >>> 0) || found.ro_compat !== (rocompat >>> 0)) {
    out.push('unknown');
  }
  return out;
}

/** The bits of a feature word that are not in `supported` (0 = all known). */
export function unsupportedBits(value: number, supported: number): number {
  return (value & ~supported) >>> 0;
}

/* ---- tunefs in-progress flags (s_tunefs_flag) -------------------------------- */

export const OCFS2_TUNEFS_INPROG_REMOVE_SLOT = 0x0001;
export const OCFS2_TUNEFS_INPROG_DIR_TRAILER = 0x0002;

export function tunefsFlagNames(flags: number): string[] {
  return flagNames(flags, [
    ['remove-slot', OCFS2_TUNEFS_INPROG_REMOVE_SLOT],
    ['dir-trailer', OCFS2_TUNEFS_INPROG_DIR_TRAILER],
  ]);
}

/* ---- dinode i_flags ------------------------------------------------------------ */

export const OCFS2_VALID_FL = 0x00000001;
export const OCFS2_UNUSED2_FL = 0x00000002;
export const OCFS2_ORPHANED_FL = 0x00000004;
export const OCFS2_UNUSED3_FL = 0x00000008;
export const OCFS2_SYSTEM_FL = 0x00000010;
export const OCFS2_SUPER_BLOCK_FL = 0x00000020;
export const OCFS2_LOCAL_ALLOC_FL = 0x00000040;
export const OCFS2_BITMAP_FL = 0x00000080;
export const OCFS2_JOURNAL_FL = 0x00000100;
export const OCFS2_HEARTBEAT_FL = 0x00000200;
export const OCFS2_CHAIN_FL = 0x00000400;
export const OCFS2_DEALLOC_FL = 0x00000800;
export const OCFS2_QUOTA_FL = 0x00001000;
export const OCFS2_DIO_ORPHANED_FL = 0x00002000;

/** The i_flags names debugfs.ocfs2 "stat" prints (dump_inode), in its order.
 * debugfs prints nothing for QUOTA and DIO_ORPHANED. */
export function inodeFlagNames(flags: number): string[] {
  return flagNames(flags, [
    ['Valid', OCFS2_VALID_FL], ['Unused2', OCFS2_UNUSED2_FL], ['Orphan', OCFS2_ORPHANED_FL],
    ['Unused3', OCFS2_UNUSED3_FL], ['System', OCFS2_SYSTEM_FL], ['Superblock', OCFS2_SUPER_BLOCK_FL],
    ['Localalloc', OCFS2_LOCAL_ALLOC_FL], ['Allocbitmap', OCFS2_BITMAP_FL], ['Journal', OCFS2_JOURNAL_FL],
    ['Heartbeat', OCFS2_HEARTBEAT_FL], ['Chain', OCFS2_CHAIN_FL], ['Dealloc', OCFS2_DEALLOC_FL],
  ], false);
}

/* ---- dinode i_dyn_features ----------------------------------------------------- */

export const OCFS2_INLINE_DATA_FL = 0x0001;
export const OCFS2_HAS_XATTR_FL = 0x0002;
export const OCFS2_INLINE_XATTR_FL = 0x0004;
export const OCFS2_INDEXED_DIR_FL = 0x0008;
export const OCFS2_HAS_REFCOUNT_FL = 0x0010;

/** The dynamic feature names debugfs.ocfs2 prints. */
export function dynFeatureNames(dyn: number): string[] {
  return flagNames(dyn, [
    ['InlineData', OCFS2_INLINE_DATA_FL], ['HasXattr', OCFS2_HAS_XATTR_FL],
    ['InlineXattr', OCFS2_INLINE_XATTR_FL], ['IndexedDir', OCFS2_INDEXED_DIR_FL],
    ['Refcounted', OCFS2_HAS_REFCOUNT_FL],
  ], false);
}

/* ---- extent record e_flags -------------------------------------------------------- */

/** Allocated but never written: reads as zeros. */
export const OCFS2_EXT_UNWRITTEN = 0x01;
/** Clusters shared through the inode's refcount tree. */
export const OCFS2_EXT_REFCOUNTED = 0x02;

export function extentFlagNames(flags: number): string[] {
  return flagNames(flags, [['Unwritten', OCFS2_EXT_UNWRITTEN], ['Refcounted', OCFS2_EXT_REFCOUNTED]]);
}

/* ---- journal inode id1.journal1.ij_flags --------------------------------------------- */

/** The journal needs recovery (set while mounted). */
export const OCFS2_JOURNAL_DIRTY_FL = 0x00000001;

/* ---- refcount / dx / xattr block flags ------------------------------------------------ */

export const OCFS2_REFCOUNT_LEAF_FL = 0x00000001;
export const OCFS2_REFCOUNT_TREE_FL = 0x00000002;

export function refcountFlagNames(flags: number): string[] {
  return flagNames(flags, [['Leaf', OCFS2_REFCOUNT_LEAF_FL], ['Tree', OCFS2_REFCOUNT_TREE_FL]]);
}

export const OCFS2_DX_FLAG_INLINE = 0x01;
export const OCFS2_XATTR_INDEXED = 0x1;

/* ---- directory entry file types ------------------------------------------------------- */

export const OCFS2_FT_UNKNOWN = 0;
export const OCFS2_FT_REG_FILE = 1;
export const OCFS2_FT_DIR = 2;
export const OCFS2_FT_CHRDEV = 3;
export const OCFS2_FT_BLKDEV = 4;
export const OCFS2_FT_FIFO = 5;
export const OCFS2_FT_SOCK = 6;
export const OCFS2_FT_SYMLINK = 7;
export const OCFS2_FT_MAX = 8;

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** ocfs2_type_by_mode: the dirent file_type for an inode mode. */
export function fileTypeFromMode(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return OCFS2_FT_REG_FILE;
    case S_IFDIR: return OCFS2_FT_DIR;
    case S_IFCHR: return OCFS2_FT_CHRDEV;
    case S_IFBLK: return OCFS2_FT_BLKDEV;
    case S_IFIFO: return OCFS2_FT_FIFO;
    case S_IFSOCK: return OCFS2_FT_SOCK;
    case S_IFLNK: return OCFS2_FT_SYMLINK;
    default: return OCFS2_FT_UNKNOWN;
  }
}

/** The S_IFMT bits for a dirent file_type (0 for UNKNOWN or out of range). */
export function modeTypeFromFileType(ft: number): number {
  return [0, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFLNK][ft & 7] ?? 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

/** Names of set bits in table order; "unknown" for leftover bits unless told not to. */
function flagNames(flags: number, table: ReadonlyArray<readonly [string, number]>, withUnknown = true): string[] {
  const out: string[] = [];
  let found = 0;
  for (const [name, bit] of table) {
    if ((flags & bit) !== 0) { out.push(name); found |= bit; }
  }
  if (withUnknown && ((flags >>> 0) & ~found) !== 0) out.push('unknown');
  return out;
}
