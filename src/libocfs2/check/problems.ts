/**
 * Problems found by the checker.  Codes are fsck.ocfs2's problem names
 * (fsck.ocfs2.checks(8), fsck.ocfs2/include/problem.h) where one exists,
 * so our report can be compared with `fsck.ocfs2 -fn` class by class.
 */

export type PassName = 'journal' | '0a' | '0b' | '0c' | '1' | '1b' | '2' | '3' | '4a' | '4b';

export interface Problem {
  /** fsck.ocfs2 problem code, e.g. GROUP_FREE_BITS, CLUSTER_ALLOC_BIT, DIRENT_INODE_FREE. */
  code: string;
  pass: PassName;
  /** The block (or inode number, which is a block number) the problem is about. */
  blkno: number;
  message: string;
  /** Repaired on disk (only with repair enabled). */
  fixed: boolean;
}

/** fsck(8) exit code bits. */
export const FSCK_OK = 0;
export const FSCK_NONDESTRUCT = 1;
export const FSCK_UNCORRECTED = 4;
export const FSCK_ERROR = 8;
export const FSCK_USAGE = 16;
