/**
 * mkfs options and the geometry decisions of mkfs.ocfs2 1.8.7
 * (mkfs.ocfs2/mkfs.c get_state/fill_defaults, libocfs2/feature_string.c):
 * feature sets per level and -T type, --fs-features parsing with the
 * "unwritten needs sparse" dependency, block/cluster size auto-selection,
 * default slot counts, journal sizes and the extent allocator reserve.
 */
import {
  OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_FEATURE_COMPAT_JBD2_SB, OCFS2_FEATURE_INCOMPAT_APPEND_DIO,
  OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP,
  OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_INLINE_DATA, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT,
  OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC,
  OCFS2_FEATURE_INCOMPAT_XATTR, OCFS2_FEATURE_RO_COMPAT_GRPQUOTA, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN,
  OCFS2_FEATURE_RO_COMPAT_USRQUOTA, OCFS2_MAX_BLOCKSIZE, OCFS2_MAX_CLUSTERSIZE, OCFS2_MAX_SLOTS,
  OCFS2_MAX_VOL_LABEL_LEN, OCFS2_MIN_BLOCKSIZE, OCFS2_MIN_CLUSTERSIZE, OCFS2_MIN_JOURNAL_SIZE,
  OCFS2_CLUSTER_NAME_LEN, OCFS2_CLASSIC_CLUSTER_STACK,
} from '../constants';
import { Ocfs2Error } from '../errors';
import { constants as osc } from 'node:os';

/** Bad arguments or a volume mkfs cannot format: one line, exit 1. */
export class MkfsError extends Ocfs2Error {
  constructor(message: string) { super(message, osc.errno.EINVAL); }
}

export type FsType = 'default' | 'datafiles' | 'mail' | 'vmstore';
export type FeatureLevel = 'default' | 'max-compat' | 'max-features';

export interface FeatureSet { compat: number; incompat: number; roCompat: number }

export interface MkfsOptions {
  blockSize?: number;
  clusterSize?: number;
  slots?: number;
  label?: string;
  /** -J size= in bytes. */
  journalSize?: number;
  /** -J block64 */
  journal64?: boolean;
  mount?: 'local' | 'cluster';
  fsType?: FsType;
  clusterStack?: string;
  clusterName?: string;
  globalHeartbeat?: boolean;
  /** --fs-features= string, e.g. "metaecc,noinline-data". */
  features?: string;
  featureLevel?: FeatureLevel;
  /** -U: 32 hex digits or the 36-character dashed form. */
  uuid?: string;
  noBackupSuper?: boolean;
  dryRun?: boolean;
  quiet?: boolean;
  /** -F: format even if mounted elsewhere / heartbeat is live. */
  force?: boolean;
  /** Optional block count (in units of the final block size). */
  blocks?: number;
}

const BASE_COMPAT = OCFS2_FEATURE_COMPAT_BACKUP_SB | OCFS2_FEATURE_COMPAT_JBD2_SB;
const DEFAULT_INCOMPAT = OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC | OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP
  | OCFS2_FEATURE_INCOMPAT_INLINE_DATA | OCFS2_FEATURE_INCOMPAT_XATTR | OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE
  | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS | OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG | OCFS2_FEATURE_INCOMPAT_APPEND_DIO;

/** feature_level_defaults[] (the -T types all share the default set). */
export const FEATURE_LEVELS: Record<FeatureLevel, FeatureSet> = {
  'default': { compat: BASE_COMPAT, incompat: DEFAULT_INCOMPAT, roCompat: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN },
  'max-compat': { compat: BASE_COMPAT, incompat: 0, roCompat: 0 },
  'max-features': {
    compat: BASE_COMPAT,
    incompat: DEFAULT_INCOMPAT | OCFS2_FEATURE_INCOMPAT_META_ECC,
    roCompat: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN | OCFS2_FEATURE_RO_COMPAT_USRQUOTA | OCFS2_FEATURE_RO_COMPAT_GRPQUOTA,
  },
};

const fs3 = (compat: number, incompat: number, roCompat: number): FeatureSet => ({ compat, incompat, roCompat });

