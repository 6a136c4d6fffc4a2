/**
 * o2hb — disk heartbeat (fs/ocfs2/cluster/heartbeat.c) in user space.
 *
 * EXPORTS (stable interface, consumed by o2net/o2quo/the mount):
 *
 *   class HeartbeatRegion extends EventEmitter        (./region) one region = device + heartbeat area
 *     new HeartbeatRegion({ device, startBlock (in blockBytes units = sectors), blocks, blockBytes?, name (volume UUID),
 *                           localNode, nodes: number[] | () => number[], deadThreshold?, intervalMs?, writeTimeoutMs?,
 *                           steadyIterations?, fenceOnWriteTimeout?, fault?, io? })
 *     start(): Promise<void>     opens with O_DIRECT, resolves once steady (rejects EIO if it cannot stabilise)
 *     stop(): Promise<void>      clean stop: node-down for every live slot, then a final block with generation 0
 *     fence(reason): void        unclean stop at once (no final block), held I/O fails with EIO, emits 'fence'
 *     liveNodes(): Set<number>; isFenced(); isSteady(); setFault('none'|'block-writes'|'fail-writes'|'block-reads')
 *     readonly generation: bigint; stats { iterations, writes, writeErrors, readErrors, lastWriteMs }
 *     events (in order): 'node-up' (num, generation: bigint), 'node-down' (num), 'write-timeout' (ms), 'fence' (reason), 'log' (level, msg)
 *       — region-level: the local node is reported too (the kernel checks its own slot like any other).
 *   class Heartbeat extends EventEmitter               node-wide aggregation of all regions
 *     new Heartbeat(nm: NodeManager, opts?: { intervalMs?, deadThreshold?, writeTimeoutMs?, io? })
 *     addRegion(area: { device, startBlock, blocks, blockBytes?, name }): Promise<HeartbeatRegion>   starts it, waits steady
 *     startLocal(device): Promise<HeartbeatRegion>   local mode: locate the volume's heartbeat file and start on it
 *     startGlobal(deviceFor: (uuid) => string): Promise<void>   global mode: every region of cluster.conf
 *     removeRegion(name): Promise<void>   (clean stop of one region; local-mode unmount)
 *     stop(): Promise<void>; fence(reason): void (o2hb_stop_all_regions, unclean); isFenced()
 *     liveNodes(): Set<number>  (live in ANY region); isNodeLive(n); regions(): HeartbeatRegion[]
 *     quorumRegions(): Set<number>; failedRegions(): Set<number>     (global mode)
 *     events: 'node-up' (num, generation) — first region to see the node; 'node-down' (num) — last region to lose it;
 *             'fence' (reason); 'log' (level, msg).  Delivered synchronously, in the order the regions saw them.
 *   locateHeartbeatArea(device): HeartbeatArea; readVolumeUuid(device)   (./locate) raw superblock/system-dir parsing
 *   OCFS2_FUSE_HB_FAULT=block-writes|fail-writes|block-reads[:afterMs] — fault injection for tests (per process)
 *
 * Fencing: user space cannot reset the host (the kernel's o2quo_fence_self does
 * emergency_restart()).  On 'fence' the owner must fail all I/O to the volume
 * with EIO, abort its FUSE session and exit; see docs/o2hb.md.
 */
import { EventEmitter } from 'node:events';
import type { NodeManager } from '../nodemanager';
import { HeartbeatRegion, O2HB_LIVE_THRESHOLD } from './region';
import { locateHeartbeatArea } from './locate';
import type { DirectIo } from '../../native/directio';

export * from './region';
export * from './locate';

export interface RegionArea {
  device: string;
  startBlock: number;
  blocks: number;
  blockBytes?: number;
  /** Region name: the volume UUID. */
  name: string;
}

export class Heartbeat extends EventEmitter {
  readonly mode: 'local' | 'global';
  private readonly regs = new Map<string, HeartbeatRegion>();
  /** o2hb_live_slots: per node, the regions in which it is live. */
  private readonly liveIn = new Map<number, Set<string>>();
  private readonly generations = new Map<number, bigint>();
  private readonly quorum = new Set<number>();
  private readonly failed = new Set<number>();
  private fenced = false;

  constructor(
    private readonly nm: NodeManager,
    private readonly opts: { intervalMs?: number; deadThreshold?: number; writeTimeoutMs?: number; io?: DirectIo } = {},
  ) {
    super();
    this.mode = nm.cluster.heartbeatMode;
  }

  regions(): HeartbeatRegion[] { return [...this.regs.values()]; }
  isFenced(): boolean { return this.fenced; }
  liveNodes(): Set<number> { return new Set(this.liveIn.keys()); }
  isNodeLive(n: number): boolean { return this.liveIn.has(n); }
  quorumRegions(): Set<number> { return new Set(this.quorum); }
  failedRegions(): Set<number> { return new Set(this.failed); }

  private log(level: 'error' | 'notice' | 'debug', msg: string): void {
    if (this.listenerCount('log') > 0) this.emit('log', level, msg);
  }

