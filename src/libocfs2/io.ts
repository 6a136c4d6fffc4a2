/**
 * Block I/O: an image file or a block device, read in whole blocks, with an
 * LRU cache of metadata blocks bounded in bytes.
 *
 * File data is read uncached (readRange) so that streaming a large file does
 * not evict the metadata working set.  A read-only overlay (block number ->
 * content) lets a journal be "replayed" in memory for a read-only mount
 * without writing to the device.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { LRUCache } from 'lru-cache';
import { Ocfs2Error, Ocfs2FormatError } from './errors';

export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

export interface BlockDeviceOptions {
  readOnly: boolean;
  /** Upper bound of the metadata block cache, in bytes (default 64 MiB). */
  cacheBytes?: number;
}

/** Size of a block device from sysfs (Node cannot issue BLKGETSIZE64). */
function blockDeviceBytes(st: fs.Stats): number {
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 4096) & 0xfff00));
  const sizeFile = `/sys/dev/block/${major}:${minor}/size`;
  try {
    return Number(fs.readFileSync(sizeFile, 'utf8').trim()) * 512;
  } catch {
    throw new Ocfs2FormatError(`cannot determine the size of block device ${major}:${minor}`);
  }
}

export class BlockDevice {
  private blockBits = 9;
  private readonly cache: LRUCache<number, Buffer>;
  /** In-memory replacement blocks (e.g. a journal replayed for a read-only mount). */
  private overlay = new Map<number, Buffer>();
  /**
   * Blocks changed by a transaction but not yet at their home location
   * (written in place or checkpointed): reads see these, and the LRU cannot
   * evict them.
   */
  private pinned = new Map<number, Buffer>();
  private closed = false;
  stats = { reads: 0, cacheHits: 0, bytesRead: 0, writes: 0 };

  private constructor(
    readonly path: string,
    private readonly fh: fsp.FileHandle,
    readonly sizeBytes: number,
    readonly readOnly: boolean,
    cacheBytes: number,
  ) {
    this.cache = new LRUCache<number, Buffer>({
      maxSize: Math.max(cacheBytes, 4096),
      sizeCalculation: (b) => b.length,
    });
  }

  static async open(devPath: string, opts: BlockDeviceOptions): Promise<BlockDevice> {
    let st: fs.Stats;
    try {
      st = await fsp.stat(devPath);
    } catch (e) {
      throw new Ocfs2FormatError(`${devPath}: ${(e as Error).message}`);
    }
    if (st.isDirectory()) throw new Ocfs2FormatError(`${devPath}: is a directory, not a device or image file`);
    if (!st.isFile() && !st.isBlockDevice()) throw new Ocfs2FormatError(`${devPath}: not a regular file or block device`);
    const size = st.isBlockDevice() ? blockDeviceBytes(st) : st.size;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(devPath, opts.readOnly ? 'r' : 'r+');
    } catch (e) {
      throw new Ocfs2FormatError(`${devPath}: ${(e as Error).message}`);
    }
    return new BlockDevice(path.resolve(devPath), fh, size, opts.readOnly, opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
  }

  get blockSize(): number { return 1 << this.blockBits; }
  get blockSizeBits(): number { return this.blockBits; }
  /** Number of whole blocks on the device at the current block size. */
  get blockCount(): number { return Math.floor(this.sizeBytes / this.blockSize); }

  /** Set once the superblock has told us the block size; drops the cache. */
  setBlockSize(bytes: number): void {
    const bits = Math.log2(bytes);
    if (!Number.isInteger(bits) || bits < 9 || bits > 12) throw new Ocfs2FormatError(`invalid block size ${bytes}`);
    this.blockBits = bits;
    this.cache.clear();
  }

