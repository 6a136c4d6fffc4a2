/**
 * One o2hb heartbeat region: the per-region thread of fs/ocfs2/cluster/heartbeat.c
 * (o2hb_thread / o2hb_do_disk_heartbeat / o2hb_check_slot), in user space.
 *
 * Every period (O2HB_REGION_TIMEOUT_MS = 2000 ms, shortened by the time the
 * iteration took) the region
 *   1. reads the slots of the configured nodes (lowest..highest) with O_DIRECT,
 *   2. checks that its own slot still holds what it wrote last time
 *      (o2hb_check_own_slot; if not, "Another node is heartbeating..." and the
 *      write timeout is not re-armed),
 *   3. writes its own block: seq = wall-clock seconds, node, random non-zero
 *      generation chosen at start, dead_ms, crc32_le over the sector,
 *   4. runs the liveness rules on every configured slot (including its own,
 *      as the kernel does: the local node goes live in its own region),
 *   5. waits for the write; on success (and a good own slot) re-arms the
 *      write timeout of O2HB_MAX_WRITE_TIMEOUT_MS = period * (dead_threshold - 1).
 * It is "steady" (start() resolves) after live_threshold + 1 = 3 clean
 * iterations with no membership change (5 for the first region in global
 * mode); start() fails with EIO after three times that many unsteady ones.
 *
 * SELF-FENCE.  If the write timeout fires, the kernel's o2quo_disk_timeout()
 * resets the machine.  User space cannot reset the host.  What this region
 * does instead (fence()): it stops at once — no further heartbeat write is
 * issued, the final "clean stop" block is NOT written, a write held back by
 * the fault hook is dropped, pending heartbeat I/O promises are failed with
 * EIO — and emits 'fence'.  The owner of the volume (the FUSE mount) must
 * then fail all of its own pending and future I/O with EIO, abort the FUSE
 * session and exit the process (see docs/o2hb.md).  Caveat: a write already
 * handed to the kernel (O_DIRECT, stuck in a suspended device queue) cannot
 * be recalled from user space; it will land if the device resumes.  Peers
 * treat such a late block as one changed sample, which alone is not enough
 * to bring a dead node back (O2HB_LIVE_THRESHOLD = 2).
 *
 * Events, delivered synchronously and in order from the heartbeat loop:
 *   'node-up'   (num: number, generation: bigint)   slot went live in THIS region
 *   'node-down' (num: number)                       slot went dead in THIS region
 *   'fence'     (reason: string)
 *   'write-timeout' (elapsedMs: number)   before fencing (the Heartbeat in global mode decides)
 *   'armed'     ()                                   write timeout re-armed after a good write
 *   'log'       (level: 'error' | 'notice' | 'debug', message: string)
 */
import { EventEmitter } from 'node:events';
import * as crypto from 'node:crypto';
import { loadDirectIo, type DirectIo } from '../../native/directio';
import {
  O2hbDiskHeartbeatBlock, prepareO2hbBlock, verifyO2hbBlock,
} from '../../libocfs2/structs/heartbeat';
import { PosixError } from '../../libocfs2/errors';

export const O2HB_LIVE_THRESHOLD = 2;
export const O2HB_MAX_REGION_NAME_LEN = 32;

export type HeartbeatFault = 'none' | 'block-writes' | 'fail-writes' | 'block-reads';

export interface HeartbeatRegionOptions {
  /** Block device (or image file) holding the heartbeat area. */
  device: string;
  /** First slot, in units of blockBytes (sectors): hr_start_block. */
  startBlock: number;
  /** Number of slots, 1..255: hr_blocks. */
  blocks: number;
  /** Slot size; must equal the device's logical sector size (default: queried). */
  blockBytes?: number;
  /** Region name: the volume UUID (<= 32 chars). */
  name: string;
  /** This node's number (its slot). */
  localNode: number;
  /** Configured node numbers (o2nm_configured_node_map); a function is re-read every iteration. */
  nodes: readonly number[] | (() => readonly number[]);
  /** O2CB_HEARTBEAT_THRESHOLD (default 31). */
  deadThreshold?: number;
  /** Period, default 2000 ms (O2HB_REGION_TIMEOUT_MS).  Tests lower it. */
  intervalMs?: number;
  /** Write timeout; default intervalMs * (deadThreshold - 1) (O2HB_MAX_WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number;
  /** Iterations needed to be steady; default O2HB_LIVE_THRESHOLD + 1. */
  steadyIterations?: number;
  /** When false the owner decides on 'write-timeout' (global mode); default true. */
  fenceOnWriteTimeout?: boolean;
  /** Test hook: initial fault (also OCFS2_FUSE_HB_FAULT=mode[:afterMs] in the environment). */
  fault?: HeartbeatFault;
  /** I/O backend (tests may substitute); default the O_DIRECT addon. */
  io?: DirectIo;
}

