/**
 * An fsck-style checker over libocfs2, following the passes of fsck.ocfs2
 * 1.8.7: journals, 0a/0b/0c chain allocators, 1 inodes and blocks (with the
 * cluster bitmap and inode allocator comparison, 1b doubly claimed
 * clusters), 2 directory entries, 3 connectivity, 4a orphans, 4b link
 * counts.  Read-only unless `repair`; repairs go through
 * DirectTransactionManager (in place, metaecc checks recomputed), except the
 * journal replay, which writes the replayed blocks (already carrying their
 * checks) with BlockDevice.writeBlocks.
 */
import { Volume } from '../volume';
import { DirectTransactionManager } from '../txn';
import { Ocfs2CorruptError, Ocfs2Error, Ocfs2FormatError } from '../errors';
import { CHECK_OFFSET, verifyBlockCheck } from '../blockcheck';
import {
  DinodeHeader, INLINE_DATA_OFFSET, inodeExtentList, inodeInlineData, inodeLocalAlloc,
  inodeTruncateLog, readId1Bitmap, readId1Journal, setLinksCount, writeId1Journal, symlinkMaxSize, DINODE_ID2_OFFSET,
} from '../structs/dinode';
import { readMapped, allLeafExtents } from '../extentmap';
import { LocalAllocHeader, localAllocBitmapCapacity, localAllocProblems } from '../structs/localalloc';
import { decodeExtentBlock, extentRecordProblems, interiorRecordRange, type ExtentList } from '../structs/extent';
import { testBit } from '../structs/group';
import {
  OCFS2_CHAIN_FL, OCFS2_DEALLOC_FL, OCFS2_EXT_REFCOUNTED, OCFS2_HAS_XATTR_FL, OCFS2_INDEXED_DIR_FL,
  OCFS2_INLINE_DATA_FL, OCFS2_INLINE_XATTR_FL, OCFS2_INODE_SIGNATURE, OCFS2_LOCAL_ALLOC_FL, OCFS2_ORPHANED_FL,
  OCFS2_SUPER_BLOCK_FL, OCFS2_SYSTEM_FL, OCFS2_VALID_FL, OCFS2_FT_DIR, OCFS2_FT_UNKNOWN, OCFS2_JOURNAL_DIRTY_FL,
  OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, OCFS2_FEATURE_COMPAT_BACKUP_SB, S_IFDIR, S_IFLNK, S_IFMT, hasSignature, OCFS2_HAS_REFCOUNT_FL,
} from '../constants';
import {
  dirBlockArea, dirBlockCheckOffset, dirHasTrailer, dirTrailerOffset, DirBlockTrailer, fileTypeOfMode,
  iterateDirEntries, insertDirEntry, largestDirHole, removeDirEntry, direntNameProblem, type DirArea,
} from '../structs/dir';
import { decodeDxRoot, decodeDxLeaf, DX_ROOT_CHECK_OFFSET, DX_LEAF_CHECK_OFFSET } from '../structs/dxdir';
import {
  decodeXattrBlock, listInlineXattrs, listXattrBucket, bucketsInUse, blocksPerXattrBucket,
  XATTR_BLOCK_CHECK_OFFSET, xattrNameHashProblem, type XattrList,
} from '../structs/xattr';
import { backupSuperblockBlknos } from '../structs/superblock';
import { systemFileName, GLOBAL_BITMAP_SYSTEM_INODE, GLOBAL_INODE_ALLOC_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE,
  EXTENT_ALLOC_SYSTEM_INODE, LOCAL_ALLOC_SYSTEM_INODE, TRUNCATE_LOG_SYSTEM_INODE, ORPHAN_DIR_SYSTEM_INODE } from '../sysfiles';
import { journalReader, recoverSlotJournal } from '../journal';
import { applyRecovery } from '../jbd2';
import { CheckContext, type InodeInfo } from './context';
import { groupBitBlock, setGroupBitmap, verifyChainAllocator, writeAllocator, type AllocatorInfo } from './alloc';
import { FSCK_ERROR, FSCK_NONDESTRUCT, FSCK_OK, FSCK_UNCORRECTED, type Problem } from './problems';

export * from './problems';
export { CheckContext } from './context';

export interface CheckOptions {
  /** -y: repair (opens the device read-write). Default: -n. */
  repair?: boolean;
  /** Output lines (progress and problems), default: discarded. */
  log?: (line: string) => void;
  /** Read the superblock from backup N (1..6): fsck.ocfs2 -b / -r. */
  backupSuperblock?: number;
}

export interface JournalReport { slot: number; blkno: number; dirty: boolean; replayed: boolean; transactions: number }

export interface CheckReport {
  device: string;
  label: string;
  uuid: string;
  blocks: number;
  blockSize: number;
  clusters: number;
  clusterSize: number;
  slots: number;
  journals: JournalReport[];
  problems: Problem[];
  /** fsck exit code: 0 clean, 1 corrected, 4 left uncorrected (8 is an operational error, thrown). */
  exitCode: number;
  inodes: number;
  directories: number;
}

const DIRTY_FL = OCFS2_JOURNAL_DIRTY_FL;

/** Replay every dirty journal onto the device and clear its dirty flag (repair mode). */
async function replayJournals(vol: Volume, log: (l: string) => void): Promise<JournalReport[]> {
  const out: JournalReport[] = [];
  const tm = new DirectTransactionManager(vol);
  for (const j of await vol.journalStates()) {
    if (!j.dirty) { out.push({ slot: j.slot, blkno: j.blkno, dirty: false, replayed: false, transactions: 0 }); continue; }
    const res = await recoverSlotJournal(vol, j.blkno);
    const r = await journalReader(vol, j.blkno);
    await applyRecovery(r, res, {
      writeFsBlock: async (b, d) => { await vol.dev.writeBlocks(b, d); },
      writeLogBlock: async (n, d) => { await vol.dev.writeBlocks(r.physicalBlock!(n), d); },
    });
    await vol.dev.flush();
    // The replay may have rewritten the journal inode itself: read it again.
    vol.dev.invalidate();
    const buf = Buffer.from(await vol.dev.readBlock(j.blkno));
    const id1 = readId1Journal(buf);
    writeId1Journal(buf, { ...id1, ij_flags: (id1.ij_flags & ~DIRTY_FL) >>> 0 });
    await tm.run(async (tx) => { tx.writeMeta(j.blkno, buf, CHECK_OFFSET.dinode); });
    await tm.flush();
    log(`Slot ${j.slot}'s journal replayed: ${res.transactions} transaction(s), ${res.blocks.size} block(s) written`);
    out.push({ slot: j.slot, blkno: j.blkno, dirty: true, replayed: true, transactions: res.transactions });
  }
  return out;
}

