/**
 * JournaledTransactionManager: the TransactionManager of a read-write mount,
 * writing every metadata change to the slot's JBD2 journal the way the
 * kernel's jbd2 does for OCFS2 (ordered data mode).
 *
 * - Each `run(fn)` is a handle.  Completed handles are merged into one
 *   running JBD2 transaction, committed every 5 s (jbd2's default commit
 *   interval), on flush() (fsync, unmount), and when it grows past a quarter
 *   of the log (jbd2's j_max_transaction_buffers).
 * - Commit: revoke blocks, then descriptor blocks with tags (first tag of a
 *   descriptor carries the journal UUID, the rest SAME_UUID, the last
 *   LAST_TAG; a block starting with the JBD2 magic is logged with the magic
 *   zeroed and the ESCAPE flag), each followed by its data blocks; a device
 *   sync (ordered mode: file data written with tx.writeData, and the log
 *   blocks, are durable before the commit record); then the commit block
 *   and another sync.  Checksums as the journal's features ask (CSUM v2/v3
 *   tag, tail and commit checksums; COMPAT_CHECKSUM crc32_be).
 * - Checkpoint: every committed block is written home, the device synced,
 *   and the superblock's s_start/s_sequence advanced to the log head, when
 *   the log runs low on space, when the pinned metadata grows past a bound,
 *   periodically, and at close.  Until then the blocks stay pinned in the
 *   block layer (reads see them; the cache cannot drop them).
 * - close(): commit, checkpoint, then mark the log empty (s_start = 0), as
 *   jbd2_journal_destroy does.
 *
 * A metadata block that is freed (tx.forget) gets a revoke record when an
 * older copy of it is still in the live part of the log.  A block written
 * with writeData while an older metadata copy of it is still in the log
 * (freed metadata reused for file data) first forces a commit and a full
 * checkpoint, so neither checkpoint nor replay can write the old metadata
 * over the new data.
 */
import { updateBlockCheck } from '../blockcheck';
import { Ocfs2Error } from '../errors';
import {
  JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG,
  JBD2_FLAG_SAME_UUID, JBD2_MAGIC, crc32_be, csumSeed, dataBlockChecksum, encodeCommitBlock, encodeDescriptorBlock,
  encodeRevokeBlock, hasCompatChecksum, hasCsumV2or3, journalHeader, recoverJournal, revokeHeader,
  revokeRecordBytes, tagBytes, tailBytes, type DescriptorTagInput,
} from '../jbd2';
import type { Transaction, TransactionManager } from '../txn';
import type { Volume } from '../volume';
import { JournalFile } from './file';

/** jbd2's default commit interval (JBD2_DEFAULT_MAX_COMMIT_AGE). */
export const DEFAULT_COMMIT_INTERVAL_MS = 5000;

export interface JournalManagerOptions {
  /** Commit the running transaction this long after its first handle (default 5 s; 0 = only on flush/size). */
  commitIntervalMs?: number;
  /** Checkpoint when committed-but-not-checkpointed metadata exceeds this many bytes (default 32 MiB). */
  maxPinnedBytes?: number;
  /** Checkpoint at a timed commit when the last checkpoint is older than this (default 30 s). */
  checkpointIntervalMs?: number;
  /**
   * Test hook: called before each step of commit/checkpoint with its name,
   * so a test can stop a process at a chosen point.
   */
  onStep?: (step: JournalStep) => void | Promise<void>;
}

export type JournalStep = 'commit-log' | 'commit-record' | 'committed' | 'checkpoint-home' | 'checkpoint-sb' | 'checkpointed';

interface Handle {
  blocks: Map<number, Buffer>;
  revokes: Set<number>;
  aborted: boolean;
}

interface Running {
  blocks: Map<number, Buffer>;
  revokes: Set<number>;
  /** File data was written for this transaction (sync before the commit record). */
  data: boolean;
  handles: number;
}

export interface JournalStats {
  commits: number;
  checkpoints: number;
  handles: number;
  loggedBlocks: number;
  revokes: number;
  escapes: number;
}

