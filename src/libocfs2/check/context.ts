/**
 * State shared by the checker passes: the volume, the write path, the
 * problems found, and what pass 1 learnt about inodes and clusters.
 */
import type { Volume } from '../volume';
import type { TransactionManager } from '../txn';
import type { PassName, Problem } from './problems';

export interface InodeInfo {
  blkno: number;
  mode: number;
  /** Link count on disk. */
  nlink: number;
  flags: number;
  dynFeatures: number;
  isDir: boolean;
  system: boolean;
  /** Clusters claimed, as [firstCluster, count] runs (for pass 1b and orphan removal). */
  runs: Array<[number, number]>;
  /** Directory blocks (physical) in logical order; for inline dirs, the inode block itself. */
  dirBlocks: number[];
  inline: boolean;
  /** Set by pass 2: directory entries naming this inode (including "." and ".."). */
  refs: number;
  /** Set by pass 2 (directories): the ".." entry, and the directory whose entry names it. */
  dotdot: number;
  parent: number;
  /** Named from an orphan directory. */
  orphan: boolean;
}

export class CheckContext {
  readonly problems: Problem[] = [];
  readonly inodes = new Map<number, InodeInfo>();
  /** Clusters claimed by metadata and files (bit per cluster). */
  readonly used: Uint8Array;
  readonly dups = new Set<number>();

  constructor(
    readonly vol: Volume,
    readonly tm: TransactionManager,
    readonly repair: boolean,
    private readonly log: (line: string) => void,
  ) {
    this.used = new Uint8Array(Math.ceil(vol.sb.clusters / 8));
  }

  /**
   * Record a problem.  Returns true when the caller should repair it (repair
   * mode and `fixable`); the problem is then recorded as fixed.
   */
  report(pass: PassName, code: string, blkno: number, message: string, fixable: boolean): boolean {
    const fixed = this.repair && fixable;
    this.problems.push({ code, pass, blkno, message, fixed });
    this.log(`[${code}] ${message}${fixed ? ' (fixed)' : this.repair ? ' (not fixed)' : ''}`);
    return fixed;
  }

  say(line: string): void { this.log(line); }

  isUsed(c: number): boolean { return ((this.used[c >> 3]! >> (c & 7)) & 1) === 1; }

  /** Claim clusters [c, c+n); a cluster claimed twice goes to `dups` unless `shared`. */
  claim(c: number, n: number, shared = false): void {
    const end = Math.min(c + n, this.vol.sb.clusters);
    for (let i = Math.max(0, c); i < end; i++) {
      if (this.isUsed(i)) { if (!shared) this.dups.add(i); continue; }
      this.used[i >> 3] = this.used[i >> 3]! | (1 << (i & 7));
    }
  }

  unclaim(c: number, n: number): void {
    const end = Math.min(c + n, this.vol.sb.clusters);
    for (let i = Math.max(0, c); i < end; i++) this.used[i >> 3] = this.used[i >> 3]! & ~(1 << (i & 7));
  }
}