/** Check (and with `repair`, fix) the volume at `device`.  Throws Ocfs2Error on operational failure. */
export async function checkVolume(device: string, opts: CheckOptions = {}): Promise<CheckReport> {
  const log = opts.log ?? ((): void => undefined);
  const repair = opts.repair ?? false;
  let vol = await Volume.open(device, { readOnly: !repair, dirtyJournal: 'ignore', backupSuperblock: opts.backupSuperblock });
  const need = vol.sb.clusters * vol.clusterBlocks;
  if (need > vol.dev.blockCount) {
    await vol.close();
    throw new Ocfs2FormatError(`${device}: the volume has ${need} blocks but the device holds only ${vol.dev.blockCount} (truncated image?)`);
  }
  let journals: JournalReport[];
  try {
    log(`Checking OCFS2 filesystem in ${device}:`);
    log(`  Label:              ${vol.sb.label}`);
    log(`  UUID:               ${vol.sb.uuidHex}`);
    log(`  Number of blocks:   ${vol.dev.blockCount}`);
    log(`  Block size:         ${vol.blockSize}`);
    log(`  Number of clusters: ${vol.sb.clusters}`);
    log(`  Cluster size:       ${vol.clusterSize}`);
    log(`  Number of slots:    ${vol.maxSlots}`);
    log('');
    if (repair) {
      journals = await replayJournals(vol, log);
      if (journals.some((j) => j.replayed)) {
        await vol.close();
        vol = await Volume.open(device, { readOnly: false, dirtyJournal: 'ignore', backupSuperblock: opts.backupSuperblock });
      }
    } else {
      journals = (await vol.journalStates()).map((j) => ({ slot: j.slot, blkno: j.blkno, dirty: j.dirty, replayed: false, transactions: 0 }));
      const dirty = journals.filter((j) => j.dirty);
      for (const j of dirty) log(`Slot ${j.slot}'s journal (inode ${j.blkno}) is dirty: it needs recovery`);
      if (dirty.length) log('** Skipping journal replay because -n was given.  There may be spurious errors that journal replay would fix. **');
    }
  } catch (e) {
    await vol.close();
    throw e;
  }
  const ctx = new CheckContext(vol, new DirectTransactionManager(vol), repair, log);
  try {
    for (const j of journals) {
      if (j.dirty && !j.replayed) ctx.report('journal', 'JOURNAL_DIRTY', j.blkno, `Slot ${j.slot}'s journal (inode ${j.blkno}) is dirty and was not replayed`, false);
    }
    await runPasses(ctx);
    await ctx.tm.flush();
  } finally {
    await vol.close();
  }
  // A repair run reports only what is still wrong: problems it could not fix
  // directly may be gone after the other repairs (a re-check tells).
  if (repair && ctx.problems.some((p) => !p.fixed) && ctx.problems.some((p) => p.fixed)) {
    const again = await checkVolume(device, { backupSuperblock: opts.backupSuperblock });
    const still = new Set(again.problems.map((p) => `${p.code} ${p.blkno}`));
    for (const p of ctx.problems) if (!p.fixed && !still.has(`${p.code} ${p.blkno}`)) p.fixed = true;
  }
  const left = ctx.problems.filter((p) => !p.fixed).length;
  const fixed = ctx.problems.filter((p) => p.fixed).length;
  const exitCode = left > 0 ? FSCK_UNCORRECTED : (fixed > 0 || journals.some((j) => j.replayed)) ? FSCK_NONDESTRUCT : FSCK_OK;
  log(left === 0 ? (fixed > 0 ? `All passes succeeded: ${fixed} problem(s) corrected.` : 'All passes succeeded.')
    : `${left} problem(s) left uncorrected${fixed ? `, ${fixed} corrected` : ''}.`);
  return {
    device, label: vol.sb.label, uuid: vol.sb.uuidHex, blocks: vol.dev.blockCount, blockSize: vol.blockSize,
    clusters: vol.sb.clusters, clusterSize: vol.clusterSize, slots: vol.maxSlots, journals, problems: ctx.problems,
    exitCode, inodes: ctx.inodes.size, directories: [...ctx.inodes.values()].filter((i) => i.isDir).length,
  };
}

export { FSCK_ERROR };

/**
 * Who owns each cluster, as pass 0 and the inode scan of pass 1 find it
 * (allocator groups, the system area, every valid inode's extent trees,
 * xattr and dx trees); local alloc windows and truncate logs are not
 * counted.  For the mount, which must not free what a live file owns (a
 * corrupt truncate log record).  Returns the owner of a cluster: an inode's
 * block number, 0 for allocator metadata, undefined when unclaimed.
 */
export async function clusterOwners(vol: Volume): Promise<(cluster: number) => number | undefined> {
  const ctx = new CheckContext(vol, new DirectTransactionManager(vol), false, () => undefined);
  await claimPass(ctx);
  const runs: Array<[number, number, number]> = [];
  for (const info of ctx.inodes.values()) for (const [s, n] of info.runs) runs.push([s, n, info.blkno]);
  runs.sort((a, b) => a[0] - b[0]);
  return (c) => {
    if (!ctx.isUsed(c)) return undefined;
    // The last run starting at or before c (binary search), else allocator metadata.
    let lo = 0; let hi = runs.length - 1; let hit = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (runs[mid]![0] <= c) { hit = mid; lo = mid + 1; } else hi = mid - 1; }
    for (let i = hit; i >= 0 && i > hit - 64; i--) { const [s, n, o] = runs[i]!; if (c >= s && c < s + n) return o; }
    return 0;
  };
}

interface ClaimPassResult { global: AllocatorInfo; inodeBits: Map<AllocatorInfo, Buffer[]>; extentAllocs: AllocatorInfo[] }

/** Pass 0 (allocator chains) and the inode scan of pass 1: every cluster claimed in ctx. */
async function claimPass(ctx: CheckContext): Promise<ClaimPassResult> {
  const vol = ctx.vol;
  const slots = vol.maxSlots;
  ctx.say('Pass 0a: Checking cluster allocation chains');
  const global = await verifyChainAllocator(ctx, systemFileName(GLOBAL_BITMAP_SYSTEM_INODE), '0a', true);
  if (!global) throw new Ocfs2Error('the global bitmap cannot be checked: giving up');
  await checkExpectedGlobalGroups(ctx, global);
  ctx.say('Pass 0b: Checking inode allocation chains');
  const inodeAllocs: AllocatorInfo[] = [];
  for (let s = -1; s < slots; s++) {
    const name = s < 0 ? systemFileName(GLOBAL_INODE_ALLOC_SYSTEM_INODE) : systemFileName(INODE_ALLOC_SYSTEM_INODE, s);
    const a = await verifyChainAllocator(ctx, name, '0b', false);
    if (a) inodeAllocs.push(a);
  }
  ctx.say('Pass 0c: Checking extent block allocation chains');
  const extentAllocs: AllocatorInfo[] = [];
  for (let s = 0; s < slots; s++) {
    const a = await verifyChainAllocator(ctx, systemFileName(EXTENT_ALLOC_SYSTEM_INODE, s), '0c', false);
    if (a) extentAllocs.push(a);
  }
  // Clusters below the first cluster group (superblock, system area), then the groups themselves.
  const firstCg = vol.sb.raw.s_first_cluster_group;
  const magic = Math.floor(firstCg / vol.clusterBlocks);
  if (magic > 0) ctx.claim(0, magic);
  for (const g of global.groups) ctx.claim(Math.floor(g.blkno / vol.clusterBlocks), 1);
  for (const a of [...inodeAllocs, ...extentAllocs]) {
    for (const g of a.groups) {
      if (g.list) for (const r of g.list.recs) ctx.claim(Math.floor(r.blkno / vol.clusterBlocks), r.clusters);
      else ctx.claim(Math.floor(g.blkno / vol.clusterBlocks), a.cl.cpg);
    }
  }

  ctx.say('Pass 1: Checking inodes and blocks');
  const inodeBits = new Map<AllocatorInfo, Buffer[]>();
  for (const a of inodeAllocs) inodeBits.set(a, await scanInodeAllocator(ctx, a));
  return { global, inodeBits, extentAllocs };
}