/** ocfs2_supported_features[]: name, flags it turns on, its own flags (what "noX" clears). */
const SUPPORTED: ReadonlyArray<{ name: string; on: FeatureSet; own: FeatureSet }> = [
  { name: 'local', on: fs3(0, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, 0) },
  { name: 'sparse', on: fs3(0, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, 0) },
  { name: 'backup-super', on: fs3(OCFS2_FEATURE_COMPAT_BACKUP_SB, 0, 0), own: fs3(OCFS2_FEATURE_COMPAT_BACKUP_SB, 0, 0) },
  // unwritten extents need sparse allocation.
  { name: 'unwritten', on: fs3(0, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN), own: fs3(0, 0, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN) },
  { name: 'extended-slotmap', on: fs3(0, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, 0) },
  { name: 'inline-data', on: fs3(0, OCFS2_FEATURE_INCOMPAT_INLINE_DATA, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_INLINE_DATA, 0) },
  { name: 'metaecc', on: fs3(0, OCFS2_FEATURE_INCOMPAT_META_ECC, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_META_ECC, 0) },
  { name: 'xattr', on: fs3(0, OCFS2_FEATURE_INCOMPAT_XATTR, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_XATTR, 0) },
  { name: 'indexed-dirs', on: fs3(0, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, 0) },
  { name: 'usrquota', on: fs3(0, 0, OCFS2_FEATURE_RO_COMPAT_USRQUOTA), own: fs3(0, 0, OCFS2_FEATURE_RO_COMPAT_USRQUOTA) },
  { name: 'grpquota', on: fs3(0, 0, OCFS2_FEATURE_RO_COMPAT_GRPQUOTA), own: fs3(0, 0, OCFS2_FEATURE_RO_COMPAT_GRPQUOTA) },
  { name: 'refcount', on: fs3(0, OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE, 0) },
  { name: 'discontig-bg', on: fs3(0, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, 0) },
  { name: 'clusterinfo', on: fs3(0, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, 0) },
  { name: 'append-dio', on: fs3(0, OCFS2_FEATURE_INCOMPAT_APPEND_DIO, 0), own: fs3(0, OCFS2_FEATURE_INCOMPAT_APPEND_DIO, 0) },
];

const overlap = (a: FeatureSet, b: FeatureSet): boolean =>
  (a.compat & b.compat) !== 0 || (a.incompat & b.incompat) !== 0 || (a.roCompat & b.roCompat) !== 0;
const merge = (a: FeatureSet, b: FeatureSet): void => { a.compat |= b.compat; a.incompat |= b.incompat; a.roCompat |= b.roCompat; };

/**
 * ocfs2_parse_feature + ocfs2_merge_feature_flags_with_level: the level's set,
 * plus the named features, minus the "noX" ones (and whatever depends on them).
 */
export function resolveFeatures(level: FeatureLevel, spec: string | undefined): FeatureSet {
  const { on, off } = parseFeatureSpec(spec ?? '');
  const out = { ...FEATURE_LEVELS[level] };
  merge(out, on);
  out.compat &= ~off.compat;
  out.incompat &= ~off.incompat;
  out.roCompat &= ~off.roCompat;
  return out;
}

/**
 * ocfs2_parse_feature: the bits "X" turns on (with what X needs) and the
 * bits "noX" turns off (with whatever needs X: ocfs2_feature_clear_deps).
 */
export function parseFeatureSpec(spec: string): { on: FeatureSet; off: FeatureSet } {
  const on = fs3(0, 0, 0);
  const off = fs3(0, 0, 0);
  for (const raw of spec.split(',')) {
    if (raw === '') continue;
    const rev = raw.startsWith('no');
    const name = rev ? raw.slice(2) : raw;
    const f = SUPPORTED.find((x) => x.name === name);
    if (!f) throw new MkfsError(`unknown feature "${raw}" in --fs-features`);
    merge(rev ? off : on, rev ? f.own : f.on);
  }
  for (const f of SUPPORTED) if (overlap(off, f.on)) merge(off, f.own);
  if (overlap(on, off)) throw new MkfsError(`conflicting features in --fs-features "${spec}"`);
  return { on, off };
}

/** get_number: a decimal/hex/octal count with an optional k/m/g/b suffix. */
export function parseSize(arg: string): number {
  const m = /^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)([kmgb]?)$/i.exec(arg.trim());
  if (!m) throw new MkfsError(`bad number "${arg}"`);
  let n = Number(m[1]!.toLowerCase().startsWith('0x') ? parseInt(m[1]!, 16) : (m[1]!.length > 1 && m[1]!.startsWith('0') ? parseInt(m[1]!, 8) : Number(m[1])));
  switch (m[2]!.toLowerCase()) {
    case 'g': n *= 1024 ** 3; break;
    case 'm': n *= 1024 ** 2; break;
    case 'k': n *= 1024; break;
    default: break;
  }
  return n;
}