interface SlotState {
  lastTime: bigint;
  lastGeneration: bigint;
  equal: number;
  changed: number;
  live: boolean;
}

function eio(what: string): PosixError {
  return new PosixError('EIO', what);
}

export function parseFaultEnv(v: string | undefined): { fault: HeartbeatFault; afterMs: number } | undefined {
  if (!v) return undefined;
  const [mode, after] = v.split(':');
  if (mode !== 'none' && mode !== 'block-writes' && mode !== 'fail-writes' && mode !== 'block-reads') return undefined;
  return { fault: mode, afterMs: after ? Number(after) || 0 : 0 };
}

export class HeartbeatRegion extends EventEmitter {
  readonly device: string;
  readonly name: string;
  readonly startBlock: number;
  readonly blocks: number;
  readonly localNode: number;
  readonly deadThreshold: number;
  readonly intervalMs: number;
  readonly writeTimeoutMs: number;
  /** Random non-zero u64 chosen at start (0 before start). */
  generation = 0n;
  blockBytes: number;
  /** Region number in global mode (set by Heartbeat). */
  regionNum = 0;

  private readonly io: DirectIo;
  private readonly nodesOpt: HeartbeatRegionOptions['nodes'];
  private readonly fenceOnWriteTimeout: boolean;
  private fd = -1;
  private slots: SlotState[] = [];
  private ownWritten: { seq: bigint; generation: bigint; node: number } | undefined;
  private steadyLeft: number;
  private unsteadyLeft: number;
  private stopping = false;
  private fenced = false;
  private fenceReason: string | undefined;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private writeTimer: NodeJS.Timeout | undefined;
  private lastTimeoutStart = 0;
  private fault: HeartbeatFault = 'none';
  private faultTimer: NodeJS.Timeout | undefined;
  private readonly heldIo = new Set<(e: Error) => void>();
  private wakeSleep: (() => void) | undefined;
  private steadyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private steady = false;
  /** Statistics for status displays and tests. */
  readonly stats = { iterations: 0, writes: 0, writeErrors: 0, readErrors: 0, lastWriteMs: 0 };

  constructor(opts: HeartbeatRegionOptions) {
    super();
    if (opts.name.length === 0 || opts.name.length > O2HB_MAX_REGION_NAME_LEN) throw new RangeError(`region name '${opts.name}' must be 1..${O2HB_MAX_REGION_NAME_LEN} characters`);
    if (!Number.isInteger(opts.blocks) || opts.blocks < 1 || opts.blocks > 255) throw new RangeError(`blocks ${opts.blocks} must be 1..255`);
    if (!Number.isInteger(opts.startBlock) || opts.startBlock <= 0) throw new RangeError(`startBlock ${opts.startBlock} must be a positive integer`);
    if (!Number.isInteger(opts.localNode) || opts.localNode < 0 || opts.localNode >= opts.blocks) throw new RangeError(`local node ${opts.localNode} has no slot among ${opts.blocks}`);
    this.device = opts.device;
    this.name = opts.name;
    this.startBlock = opts.startBlock;
    this.blocks = opts.blocks;
    this.blockBytes = opts.blockBytes ?? 0;
    this.localNode = opts.localNode;
    this.nodesOpt = opts.nodes;
    this.deadThreshold = opts.deadThreshold ?? 31;
    if (this.deadThreshold <= 2) throw new RangeError(`dead threshold ${this.deadThreshold} must be > 2`);
    this.intervalMs = opts.intervalMs ?? 2000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? this.intervalMs * (this.deadThreshold - 1);
    this.steadyLeft = opts.steadyIterations ?? O2HB_LIVE_THRESHOLD + 1;
    this.unsteadyLeft = this.steadyLeft * 3;
    this.fenceOnWriteTimeout = opts.fenceOnWriteTimeout ?? true;
    this.io = opts.io ?? loadDirectIo();
    if (opts.fault) this.fault = opts.fault;
    const env = parseFaultEnv(process.env.OCFS2_FUSE_HB_FAULT);
    if (env) {
      if (env.afterMs > 0) {
        this.faultTimer = setTimeout(() => this.setFault(env.fault), env.afterMs);
        this.faultTimer.unref();
      } else this.fault = env.fault;
    }
  }