async function runPasses(ctx: CheckContext): Promise<void> {
  const { global, inodeBits, extentAllocs } = await claimPass(ctx);
  await markLocalAllocsAndTruncateLogs(ctx);
  await checkClusterBitmap(ctx, global);
  if (ctx.dups.size > 0) await reportDuplicates(ctx);
  // Inode allocator bits: set exactly for the valid inodes found.
  let askedInodeAlloc = false;
  for (const [a, wants] of inodeBits) {
    a.groups.forEach((g, gi) => {
      const want = wants[gi]!;
      for (let bit = 1; bit < g.bits; bit++) {
        const disk = testBit(g.bitmap, bit);
        if (disk !== testBit(want, bit) && !askedInodeAlloc) {
          const b = groupBitBlock(ctx, g, bit);
          ctx.report('1', 'INODE_ALLOC_REPAIR', b, `Inode ${b} is marked as ${disk ? 'invalid' : 'valid'} but its position in the inode allocator is marked as ${disk ? 'in use' : 'free'}`, true);
          askedInodeAlloc = true;
        }
      }
    });
  }

  ctx.say('Pass 2: Checking directory entries');
  await pass2(ctx);
  ctx.say('Pass 3: Checking directory connectivity');
  await pass3(ctx);
  ctx.say('Pass 4a: Checking for orphaned inodes');
  await pass4a(ctx);
  ctx.say('Pass 4b: Checking inodes link counts');
  await pass4b(ctx);

  if (ctx.repair) {
    // Write back the allocators from what the passes found.
    for (const g of global.groups) setGroupBitmap(g, desiredClusterBits(ctx, global, g));
    await writeAllocator(ctx, global);
    for (const [a, wants] of inodeBits) {
      a.groups.forEach((g, gi) => {
        const want = Buffer.from(wants[gi]!);
        // Orphans deleted in pass 4a are gone from ctx.inodes.
        for (let bit = 1; bit < g.bits; bit++) {
          if (testBit(want, bit) && !ctx.inodes.has(groupBitBlock(ctx, g, bit))) want[bit >> 3] = want[bit >> 3]! & ~(1 << (bit & 7));
        }
        setGroupBitmap(g, want);
      });
      await writeAllocator(ctx, a);
    }
    for (const a of extentAllocs) await writeAllocator(ctx, a);
  }
}

/* ---- pass 0a: global bitmap groups at their predictable places ------------------------------ */

function globalGroupStart(ctx: CheckContext, global: AllocatorInfo, blkno: number): number {
  const c = Math.floor(blkno / ctx.vol.clusterBlocks);
  return Math.floor(c / global.cl.cpg) * global.cl.cpg;
}

async function checkExpectedGlobalGroups(ctx: CheckContext, global: AllocatorInfo): Promise<void> {
  const vol = ctx.vol;
  const cpg = global.cl.cpg;
  const n = Math.ceil(vol.sb.clusters / cpg);
  const expected = new Map<number, number>();
  for (let i = 0; i < n; i++) expected.set(i === 0 ? vol.sb.raw.s_first_cluster_group : i * cpg * vol.clusterBlocks, i);
  for (const g of global.groups) {
    if (!expected.has(g.blkno)) {
      ctx.report('0a', 'GROUP_UNEXPECTED_DESC', g.blkno, `Block ${g.blkno} is a group descriptor in the bitmap chain allocator but it isn't at one of the pre-determined locations`, false);
    }
  }
  const found = new Set(global.groups.map((g) => g.blkno));
  for (const [blkno, i] of expected) {
    if (found.has(blkno)) continue;
    const fix = ctx.report('0a', 'GROUP_EXPECTED_DESC', blkno, `Block ${blkno} should be a group descriptor for the bitmap chain allocator but it wasn't found in any chains`, true);
    if (!fix) continue;
    const bits = i === n - 1 ? vol.sb.clusters - i * cpg : cpg;
    const chain = Math.min(i % global.cl.count, global.cl.recs.length);
    const buf = Buffer.from(await vol.dev.readBlock(blkno));
    const ok = hasSignature(buf, 0, 'GROUP01') && DinodeHeaderGen(buf) === (vol.sb.fsGeneration >>> 0);
    const size = Math.min(vol.blockSize - 64, 256) ;
    if (!ok) {
      buf.fill(0);
      buf.write('GROUP01', 0, 'latin1');
      buf.writeUInt32LE(vol.sb.fsGeneration >>> 0, 0x10);
    }
    // bg_size: the global bitmap's groups use the whole block after the header, capped at 256 with discontig-bg.
    const bgSize = global.groups[0] ? global.groups[0].buf.readUInt16LE(0x08) : size;
    buf.writeUInt16LE(bgSize, 0x08);
    buf.writeUInt16LE(bits, 0x0a);
    buf.writeUInt16LE(chain, 0x0e);
    buf.writeBigUInt64LE(BigInt(global.blkno), 0x20);
    buf.writeBigUInt64LE(BigInt(blkno), 0x28);
    if (chain === global.cl.recs.length) {
      global.cl.recs.push({ c_free: 0, c_total: 0, c_blkno: 0 });
      global.cl.nextFreeRec++;
    }
    const rec = global.cl.recs[chain]!;
    buf.writeBigUInt64LE(BigInt(rec.c_blkno), 0x18);
    rec.c_blkno = blkno;
    global.dirty = true;
    const bitmap = Buffer.from(buf.subarray(64, 64 + bgSize));
    bitmap[0] = bitmap[0]! | 1;
    // Its descriptor cluster is claimed with the other groups' after pass 0.
    global.groups.push({ blkno, chain, bits, free: 0, bitmap, list: null, dirty: true, buf });
  }
}

function DinodeHeaderGen(buf: Buffer): number { return buf.readUInt32LE(0x10); }

/* ---- pass 1: inodes ------------------------------------------------------------------------- */

/** Scan every block of an inode allocator's groups; returns per group the bitmap of valid inodes. */
async function scanInodeAllocator(ctx: CheckContext, a: AllocatorInfo): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const g of a.groups) {
    const want = Buffer.alloc(g.bitmap.length);
    want[0] = want[0]! | 1; // bit 0: the descriptor itself
    for (let bit = 1; bit < g.bits; bit++) {
      const b = groupBitBlock(ctx, g, bit);
      if (b < 0 || b >= ctx.vol.dev.blockCount) continue;
      const buf = await ctx.vol.dev.readBlock(b);
      if (!hasSignature(buf, 0, OCFS2_INODE_SIGNATURE)) continue;
      const h = DinodeHeader.decode(buf, 0);
      if (!(h.i_flags & OCFS2_VALID_FL)) continue;
      if (h.i_fs_generation !== (ctx.vol.sb.fsGeneration >>> 0)) continue;
      if (h.i_blkno !== b) {
        ctx.report('1', 'INODE_BLKNO', b, `Inode read from block ${b} has i_blkno set to ${h.i_blkno}`, false);
        continue;
      }
      want[bit >> 3] = want[bit >> 3]! | (1 << (bit & 7));
      await checkInode(ctx, b, Buffer.from(buf));
    }
    out.push(want);
  }
  return out;
}