export class JournaledTransactionManager implements TransactionManager {
  private queue: Promise<unknown> = Promise.resolve();
  private running: Running = emptyRunning();
  private current: Handle | null = null;
  /** Committed, not yet checkpointed: latest content per block (null = revoked, do not write home). */
  private readonly committed = new Map<number, Buffer | null>();
  /** Log position of the next block to write, and of the oldest live transaction. */
  private head: number;
  private tail: number;
  /** Sequence of the next transaction to commit, and of the transaction at `tail`. */
  private nextSeq: number;
  private tailSeq: number;
  /** The on-disk superblock says "empty" (s_start = 0): it must be rewritten before the first commit record. */
  private sbEmpty: boolean;
  private timer: NodeJS.Timeout | null = null;
  private lastCheckpoint = Date.now();
  private closed = false;
  private failed: Error | null = null;
  private readonly seed: number;
  private readonly uuid: Buffer;
  readonly stats: JournalStats = { commits: 0, checkpoints: 0, handles: 0, loggedBlocks: 0, revokes: 0, escapes: 0 };

  private constructor(
    readonly vol: Volume,
    readonly journal: JournalFile,
    startSeq: number,
    private readonly opts: JournalManagerOptions,
  ) {
    this.head = journal.first;
    this.tail = journal.first;
    this.nextSeq = startSeq >>> 0;
    this.tailSeq = this.nextSeq;
    this.sbEmpty = true;
    this.uuid = Buffer.from(journal.sb.s_uuid);
    this.seed = hasCsumV2or3(journal.features) ? csumSeed(this.uuid) : 0;
  }

  /**
   * Start journaling on `slot`.  The journal must not need recovery (replay
   * it first): a log with s_start != 0 is discarded as jbd2_journal_wipe
   * does, continuing after the highest transaction it holds; the log starts
   * over at s_first and the superblock is marked empty until the first commit.
   */
  static async open(vol: Volume, slot: number, opts: JournalManagerOptions = {}): Promise<JournaledTransactionManager> {
    if (vol.dev.readOnly) throw new Ocfs2Error('journaling needs a read-write volume');
    const jf = await JournalFile.open(vol, slot);
    let seq = jf.sb.s_sequence;
    if (jf.sb.s_start !== 0) {
      // jbd2_journal_skip_recovery: the next transaction follows the last one in the log.
      const res = await recoverJournal(jf.reader, { allowDataChecksumErrors: true });
      seq = (res.endSeq + 1) >>> 0;
      await jf.writeSuperblock({ start: 0, sequence: seq });
      await vol.dev.flush();
    }
    return new JournaledTransactionManager(vol, jf, seq, opts);
  }

  // ---------------------------------------------------------------------------
  // Handles