  // ---- public API ---------------------------------------------------------

  /** Live nodes as seen by this region (hr_live_node_bitmap). */
  liveNodes(): Set<number> {
    const s = new Set<number>();
    this.slots.forEach((sl, i) => { if (sl.live) s.add(i); });
    return s;
  }

  isFenced(): boolean { return this.fenced; }
  isSteady(): boolean { return this.steady; }
  isRunning(): boolean { return this.running; }
  get fenceCause(): string | undefined { return this.fenceReason; }
  /** ms since the write timeout was last armed (debugfs elapsed_time_in_ms), 0 if never. */
  elapsedSinceArmMs(): number { return this.lastTimeoutStart ? Date.now() - this.lastTimeoutStart : 0; }

  /**
   * Fault-injection hook for tests: 'block-writes' holds every heartbeat write
   * back (it is never submitted; as if the device hung), 'fail-writes' fails
   * them with EIO, 'block-reads' holds reads, 'none' releases held I/O.
   */
  setFault(f: HeartbeatFault): void {
    this.fault = f;
    this.log('notice', `fault injection: ${f}`);
    if (f === 'none') {
      const held = [...this.heldIo];
      this.heldIo.clear();
      for (const release of held) release(new Error('released'));
    }
  }

  /**
   * Open the device, read the baseline of every slot, start the loop, and
   * resolve once steady (like the kernel's configfs `dev` write).
   */
  async start(): Promise<void> {
    if (this.running || this.fd >= 0) throw new Error(`region ${this.name} already started`);
    this.fd = this.io.open(this.device, true);
    try {
      const sect = this.io.sectorSize(this.fd);
      if (this.blockBytes === 0) this.blockBytes = sect;
      if (this.blockBytes !== sect) throw new PosixError('EINVAL', `block_bytes ${this.blockBytes} incorrect for device ${this.device}, expected ${sect}`);
      do { this.generation = crypto.randomBytes(8).readBigUInt64LE(0); } while (this.generation === 0n);
      // o2hb_populate_slot_data: only remember seq and generation of every slot.
      const all = Buffer.alloc(this.blocks * this.blockBytes);
      await this.io.pread(this.fd, all, this.startBlock * this.blockBytes);
      this.slots = [];
      for (let i = 0; i < this.blocks; i++) {
        const b = all.subarray(i * this.blockBytes, (i + 1) * this.blockBytes);
        const d = O2hbDiskHeartbeatBlock.decode(b);
        this.slots.push({ lastTime: d.hb_seq, lastGeneration: d.hb_generation, equal: 0, changed: 0, live: false });
      }
      const own = this.slots[this.localNode]!;
      const ownBlk = O2hbDiskHeartbeatBlock.decode(all, this.localNode * this.blockBytes);
      this.ownWritten = own.lastTime ? { seq: own.lastTime, generation: own.lastGeneration, node: ownBlk.hb_node } : undefined;
    } catch (e) {
      this.closeFd();
      throw e;
    }
    this.running = true;
    const steady = new Promise<void>((resolve, reject) => this.steadyWaiters.push({ resolve, reject }));
    this.loopDone = this.loop();
    await steady;
  }

  /** Clean stop: finish the iteration, report every live slot down, write a block with generation 0. */
  async stop(): Promise<void> {
    if (!this.running) { this.closeFd(); return; }
    this.stopping = true;
    this.wakeSleep?.();
    await this.loopDone;
  }