/** get_valid_size: round down to a power of two within [lo, hi]. */
function validPow2(n: number, lo: number, hi: number): number {
  let t = lo;
  for (let v = lo; v <= hi; v *= 2) {
    if (v === n) return n;
    if (v < n) t = v; else break;
  }
  return t;
}

/** -J options: size=N, [no]block32, [no]block64. */
export function parseJournalOptions(spec: string): { size?: number; journal64?: boolean } {
  const out: { size?: number; journal64?: boolean } = {};
  for (let tok of spec.split(',')) {
    if (tok === '') continue;
    let invert = false;
    if (tok.startsWith('no')) { invert = true; tok = tok.slice(2); }
    const eq = tok.indexOf('=');
    const key = eq < 0 ? tok : tok.slice(0, eq);
    const arg = eq < 0 ? undefined : tok.slice(eq + 1);
    if (key === 'size' && arg !== undefined && !invert) {
      const v = parseSize(arg);
      if (v < OCFS2_MIN_JOURNAL_SIZE) {
        throw new MkfsError(`invalid journal size ${arg}: it must be at least ${OCFS2_MIN_JOURNAL_SIZE} bytes`);
      }
      out.size = v;
    } else if (key === 'block32' && arg === undefined) {
      out.journal64 = invert;
    } else if (key === 'block64' && arg === undefined) {
      out.journal64 = !invert;
    } else {
      throw new MkfsError(`bad journal option "${tok}": valid are size=<bytes>, [no]block32, [no]block64`);
    }
  }
  return out;
}

/** uuid_parse of the 32-hex or 36-character form. */
export function parseUuid(s: string): Buffer {
  const hex = s.length === 32 ? s : (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s) ? s.replace(/-/g, '') : '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new MkfsError(`invalid UUID "${s}"`);
  return Buffer.from(hex, 'hex');
}

/* ---- geometry ------------------------------------------------------------------------ */

export interface Geometry {
  blockSize: number;
  blockBits: number;
  clusterSize: number;
  clusterBits: number;
  /** Volume size after rounding down to whole clusters. */
  bytes: number;
  blocks: number;
  clusters: number;
  slots: number;
  /** Global bitmap: clusters per group, groups, bits of the last group. */
  globalCpg: number;
  groups: number;
  tailGroupBits: number;
  journalBytes: number;
  /** Clusters to pre-grow each slot's extent allocator by. */
  extentAllocClusters: number;
  features: FeatureSet;
  mount: 'local' | 'cluster';
  fsType: FsType;
  inlineData: boolean;
  dxDirs: boolean;
  backupSuper: boolean;
  journal64: boolean;
}

/** ocfs2_clusters_per_group (suballocator groups: 1/2/4 MiB by block size). */
export function clustersPerGroup(blockSize: number, clusterBits: number): number {
  const mb = blockSize >= 2048 ? 4 : blockSize === 1024 ? 2 : 1;
  return (mb * 1024 * 1024) / 2 ** clusterBits;
}

/** initial_slots_for_volume */
function defaultSlots(bytes: number): number {
  const gb = Math.floor(bytes / 2 ** 30);
  return gb < 2 ? 2 : gb < 10 ? 4 : gb < 1024 ? 8 : 16;
}

const log2 = (n: number): number => Math.round(Math.log2(n));
const CLUSTERS_MAX = 0xffffffff - 1;

/**
 * fill_defaults + figure_journal_size + figure_extent_alloc_size, given the
 * device size in bytes.  Throws MkfsError with mkfs.ocfs2's reasons.
 */