  run<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.enqueue(() => this.runHandle(fn));
  }

  async flush(): Promise<void> {
    await this.enqueue(async () => {
      if (!this.commitRunningNeeded()) { await this.vol.dev.flush(); return; }
      await this.commitRunning();
      await this.maybeCheckpoint(false);
    });
  }

  /** Commit and checkpoint everything now (e.g. before freed clusters are handed out again). */
  async checkpoint(): Promise<void> {
    await this.enqueue(async () => {
      await this.commitRunning();
      await this.checkpointAll();
    });
  }

  /**
   * Clean shutdown of the journal: commit, checkpoint, and mark the log
   * empty (s_start = 0, s_sequence = next transaction).  Clearing the
   * dinode's dirty flag is the mount's job (rwmount).
   */
  async close(): Promise<void> {
    await this.enqueue(async () => {
      this.stopTimer();
      await this.commitRunning();
      await this.checkpointAll();
      await this.journal.writeSuperblock({ start: 0, sequence: this.nextSeq });
      await this.vol.dev.flush();
      this.sbEmpty = true;
      this.closed = true;
    });
  }

  /**
   * Stop without writing anything more (as if the machine stopped): pending
   * work is dropped.  For tests that simulate a crash in-process.
   */
  abandon(): void {
    this.stopTimer();
    this.closed = true;
  }

  get pinnedBlocks(): number { return this.committed.size + this.running.blocks.size; }
  /** Log blocks in use (committed, not yet checkpointed). */
  get logUsed(): number { return this.used(); }
  get sequence(): number { return this.nextSeq; }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closed) throw new Ocfs2Error('the journal is closed');
      if (this.failed) throw new Ocfs2Error(`the journal failed earlier: ${this.failed.message}`);
      return job();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runHandle<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const h: Handle = { blocks: new Map(), revokes: new Set(), aborted: false };
    this.current = h;
    const self = this;
    const vol = this.vol;
    const tx: Transaction = {
      writeMeta(blkno, buf, checkOffset) {
        if (h.aborted) throw new Ocfs2Error('transaction already finished');
        if (buf.length !== vol.blockSize) throw new RangeError(`writeMeta: ${buf.length} bytes is not one block`);
        if (vol.metaEcc && checkOffset !== null) updateBlockCheck(buf, checkOffset);
        h.blocks.set(blkno, buf);
        h.revokes.delete(blkno);
        vol.dev.pin(blkno, buf);
      },
      async writeData(blkno, data) {
        if (h.aborted) throw new Ocfs2Error('transaction already finished');
        await self.writeData(h, blkno, data);
      },
      forget(blkno) {
        if (h.aborted) throw new Ocfs2Error('transaction already finished');
        h.blocks.delete(blkno);
        h.revokes.add(blkno);
        vol.dev.unpin(blkno, { discard: true });
      },
      get metaBlocks() { return h.blocks.size; },
    };
    let out: T;
    try {
      out = await fn(tx);
    } catch (e) {
      this.abortHandle(h);
      throw e;
    } finally {
      h.aborted = true;
    }
    try {
      await this.mergeHandle(h);
    } catch (e) {
      this.fail(e);
      throw e;
    } finally {
      this.current = null;
    }
    return out;
  }

  private async writeData(h: Handle, blkno: number, data: Buffer): Promise<void> {
    const bs = this.vol.blockSize;
    const count = Math.ceil(data.length / bs);
    for (let b = blkno; b < blkno + count; b++) {
      if (h.blocks.has(b)) { h.blocks.delete(b); h.revokes.add(b); this.vol.dev.unpin(b, { discard: true }); }
      const old = this.committed.get(b);
      if ((old !== undefined && old !== null) || this.running.blocks.has(b)) {
        // Freed metadata reused for data: get the old copy home and out of the log first.
        await this.commitRunning();
        await this.checkpointAll();
      }
    }
    await this.vol.dev.writeBlocks(blkno, data);
    this.running.data = true;
  }

  /** Undo a failed handle: every block it touched shows its previous (pinned or on-disk) content again. */
  private abortHandle(h: Handle): void {
    for (const b of new Set([...h.blocks.keys(), ...h.revokes])) this.restorePin(b);
    this.current = null;
  }

  /** Pin the newest journaled content of `b`, or drop the pin if it has none. */
  private restorePin(b: number): void {
    const r = this.running.blocks.get(b);
    const c = this.committed.get(b);
    const buf = r ?? (c ?? undefined);
    if (buf) this.vol.dev.pin(b, buf); else this.vol.dev.unpin(b, { discard: true });
  }

  private async mergeHandle(h: Handle): Promise<void> {
    this.stats.handles++;
    if (h.blocks.size === 0 && h.revokes.size === 0) return;
    const handleCost = this.estimate(h.blocks.size, h.revokes.size);
    if (handleCost > this.journal.logBlocks - 2) {
      this.abortHandle(h);
      throw new Ocfs2Error(`a transaction of ${h.blocks.size} blocks does not fit in the journal (${this.journal.logBlocks} blocks)`);
    }
    if (this.running.handles > 0
        && this.estimate(this.running.blocks.size + h.blocks.size, this.running.revokes.size + h.revokes.size) > this.maxTransaction()) {
      await this.commitRunning();
      await this.maybeCheckpoint(false);
    }
    const r = this.running;
    for (const [b, buf] of h.blocks) { r.blocks.set(b, buf); r.revokes.delete(b); }
    for (const b of h.revokes) {
      r.blocks.delete(b);
      // A revoke matters only if an older copy is still in the live log.
      const c = this.committed.get(b);
      if (c !== undefined && c !== null) r.revokes.add(b);
    }
    r.handles++;
    if (this.estimate(r.blocks.size, r.revokes.size) > this.maxTransaction()) {
      await this.commitRunning();
      await this.maybeCheckpoint(false);
    } else {
      this.armTimer();
    }
  }

  // ---------------------------------------------------------------------------
  // Geometry

  private tagsPerDescriptor(): number {
    const room = this.vol.blockSize - journalHeader.size - tailBytes(this.journal.features) - 16;
    return Math.floor(room / tagBytes(this.journal.features));
  }

  private revokesPerBlock(): number {
    const room = this.vol.blockSize - revokeHeader.size - tailBytes(this.journal.features);
    return Math.floor(room / revokeRecordBytes(this.journal.features));
  }

  /** Log blocks a transaction of `blocks` metadata blocks and `revokes` revokes takes. */
  private estimate(blocks: number, revokes: number): number {
    return Math.ceil(revokes / this.revokesPerBlock()) + Math.ceil(blocks / this.tagsPerDescriptor()) + blocks + 1;
  }

  /** jbd2_journal_get_max_txn_bufs: a quarter of the log. */
  private maxTransaction(): number {
    return Math.max(8, Math.floor(this.journal.logBlocks / 4));
  }

  private used(): number {
    const len = this.journal.logBlocks;
    return (this.head - this.tail + len) % len;
  }

  private free(): number {
    return this.journal.logBlocks - this.used() - 1;
  }

  private wrap(n: number): number {
    return n >= this.journal.last ? n - this.journal.logBlocks : n;
  }

  // ---------------------------------------------------------------------------
  // Commit

  private commitRunningNeeded(): boolean {
    return this.running.blocks.size > 0 || this.running.revokes.size > 0 || this.running.data;
  }

  private async step(s: JournalStep): Promise<void> {
    if (this.opts.onStep) await this.opts.onStep(s);
  }

  private async commitRunning(): Promise<void> {
    this.stopTimer();
    const r = this.running;
    if (r.blocks.size === 0 && r.revokes.size === 0) {
      if (r.data) { await this.vol.dev.flush(); r.data = false; }
      return;
    }
    const f = this.journal.features;
    const bs = this.vol.blockSize;
    const seq = this.nextSeq;
    const need = this.estimate(r.blocks.size, r.revokes.size);
    if (need > this.free()) await this.checkpointAll();
    if (need > this.free()) throw new Ocfs2Error(`journal full: transaction needs ${need} blocks, ${this.free()} free`);

    // Superblock first if the log is marked empty (jbd2's JBD2_FLUSHED case).
    let incompatSet = 0;
    if (r.revokes.size > 0 && !(f.incompat & JBD2_FEATURE_INCOMPAT_REVOKE)) incompatSet = JBD2_FEATURE_INCOMPAT_REVOKE;
    if (this.sbEmpty || incompatSet) {
      await this.journal.writeSuperblock({ start: this.tail, sequence: this.tailSeq, incompatSet });
      this.sbEmpty = false;
    }

    const log: Buffer[] = [];
    // Revoke records.
    const revs = [...r.revokes].sort((a, b) => a - b);
    const per = this.revokesPerBlock();
    for (let i = 0; i < revs.length; i += per) {
      log.push(encodeRevokeBlock(seq, revs.slice(i, i + per), f, bs, this.seed));
    }
    // Descriptors and their data blocks.
    const blocks = [...r.blocks.entries()].sort((a, b) => a[0] - b[0]);
    const tpd = this.tagsPerDescriptor();
    let crc = 0xffffffff;
    const compat = hasCompatChecksum(f);
    for (let i = 0; i < blocks.length; i += tpd) {
      const chunk = blocks.slice(i, i + tpd);
      const tags: DescriptorTagInput[] = [];
      const datas: Buffer[] = [];
      chunk.forEach(([b, buf], k) => {
        let data = buf;
        let flags = k === 0 ? 0 : JBD2_FLAG_SAME_UUID;
        if (buf.readUInt32BE(0) === JBD2_MAGIC) {
          data = Buffer.from(buf);
          data.writeUInt32BE(0, 0);
          flags |= JBD2_FLAG_ESCAPE;
          this.stats.escapes++;
        } else {
          data = Buffer.from(buf); // frozen copy: the log gets this transaction's content
        }
        if (k === chunk.length - 1) flags |= JBD2_FLAG_LAST_TAG;
        const checksum = hasCsumV2or3(f) ? dataBlockChecksum(this.seed, seq, data) : 0;
        tags.push({ blocknr: b, flags, checksum, uuid: k === 0 ? this.uuid : undefined });
        datas.push(data);
      });
      const desc = encodeDescriptorBlock(seq, tags, f, bs, this.seed);
      if (compat) {
        crc = crc32_be(crc, desc);
        for (const d of datas) crc = crc32_be(crc, d);
      }
      log.push(desc, ...datas);
    }
    await this.step('commit-log');
    const start = this.head;
    await this.writeLogWrapped(start, log);
    // Ordered mode: file data and log blocks are durable before the commit record.
    await this.vol.dev.flush();
    await this.step('commit-record');
    const now = Date.now();
    const commit = encodeCommitBlock({
      sequence: seq, commitSec: BigInt(Math.floor(now / 1000)), commitNsec: (now % 1000) * 1e6,
      ...(compat ? { chksumType: JBD2_CRC32_CHKSUM, chksumSize: JBD2_CRC32_CHKSUM_SIZE, chksum0: crc } : {}),
    }, bs, f, this.seed);
    await this.writeLogWrapped(this.wrap(start + log.length), [commit]);
    await this.vol.dev.flush();

    this.head = this.wrap(start + log.length + 1);
    for (const [b, buf] of r.blocks) this.committed.set(b, buf);
    for (const b of r.revokes) this.committed.set(b, null);
    this.stats.commits++;
    this.stats.loggedBlocks += blocks.length;
    this.stats.revokes += revs.length;
    this.nextSeq = (seq + 1) >>> 0;
    this.running = emptyRunning();
    await this.step('committed');
  }

  private async writeLogWrapped(start: number, blocks: Buffer[]): Promise<void> {
    let n = start;
    let i = 0;
    while (i < blocks.length) {
      const room = this.journal.last - n;
      const part = blocks.slice(i, i + room);
      await this.journal.writeLog(n, part);
      i += part.length;
      n = this.wrap(n + part.length);
    }
  }

  // ---------------------------------------------------------------------------
  // Checkpoint

  private committedBytes(): number {
    return this.committed.size * this.vol.blockSize;
  }

  private async maybeCheckpoint(timed: boolean): Promise<void> {
    if (this.committed.size === 0) return;
    const lowSpace = this.free() < this.journal.logBlocks / 2;
    const tooMuch = this.committedBytes() > (this.opts.maxPinnedBytes ?? 32 * 1024 * 1024);
    const stale = timed && Date.now() - this.lastCheckpoint > (this.opts.checkpointIntervalMs ?? 30_000);
    if (lowSpace || tooMuch || stale) await this.checkpointAll();
  }

  /** Write every committed block home, sync, advance the log tail to the head. */
  private async checkpointAll(): Promise<void> {
    if (this.committed.size === 0 && this.tail === this.head) return;
    await this.step('checkpoint-home');
    const order = [...this.committed.entries()].filter((e): e is [number, Buffer] => e[1] !== null).sort((a, b) => a[0] - b[0]);
    const bs = this.vol.blockSize;
    let i = 0;
    while (i < order.length) {
      let j = i + 1;
      while (j < order.length && order[j]![0] === order[j - 1]![0] + 1 && j - i < 256) j++;
      const run = order.slice(i, j);
      await this.vol.dev.writeBlocks(run[0]![0], run.length === 1 ? run[0]![1] : Buffer.concat(run.map((e) => e[1]), run.length * bs));
      i = j;
    }
    await this.vol.dev.flush();
    await this.step('checkpoint-sb');
    this.tail = this.head;
    this.tailSeq = this.nextSeq;
    if (!this.sbEmpty) {
      await this.journal.writeSuperblock({ start: this.tail, sequence: this.tailSeq });
      await this.vol.dev.flush();
    }
    for (const b of this.committed.keys()) {
      if (this.running.blocks.has(b) || this.current?.blocks.has(b)) continue;
      if (this.committed.get(b) === null) continue;
      this.vol.dev.unpin(b);
    }
    this.committed.clear();
    this.stats.checkpoints++;
    this.lastCheckpoint = Date.now();
    await this.step('checkpointed');
  }

  // ---------------------------------------------------------------------------
  // Timer

  private armTimer(): void {
    const ms = this.opts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS;
    if (ms <= 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.enqueue(async () => {
        await this.commitRunning();
        await this.maybeCheckpoint(true);
      }).catch((e: unknown) => { if (!this.closed) this.fail(e); });
    }, ms);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
  }

  private fail(e: unknown): void {
    if (!this.failed) this.failed = e instanceof Error ? e : new Error(String(e));
  }
}

function emptyRunning(): Running {
  return { blocks: new Map(), revokes: new Set(), data: false, handles: 0 };
}