interface Leaf { cpos: number; clusters: number; blkno: number; flags: number }

/** Walk an extent tree, claiming its clusters; returns the leaf records (and the count of clusters they map). */
async function walkExtents(
  ctx: CheckContext, list: ExtentList, owner: number, info: InodeInfo | null,
  at: { holder?: number; hashed?: boolean; range?: { start: number; end: number }; level?: number } = {},
): Promise<Leaf[]> {
  const vol = ctx.vol;
  const out: Leaf[] = [];
  const level = at.level ?? 0;
  const holder = at.holder ?? owner;
  if (level > 5) { ctx.report('1', 'EXTENT_LIST_DEPTH', owner, `Extent tree of ${owner} is too deep`, false); return out; }
  // The record checks the read path makes (structs/extent.ts), one report per failed record.
  const bad = new Set<number>();
  for (const p of extentRecordProblems(list, { blockCount: vol.dev.blockCount, clusterBlocks: vol.clusterBlocks, range: at.range, disjoint: !at.hashed })) {
    ctx.report('1', p.code, owner, `Extent record ${p.rec} of owner ${owner} in block ${holder}: ${p.field} ${p.check}`, false);
    if (p.code !== 'EXTENT_OVERLAP' && p.code !== 'EXTENT_OUT_OF_PARENT') bad.add(p.rec);
  }
  for (let i = 0; i < list.recs.length; i++) {
    const r = list.recs[i]!;
    if (bad.has(i)) continue;
    if (list.treeDepth > 0) {
      let eb;
      try {
        const buf = await vol.readMetaBlock(r.blkno, CHECK_OFFSET.extentBlock);
        eb = decodeExtentBlock(buf, r.blkno, { fsGeneration: vol.sb.fsGeneration });
      } catch (e) {
        ctx.report('1', 'EXTENT_EB_INVALID', r.blkno, `Extent block ${r.blkno} of inode ${owner} is invalid: ${(e as Error).message}`, false);
        continue;
      }
      if (eb.list.treeDepth !== list.treeDepth - 1) {
        ctx.report('1', 'EXTENT_LIST_DEPTH', r.blkno, `Extent block ${r.blkno} has depth ${eb.list.treeDepth}, expected ${list.treeDepth - 1}`, false);
        continue;
      }
      out.push(...await walkExtents(ctx, eb.list, owner, info, { holder: r.blkno, hashed: at.hashed, range: interiorRecordRange(list, i), level: level + 1 }));
      continue;
    }
    if (r.clusters === 0) continue;
    if ((r.flags & OCFS2_EXT_REFCOUNTED) && info && !(info.dynFeatures & OCFS2_HAS_REFCOUNT_FL)) {
      // fsck.ocfs2 extent.c: a refcounted extent in an inode without a refcount tree.
      ctx.report('1', 'EXTENT_MARKED_REFCOUNTED', owner, `Extent record ${i} of owner ${owner} in block ${holder} is marked refcounted but the inode has no refcount tree`, false);
    }
    const c = r.blkno / vol.clusterBlocks;
    ctx.claim(c, r.clusters, (r.flags & OCFS2_EXT_REFCOUNTED) !== 0);
    info?.runs.push([c, r.clusters]);
    out.push({ cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags });
  }
  return out;
}

async function walkXattrList(ctx: CheckContext, l: XattrList, owner: number, info: InodeInfo, holder: number): Promise<void> {
  for (const it of l.items) {
    const bad = xattrNameHashProblem(it, ctx.vol.uuidHash);
    if (bad) ctx.report('1', 'XATTR_HASH_INVALID', holder, `Extended attribute of inode ${owner} in block ${holder}: ${bad}`, false);
    if (!it.local && it.valueRoot) await walkExtents(ctx, it.valueRoot.list, owner, info);
  }
}

/** fsck.ocfs2 pass1 check_link_size (LINK_SIZE): i_size is the target's length up to its NUL, within symlinkMaxSize. */
async function checkSymlinkSize(ctx: CheckContext, blkno: number, buf: Buffer, h: ReturnType<typeof DinodeHeader.decode>): Promise<void> {
  const vol = ctx.vol;
  const max = symlinkMaxSize(h, vol.blockSize, vol.clusterSize);
  const area = h.i_clusters === 0
    ? buf.subarray(DINODE_ID2_OFFSET, DINODE_ID2_OFFSET + max + 1)
    : await readMapped(vol, inodeExtentList(buf, blkno), blkno, 0, max + 1);
  const nul = area.indexOf(0);
  const onDisk = nul < 0 ? area.length : nul;
  if (h.i_size !== onDisk) {
    ctx.report('1', 'LINK_SIZE', blkno, `The target of symlink inode ${blkno} is ${onDisk} bytes long on disk, but i_size is ${h.i_size} bytes long`, false);
  }
}

