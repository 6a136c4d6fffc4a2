/**
 * What the filesystem operations need from the allocation layer and the
 * read-write mount.  These are the subsets of helper-11's `Allocators` /
 * `ExtentTree` and helper-10's `RwVolume` (see /tmp plan, issue 4) that
 * src/libocfs2/fs uses, so either the real classes or the stopgap in
 * stopgap.ts can be plugged in.
 */
import type { Transaction, TransactionManager } from '../txn';
import type { Volume } from '../volume';

export interface ClusterRun { start: number; count: number }
export interface SubAlloc { blkno: number; suballocSlot: number; suballocBit: number; suballocLoc: number }
export interface LeafRec { cpos: number; clusters: number; blkno: number; flags: number }

export interface FsAllocators {
  claimClusters(tx: Transaction, min: number, want: number, goal?: number): Promise<ClusterRun>;
  freeClusters(tx: Transaction, run: ClusterRun): Promise<void>;
  claimInode(tx: Transaction): Promise<SubAlloc>;
  claimMetaBlock(tx: Transaction): Promise<SubAlloc>;
  freeInode(tx: Transaction, a: SubAlloc): Promise<void>;
  freeMetaBlock(tx: Transaction, a: SubAlloc): Promise<void>;
  statfs(): Promise<{ totalClusters: number; freeClusters: number }>;
  /** After ENOSPC: free what the truncate log holds in a committed transaction of its own; true to retry. */
  freeTruncateLog?(tm: TransactionManager): Promise<boolean>;
}

/** One extent tree (an inode's id2 list). */
export interface FsExtentTree {
  insert(tx: Transaction, rec: LeafRec): Promise<void>;
  remove(tx: Transaction, cpos: number, clusters: number): Promise<LeafRec[]>;
  setFlags(tx: Transaction, cpos: number, clusters: number, set: number, clear: number): Promise<void>;
}

export interface RwVolumeLike {
  vol: Volume;
  slot: number;
  tm: TransactionManager;
  alloc: FsAllocators;
  /** The extent tree of an inode (helper-11's ExtentTree.forInode). */
  extentTree(inodeBlkno: number): FsExtentTree;
}
