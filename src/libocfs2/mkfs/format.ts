/**
 * formatVolume: the bundled mkfs.  Sizes the device, refuses mounted volumes
 * and volumes with live o2hb heartbeat (unless forced), computes the
 * mkfs.ocfs2 1.8.7 layout (layout.ts) and writes it: zero ranges first (the
 * two 1 MiB ends, group clusters, directories, heartbeat, journals, quota
 * and slot map clusters), then the OCFS1 leading blocks, then every
 * metadata block, then fsync.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  featureNames, hasSignature, OCFS2_BLOCK_SIZES, OCFS2_SUPER_BLOCK_BLKNO, OCFS2_SUPER_BLOCK_SIGNATURE,
} from '../constants';
import { decodeO2hbBlocks, locateHeartbeatArea } from './hbprobe';
import { computeGeometry, MkfsError, parseUuid, type Geometry, type MkfsOptions } from './options';
import { computeLayout, type Layout } from './layout';

export { MkfsError } from './options';
export type { MkfsOptions, Geometry } from './options';

export interface FormatHooks {
  /** Summary lines (mkfs.ocfs2's print_state), unless quiet. */
  log?: (line: string) => void;
  /** Long work: called with the phase name and bytes done/total. */
  progress?: (phase: string, done: number, total: number) => void;
  /** Heartbeat liveness interval (default 2000 ms, o2hb's region timeout). */
  heartbeatIntervalMs?: number;
  /**
   * The device already holds a filesystem (`type`: "ocfs2", or what blkid
   * names): may it be overwritten?  Without this hook, and without -F, it
   * may not (mkfs.ocfs2: "Overwriting existing ocfs2 partition.").
   */
  confirmOverwrite?: (type: string) => Promise<boolean>;
  /** Fixed values for reproducible tests. */
  now?: number;
  generation?: number;
  dxSeed?: [number, number, number];
}

export interface FormatResult {
  geometry: Geometry;
  layout: Layout | null;
  uuid: string;
  label: string;
  dryRun: boolean;
}

interface DeviceInfo { real: string; bytes: number; sectorSize: number; isBlock: boolean }