async function checkInode(ctx: CheckContext, blkno: number, buf: Buffer): Promise<void> {
  const vol = ctx.vol;
  if (vol.metaEcc) {
    try { verifyBlockCheck(Buffer.from(buf), CHECK_OFFSET.dinode, blkno); } catch {
      const fix = ctx.report('1', 'BAD_CRC32', blkno, `Inode ${blkno} has a bad block check (CRC32)`, true);
      if (fix) await ctx.tm.run(async (tx) => { tx.writeMeta(blkno, Buffer.from(buf), CHECK_OFFSET.dinode); });
    }
  }
  const h = DinodeHeader.decode(buf, 0);
  const mode = h.i_mode;
  const isDir = (mode & S_IFMT) === S_IFDIR;
  const info: InodeInfo = {
    blkno, mode, nlink: (h.i_links_count | (h.i_links_count_hi << 16)) >>> 0, flags: h.i_flags,
    dynFeatures: h.i_dyn_features, isDir, system: (h.i_flags & OCFS2_SYSTEM_FL) !== 0, runs: [], dirBlocks: [],
    inline: (h.i_dyn_features & OCFS2_INLINE_DATA_FL) !== 0, refs: 0, dotdot: 0, parent: 0, orphan: false,
  };
  ctx.inodes.set(blkno, info);
  if (blkno === vol.rootBlkno && !isDir) ctx.report('1', 'ROOT_NOTDIR', blkno, `Root inode ${blkno} isn't a directory`, false);
  if (h.i_flags & OCFS2_LOCAL_ALLOC_FL) {
    const la = LocalAllocHeader.decode(buf, DINODE_ID2_OFFSET);
    for (const p of localAllocProblems(la, readId1Bitmap(buf), localAllocBitmapCapacity(vol.blockSize, DINODE_ID2_OFFSET), vol.sb.clusters)) {
      ctx.report('1', p.code, blkno, `Local alloc inode ${blkno}: ${p.field} ${p.check}`, false);
    }
  }
  if (h.i_dtime !== 0 && !(h.i_flags & OCFS2_ORPHANED_FL)) {
    // fsck.ocfs2 pass1 (INODE_NZ_DTIME): a valid, non-orphaned inode has no deletion time.
    ctx.report('1', 'INODE_NZ_DTIME', blkno, `Inode ${blkno} is in use but has a non-zero dtime (${h.i_dtime})`, false);
  }
  if (h.i_flags & (OCFS2_CHAIN_FL | OCFS2_LOCAL_ALLOC_FL | OCFS2_DEALLOC_FL | OCFS2_SUPER_BLOCK_FL)) return;
  try {
    if (info.inline) {
      const { count } = inodeInlineData(buf, blkno);
      if (isDir) info.dirBlocks.push(blkno);
      if (h.i_size > count) ctx.report('1', 'INODE_INLINE_SIZE', blkno, `Inode ${blkno} has a size of ${h.i_size} which exceeds the max inline data size ${count}`, false);
      if (h.i_clusters > 0) ctx.report('1', 'INODE_INLINE_CLUSTERS', blkno, `Inode ${blkno} has ${h.i_clusters} clusters but it has the inline data flag set`, false);
    } else if ((mode & S_IFMT) === S_IFLNK && h.i_clusters === 0) {
      // fast symlink: the target is in the inode
    } else {
      const leaves = await walkExtents(ctx, inodeExtentList(buf, blkno), blkno, info);
      const total = leaves.reduce((s, l) => s + l.clusters, 0);
      if (total !== h.i_clusters) {
        // fsck.ocfs2 names it INODE_SPARSE_CLUSTERS on sparse volumes.
        const code = (vol.sb.incompat & OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC) ? 'INODE_SPARSE_CLUSTERS' : 'INODE_CLUSTERS';
        const fix = ctx.report('1', code, blkno, `Inode ${blkno} has ${h.i_clusters} clusters but its blocks fit in ${total} clusters`, true);
        if (fix) {
          const nb = Buffer.from(buf);
          nb.writeUInt32LE(total, DinodeHeader.offsetOf('i_clusters'));
          await ctx.tm.run(async (tx) => { tx.writeMeta(blkno, nb, CHECK_OFFSET.dinode); });
        }
      }
      if (!(vol.sb.incompat & OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC) && !isDir && h.i_size > total * vol.clusterSize) {
        ctx.report('1', 'INODE_SIZE', blkno, `Inode ${blkno} has a size of ${h.i_size} but has ${total} clusters`, false);
      }
      if (isDir) {
        const n = Math.floor(h.i_size / vol.blockSize);
        const bpc = vol.clusterBlocks;
        for (let lb = 0; lb < n; lb++) {
          const cpos = Math.floor(lb / bpc);
          const l = leaves.find((x) => x.cpos <= cpos && cpos < x.cpos + x.clusters);
          if (!l) { ctx.report('1', 'DIR_HOLE', blkno, `Directory ${blkno} has a hole at logical block ${lb}`, false); break; }
          info.dirBlocks.push(l.blkno + (lb - l.cpos * bpc));
        }
      }
    }
    if ((mode & S_IFMT) === S_IFLNK && !info.inline) await checkSymlinkSize(ctx, blkno, buf, h);
    if (h.i_dyn_features & OCFS2_INLINE_XATTR_FL) {
      await walkXattrList(ctx, listInlineXattrs(buf, vol.blockSize, h.i_xattr_inline_size, blkno), blkno, info, blkno);
    }
    if ((h.i_dyn_features & OCFS2_HAS_XATTR_FL) && h.i_xattr_loc) {
      const xb = await vol.readMetaBlock(h.i_xattr_loc, XATTR_BLOCK_CHECK_OFFSET);
      const block = decodeXattrBlock(xb, h.i_xattr_loc, vol.blockSize, { fsGeneration: vol.sb.fsGeneration });
      if (block.attrs) await walkXattrList(ctx, block.attrs, blkno, info, h.i_xattr_loc);
      if (block.tree) {
        const bpb = blocksPerXattrBucket(vol.blockSize);
        for (const ext of await walkExtents(ctx, block.tree.list, blkno, info, { holder: h.i_xattr_loc, hashed: true })) {
          const first = await vol.dev.readBlocks(ext.blkno, bpb);
          const nb = bucketsInUse(first, ext.blkno, ext.clusters, vol.clusterSize);
          for (let i = 0; i < nb; i++) {
            const bucket = i === 0 ? first : await vol.dev.readBlocks(ext.blkno + i * bpb, bpb);
            await walkXattrList(ctx, listXattrBucket(bucket, ext.blkno + i * bpb, vol.blockSize), blkno, info, ext.blkno + i * bpb);
          }
        }
      }
    }
    if ((h.i_dyn_features & OCFS2_INDEXED_DIR_FL) && h.i_dx_root) {
      const rb = await vol.readMetaBlock(h.i_dx_root, DX_ROOT_CHECK_OFFSET);
      const root = decodeDxRoot(rb, h.i_dx_root, { fsGeneration: vol.sb.fsGeneration, dirBlkno: blkno });
      if (root.list) await walkExtents(ctx, root.list, blkno, info, { holder: h.i_dx_root, hashed: true });
    }
  } catch (e) {
    if (!(e instanceof Ocfs2Error)) throw e;
    ctx.report('1', 'INODE_METADATA', blkno, `Inode ${blkno}: ${e.message}`, false);
  }
}

async function markLocalAllocsAndTruncateLogs(ctx: CheckContext): Promise<void> {
  const vol = ctx.vol;
  for (let s = 0; s < vol.maxSlots; s++) {
    try {
      const lb = vol.systemFile(systemFileName(LOCAL_ALLOC_SYSTEM_INODE, s));
      const { buf } = await vol.readInode(lb);
      const id1 = readId1Bitmap(buf);
      if (id1.i_total > 0) {
        const la = inodeLocalAlloc(buf, lb);
        const start = la.header.la_bm_off;
        // A window that does not fit was reported with the inode (localAllocProblems).
        if (id1.i_total <= la.bitmap.length * 8 && start + id1.i_total <= vol.sb.clusters) {
          for (let bit = 0; bit < id1.i_total; bit++) if (!testBit(la.bitmap, bit)) ctx.claim(start + bit, 1);
        }
      }
    } catch (e) { if (!(e instanceof Ocfs2Error)) throw e; }
    try {
      const tb = vol.systemFile(systemFileName(TRUNCATE_LOG_SYSTEM_INODE, s));
      const { buf } = await vol.readInode(tb);
      for (const r of inodeTruncateLog(buf, tb).recs) if (r.t_start) ctx.claim(r.t_start, r.t_clusters);
    } catch (e) { if (!(e instanceof Ocfs2Error)) throw e; }
  }
}

function backupSbClusters(ctx: CheckContext): Set<number> {
  const vol = ctx.vol;
  if (!(vol.sb.compat & OCFS2_FEATURE_COMPAT_BACKUP_SB)) return new Set();
  return new Set(backupSuperblockBlknos(vol.blockSize, vol.dev.blockCount).map((b) => Math.floor(b / vol.clusterBlocks)));
}

