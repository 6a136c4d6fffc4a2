/**
 * System inodes, as ocfs2_system_inodes[] in ocfs2_fs.h: the entries of the
 * system directory (s_system_dir_blkno, "//" in debugfs.ocfs2).  Global
 * files have one copy; per-slot files have one per slot, named with "%04d"
 * of the slot number.  Table order is the enum order (mkfs creates them in
 * this order, all slots of one type before the next type).
 */
import {
  OCFS2_BITMAP_FL, OCFS2_CHAIN_FL, OCFS2_DEALLOC_FL, OCFS2_HEARTBEAT_FL, OCFS2_JOURNAL_FL,
  OCFS2_LOCAL_ALLOC_FL, OCFS2_QUOTA_FL, S_IFDIR, S_IFREG,
} from './constants';

export const BAD_BLOCK_SYSTEM_INODE = 0;
export const GLOBAL_INODE_ALLOC_SYSTEM_INODE = 1;
export const SLOT_MAP_SYSTEM_INODE = 2;
export const HEARTBEAT_SYSTEM_INODE = 3;
export const GLOBAL_BITMAP_SYSTEM_INODE = 4;
export const USER_QUOTA_SYSTEM_INODE = 5;
export const GROUP_QUOTA_SYSTEM_INODE = 6;
export const ORPHAN_DIR_SYSTEM_INODE = 7;
export const EXTENT_ALLOC_SYSTEM_INODE = 8;
export const INODE_ALLOC_SYSTEM_INODE = 9;
export const JOURNAL_SYSTEM_INODE = 10;
export const LOCAL_ALLOC_SYSTEM_INODE = 11;
export const TRUNCATE_LOG_SYSTEM_INODE = 12;
export const LOCAL_USER_QUOTA_SYSTEM_INODE = 13;
export const LOCAL_GROUP_QUOTA_SYSTEM_INODE = 14;
export const NUM_SYSTEM_INODES = 15;

/** The kernel looks up system inodes from here on (the first two are mkfs/tunefs only). */
export const OCFS2_FIRST_ONLINE_SYSTEM_INODE = SLOT_MAP_SYSTEM_INODE;
export const OCFS2_LAST_GLOBAL_SYSTEM_INODE = GROUP_QUOTA_SYSTEM_INODE;
export const OCFS2_FIRST_LOCAL_SYSTEM_INODE = ORPHAN_DIR_SYSTEM_INODE;
export const OCFS2_LAST_LOCAL_SYSTEM_INODE = LOCAL_GROUP_QUOTA_SYSTEM_INODE;
export const NUM_GLOBAL_SYSTEM_INODES = OCFS2_FIRST_LOCAL_SYSTEM_INODE;
export const NUM_LOCAL_SYSTEM_INODES = NUM_SYSTEM_INODES - OCFS2_FIRST_LOCAL_SYSTEM_INODE;

export type SystemInodeType = number;

export interface SystemInodeInfo {
  type: SystemInodeType;
  /** printf-style name; per-slot names end in ":%04d". */
  name: string;
  /** si_iflags from ocfs2_system_inodes[] (SYSTEM and VALID are added on top). */
  iflags: number;
  /**
   * The flags mkfs.ocfs2 actually writes beyond VALID|SYSTEM.  They differ
   * from iflags only for global_bitmap, which the table lists with 0 but mkfs
   * formats as a chain allocator (debugfs: "Allocbitmap Chain").
   */
  mkfsFlags: number;
  mode: number;
  global: boolean;
}

const T: Array<[string, number, number]> = [
  ['bad_blocks', 0, S_IFREG | 0o644],
  ['global_inode_alloc', OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, S_IFREG | 0o644],
  ['slot_map', 0, S_IFREG | 0o644],
  ['heartbeat', OCFS2_HEARTBEAT_FL, S_IFREG | 0o644],
  ['global_bitmap', 0, S_IFREG | 0o644],
  ['aquota.user', OCFS2_QUOTA_FL, S_IFREG | 0o644],
  ['aquota.group', OCFS2_QUOTA_FL, S_IFREG | 0o644],
  ['orphan_dir:%04d', 0, S_IFDIR | 0o755],
  ['extent_alloc:%04d', OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, S_IFREG | 0o644],
  ['inode_alloc:%04d', OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, S_IFREG | 0o644],
  ['journal:%04d', OCFS2_JOURNAL_FL, S_IFREG | 0o644],
  ['local_alloc:%04d', OCFS2_BITMAP_FL | OCFS2_LOCAL_ALLOC_FL, S_IFREG | 0o644],
  ['truncate_log:%04d', OCFS2_DEALLOC_FL, S_IFREG | 0o644],
  ['aquota.user:%04d', OCFS2_QUOTA_FL, S_IFREG | 0o644],
  ['aquota.group:%04d', OCFS2_QUOTA_FL, S_IFREG | 0o644],
];

export const SYSTEM_INODES: readonly SystemInodeInfo[] = T.map(([name, iflags, mode], type) => ({
  type, name, iflags, mode,
  mkfsFlags: type === GLOBAL_BITMAP_SYSTEM_INODE ? OCFS2_BITMAP_FL | OCFS2_CHAIN_FL : iflags,
  global: type < OCFS2_FIRST_LOCAL_SYSTEM_INODE,
}));

export function isGlobalSystemInode(type: SystemInodeType): boolean {
  return type >= 0 && type < OCFS2_FIRST_LOCAL_SYSTEM_INODE;
}

/**
 * The name of a system file in the system directory: the global name, or the
 * per-slot name with the slot as %04d (ocfs2_sprintf_system_inode_name).
 */
export function systemFileName(type: SystemInodeType, slot?: number): string {
  const info = SYSTEM_INODES[type];
  if (!info) throw new RangeError(`unknown system inode type ${type}`);
  if (info.global) return info.name;
  if (slot === undefined || !Number.isInteger(slot) || slot < 0) {
    throw new RangeError(`system file ${info.name} needs a slot number`);
  }
  return info.name.replace('%04d', String(slot).padStart(4, '0'));
}

/** The type (and slot, for per-slot files) of a system directory entry name, or null. */
export function parseSystemFileName(name: string): { type: SystemInodeType; slot: number | null } | null {
  for (const info of SYSTEM_INODES) {
    if (info.global) {
      if (name === info.name) return { type: info.type, slot: null };
      continue;
    }
    const prefix = info.name.slice(0, info.name.indexOf('%'));
    if (name.startsWith(prefix)) {
      const rest = name.slice(prefix.length);
      // %04d: at least four digits, more only for slots >= 10000 (never: max 255).
      if (/^\d{4,}$/.test(rest) && (rest.length === 4 || rest[0] !== '0')) {
        return { type: info.type, slot: Number(rest) };
      }
    }
  }
  return null;
}

/** Every system file name for a volume with `maxSlots` slots, in mkfs order. */
export function allSystemFileNames(maxSlots: number, opts: { usrquota?: boolean; grpquota?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const info of SYSTEM_INODES) {
    if ((info.type === USER_QUOTA_SYSTEM_INODE || info.type === LOCAL_USER_QUOTA_SYSTEM_INODE) && !opts.usrquota) continue;
    if ((info.type === GROUP_QUOTA_SYSTEM_INODE || info.type === LOCAL_GROUP_QUOTA_SYSTEM_INODE) && !opts.grpquota) continue;
    if (info.global) out.push(info.name);
    else for (let s = 0; s < maxSlots; s++) out.push(systemFileName(info.type, s));
  }
  return out;
}
