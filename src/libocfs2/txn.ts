/**
 * The contract between the write path and the journal.
 *
 * Every metadata change happens inside a Transaction: the caller copies a
 * block (never modify a buffer returned by Volume.readMetaBlock: it is shared
 * with the cache), changes the copy, and hands the whole block to
 * `writeMeta`.  The transaction computes the metaecc block check (when the
 * volume has META_ECC) and makes the new content visible to every later read
 * at once.  When and how the block reaches its home location is the
 * TransactionManager's business: DirectTransactionManager (below) writes in
 * place at commit (no journal: for mkfs-like tools and tests);
 * the journaled manager logs the blocks to the slot's JBD2 journal first
 * (ordered mode: file data written with writeData before the commit record).
 */
import { updateBlockCheck } from './blockcheck';
import type { Volume } from './volume';

export interface Transaction {
  /** Record the new content of a metadata block (whole block). */
  writeMeta(blkno: number, buf: Buffer, checkOffset: number | null): void;
  /** Write file data blocks (not journaled; ordered before this transaction's commit). */
  writeData(blkno: number, data: Buffer): Promise<void>;
  /** A metadata block freed in this transaction: journal replay must not write it back (JBD2 revoke). */
  forget(blkno: number): void;
  /** Blocks written so far in this transaction (for size limits). */
  readonly metaBlocks: number;
}

export interface TransactionManager {
  /**
   * Run `fn` in a transaction.  Transactions are serialised (one at a time);
   * if `fn` throws, none of its writeMeta changes become visible or durable.
   */
  run<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Make every finished transaction durable (fsync, unmount). */
  flush(): Promise<void>;
}

/** Writes metadata in place when the transaction ends. No crash safety. */
export class DirectTransactionManager implements TransactionManager {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly vol: Volume) {}

  run<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const next = this.tail.then(() => this.runOne(fn));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async runOne<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const vol = this.vol;
    const pending = new Map<number, Buffer>();
    const tx: Transaction = {
      writeMeta(blkno, buf, checkOffset) {
        if (buf.length !== vol.blockSize) throw new RangeError(`writeMeta: ${buf.length} bytes is not one block`);
        if (vol.metaEcc && checkOffset !== null) updateBlockCheck(buf, checkOffset);
        pending.set(blkno, buf);
        vol.dev.pin(blkno, buf);
      },
      async writeData(blkno, data) { await vol.dev.writeBlocks(blkno, data); },
      forget(blkno) { pending.delete(blkno); vol.dev.unpin(blkno); },
      get metaBlocks() { return pending.size; },
    };
    try {
      const out = await fn(tx);
      for (const [blkno, buf] of [...pending].sort((a, b) => a[0] - b[0])) {
        await vol.dev.writeBlocks(blkno, buf);
        vol.dev.unpin(blkno);
      }
      return out;
    } catch (e) {
      for (const blkno of pending.keys()) vol.dev.unpin(blkno, { discard: true });
      throw e;
    }
  }

  async flush(): Promise<void> { await this.vol.dev.flush(); }
}