  /**
   * Self-fence now (o2quo_fence_self -> o2hb_stop_all_regions: unclean stop).
   * Idempotent.
   */
  fence(reason: string): void {
    if (this.fenced) return;
    this.fenced = true;
    this.fenceReason = reason;
    this.stopping = true;
    this.disarmTimeout();
    const held = [...this.heldIo];
    this.heldIo.clear();
    for (const fail of held) fail(eio(`heartbeat I/O on ${this.device} failed: node fenced`));
    this.log('error', `fencing this node (${reason}): heartbeat stopped, no further writes to ${this.device}`);
    this.wakeSleep?.();
    for (const w of this.steadyWaiters.splice(0)) w.reject(eio(`heartbeat region ${this.name} fenced: ${reason}`));
    this.emit('fence', reason);
  }

  // ---- internals ----------------------------------------------------------

  private log(level: 'error' | 'notice' | 'debug', msg: string): void {
    if (this.listenerCount('log') > 0) this.emit('log', level, `o2hb: region ${this.name}: ${msg}`);
  }

  private configuredNodes(): number[] {
    const n = typeof this.nodesOpt === 'function' ? this.nodesOpt() : this.nodesOpt;
    const set = new Set<number>();
    for (const x of n) if (x >= 0 && x < this.blocks) set.add(x);
    // a node no longer configured but still live must be read to be removed.
    this.slots.forEach((s, i) => { if (s.live) set.add(i); });
    return [...set].sort((a, b) => a - b);
  }

  private isConfigured(n: number): boolean {
    const list = typeof this.nodesOpt === 'function' ? this.nodesOpt() : this.nodesOpt;
    return list.includes(n);
  }

  /** A held I/O: resolves/rejects only when the fault is cleared or the node fences. */
  private hold(): Promise<never> {
    return new Promise<never>((_res, rej) => {
      const release = (e: Error): void => { this.heldIo.delete(release); rej(e); };
      this.heldIo.add(release);
    });
  }

  private async readSlots(lo: number, hi: number): Promise<Buffer> {
    const buf = Buffer.alloc((hi - lo + 1) * this.blockBytes);
    if (this.fault === 'block-reads') await this.hold().catch((e: Error) => { if (this.fenced) throw e; });
    if (this.fenced) throw eio('fenced');
    const fd = this.fd;
    await this.tracked(() => this.io.pread(fd, buf, (this.startBlock + lo) * this.blockBytes));
    return buf;
  }

  private async writeOwn(block: Buffer): Promise<void> {
    if (this.fenced) throw eio('fenced');
    if (this.fault === 'fail-writes') throw eio(`injected write failure on ${this.device}`);
    if (this.fault === 'block-writes') {
      // Never submitted while held; a release after the fault is cleared
      // submits it, a fence fails it with EIO and it is never written.
      await this.hold().catch((e: Error) => { if (this.fenced) throw e; });
      if (this.fenced) throw eio('fenced');
    }
    const t0 = Date.now();
    const fd = this.fd;
    await this.tracked(() => this.io.pwrite(fd, block, (this.startBlock + this.localNode) * this.blockBytes));
    this.stats.lastWriteMs = Date.now() - t0;
    if (this.fenced) throw eio('fenced');
  }

  private armTimeout(): void {
    // o2hb_arm_timeout: only once steady.
    if (!this.steady) return;
    this.disarmTimeout();
    this.writeTimer = setTimeout(() => this.onWriteTimeout(), this.writeTimeoutMs);
    this.lastTimeoutStart = Date.now();
    this.emit('armed');
  }

  private disarmTimeout(): void {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
  }

  private onWriteTimeout(): void {
    this.writeTimer = undefined;
    if (this.fenced || !this.running) return;
    const elapsed = this.elapsedSinceArmMs();
    this.log('error', `Heartbeat write timeout to device ${this.device} after ${elapsed} milliseconds`);
    this.emit('write-timeout', elapsed);
    if (this.fenceOnWriteTimeout) this.fence(`heartbeat write timeout to ${this.device} after ${elapsed} ms`);
  }