function desiredClusterBits(ctx: CheckContext, global: AllocatorInfo, g: AllocatorInfo['groups'][number]): Buffer {
  const start = globalGroupStart(ctx, global, g.blkno);
  const backups = backupSbClusters(ctx);
  const want = Buffer.from(g.bitmap);
  for (let bit = 0; bit < g.bits; bit++) {
    const c = start + bit;
    const on = ctx.isUsed(c) || (backups.has(c) && testBit(g.bitmap, bit));
    if (on) want[bit >> 3] = want[bit >> 3]! | (1 << (bit & 7));
    else want[bit >> 3] = want[bit >> 3]! & ~(1 << (bit & 7));
  }
  return want;
}

/** Compare what the inodes claim with the global bitmap (fsck's write_cluster_alloc). */
async function checkClusterBitmap(ctx: CheckContext, global: AllocatorInfo): Promise<void> {
  const runs: Array<{ from: number; to: number; inUse: boolean }> = [];
  const covered = new Uint8Array(Math.ceil(ctx.vol.sb.clusters / 8));
  const groups = [...global.groups].sort((a, b) => a.blkno - b.blkno);
  for (const g of groups) {
    const start = globalGroupStart(ctx, global, g.blkno);
    const want = desiredClusterBits(ctx, global, g);
    for (let bit = 0; bit < g.bits; bit++) {
      const c = start + bit;
      covered[c >> 3] = covered[c >> 3]! | (1 << (c & 7));
      const disk = testBit(g.bitmap, bit);
      const w = testBit(want, bit);
      if (disk === w) continue;
      const last = runs[runs.length - 1];
      if (last && last.to === c - 1 && last.inUse === w) last.to = c; else runs.push({ from: c, to: c, inUse: w });
    }
  }
  for (let c = 0; c < ctx.vol.sb.clusters; c++) {
    if (!((covered[c >> 3]! >> (c & 7)) & 1) && ctx.isUsed(c)) {
      const last = runs[runs.length - 1];
      if (last && last.to === c - 1 && last.inUse) last.to = c; else runs.push({ from: c, to: c, inUse: true });
    }
  }
  for (const r of runs) {
    const what = r.from === r.to ? `Cluster ${r.from} is` : `Clusters ${r.from}-${r.to} are`;
    ctx.report('1', 'CLUSTER_ALLOC_BIT', r.from,
      `${what} ${r.inUse ? "in use but isn't set in the global cluster bitmap" : "marked in the global cluster bitmap but isn't in use"}`, true);
  }
}

/** Pass 1b-1d: name the owners of clusters claimed more than once (repair: not in the safe set). */
async function reportDuplicates(ctx: CheckContext): Promise<void> {
  ctx.say('Pass 1b: Determining ownership of multiply-claimed clusters');
  const owners = new Map<number, number[]>();
  for (const info of ctx.inodes.values()) {
    for (const [c, n] of info.runs) {
      for (let i = c; i < c + n; i++) {
        if (!ctx.dups.has(i)) continue;
        const l = owners.get(i) ?? [];
        if (!l.includes(info.blkno)) l.push(info.blkno);
        owners.set(i, l);
      }
    }
  }
  const byInode = new Map<number, number[]>();
  for (const [c, l] of owners) for (const ino of l) byInode.set(ino, [...(byInode.get(ino) ?? []), c]);
  for (const c of ctx.dups) if (!owners.has(c)) ctx.report('1b', 'DUP_CLUSTERS', c, `Cluster ${c} is claimed more than once by allocator metadata`, false);
  for (const [ino, cs] of byInode) {
    const info = ctx.inodes.get(ino)!;
    const code = info.system ? 'DUP_CLUSTERS_SYSFILE_CLONE' : 'DUP_CLUSTERS_CLONE';
    ctx.report('1b', code, ino, `Inode ${ino} shares ${cs.length} cluster(s) (first ${Math.min(...cs)}) with other inodes`, false);
  }
}

/* ---- pass 2: directory entries -------------------------------------------------------------- */

interface DirBlockRef { blkno: number; area: DirArea; checkOffset: number | null; trailer: boolean }

function dirBlockRefs(ctx: CheckContext, d: InodeInfo, inodeBuf: Buffer): DirBlockRef[] {
  const vol = ctx.vol;
  if (d.inline) {
    const { count } = inodeInlineData(inodeBuf, d.blkno);
    const size = Math.min(count, Number(DinodeHeader.decode(inodeBuf, 0).i_size));
    return [{ blkno: d.blkno, area: { blkno: d.blkno, start: INLINE_DATA_OFFSET, size }, checkOffset: CHECK_OFFSET.dinode, trailer: false }];
  }
  const trailer = dirHasTrailer({ inlineData: false, metaEcc: vol.metaEcc, indexedDir: (d.dynFeatures & OCFS2_INDEXED_DIR_FL) !== 0 });
  return d.dirBlocks.map((b) => ({ blkno: b, area: dirBlockArea(b, vol.blockSize, trailer), checkOffset: trailer ? dirBlockCheckOffset(vol.blockSize) : null, trailer }));
}

/**
 * The first problem of an indexed directory's dx tree, or null: the root and
 * every dx leaf block must pass metaecc and its validator (fsck.ocfs2 treats
 * an unreadable index as a missing one, DX_TREE_MISSING, and rebuilds it).
 */
async function dxTreeProblem(ctx: CheckContext, dirBlkno: number, ibuf: Buffer): Promise<string | null> {
  const vol = ctx.vol;
  const rootBlk = DinodeHeader.decode(ibuf, 0).i_dx_root;
  const block = async (b: number, checkOffset: number): Promise<Buffer> => {
    if (b <= 2 || b >= vol.dev.blockCount) throw new Ocfs2CorruptError(b, 'dx block outside the volume');
    const buf = Buffer.from(await vol.dev.readBlock(b));
    if (vol.metaEcc) verifyBlockCheck(buf, checkOffset, b);
    return buf;
  };
  try {
    const root = decodeDxRoot(await block(rootBlk, DX_ROOT_CHECK_OFFSET), rootBlk, { fsGeneration: vol.sb.fsGeneration, dirBlkno });
    if (!root.list) return null;
    for (const l of await allLeafExtents(vol, root.list, rootBlk, { hashed: true })) {
      for (let i = 0; i < l.clusters * vol.clusterBlocks; i++) {
        decodeDxLeaf(await block(l.blkno + i, DX_LEAF_CHECK_OFFSET), l.blkno + i, { fsGeneration: vol.sb.fsGeneration });
      }
    }
    return null;
  } catch (e) {
    if (e instanceof Ocfs2Error) return e.message;
    throw e;
  }
}