export function computeGeometry(opts: MkfsOptions, deviceBytes: number, sectorSize = 512): Geometry {
  const level = opts.featureLevel ?? 'default';
  if (!(level in FEATURE_LEVELS)) throw new MkfsError(`bad --fs-feature-level "${String(level)}"`);
  const fsType: FsType = opts.fsType ?? 'default';
  if (!['default', 'datafiles', 'mail', 'vmstore'].includes(fsType)) throw new MkfsError(`bad fs type "${String(fsType)}"`);
  const features = resolveFeatures(level, opts.features);

  if (opts.blockSize !== undefined) {
    if (!Number.isFinite(opts.blockSize) || opts.blockSize < OCFS2_MIN_BLOCKSIZE || opts.blockSize > OCFS2_MAX_BLOCKSIZE) {
      throw new MkfsError(`block size must be between ${OCFS2_MIN_BLOCKSIZE} and ${OCFS2_MAX_BLOCKSIZE} in powers of 2`);
    }
  }
  if (opts.clusterSize !== undefined) {
    if (!Number.isFinite(opts.clusterSize) || opts.clusterSize < OCFS2_MIN_CLUSTERSIZE || opts.clusterSize > OCFS2_MAX_CLUSTERSIZE) {
      throw new MkfsError(`cluster size must be between ${OCFS2_MIN_CLUSTERSIZE} and ${OCFS2_MAX_CLUSTERSIZE} in powers of 2`);
    }
  }
  if (opts.slots !== undefined && (!Number.isInteger(opts.slots) || opts.slots < 1 || opts.slots > OCFS2_MAX_SLOTS)) {
    throw new MkfsError(`node slots must be between 1 and ${OCFS2_MAX_SLOTS}`);
  }
  if (opts.label !== undefined && Buffer.byteLength(opts.label) >= OCFS2_MAX_VOL_LABEL_LEN) {
    throw new MkfsError(`volume label too long: must be less than ${OCFS2_MAX_VOL_LABEL_LEN} characters`);
  }
  if (opts.blocks !== undefined && (!Number.isInteger(opts.blocks) || opts.blocks <= 0)) {
    throw new MkfsError(`bad block count ${opts.blocks}`);
  }

  let mount: 'local' | 'cluster' = (features.incompat & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) ? 'local' : 'cluster';
  if (opts.mount) mount = opts.mount;
  // is_cluster_info_valid
  if (opts.clusterStack !== undefined || opts.clusterName !== undefined || opts.globalHeartbeat) {
    if (mount === 'local') throw new MkfsError('local mount is incompatible with the specified cluster attribute');
    if (!opts.clusterStack) throw new MkfsError('missing cluster stack (--cluster-stack)');
    if (!/^[A-Za-z0-9]{4}$/.test(opts.clusterStack)) throw new MkfsError(`unknown cluster stack '${opts.clusterStack}'`);
    if (!opts.clusterName) throw new MkfsError('missing cluster name (--cluster-name)');
    const okName = opts.clusterStack === OCFS2_CLASSIC_CLUSTER_STACK
      ? /^[A-Za-z0-9]{1,16}$/.test(opts.clusterName) : opts.clusterName.length <= OCFS2_CLUSTER_NAME_LEN;
    if (!okName) throw new MkfsError(`invalid cluster name '${opts.clusterName}': max ${OCFS2_CLUSTER_NAME_LEN} alpha-numeric characters`);
    if (opts.globalHeartbeat && opts.clusterStack !== OCFS2_CLASSIC_CLUSTER_STACK) {
      throw new MkfsError('global heartbeat mode is only applicable to the o2cb cluster stack');
    }
  }

  let blockSize = opts.blockSize !== undefined ? validPow2(opts.blockSize, OCFS2_MIN_BLOCKSIZE, OCFS2_MAX_BLOCKSIZE) : 0;
  const probeBs = blockSize || OCFS2_MAX_BLOCKSIZE;
  if (probeBs < sectorSize) {
    throw new MkfsError(`the device has a hardware sector size (${sectorSize}) larger than the block size (${probeBs})`);
  }
  let blocks = Math.floor(deviceBytes / probeBs);
  if (opts.blocks !== undefined) {
    if (opts.blocks > blocks) throw new MkfsError(`${opts.blocks} blocks were specified and this is greater than the ${blocks} blocks of the device`);
    blocks = opts.blocks;
  }
  let bytes = blocks * probeBs;
  if (!blockSize) {
    if (bytes <= 3 * 1024 * 1024) {
      blockSize = OCFS2_MIN_BLOCKSIZE;
    } else {
      blockSize = OCFS2_MAX_BLOCKSIZE;
      let shift = 30;
      while (blockSize > 1024) {
        if (bytes >= 2 ** shift) break;
        blockSize >>= 1;
        shift--;
      }
    }
    blocks = opts.blocks !== undefined ? opts.blocks : Math.floor(deviceBytes / blockSize);
    bytes = blocks * blockSize;
  }
  if (bytes > deviceBytes) throw new MkfsError(`${blocks} blocks of ${blockSize} bytes do not fit in the device`);
  const blockBits = log2(blockSize);

  let clusterSize = opts.clusterSize !== undefined ? validPow2(opts.clusterSize, OCFS2_MIN_CLUSTERSIZE, OCFS2_MAX_CLUSTERSIZE) : 0;
  if (!clusterSize) {
    if (fsType === 'datafiles' || fsType === 'vmstore') {
      const gigs = Math.floor(bytes / 2 ** 30);
      if (gigs < 2) throw new MkfsError('the selected file system type requires a device of at least 2 gigabytes');
      clusterSize = (gigs < 64 ? 128 : gigs < 96 ? 256 : gigs < 128 ? 512 : 1024) * 1024;
    } else {
      for (clusterSize = OCFS2_MIN_CLUSTERSIZE; clusterSize < OCFS2_MAX_CLUSTERSIZE; clusterSize *= 2) {
        if (Math.floor(bytes / clusterSize) <= CLUSTERS_MAX) break;
      }
    }
  }
  const clusterBits = log2(clusterSize);
  const clusters = Math.floor(bytes / clusterSize);
  bytes = clusters * clusterSize;
  blocks = bytes / blockSize;
  if (clusters > CLUSTERS_MAX) throw new MkfsError('too many clusters: use a larger cluster size');

  // ocfs2_calc_cluster_groups
  const maxBits = 8 * (blockSize - 64);
  const globalCpg = Math.min(maxBits, clusters);
  if (globalCpg === 0) throw new MkfsError('device too small: not even one cluster');
  const groups = Math.ceil(clusters / globalCpg);
  const tailGroupBits = clusters % globalCpg || globalCpg;

  const slots = opts.slots ?? (mount === 'local' ? 1 : defaultSlots(bytes));

  // figure_journal_size
  if (blocks < 2048) throw new MkfsError('file system too small for a journal');
  const alignUp = (b: number): number => Math.ceil(b / clusterSize) * clusterSize;
  const minJournal = clusterSize * 8 + clusterSize;
  const valid = (jBlocks: number): boolean => jBlocks * slots + 1024 <= blocks;
  let journalBytes: number;
  if (opts.journalSize !== undefined) {
    if (!valid(Math.floor(opts.journalSize / blockSize))) throw new MkfsError('journal size too big for the file system');
    journalBytes = alignUp(opts.journalSize);
    if (journalBytes < minJournal) throw new MkfsError('journal size too small for the file system');
  } else {
    let jBlocks: number;
    if (fsType === 'datafiles') jBlocks = 8192;
    else if (fsType === 'mail') jBlocks = blocks < 262144 ? 16384 : blocks < 524288 ? 32768 : 65536;
    else if (fsType === 'vmstore') jBlocks = blocks < 262144 ? 8192 : blocks < 524288 ? 16384 : 32768;
    else if (blocks < 32768) jBlocks = OCFS2_MIN_JOURNAL_SIZE / blockSize;
    else if (blocks < 262144) jBlocks = 4096;
    else jBlocks = Math.min(65536, Math.max(16384, Math.floor(blocks / 160)));
    journalBytes = alignUp(jBlocks * blockSize);
    if (journalBytes < minJournal) {
      journalBytes = minJournal;
      if (!valid(journalBytes / blockSize)) {
        throw new MkfsError('volume size too small for the required configuration: increase the volume size or reduce the cluster size');
      }
    }
  }
  // ocfs2_make_journal refuses journals under 4 MiB (mkfs.ocfs2 fails there
  // too, e.g. 512-byte blocks on 16..128 MiB volumes get 4096-block journals).
  if (journalBytes < OCFS2_MIN_JOURNAL_SIZE) {
    throw new MkfsError(`the journal would be ${journalBytes} bytes, under the ${OCFS2_MIN_JOURNAL_SIZE}-byte minimum: use -J size=4M, a larger block size or a different volume size`);
  }
  const journal64 = opts.journal64 ?? false;
  if (!journal64 && blocks > 0xffffffff) {
    throw new MkfsError('jbd2 can only store block numbers in 32 bits: use -J block64, a larger block size or a smaller device');
  }

  // figure_extent_alloc_size
  const target = fsType === 'datafiles' || fsType === 'vmstore' ? 0.3 : 0.1;
  const cpg = clustersPerGroup(blockSize, clusterBits);
  const unit = cpg * clusterSize * slots;
  let total = unit;
  let numGroups = 1;
  let pct: number;
  for (;; numGroups++) {
    pct = (total * 100) / bytes;
    if (pct >= target) break;
    total += unit;
  }
  if (pct > 5) numGroups--;

  return {
    blockSize, blockBits, clusterSize, clusterBits, bytes, blocks, clusters, slots,
    globalCpg, groups, tailGroupBits, journalBytes, extentAllocClusters: cpg * numGroups,
    features, mount, fsType,
    inlineData: (features.incompat & OCFS2_FEATURE_INCOMPAT_INLINE_DATA) !== 0,
    dxDirs: (features.incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) !== 0,
    backupSuper: !opts.noBackupSuper && (features.compat & OCFS2_FEATURE_COMPAT_BACKUP_SB) !== 0,
    journal64,
  };
}