  private seqNow(): bigint {
    // The kernel writes wall-clock seconds.  Peers only test it for change, so
    // with a sub-second test period we write milliseconds instead: with
    // seconds, consecutive samples would look equal and count as missed beats.
    const ms = Date.now();
    const v = this.intervalMs >= 1000 ? Math.floor(ms / 1000) : ms;
    return BigInt(v === 0 ? 1 : v);
  }

  /** o2hb_check_own_slot */
  private checkOwnSlot(block: Buffer): boolean {
    const w = this.ownWritten;
    if (!w || !w.seq) return false;
    const d = O2hbDiskHeartbeatBlock.decode(block);
    if (d.hb_seq === w.seq && d.hb_generation === w.generation && d.hb_node === w.node) return true;
    const what = d.hb_node !== w.node ? 'Another node is heartbeating on device'
      : d.hb_generation !== w.generation ? 'Heartbeat generation mismatch on device' : 'Heartbeat sequence mismatch on device';
    this.log('error', `${what} (${this.device}): expected(${w.node}:0x${w.generation.toString(16)}, 0x${w.seq.toString(16)}), ondisk(${d.hb_node}:0x${d.hb_generation.toString(16)}, 0x${d.hb_seq.toString(16)})`);
    return false;
  }

  /** o2hb_check_slot; returns true on a membership change. */
  private checkSlot(num: number, block: Buffer): boolean {
    const slot = this.slots[num]!;
    if (!this.isConfigured(num) && !slot.live) return false;
    let genChanged = false;
    const d = O2hbDiskHeartbeatBlock.decode(block);
    if (!verifyO2hbBlock(block, this.blockBytes)) {
      // A freshly formatted area has no CRC: ignore unless the node is live.
      if (!slot.live) return false;
      this.log('error', `Node ${num} has written a bad crc to ${this.device}`);
      slot.equal++;
    } else {
      if (slot.lastTime !== d.hb_seq) slot.changed++;
      else slot.equal++;
      slot.lastTime = d.hb_seq;
      if (slot.lastGeneration !== d.hb_generation) {
        genChanged = true;
        slot.equal = 0;
      }
      slot.lastGeneration = d.hb_generation;
    }
    if (!slot.live && slot.changed >= O2HB_LIVE_THRESHOLD) {
      slot.live = true;
      slot.equal = 0;
      const deadMs = this.deadThreshold * this.intervalMs;
      if (d.hb_dead_ms && d.hb_dead_ms !== deadMs) {
        this.log('error', `Node ${num} on device ${this.device} has a dead count of ${d.hb_dead_ms} ms, but our count is ${deadMs} ms. Please double check your configuration values for 'O2CB_HEARTBEAT_THRESHOLD'`);
      }
      this.log('debug', `Node ${num} (id 0x${slot.lastGeneration.toString(16)}) joined my region`);
      this.emit('node-up', num, slot.lastGeneration);
      return true;
    }
    if (!slot.live) return false;
    if (slot.equal >= this.deadThreshold || genChanged) {
      slot.live = false;
      // the node is still writing after a generation change: keep its changes.
      if (!genChanged) slot.changed = 0;
      this.log('debug', `Node ${num} left my region${genChanged ? ' (generation changed)' : ''}`);
      this.emit('node-down', num);
      return true;
    }
    if (slot.changed) {
      slot.changed = 0;
      slot.equal = 0;
    }
    return false;
  }