async function pass2(ctx: CheckContext): Promise<void> {
  const vol = ctx.vol;
  const orphanDirs = orphanDirBlknos(ctx);
  const indexedFeature = vol.indexedDirs;
  for (const d of [...ctx.inodes.values()].filter((i) => i.isDir)) {
    // Raw read: a directory whose inode has a bad block check (reported in pass 1) is still walked.
    const ibuf = await vol.dev.readBlock(d.blkno);
    const indexed = (d.dynFeatures & OCFS2_INDEXED_DIR_FL) !== 0;
    if (indexedFeature && !d.inline && !indexed && !d.system) {
      ctx.report('2', 'DX_TREE_MISSING', d.blkno, `Directory ${d.blkno} is missing index`, false);
    }
    if (indexed && !d.system) {
      const bad = await dxTreeProblem(ctx, d.blkno, ibuf);
      if (bad) ctx.report('2', 'DX_TREE_MISSING', d.blkno, `Directory ${d.blkno} is missing index (${bad})`, false);
    }
    let refs: DirBlockRef[];
    try { refs = dirBlockRefs(ctx, d, ibuf); } catch (e) {
      ctx.report('2', 'DIR_ZERO', d.blkno, `Directory ${d.blkno}: ${(e as Error).message}`, false);
      continue;
    }
    const names = new Set<string>();
    let index = 0;
    for (const ref of refs) {
      const raw = await vol.dev.readBlock(ref.blkno);
      const buf = Buffer.from(raw);
      let changed = false;
      if (vol.metaEcc && ref.trailer) {
        try { verifyBlockCheck(Buffer.from(buf), ref.checkOffset!, ref.blkno); } catch {
          const fix = ctx.report('2', 'BAD_CRC32', ref.blkno, `Directory block ${ref.blkno} of directory ${d.blkno} has a bad block check (CRC32)`, true);
          if (fix) changed = true;
        }
      }
      let entries;
      try { entries = [...iterateDirEntries(buf, ref.area)]; } catch (e) {
        ctx.report('2', 'DIRENT_LENGTH', ref.blkno, `Directory block ${ref.blkno} of directory ${d.blkno}: ${(e as Error).message}`, false);
        continue;
      }
      for (const e of entries) {
        if (e.inode === 0) continue;
        const pos = index++;
        const name = e.name.toString('latin1');
        const isDot = name === '.';
        const isDotDot = name === '..';
        if (pos === 0 && !isDot) ctx.report('2', 'DIRENT_DOTTY_DUP', d.blkno, `Directory ${d.blkno} doesn't start with '.'`, false);
        if (isDot && e.inode !== d.blkno) {
          const fix = ctx.report('2', 'DIRENT_DOT_INODE', ref.blkno, `The '.' entry in directory inode ${d.blkno} points to inode ${e.inode} instead of itself`, true);
          if (fix) { buf.writeBigUInt64LE(BigInt(d.blkno), e.offset); changed = true; }
          e.inode = d.blkno;
        }
        const badName = direntNameProblem(e.name);
        if (badName) ctx.report('2', 'DIRENT_NAME_CHARS', ref.blkno, `Directory entry at offset ${e.offset} of block ${ref.blkno} in directory ${d.blkno}: ${badName}`, false);
        if (names.has(name)) ctx.report('2', 'DIRENT_DUPLICATE', ref.blkno, `Duplicate directory entry '${name}' in directory ${d.blkno}`, false);
        names.add(name);
        if (e.inode >= vol.dev.blockCount || e.inode <= 2) {
          const fix = ctx.report('2', 'DIRENT_INODE_RANGE', ref.blkno, `Directory entry '${name}' refers to inode number ${e.rawInode} which is out of range`, !indexed);
          if (fix) { removeDirEntry(buf, ref.area, e.offset); changed = true; continue; }
          // Left in place, fsck.ocfs2 ends this block's walk (pass2.c: fix_dirent_filetype's bitmap test of the
          // out-of-range number fails, `goto out`): the entries after it are not counted, as here.
          break;
        }
        const target = ctx.inodes.get(e.inode);
        if (!target) {
          const fix = ctx.report('2', 'DIRENT_INODE_FREE', ref.blkno, `Directory entry '${name}' in directory ${d.blkno} refers to inode number ${e.inode} which isn't allocated`, !indexed && !isDot && !isDotDot);
          if (fix) { removeDirEntry(buf, ref.area, e.offset); changed = true; }
          continue;
        }
        const ft = fileTypeOfMode(target.mode);
        if (e.fileType !== ft && ft !== OCFS2_FT_UNKNOWN) {
          const fix = ctx.report('2', 'DIRENT_TYPE', ref.blkno, `Directory entry '${name}' in directory ${d.blkno} has file type ${e.fileType} but inode ${e.inode} has type ${ft}`, true);
          if (fix) { buf[e.offset + 11] = ft; changed = true; }
        }
        target.refs++;
        if (orphanDirs.has(d.blkno) && !isDot && !isDotDot) target.orphan = true;
        if (isDotDot) { d.dotdot = e.inode; continue; }
        if (!isDot && target.isDir && e.fileType === OCFS2_FT_DIR || (!isDot && target.isDir)) {
          if (target.parent && target.parent !== d.blkno) {
            ctx.report('2', 'DIR_PARENT_DUP', e.inode, `Directory inode ${e.inode} is referenced by both ${target.parent} and ${d.blkno}`, false);
          } else target.parent = d.blkno;
        }
      }
      if (changed) {
        if (ref.trailer) {
          const off = dirTrailerOffset(vol.blockSize) + DirBlockTrailer.offsetOf('db_free_rec_len');
          buf.writeUInt16LE(largestDirHole(buf, ref.area), off);
        }
        await ctx.tm.run(async (tx) => { tx.writeMeta(ref.blkno, buf, ref.checkOffset); });
      }
    }
  }
}

function orphanDirBlknos(ctx: CheckContext): Set<number> {
  const out = new Set<number>();
  for (let s = 0; s < ctx.vol.maxSlots; s++) {
    try { out.add(ctx.vol.systemFile(systemFileName(ORPHAN_DIR_SYSTEM_INODE, s))); } catch { /* missing */ }
  }
  return out;
}

/* ---- pass 3: connectivity --------------------------------------------------------------------- */

async function lostAndFound(ctx: CheckContext): Promise<InodeInfo | undefined> {
  const root = ctx.inodes.get(ctx.vol.rootBlkno);
  if (!root) return undefined;
  const { lookupName } = await import('../directory');
  const ib = await ctx.vol.readInode(root.blkno);
  const e = await lookupName(ctx.vol, ib, Buffer.from('lost+found'));
  return e ? ctx.inodes.get(e.inode) : undefined;
}

/** Add an entry "#ino" to lost+found (inline or an existing non-indexed block with room). */
async function reconnect(ctx: CheckContext, lf: InodeInfo, child: InodeInfo): Promise<boolean> {
  const vol = ctx.vol;
  if (lf.dynFeatures & OCFS2_INDEXED_DIR_FL) return false;
  const ibuf = await vol.dev.readBlock(lf.blkno);
  for (const ref of dirBlockRefs(ctx, lf, ibuf)) {
    const buf = Buffer.from(await vol.dev.readBlock(ref.blkno));
    const at = insertDirEntry(buf, ref.area, { inode: child.blkno, fileType: fileTypeOfMode(child.mode), name: Buffer.from(`#${child.blkno}`) });
    if (at === undefined) continue;
    if (ref.trailer) buf.writeUInt16LE(largestDirHole(buf, ref.area), dirTrailerOffset(vol.blockSize) + DirBlockTrailer.offsetOf('db_free_rec_len'));
    await ctx.tm.run(async (tx) => { tx.writeMeta(ref.blkno, buf, ref.checkOffset); });
    child.refs++;
    if (child.isDir) {
      child.parent = lf.blkno;
      await setDotDot(ctx, child, lf.blkno);
    }
    return true;
  }
  return false;
}