function deviceInfo(devPath: string): DeviceInfo {
  let st: fs.Stats;
  try {
    st = fs.statSync(devPath);
  } catch (e) {
    throw new MkfsError(`cannot open ${devPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (st.isDirectory()) throw new MkfsError(`${devPath} is a directory, not a device or image file`);
  const real = fs.realpathSync(devPath);
  if (st.isFile()) return { real, bytes: st.size, sectorSize: 512, isBlock: false };
  if (!st.isBlockDevice()) throw new MkfsError(`${devPath} is neither a block device nor a regular file`);
  const name = path.basename(real);
  const sys = `/sys/class/block/${name}`;
  let bytes = 0;
  try {
    bytes = Number(fs.readFileSync(`${sys}/size`, 'utf8').trim()) * 512;
  } catch {
    throw new MkfsError(`cannot determine the size of ${devPath}`);
  }
  let sectorSize = 512;
  for (const q of [`${sys}/queue/logical_block_size`, `${sys}/../queue/logical_block_size`]) {
    try { sectorSize = Number(fs.readFileSync(q, 'utf8').trim()) || 512; break; } catch { /* try the parent */ }
  }
  return { real, bytes, sectorSize, isBlock: true };
}

/** Loop devices whose backing file is `real`. */
function loopDevicesBacking(real: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try { entries = fs.readdirSync('/sys/block'); } catch { return out; }
  for (const e of entries) {
    if (!e.startsWith('loop')) continue;
    try {
      const backing = fs.readFileSync(`/sys/block/${e}/loop/backing_file`, 'utf8').trim();
      if (backing === real) out.push(`/dev/${e}`);
    } catch { /* not bound */ }
  }
  return out;
}

/** /proc/mounts sources that are this device, its image, or a loop device over the image. */
export function mountedAs(devPath: string): string | null {
  const real = fs.realpathSync(devPath);
  const names = new Set([devPath, real, ...loopDevicesBacking(real)]);
  let mounts = '';
  try { mounts = fs.readFileSync('/proc/mounts', 'utf8'); } catch { return null; }
  for (const line of mounts.split('\n')) {
    const [src, where] = line.split(' ');
    if (!src || !where) continue;
    const source = src.replace(/\\040/g, ' ');
    let srcReal = source;
    try { if (source.startsWith('/')) srcReal = fs.realpathSync(source); } catch { /* gone */ }
    if (names.has(source) || names.has(srcReal)) return `${source} on ${where.replace(/\\040/g, ' ')}`;
  }
  return null;
}

/**
 * The filesystem already on a device: "ocfs2" when block 2 carries the
 * superblock signature at any block size (ocfs2_sb_probe's places), else the
 * TYPE that `blkid -p` finds, else undefined.
 */
export function existingFilesystem(devPath: string): string | undefined {
  const fd = fs.openSync(devPath, 'r');
  try {
    for (const bs of OCFS2_BLOCK_SIZES) {
      const b = Buffer.alloc(bs);
      if (fs.readSync(fd, b, 0, bs, OCFS2_SUPER_BLOCK_BLKNO * bs) === bs && hasSignature(b, 0, OCFS2_SUPER_BLOCK_SIGNATURE)) return 'ocfs2';
    }
  } finally {
    fs.closeSync(fd);
  }
  const r = spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', devPath], { encoding: 'utf8', timeout: 30_000 });
  const type = r.status === 0 ? r.stdout.trim() : '';
  return type || undefined;
}

/**
 * Live heartbeat: read the o2hb area twice an interval apart; a node whose
 * valid block changed in between is heartbeating.  Returns the node numbers.
 */
export async function liveHeartbeatNodes(devPath: string, intervalMs: number, sectorSize = 512): Promise<number[]> {
  let area;
  try { area = locateHeartbeatArea(devPath, sectorSize); } catch { return []; }
  const first = decodeO2hbBlocks(devPath, area);
  if (!first.some((b) => b !== null)) return [];
  await new Promise((r) => setTimeout(r, intervalMs));
  const second = decodeO2hbBlocks(devPath, area);
  const live: number[] = [];
  second.forEach((b, i) => {
    const a = first[i];
    if (b && (!a || a.seq !== b.seq || a.generation !== b.generation)) live.push(i);
  });
  return live;
}

function uuidV4(): Buffer {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

export function summaryLines(g: Geometry, l: Layout | null, label: string): string[] {
  const feat = l ? featureNames(l.superblock.compat, l.superblock.incompat, l.superblock.roCompat)
    : featureNames(g.features.compat, g.features.incompat, g.features.roCompat);
  const ext = l?.summary;
  const lines: string[] = [];
  if (g.fsType !== 'default') lines.push(`Filesystem Type of ${g.fsType}`);
  lines.push(
    `Label: ${label}`,
    `Features: ${feat.join(' ')}`,
    `Block size: ${g.blockSize} (${g.blockBits} bits)`,
    `Cluster size: ${g.clusterSize} (${g.clusterBits} bits)`,
    `Volume size: ${g.bytes} (${g.clusters} clusters) (${g.blocks} blocks)`,
    `Cluster groups: ${g.groups} (tail covers ${g.tailGroupBits} clusters, rest cover ${g.globalCpg} clusters)`,
    `Extent allocator size: ${ext ? ext.extentAllocBytes : g.extentAllocClusters * g.clusterSize} (${ext ? ext.extentAllocGroups : '?'} groups)`,
    `Journal size: ${g.journalBytes}`,
    `Node slots: ${g.slots}`,
  );
  return lines;
}

const ZERO_CHUNK = 4 * 1024 * 1024;

/** Write zeros over [offset, offset+length); on image files skip chunks that already read as zero (holes). */
function writeZeros(fd: number, offset: number, length: number, skipIfZero: boolean, zeros: Buffer, scratch: Buffer,
  tick: (n: number) => void): void {
  let off = offset;
  const end = offset + length;
  while (off < end) {
    const n = Math.min(ZERO_CHUNK, end - off);
    let need = true;
    if (skipIfZero) {
      const got = fs.readSync(fd, scratch, 0, n, off);
      need = got < n || !scratch.subarray(0, n).equals(zeros.subarray(0, n));
    }
    if (need) {
      let w = 0;
      while (w < n) w += fs.writeSync(fd, zeros, w, n - w, off + w);
    }
    off += n;
    tick(n);
  }
}

export async function formatVolume(devPath: string, opts: MkfsOptions, hooks: FormatHooks = {}): Promise<FormatResult> {
  const dev = deviceInfo(devPath);
  const log = opts.quiet ? (): void => {} : (hooks.log ?? ((): void => {}));
  const label = opts.label ?? '';
  const geometry = computeGeometry(opts, dev.bytes, dev.sectorSize);
  const uuid = opts.uuid !== undefined ? parseUuid(opts.uuid) : uuidV4();

  if (!opts.force && !opts.dryRun) {
    const m = mountedAs(devPath);
    if (m) throw new MkfsError(`${devPath} is mounted (${m}); refusing to format it (use -F to force)`);
    const live = await liveHeartbeatNodes(devPath, hooks.heartbeatIntervalMs ?? 2000, dev.sectorSize);
    if (live.length) {
      throw new MkfsError(`${devPath} has live heartbeat from node(s) ${live.join(', ')}: it is in use by a cluster; refusing to format it (use -F to force)`);
    }
    const existing = existingFilesystem(devPath);
    if (existing && !(await hooks.confirmOverwrite?.(existing))) {
      throw new MkfsError(`${devPath} holds an existing ${existing} filesystem: not formatted (use -F to overwrite it)`);
    }
  }

  const rnd = randomBytes(16);
  const layout = computeLayout({
    geometry, label, uuid,
    generation: hooks.generation ?? rnd.readUInt32LE(0),
    now: hooks.now ?? Math.floor(Date.now() / 1000),
    dxSeed: hooks.dxSeed ?? [rnd.readUInt32LE(4), rnd.readUInt32LE(8), rnd.readUInt32LE(12)],
    clusterStack: opts.clusterStack, clusterName: opts.clusterName, globalHeartbeat: opts.globalHeartbeat,
  });
  for (const line of summaryLines(geometry, layout, label)) log(line);
  const result: FormatResult = { geometry, layout, uuid: uuid.toString('hex').toUpperCase(), label, dryRun: !!opts.dryRun };
  if (opts.dryRun) return result;

  let fd: number;
  try {
    fd = fs.openSync(devPath, 'r+');
  } catch (e) {
    throw new MkfsError(`cannot open ${devPath} for writing: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    const bs = geometry.blockSize;
    const zeros = Buffer.alloc(ZERO_CHUNK);
    const scratch = Buffer.alloc(ZERO_CHUNK);
    const total = layout.zero.reduce((s, z) => s + z.length, 0);
    let done = 0;
    let lastReport = 0;
    const tick = (n: number): void => {
      done += n;
      if (hooks.progress && (done - lastReport >= 64 * 1024 * 1024 || done === total)) {
        lastReport = done;
        hooks.progress('Zeroing', done, total);
      }
    };
    for (const z of layout.zero) writeZeros(fd, z.offset, z.length, !dev.isBlock, zeros, scratch, tick);
    fs.writeSync(fd, layout.leading, 0, layout.leading.length, 0);
    // Metadata: coalesce runs of consecutive blocks into single writes.
    const blknos = [...layout.blocks.keys()].sort((a, b) => a - b);
    for (let i = 0; i < blknos.length;) {
      let j = i + 1;
      while (j < blknos.length && blknos[j] === blknos[j - 1]! + 1 && j - i < 256) j++;
      const buf = Buffer.concat(blknos.slice(i, j).map((b) => layout.blocks.get(b)!));
      let w = 0;
      while (w < buf.length) w += fs.writeSync(fd, buf, w, buf.length - w, blknos[i]! * bs + w);
      i = j;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return result;
}