  /** One o2hb_do_disk_heartbeat; returns 0 or a negative errno-ish code. */
  private async iterate(): Promise<number> {
    let ret = 0;
    let ownOk = false;
    let membership = false;
    this.stats.iterations++;
    body: {
      const nodes = this.configuredNodes();
      if (nodes.length === 0) { this.log('notice', 'No configured nodes found!'); ret = -22; break body; }
      const lo = nodes[0]!;
      const hi = nodes[nodes.length - 1]!;
      let data: Buffer;
      try {
        data = await this.readSlots(lo, hi);
      } catch (e) {
        if (this.fenced) return -5;
        this.stats.readErrors++;
        this.log('error', `read error on ${this.device}: ${(e as Error).message}`);
        ret = -5;
        break body;
      }
      const slotBuf = (n: number): Buffer => data.subarray((n - lo) * this.blockBytes, (n - lo + 1) * this.blockBytes);
      if (this.localNode >= lo && this.localNode <= hi) ownOk = this.checkOwnSlot(slotBuf(this.localNode));
      if (this.fenced || this.stopping) return 0;
      const block = prepareO2hbBlock(this.blockBytes, { seq: this.seqNow(), node: this.localNode, generation: this.generation, deadMs: this.deadThreshold * this.intervalMs });
      this.ownWritten = { seq: O2hbDiskHeartbeatBlock.decode(block).hb_seq, generation: this.generation, node: this.localNode };
      const write = this.writeOwn(block).then(() => undefined, (e: Error) => e);
      this.stats.writes++;
      for (const n of nodes) {
        // our own slot is checked against the block we are writing, as the
        // kernel does (o2hb_prepare_block fills the buffer the read landed in).
        membership = this.checkSlot(n, n === this.localNode ? block : slotBuf(n)) || membership;
        if (this.fenced) return -5;
      }
      const werr = await write;
      if (this.fenced) return -5;
      if (werr) {
        // no re-arm: we can't be sure the block made it to disk
        this.stats.writeErrors++;
        this.log('error', `Write error on device "${this.device}": ${werr.message}`);
        ret = -5;
        break body;
      }
      if (ownOk) this.armTimeout();
    }
    if (!this.steady) {
      if (ret === 0 && ownOk && !membership) {
        if (--this.steadyLeft === 0) {
          this.steady = true;
          this.armTimeout();
          for (const w of this.steadyWaiters.splice(0)) w.resolve();
        }
      }
      if (!this.steady && --this.unsteadyLeft <= 0) {
        this.log('notice', `Unable to stabilize heartbeat on region ${this.name} (${this.device})`);
        for (const w of this.steadyWaiters.splice(0)) w.reject(eio(`Unable to stabilize heartbeat on region ${this.name} (${this.device})`));
        this.stopping = true;
        return -5;
      }
    }
    return ret;
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopping && !this.fenced) {
        const t0 = Date.now();
        await this.iterate();
        const elapsed = Date.now() - t0;
        if (!this.stopping && !this.fenced && elapsed < this.intervalMs) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(() => { this.wakeSleep = undefined; resolve(); }, this.intervalMs - elapsed);
            this.wakeSleep = () => { clearTimeout(t); this.wakeSleep = undefined; resolve(); };
          });
        }
      }
      this.disarmTimeout();
      if (!this.fenced) {
        const aborted = !this.steady;
        // o2hb_shutdown_slot for every slot
        this.slots.forEach((s, i) => {
          if (s.live) { s.live = false; this.emit('node-down', i); }
        });
        if (!aborted) {
          // Explicit clean-stop notification: a block with generation 0.
          const block = prepareO2hbBlock(this.blockBytes, { seq: this.seqNow(), node: this.localNode, generation: 0n, deadMs: this.deadThreshold * this.intervalMs });
          try { await this.writeOwn(block); } catch (e) { this.log('error', `final heartbeat write failed: ${(e as Error).message}`); }
        }
      }
    } catch (e) {
      this.log('error', `heartbeat loop failed: ${(e as Error).message}`);
      for (const w of this.steadyWaiters.splice(0)) w.reject(e as Error);
    } finally {
      this.running = false;
      if (this.faultTimer) clearTimeout(this.faultTimer);
      for (const w of this.steadyWaiters.splice(0)) w.reject(eio(`heartbeat region ${this.name} stopped before it was steady`));
      // A fenced region keeps no descriptor either: nothing can be written through it.
      this.closeFd();
    }
  }

  /** Native transfers not yet completed: the descriptor must outlive them. */
  private inflight = 0;
  private closePending = false;

  private async tracked<T>(p: () => Promise<T>): Promise<T> {
    this.inflight++;
    try {
      return await p();
    } finally {
      if (--this.inflight === 0 && this.closePending) this.closeFd();
    }
  }

  private closeFd(): void {
    if (this.inflight > 0) { this.closePending = true; return; }
    this.closePending = false;
    if (this.fd >= 0) {
      try { this.io.close(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
  }
}