async function setDotDot(ctx: CheckContext, d: InodeInfo, parent: number): Promise<void> {
  const vol = ctx.vol;
  const ibuf = await vol.dev.readBlock(d.blkno);
  for (const ref of dirBlockRefs(ctx, d, ibuf)) {
    const buf = Buffer.from(await vol.dev.readBlock(ref.blkno));
    for (const e of iterateDirEntries(buf, ref.area)) {
      if (e.inode !== 0 && e.name.toString('latin1') === '..') {
        const old = ctx.inodes.get(e.inode);
        if (old) old.refs--;
        buf.writeBigUInt64LE(BigInt(parent), e.offset);
        await ctx.tm.run(async (tx) => { tx.writeMeta(ref.blkno, buf, ref.checkOffset); });
        const p = ctx.inodes.get(parent);
        if (p) p.refs++;
        d.dotdot = parent;
        return;
      }
    }
  }
}

async function pass3(ctx: CheckContext): Promise<void> {
  const vol = ctx.vol;
  const root = ctx.inodes.get(vol.rootBlkno);
  if (!root || !root.isDir) { ctx.report('3', 'ROOT_DIR_MISSING', vol.rootBlkno, 'The root directory is missing', false); return; }
  const lf = await lostAndFound(ctx);
  if (!lf) ctx.report('3', 'LOSTFOUND_MISSING', vol.rootBlkno, '/lost+found does not exist', false);
  root.parent = root.blkno;
  for (const d of ctx.inodes.values()) {
    if (!d.isDir || d.system || d.blkno === vol.rootBlkno) continue;
    // Follow parents up to the root.
    const seen = new Set<number>();
    let cur: InodeInfo | undefined = d;
    let connected = false;
    while (cur && !seen.has(cur.blkno)) {
      if (cur.blkno === vol.rootBlkno) { connected = true; break; }
      seen.add(cur.blkno);
      cur = cur.parent ? ctx.inodes.get(cur.parent) : undefined;
    }
    if (!connected && d.parent === 0 && !d.orphan) {
      const fix = ctx.report('3', 'DIR_NOT_CONNECTED', d.blkno, `Directory inode ${d.blkno} isn't connected to the filesystem`, lf !== undefined);
      if (fix && lf && !(await reconnect(ctx, lf, d))) {
        ctx.problems[ctx.problems.length - 1]!.fixed = false;
      }
      continue;
    }
    if (d.parent && d.dotdot !== d.parent && !d.orphan) {
      const fix = ctx.report('3', 'DIR_DOTDOT', d.blkno, `Directory inode ${d.blkno} is referenced by a dirent in directory ${d.parent} but its '..' entry points to ${d.dotdot}`, true);
      if (fix) await setDotDot(ctx, d, d.parent);
    }
  }
}

/* ---- pass 4 ------------------------------------------------------------------------------------ */

async function pass4a(ctx: CheckContext): Promise<void> {
  const vol = ctx.vol;
  for (const od of orphanDirBlknos(ctx)) {
    const d = ctx.inodes.get(od);
    if (!d) { ctx.report('4a', 'ORPHAN_DIR_MISSING', od, `Orphan directory ${od} is not a valid inode`, false); continue; }
    const ibuf = await vol.dev.readBlock(od);
    for (const ref of dirBlockRefs(ctx, d, ibuf)) {
      const buf = Buffer.from(await vol.dev.readBlock(ref.blkno));
      let changed = false;
      for (const e of [...iterateDirEntries(buf, ref.area)]) {
        const name = e.name.toString('latin1');
        if (e.inode === 0 || name === '.' || name === '..') continue;
        if (!ctx.repair) {
          ctx.say(`** Skipping orphan dir replay because -n was given (orphan inode ${e.inode} in ${od}).`);
          continue;
        }
        const fix = ctx.report('4a', 'INODE_ORPHANED', e.inode, `Inode ${e.inode} was found in the orphan directory ${od}: deleting it`, true);
        if (!fix) continue;
        const victim = ctx.inodes.get(e.inode);
        if (victim) await deleteInode(ctx, victim);
        removeDirEntry(buf, ref.area, e.offset);
        d.refs = Math.max(0, d.refs - (victim?.isDir ? 1 : 0));
        changed = true;
      }
      if (changed) {
        if (ref.trailer) buf.writeUInt16LE(largestDirHole(buf, ref.area), dirTrailerOffset(vol.blockSize) + DirBlockTrailer.offsetOf('db_free_rec_len'));
        await ctx.tm.run(async (tx) => { tx.writeMeta(ref.blkno, buf, ref.checkOffset); });
      }
    }
  }
}

/** Free an orphan: its clusters go back (the allocator write-back clears them), the inode becomes invalid. */
async function deleteInode(ctx: CheckContext, info: InodeInfo): Promise<void> {
  for (const [c, n] of info.runs) ctx.unclaim(c, n);
  ctx.inodes.delete(info.blkno);
  const buf = Buffer.from(await ctx.vol.dev.readBlock(info.blkno));
  const h = DinodeHeader.decode(buf, 0);
  h.i_flags = (h.i_flags & ~(OCFS2_VALID_FL | OCFS2_ORPHANED_FL)) >>> 0;
  setLinksCount(h, 0);
  h.i_dtime = Math.floor(Date.now() / 1000);
  DinodeHeader.encode(h, buf, 0);
  await ctx.tm.run(async (tx) => { tx.writeMeta(info.blkno, buf, CHECK_OFFSET.dinode); });
}

async function pass4b(ctx: CheckContext): Promise<void> {
  const lf = await lostAndFound(ctx);
  for (const info of [...ctx.inodes.values()]) {
    if (info.refs !== 0 || info.orphan) continue;
    const fix = ctx.report('4b', 'INODE_NOT_CONNECTED', info.blkno, `Inode ${info.blkno} isn't referenced by any directory entries`, lf !== undefined && !info.system);
    if (fix && lf && !(await reconnect(ctx, lf, info))) ctx.problems[ctx.problems.length - 1]!.fixed = false;
  }
  for (const info of ctx.inodes.values()) {
    if (info.orphan) continue;
    if (info.refs === info.nlink) continue;
    // An inode nothing names keeps its count (a failed reconnect must not zero it).
    const fix = ctx.report('4b', 'INODE_COUNT', info.blkno, `Inode ${info.blkno} has a link count of ${info.nlink} on disk but directory entry references come to ${info.refs}`, info.refs > 0);
    if (!fix) continue;
    const buf = Buffer.from(await ctx.vol.dev.readBlock(info.blkno));
    const h = DinodeHeader.decode(buf, 0);
    setLinksCount(h, info.refs);
    DinodeHeader.encode(h, buf, 0);
    await ctx.tm.run(async (tx) => { tx.writeMeta(info.blkno, buf, CHECK_OFFSET.dinode); });
    info.nlink = info.refs;
  }
}