  /** Raw read of `len` bytes at byte `offset` (uncached, no overlay). Short reads past the end are an error. */
  async readAt(offset: number, len: number): Promise<Buffer> {
    this.ensureOpen();
    if (offset < 0 || offset + len > this.sizeBytes) {
      throw new Ocfs2Error(`read of ${len} bytes at ${offset} is beyond the end of ${this.path} (${this.sizeBytes} bytes)`);
    }
    const buf = Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(buf, done, len - done, offset + done);
      if (bytesRead === 0) throw new Ocfs2Error(`unexpected end of ${this.path} at ${offset + done}`);
      done += bytesRead;
    }
    this.stats.reads++;
    this.stats.bytesRead += len;
    return buf;
  }

  private checkRange(blkno: number, count: number): void {
    if (!Number.isSafeInteger(blkno) || blkno < 0 || count < 0 || blkno + count > this.blockCount) {
      throw new Ocfs2Error(`block ${blkno}${count > 1 ? `+${count}` : ''} is outside the volume (${this.blockCount} blocks)`);
    }
  }

  /**
   * One metadata block, through the cache and the overlay.  The returned
   * buffer is shared with the cache: callers must not modify it.
   */
  async readBlock(blkno: number): Promise<Buffer> {
    const p = this.pinned.get(blkno);
    if (p) return p;
    const o = this.overlay.get(blkno);
    if (o) return o;
    const hit = this.cache.get(blkno);
    if (hit) { this.stats.cacheHits++; return hit; }
    this.checkRange(blkno, 1);
    const buf = await this.readAt(blkno * this.blockSize, this.blockSize);
    this.cache.set(blkno, buf);
    return buf;
  }

  /** The latest content of a block if it is in memory (pinned, overlay or cache), without reading; shared. */
  peek(blkno: number): Buffer | undefined {
    return this.pinned.get(blkno) ?? this.overlay.get(blkno) ?? this.cache.peek(blkno);
  }

  /**
   * `count` contiguous blocks for file data: uncached (except that overlay
   * blocks win), returned as one fresh buffer.
   */
  async readBlocks(blkno: number, count: number): Promise<Buffer> {
    this.checkRange(blkno, count);
    const buf = await this.readAt(blkno * this.blockSize, count * this.blockSize);
    if (this.overlay.size > 0 || this.pinned.size > 0) {
      for (let i = 0; i < count; i++) {
        const o = this.pinned.get(blkno + i) ?? this.overlay.get(blkno + i);
        if (o) o.copy(buf, i * this.blockSize);
      }
    }
    return buf;
  }

  /**
   * File data straight into `out[outOff, outOff+len)` from byte `offset`
   * (uncached; pinned and overlay blocks win, as in readBlocks).
   */
  async readInto(offset: number, out: Buffer, outOff: number, len: number): Promise<void> {
    this.ensureOpen();
    if (offset < 0 || offset + len > this.sizeBytes) {
      throw new Ocfs2Error(`read of ${len} bytes at ${offset} is beyond the end of ${this.path} (${this.sizeBytes} bytes)`);
    }
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(out, outOff + done, len - done, offset + done);
      if (bytesRead === 0) throw new Ocfs2Error(`unexpected end of ${this.path} at ${offset + done}`);
      done += bytesRead;
    }
    this.stats.reads++;
    this.stats.bytesRead += len;
    if (this.overlay.size === 0 && this.pinned.size === 0) return;
    const bs = this.blockSize;
    for (let b = Math.floor(offset / bs); b * bs < offset + len; b++) {
      const o = this.pinned.get(b) ?? this.overlay.get(b);
      if (!o) continue;
      const from = Math.max(offset, b * bs);
      const to = Math.min(offset + len, (b + 1) * bs);
      o.copy(out, outOff + (from - offset), from - b * bs, to - b * bs);
    }
  }

  /** Write whole blocks (read-write devices only); updates cached copies. */
  async writeBlocks(blkno: number, data: Buffer): Promise<void> {
    this.ensureOpen();
    if (this.readOnly) throw new Ocfs2Error(`${this.path} is open read-only`);
    if (data.length % this.blockSize !== 0) throw new Ocfs2Error(`write of ${data.length} bytes is not whole blocks`);
    const count = data.length / this.blockSize;
    this.checkRange(blkno, count);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, blkno * this.blockSize + done);
      done += bytesWritten;
    }
    this.stats.writes++;
    for (let i = 0; i < count; i++) {
      if (this.cache.has(blkno + i)) {
        this.cache.set(blkno + i, Buffer.from(data.subarray(i * this.blockSize, (i + 1) * this.blockSize)));
      }
    }
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.fh.datasync();
  }

  /**
   * Make `buf` the content every read of `blkno` sees until unpin (the
   * journal pins blocks from writeMeta until they are checkpointed).
   */
  pin(blkno: number, buf: Buffer): void {
    this.checkRange(blkno, 1);
    this.pinned.set(blkno, buf);
  }

  /**
   * Drop a pin.  Normally the content has reached the disk and moves to the
   * cache; with `discard` (an aborted transaction) the cached copy is dropped
   * too, so the next read goes to the disk.
   */
  unpin(blkno: number, opts: { discard?: boolean } = {}): void {
    const buf = this.pinned.get(blkno);
    this.pinned.delete(blkno);
    if (opts.discard || !buf) this.cache.delete(blkno);
    else this.cache.set(blkno, buf);
  }

  get pinnedBlocks(): number { return this.pinned.size; }

  /** Install replacement block contents seen by every later read (read-only journal replay). */
  setOverlay(blocks: Map<number, Buffer>): void {
    this.overlay = new Map(blocks);
    for (const b of blocks.keys()) this.cache.delete(b);
  }

  get overlayBlocks(): number { return this.overlay.size; }

  invalidate(blkno?: number): void {
    if (blkno === undefined) this.cache.clear(); else this.cache.delete(blkno);
  }

  get cacheStats(): { entries: number; bytes: number; maxBytes: number } {
    return { entries: this.cache.size, bytes: this.cache.calculatedSize, maxBytes: this.cache.maxSize };
  }

  private ensureOpen(): void {
    if (this.closed) throw new Ocfs2Error(`${this.path} is closed`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.fh.close();
  }
}