  async addRegion(area: RegionArea): Promise<HeartbeatRegion> {
    if (this.fenced) throw new Error('node is fenced');
    if (this.regs.has(area.name)) throw new Error(`heartbeat region ${area.name} already active`);
    if (this.regs.size >= 32) throw new Error('too many heartbeat regions (O2NM_MAX_REGIONS = 32)');
    const t = this.nm.timeouts;
    const global = this.mode === 'global';
    let regionNum = 0;
    if (global) { while ([...this.regs.values()].some((r) => r.regionNum === regionNum)) regionNum++; }
    // the first global region waits twice the live threshold
    const steady = (global && this.regs.size === 0 ? O2HB_LIVE_THRESHOLD << 1 : O2HB_LIVE_THRESHOLD) + 1;
    const reg = new HeartbeatRegion({
      ...area,
      localNode: this.nm.localNode.num,
      nodes: () => this.nm.configuredNodeNums(),
      deadThreshold: this.opts.deadThreshold ?? t.heartbeatDeadThreshold,
      intervalMs: this.opts.intervalMs ?? t.heartbeatIntervalMs,
      writeTimeoutMs: this.opts.writeTimeoutMs,
      steadyIterations: steady,
      fenceOnWriteTimeout: !global,
      io: this.opts.io,
    });
    reg.regionNum = regionNum;
    this.regs.set(area.name, reg);
    reg.on('log', (level: 'error' | 'notice' | 'debug', msg: string) => this.log(level, msg));
    reg.on('node-up', (num: number, gen: bigint) => this.slotUp(reg, num, gen));
    reg.on('node-down', (num: number) => this.slotDown(reg, num));
    reg.on('write-timeout', () => this.regionWriteTimeout(reg));
    reg.on('armed', () => this.failed.delete(reg.regionNum));
    reg.on('fence', (reason: string) => this.fence(reason));
    try {
      await reg.start();
    } catch (e) {
      this.regs.delete(area.name);
      throw e;
    }
    if (global) this.log('notice', `o2hb: Heartbeat started on region ${area.name} (${area.device})`);
    return reg;
  }

  /** Local mode: one region per mounted volume, on the volume's heartbeat system file. */
  async startLocal(device: string): Promise<HeartbeatRegion> {
    const a = locateHeartbeatArea(device);
    return this.addRegion({ device, startBlock: a.startBlock, blocks: a.blocks, blockBytes: a.blockBytes, name: a.uuid });
  }

  /** Global mode: every heartbeat region of the cluster, each on the device holding that UUID. */
  async startGlobal(deviceFor: (uuid: string) => string): Promise<void> {
    for (const r of this.nm.cluster.heartbeatRegions) {
      if (this.regs.has(r.region)) continue;
      const dev = deviceFor(r.region);
      const a = locateHeartbeatArea(dev);
      if (a.uuid !== r.region) throw new Error(`device ${dev} holds volume ${a.uuid}, not heartbeat region ${r.region}`);
      await this.addRegion({ device: dev, startBlock: a.startBlock, blocks: a.blocks, blockBytes: a.blockBytes, name: a.uuid });
    }
  }

  async removeRegion(name: string): Promise<void> {
    const reg = this.regs.get(name);
    if (!reg) return;
    await reg.stop();
    this.regs.delete(name);
    this.quorum.delete(reg.regionNum);
    this.failed.delete(reg.regionNum);
  }

  async stop(): Promise<void> {
    for (const name of [...this.regs.keys()]) await this.removeRegion(name);
  }

  /** o2quo_fence_self / o2hb_stop_all_regions: unclean stop of every region, then 'fence'. */
  fence(reason: string): void {
    if (this.fenced) return;
    this.fenced = true;
    for (const r of this.regs.values()) r.fence(reason);
    this.emit('fence', reason);
  }

  private slotUp(reg: HeartbeatRegion, num: number, gen: bigint): void {
    let set = this.liveIn.get(num);
    const first = !set || set.size === 0;
    if (!set) { set = new Set(); this.liveIn.set(num, set); }
    set.add(reg.name);
    this.generations.set(num, gen);
    if (first) this.emit('node-up', num, gen);
    this.updateQuorum();
  }

  private slotDown(reg: HeartbeatRegion, num: number): void {
    const set = this.liveIn.get(num);
    if (!set || !set.delete(reg.name)) return;
    if (set.size === 0) {
      this.liveIn.delete(num);
      this.emit('node-down', num);
    }
    this.updateQuorum();
  }

  /** o2hb_set_quorum_device: a steady region that sees every live node becomes a quorum region. */
  private updateQuorum(): void {
    if (this.mode !== 'global') return;
    const live = [...this.liveIn.keys()].sort().join(',');
    for (const r of this.regs.values()) {
      if (!r.isSteady() || this.quorum.has(r.regionNum)) continue;
      if ([...r.liveNodes()].sort().join(',') === live) {
        this.quorum.add(r.regionNum);
        this.log('notice', `o2hb: Region ${r.name} (${r.device}) is now a quorum device`);
      }
    }
  }

  /** o2hb_write_timeout in global mode: fence when failed regions >= half of the quorum regions. */
  private regionWriteTimeout(reg: HeartbeatRegion): void {
    this.updateQuorum();
    if (this.quorum.has(reg.regionNum)) this.failed.add(reg.regionNum);
    const failed = this.failed.size;
    const quorum = this.quorum.size;
    this.log('notice', `Number of regions ${quorum}, failed regions ${failed}`);
    if (failed * 2 < quorum) return;
    this.fence(`heartbeat write timeout on ${failed} of ${quorum} quorum regions`);
  }

  generationOf(num: number): bigint | undefined { return this.generations.get(num); }
}
