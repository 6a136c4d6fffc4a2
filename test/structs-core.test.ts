/**
 * Core OCFS2 structures decoded from kernel-written reference images and
 * compared with what debugfs.ocfs2 prints for the same blocks.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pristineImage, readManifest, type ReferenceImage } from './lib/refimages';
import { Ocfs2CorruptError, Ocfs2FormatError } from '../src/libocfs2/errors';
import {
  OCFS2_BITMAP_FL, OCFS2_CHAIN_FL, OCFS2_DEALLOC_FL, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP,
  OCFS2_INLINE_DATA_FL, OCFS2_JOURNAL_DIRTY_FL, OCFS2_JOURNAL_FL, OCFS2_LOCAL_ALLOC_FL, OCFS2_SYSTEM_FL,
  OCFS2_VALID_FL, OCFS2_INDEXED_DIR_FL, OCFS2_HAS_XATTR_FL, S_IFMT, S_IFLNK, S_IFCHR, S_IFBLK,
  dynFeatureNames, extentFlagNames, featureNames, inodeFlagNames, fileTypeFromMode, modeTypeFromFileType,
  OCFS2_FT_SYMLINK, OCFS2_FT_DIR, tunefsFlagNames,
} from '../src/libocfs2/constants';
import {
  DinodeHeader, DINODE_ID2_OFFSET, Id1Bitmap, Id1Dev, Id1Journal, InlineDataHeader, decodeInode, decodeRdev,
  encodeRdev, extentRecsPerInode, chainRecsPerInode, fastSymlinkTarget, inlineXattrArea, inodeChainList,
  inodeExtentList, inodeInlineData, inodeLocalAlloc, inodeTruncateLog, readId1Bitmap, readId1Journal, readRdev,
  validateDinode, writeInodeChainList, writeInodeExtentList, writeInodeLocalAlloc, writeInodeTruncateLog,
  maxInlineData, setLinksCount, inodeFromHeader,
} from '../src/libocfs2/structs/dinode';
import {
  SuperBlock, backupSuperblockBlkno, backupSuperblockBlknos, decodeSuperblock, probeSuperblock, SUPERBLOCK_OFFSET,
  type ProbeResult,
} from '../src/libocfs2/structs/superblock';
import {
  ExtentBlockHeader, ExtentListHeader, ExtentRecInterior, ExtentRecLeaf, decodeExtentBlock, encodeExtentBlock,
  extentRecsPerExtentBlock, validateExtentBlock, type ExtentList,
} from '../src/libocfs2/structs/extent';
import {
  ChainListHeader, ChainRec, GroupDescHeader, countSetBits, decodeGroupDesc, encodeGroupDesc, longestZeroRun,
  testBit, setBit, clearBit, findNextSetBit, findNextZeroBit, groupBitmapSize, validateGroupDesc,
} from '../src/libocfs2/structs/group';
import { LocalAllocHeader } from '../src/libocfs2/structs/localalloc';
import { TruncateLogHeader, TruncateRec, truncateRecsFitting } from '../src/libocfs2/structs/truncatelog';
import { ExtendedSlot, OldSlot, decodeSlotMap, encodeSlotMap, slotMapBytes, slotOfNode } from '../src/libocfs2/structs/slotmap';
import {
  RefcountBlockHeader, RefcountListHeader, RefcountRec, decodeRefcountBlock, encodeRefcountBlock,
  refcountRecsPerBlock, validateRefcountBlock,
} from '../src/libocfs2/structs/refcount';
import {
  SYSTEM_INODES, systemFileName, parseSystemFileName, allSystemFileNames, GLOBAL_BITMAP_SYSTEM_INODE,
  JOURNAL_SYSTEM_INODE, ORPHAN_DIR_SYSTEM_INODE, NUM_SYSTEM_INODES,
} from '../src/libocfs2/sysfiles';
import { BlockCheck, verifyBlockCheck } from '../src/libocfs2/blockcheck';
import {
  DiskDqHeader, DiskDqdbHeader, GlobalDiskDqblk, GlobalDiskDqinfo, LocalDiskDqblk, LocalDiskDqinfo, OCFS2_GLOBAL_QMAGICS,
  OCFS2_LOCAL_QMAGICS, OLQF_CLEAN, QUOTA_INFO_OFFSET, quotaCheckOffset,
} from '../src/libocfs2/structs/quota';

const IMAGES: ReferenceImage[] = ['local-4k', 'local-512-4k', 'cluster-1k-64k-max', 'cluster-4k-compat'];

/* ---- image access ------------------------------------------------------------ */

interface Vol {
  name: ReferenceImage;
  file: string;
  fd: number;
  bs: number;
  probe: ProbeResult;
  block(blkno: number): Buffer;
}

const vols = new Map<ReferenceImage, Vol>();

async function openVol(name: ReferenceImage): Promise<Vol> {
  const have = vols.get(name);
  if (have) return have;
  const file = pristineImage(name);
  const fd = fs.openSync(file, 'r');
  const readAt = async (off: number, len: number): Promise<Buffer> => {
    const b = Buffer.alloc(len);
    return b.subarray(0, fs.readSync(fd, b, 0, len, off));
  };
  const probe = await probeSuperblock(readAt);
  const bs = probe.blocksize;
  const v: Vol = {
    name, file, fd, bs, probe,
    block(blkno: number): Buffer {
      const b = Buffer.alloc(bs);
      fs.readSync(fd, b, 0, bs, blkno * bs);
      return b;
    },
  };
  vols.set(name, v);
  return v;
}

t.teardown(() => { for (const v of vols.values()) fs.closeSync(v.fd); });

/* ---- debugfs.ocfs2 output ------------------------------------------------------------ */

/** Run several debugfs commands in one process; returns each command's output. */
function debugfs(file: string, cmds: string[]): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'structs-core-'));
  try {
    const cf = path.join(dir, 'cmds');
    fs.writeFileSync(cf, cmds.join('\n') + '\n');
    // debugfs.ocfs2 -f exits non-zero when a command fails (e.g. a path
    // missing on this volume); its output is still what we want.
    const r = spawnSync('timeout', ['60', 'debugfs.ocfs2', '-f', cf, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.error || r.status === 124 || r.signal) throw new Error(`debugfs.ocfs2 failed: ${r.error?.message ?? r.status ?? r.signal}`);
    const out = r.stdout;
    const parts = out.split(/^debugfs: .*$/m);
    parts.shift(); // the version banner
    if (parts.length !== cmds.length) throw new Error(`debugfs: ${parts.length} outputs for ${cmds.length} commands`);
    return parts;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function num(re: RegExp, text: string): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

function hexTime(s: string): number {
  return Number(BigInt.asIntN(64, BigInt(s)));
}

interface DbgList {
  eb?: { subAllocBit: number; subAllocSlot: number; blkno: number; nextLeaf: number; crc: number; ecc: number };
  depth: number; count: number; nextFree: number;
  recs: Array<{ cpos: number; clusters: number; blkno: number; flags?: number; flagNames?: string }>;
}

interface DbgGroup {
  chain: number; parent: number; generation: number; crc: number; ecc: number;
  blkno: number; total: number; used: number; free: number; contig: number; size: number;
}

interface DbgStat {
  inode: number; perm: number; generation: number; fsGeneration: number; crc: number; ecc: number;
  type: string; attr: number; flags: string[]; dyn: number; dynNames: string[];
  xattrBlock?: number; xattrInlineSize?: number;
  uid: number; gid: number; size: number; links: number; clusters: number;
  ctime: [number, number]; atime: [number, number]; mtime: [number, number]; dtime: number;
  refcountBlock: number; lastExtblk: number; orphanSlot: number;
  subAllocSlot: number; subAllocBit: number; subAllocGroup: number;
  bitmapTotal?: number; bitmapUsed?: number; journalDirty?: boolean; recoveryGeneration?: number;
  inlineDataMax?: number; indexedTreeRoot?: number; localBitmapOffset?: number; localBitmapSize?: number;
  tlTotal?: number; tlUsed?: number; tlRecs: Array<[number, number]>;
  chain?: { cpg: number; bpc: number; count: number; nextFree: number; recs: Array<{ total: number; used: number; free: number; blkno: number }> };
  groups: DbgGroup[];
  lists: DbgList[];
}

function parseStat(text: string): DbgStat {
  const need = (re: RegExp): number => {
    const v = num(re, text);
    if (v === undefined) throw new Error(`debugfs stat: no match for ${re}`);
    return v;
  };
  const time = (k: string): [number, number] => {
    const m = new RegExp(`\\t${k}: (0x[0-9a-f]+) (0x[0-9a-f]+) --`).exec(text);
    if (!m) throw new Error(`no ${k}`);
    return [hexTime(m[1]!), Number(m[2])];
  };
  const lines = text.split('\n').map((l) => l.trim());
  const typeLine = /Type: (.*?)   Attr: (0x[0-9a-f]+)   Flags: (.*)$/m.exec(text)!;
  const dynLine = /Dynamic Features: \((0x[0-9a-f]+)\) ?(.*)$/m.exec(text)!;
  const sub = /Sub Alloc Slot: (\S+)   Sub Alloc Bit: (\d+)(?:   Sub Alloc Group (\d+))?/.exec(text)!;
  const st: DbgStat = {
    inode: need(/Inode: (\d+)/), perm: parseInt(/Mode: (0[0-7]+)/.exec(text)![1]!, 8),
    generation: need(/\tInode: \d+ .*Generation: (\d+)/), fsGeneration: need(/FS Generation: (\d+)/),
    crc: parseInt(/CRC32: ([0-9a-f]+)/.exec(text)![1]!, 16), ecc: parseInt(/ECC: ([0-9a-f]+)/.exec(text)![1]!, 16),
    type: typeLine[1]!, attr: Number(typeLine[2]), flags: typeLine[3]!.trim().split(/\s+/).filter(Boolean),
    dyn: Number(dynLine[1]), dynNames: dynLine[2]!.trim().split(/\s+/).filter(Boolean),
    xattrBlock: num(/Extended Attributes Block: (\d+)/, text),
    xattrInlineSize: num(/Extended Attributes Inline Size: (\d+)/, text),
    uid: need(/User: (\d+)/), gid: need(/Group: (\d+) \(/), size: need(/Group: \d+ \(.*?\)   Size: (\d+)/),
    links: need(/Links: (\d+)/), clusters: need(/Links: \d+   Clusters: (\d+)/),
    ctime: time('ctime'), atime: time('atime'), mtime: time('mtime'),
    dtime: hexTime(/dtime: (0x[0-9a-f]+)/.exec(text)![1]!),
    refcountBlock: need(/Refcount Block: (\d+)/), lastExtblk: need(/Last Extblk: (\d+)/),
    orphanSlot: need(/Orphan Slot: (-?\d+)/),
    subAllocSlot: sub[1] === 'Global' ? -1 : Number(sub[1]), subAllocBit: Number(sub[2]), subAllocGroup: Number(sub[3] ?? 0),
    bitmapTotal: num(/Bitmap Total: (\d+)/, text), bitmapUsed: num(/Bitmap Total: \d+   Used: (\d+)/, text),
    journalDirty: /Journal Flags: /.test(text) ? /Journal Flags: Dirty/.test(text) : undefined,
    recoveryGeneration: num(/Recovery Generation: (\d+)/, text),
    inlineDataMax: num(/Inline Data Max: (\d+)/, text), indexedTreeRoot: num(/Indexed Tree Root: (\d+)/, text),
    localBitmapOffset: num(/Local Bitmap Offset: (\d+)/, text), localBitmapSize: num(/Local Bitmap Offset: \d+   Size: (\d+)/, text),
    tlTotal: num(/Total Records: (\d+)/, text), tlUsed: num(/Total Records: \d+   Used: (\d+)/, text), tlRecs: [],
    groups: [], lists: [],
  };
  // Walk the rest line by line: extent lists (with extent block headers),
  // the chain list and group tables, truncate records.
  let cur: DbgList | undefined;
  let pendingEb: DbgList['eb'] | undefined;
  let mode: 'none' | 'list' | 'chain' | 'group' | 'tl' = 'none';
  let group: Partial<DbgGroup> = {};
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    let m: RegExpExecArray | null;
    if ((m = /^SubAlloc Bit: (\d+)   SubAlloc Slot: (\S+)/.exec(l))) {
      const m2 = /^Blknum: (\d+)   Next Leaf: (\d+)/.exec(lines[i + 1]!)!;
      const m3 = /^CRC32: ([0-9a-f]+)   ECC: ([0-9a-f]+)/.exec(lines[i + 2]!)!;
      pendingEb = { subAllocBit: Number(m[1]), subAllocSlot: m[2] === 'Global' ? -1 : Number(m[2]),
        blkno: Number(m2[1]), nextLeaf: Number(m2[2]), crc: parseInt(m3[1]!, 16), ecc: parseInt(m3[2]!, 16) };
      i += 2;
    } else if ((m = /^Tree Depth: (\d+)   Count: (\d+)   Next Free Rec: (\d+)/.exec(l))) {
      cur = { eb: pendingEb, depth: Number(m[1]), count: Number(m[2]), nextFree: Number(m[3]), recs: [] };
      pendingEb = undefined;
      st.lists.push(cur);
      mode = 'list';
    } else if ((m = /^Clusters per Group: (\d+)   Bits per Cluster: (\d+)/.exec(l))) {
      const m2 = /^Count: (\d+)   Next Free Rec: (\d+)/.exec(lines[i + 1]!)!;
      st.chain = { cpg: Number(m[1]), bpc: Number(m[2]), count: Number(m2[1]), nextFree: Number(m2[2]), recs: [] };
      i++;
      mode = 'chain';
    } else if ((m = /^Group Chain: (\d+)   Parent Inode: (\d+)  Generation: (\d+)/.exec(l))) {
      const m2 = /^CRC32: ([0-9a-f]+)   ECC: ([0-9a-f]+)/.exec(lines[i + 1]!)!;
      group = { chain: Number(m[1]), parent: Number(m[2]), generation: Number(m[3]), crc: parseInt(m2[1]!, 16), ecc: parseInt(m2[2]!, 16) };
      i++;
      mode = 'group';
    } else if (/^Total Records:/.test(l)) {
      mode = 'tl';
    } else if (/^##/.test(l) || l === '') {
      continue;
    } else if (mode === 'list' && cur && (m = /^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(0x[0-9a-f]+)\s*(.*))?$/.exec(l))) {
      cur.recs.push({ cpos: Number(m[2]), clusters: Number(m[3]), blkno: Number(m[4]),
        flags: m[5] === undefined ? undefined : Number(m[5]), flagNames: m[6]?.trim() });
    } else if (mode === 'chain' && st.chain && (m = /^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(l))) {
      st.chain.recs.push({ total: Number(m[2]), used: Number(m[3]), free: Number(m[4]), blkno: Number(m[5]) });
    } else if (mode === 'group' && (m = /^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(l))) {
      st.groups.push({ ...group, blkno: Number(m[2]), total: Number(m[3]), used: Number(m[4]), free: Number(m[5]),
        contig: Number(m[6]), size: Number(m[7]) } as DbgGroup);
    } else if (mode === 'tl' && (m = /^(\d+)\s+(\d+)\s+(\d+)$/.exec(l))) {
      st.tlRecs.push([Number(m[2]), Number(m[3])]);
    }
  }
  return st;
}

const PATHS = [
  '/', '/small/s37', '/small/s2000', '/small/empty', '/small/inline-max', '/small/inline-max-plus1',
  '/random-1m.bin', '/big/pattern-8m.bin', '/sparse/sparse-4g.bin', '/frag/holes.bin', '/frag/ileave-a.bin',
  '/unwritten/prealloc.bin', '/unwritten/keep-size.bin', '/d3000', '/d5', '/deep', '/links/fast', '/links/long-300',
  '/links/long-4000', '/links/hard-a', '/special/char-1-3', '/special/block-7-0', '/special/fifo', '/times/past',
  '/times/pre-1970', '/times/max-ns', '/times/y2040', '/xattr/small', '/xattr/many', '/xattr/dir', '/perm/mode-4755',
  '/owner/file-65534', '/lost+found',
];

function systemPaths(maxSlots: number, quota: boolean): string[] {
  const out = ['//', '//bad_blocks', '//global_inode_alloc', '//slot_map', '//heartbeat', '//global_bitmap'];
  if (quota) out.push('//aquota.user', '//aquota.group');
  for (const s of [0, maxSlots - 1]) {
    for (const ty of ['orphan_dir', 'extent_alloc', 'inode_alloc', 'journal', 'local_alloc', 'truncate_log']) {
      out.push(`//${ty}:${String(s).padStart(4, '0')}`);
    }
  }
  return out;
}

/* ---- tests -------------------------------------------------------------------------------- */

t.test('struct sizes and layouts', async (t) => {
  t.equal(DinodeHeader.size, 0xc0, 'dinode header up to id2');
  t.equal(DinodeHeader.offsetOf('i_check'), 0x80);
  t.equal(DinodeHeader.offsetOf('id1'), 0xb8);
  t.equal(DinodeHeader.offsetOf('i_dx_root'), 0x88);
  t.equal(DinodeHeader.offsetOf('i_dio_orphaned_slot'), 0xa0);
  for (const s of [Id1Bitmap, Id1Journal, Id1Dev, InlineDataHeader, BlockCheck, TruncateLogHeader, TruncateRec, ExtendedSlot]) {
    t.equal(s.size, 8, s.name);
  }
  t.equal(OldSlot.size, 2);
  t.equal(SuperBlock.size, 0x140, 'superblock');
  t.equal(SUPERBLOCK_OFFSET + SuperBlock.size, 512, 'the superblock inode fits the smallest block');
  t.equal(SuperBlock.offsetOf('s_uuid') + SUPERBLOCK_OFFSET, 0x150);
  t.equal(SuperBlock.offsetOf('ci_cluster') + SUPERBLOCK_OFFSET, 0x168);
  t.equal(SuperBlock.offsetOf('s_dx_seed0') + SUPERBLOCK_OFFSET, 0x17c);
  t.equal(SuperBlock.offsetOf('s_reserved2') + SUPERBLOCK_OFFSET, 0x188);
  for (const s of [ExtentListHeader, ExtentRecLeaf, ExtentRecInterior, ChainListHeader, ChainRec, LocalAllocHeader,
    RefcountListHeader, RefcountRec]) t.equal(s.size, 16, s.name);
  t.equal(ExtentBlockHeader.size, 0x30, 'extent block header; h_list at 0x30');
  t.equal(GroupDescHeader.size, 0x40, 'group desc header; bitmap at 0x40');
  t.equal(GroupDescHeader.offsetOf('bg_check'), 0x30);
  t.equal(RefcountBlockHeader.size, 0x80, 'refcount header; union at 0x80');
  t.equal(RefcountBlockHeader.offsetOf('rf_check'), 0x20);
  // Capacities as the kernel's helpers compute them.
  t.equal(extentRecsPerInode(4096), 243);
  t.equal(extentRecsPerInode(4096, 256), 227);
  t.equal(chainRecsPerInode(512), 19);
  t.equal(extentRecsPerExtentBlock(4096), 252);
  t.equal(truncateRecsFitting(4096, DINODE_ID2_OFFSET), 487);
  t.equal(refcountRecsPerBlock(4096), 247);
  t.equal(maxInlineData(4096), 3896);
  t.equal(groupBitmapSize(4096, false, true), 4032);
  t.equal(groupBitmapSize(4096, true, true), 256);
});

t.test('constants: names as debugfs prints them', async (t) => {
  t.same(featureNames(0x3, 0, 0), ['backup-super', 'strict-journal-super']);
  t.same(featureNames(0, 0xff50, 0), ['sparse', 'extended-slotmap', 'inline-data', 'metaecc', 'xattr', 'indexed-dirs',
    'refcount', 'discontig-bg', 'clusterinfo', 'append-dio']);
  t.same(featureNames(0, 0, 0x7), ['unwritten', 'usrquota', 'grpquota']);
  t.same(featureNames(0x4, 0, 0), ['unknown']);
  t.same(inodeFlagNames(OCFS2_VALID_FL | OCFS2_SYSTEM_FL | OCFS2_LOCAL_ALLOC_FL | OCFS2_BITMAP_FL),
    ['Valid', 'System', 'Localalloc', 'Allocbitmap']);
  t.same(dynFeatureNames(0x7), ['InlineData', 'HasXattr', 'InlineXattr']);
  t.same(extentFlagNames(1), ['Unwritten']);
  t.same(tunefsFlagNames(0), []);
  t.equal(fileTypeFromMode(S_IFLNK | 0o777), OCFS2_FT_SYMLINK);
  t.equal(modeTypeFromFileType(OCFS2_FT_DIR), 0o040000);
  t.equal(decodeRdev(encodeRdev(7, 300)).minor, 300);
  const h = DinodeHeader.zero();
  setLinksCount(h, 70000);
  t.equal(inodeFromHeader(h).nlink, 70000, 'links above 65535 use i_links_count_hi');
});

t.test('system inode table', async (t) => {
  t.equal(SYSTEM_INODES.length, NUM_SYSTEM_INODES);
  t.equal(systemFileName(GLOBAL_BITMAP_SYSTEM_INODE), 'global_bitmap');
  t.equal(systemFileName(JOURNAL_SYSTEM_INODE, 3), 'journal:0003');
  t.throws(() => systemFileName(ORPHAN_DIR_SYSTEM_INODE));
  t.same(parseSystemFileName('inode_alloc:0007'), { type: 9, slot: 7 });
  t.same(parseSystemFileName('aquota.user'), { type: 5, slot: null });
  t.equal(parseSystemFileName('journal:7'), null);
  // The real system directory lists exactly these names (debugfs "ls //").
  for (const name of IMAGES) {
    const v = await openVol(name);
    const sb = v.probe.sb;
    const [ls] = debugfs(v.file, ['ls //']);
    const names = ls!.split('\n').map((l) => l.trim().split(/\s+/).at(-1)!).filter((n) => n && n !== '.' && n !== '..');
    t.same(names.sort(), allSystemFileNames(sb.raw.s_max_slots, { usrquota: !!(sb.roCompat & 2), grpquota: !!(sb.roCompat & 4) }).sort(), `${name}: system dir`);
  }
});

t.test('superblock vs debugfs stats', async (t) => {
  for (const name of IMAGES) {
    const v = await openVol(name);
    const sb = v.probe.sb;
    const [stats] = debugfs(v.file, ['stats']);
    const s = stats!;
    t.equal(v.bs, 2 ** num(/Block Size Bits: (\d+)/, s)!, `${name}: block size`);
    t.equal(v.probe.blkno, 2);
    t.equal(sb.raw.s_clustersize_bits, num(/Cluster Size Bits: (\d+)/, s), `${name}: cluster bits`);
    t.equal(`${sb.raw.s_major_rev_level}.${sb.raw.s_minor_rev_level}`, /Revision: (\S+)/.exec(s)![1]);
    t.equal(sb.raw.s_max_mnt_count, num(/Max Mount Count: (\d+)/, s));
    t.equal(sb.raw.s_lastcheck > 0, true);
    const comp = /Feature Compat: (\d+) ?(.*)$/m.exec(s)!;
    t.equal(sb.compat, Number(comp[1]));
    t.same(featureNames(sb.compat, 0, 0), comp[2]!.trim().split(/\s+/).filter(Boolean), `${name}: compat names`);
    const inc = /Feature Incompat: (\d+) ?(.*)$/m.exec(s)!;
    t.equal(sb.incompat, Number(inc[1]));
    t.same(featureNames(0, sb.incompat, 0), inc[2]!.trim().split(/\s+/).filter(Boolean), `${name}: incompat names`);
    const ro = /Feature RO compat: (\d+) ?(.*)$/m.exec(s)!;
    t.equal(sb.roCompat, Number(ro[1]));
    t.same(featureNames(0, 0, sb.roCompat), ro[2]!.trim().split(/\s+/).filter(Boolean), `${name}: ro names`);
    t.equal(sb.raw.s_tunefs_flag, num(/Tunefs Incomplete: (\d+)/, s));
    t.equal(sb.raw.s_root_blkno, num(/Root Blknum: (\d+)/, s));
    t.equal(sb.raw.s_system_dir_blkno, num(/System Dir Blknum: (\d+)/, s));
    t.equal(sb.raw.s_first_cluster_group, num(/First Cluster Group Blknum: (\d+)/, s));
    t.equal(sb.raw.s_max_slots, num(/Max Node Slots: (\d+)/, s));
    t.equal(sb.label, /Label: (.*)$/m.exec(s)![1]);
    t.equal(sb.uuidHex, /UUID: (\S+)/.exec(s)![1]);
    const xis = num(/Extended Attributes Inline Size: (\d+)/, s);
    if (xis !== undefined) t.equal(sb.raw.s_xattr_inline_size, xis);
    const hash = num(/Hash: (\d+)/, s);
    if (hash !== undefined) t.equal(sb.raw.s_uuid_hash, hash);
    const seeds = /DX Seeds: (\d+) (\d+) (\d+)/.exec(s);
    if (seeds) t.same(sb.dxSeed, [Number(seeds[1]), Number(seeds[2]), Number(seeds[3])], `${name}: dx seeds`);
    const stack = /Cluster stack: (.*)$/m.exec(s)![1]!.trim();
    if (sb.clusterInfoValid) {
      t.equal(sb.clusterStack, stack, `${name}: cluster stack`);
      t.equal(sb.clusterName, /Cluster name: (.*)$/m.exec(s)![1]!.trim());
    } else {
      t.equal(stack, 'classic o2cb', `${name}: no cluster info`);
    }
    t.equal(sb.clusterFlags, num(/Cluster flags: (\d+)/, s));
    t.equal(sb.fsGeneration, num(/FS Generation: (\d+)/, s));
    t.equal(sb.clusters, num(/Clusters: (\d+)/, s));
    t.equal(sb.inode.i_blkno, 2);
    t.same(inodeFlagNames(sb.inode.i_flags), /Flags: (.*)$/m.exec(s)![1]!.trim().split(/\s+/));
    t.equal(sb.raw.s_uuid_hash, num(/Hash: (\d+)/, s) ?? 0);
    // Round trip of the whole superblock region.
    const blk = v.probe.block;
    const out = Buffer.alloc(v.bs);
    DinodeHeader.encode(sb.inode, out, 0);
    SuperBlock.encode(sb.raw, out, SUPERBLOCK_OFFSET);
    t.ok(out.subarray(0, 512).equals(blk.subarray(0, 512)), `${name}: superblock round trip`);
  }
});

t.test('probeSuperblock on bad input, and backups on a fresh 2K-block volume', async (t) => {
  const zeros = async (_off: number, len: number): Promise<Buffer> => Buffer.alloc(len);
  await t.rejects(probeSuperblock(zeros), Ocfs2FormatError);
  await t.rejects(probeSuperblock(zeros), /not an OCFS2 volume/);
  // A good superblock with a wrong s_blocksize_bits is corruption, not "not OCFS2".
  const v = await openVol('local-4k');
  const bad = Buffer.from(v.probe.block);
  bad.writeUInt32LE(11, SUPERBLOCK_OFFSET + SuperBlock.offsetOf('s_blocksize_bits'));
  const reader = (blk: Buffer) => async (off: number, len: number): Promise<Buffer> =>
    (off === 2 * 4096 && len === 4096 ? Buffer.from(blk) : Buffer.alloc(len));
  await t.rejects(probeSuperblock(reader(bad)), Ocfs2CorruptError);
  const bad2 = Buffer.from(v.probe.block);
  bad2.writeUInt16LE(91, SUPERBLOCK_OFFSET + 2);
  await t.rejects(probeSuperblock(reader(bad2)), /revision/);
  const p = await probeSuperblock(reader(Buffer.from(v.probe.block)));
  t.equal(p.blocksize, 4096);

  t.same(backupSuperblockBlknos(4096, 65536), [], 'a 256 MiB volume has no backups');
  t.same(backupSuperblockBlknos(4096, 2 ** 40 / 4096 + 1), [262144, 1048576, 4194304, 16777216, 67108864, 268435456]);
  t.equal(backupSuperblockBlkno(512, 0), 2 ** 21);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'structs-core-bk-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'bk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 1100 * 2 ** 20);
  execFileSync('timeout', ['120', 'mkfs.ocfs2', '-q', '-F', '-b', '2048', '-C', '8192', '-N', '2', '-M', 'local',
    '-J', 'size=4M', '-L', 'bk-test', img], { stdio: 'ignore' });
  const fd = fs.openSync(img, 'r');
  t.teardown(() => fs.closeSync(fd));
  const readAt = async (off: number, len: number): Promise<Buffer> => {
    const b = Buffer.alloc(len);
    return b.subarray(0, fs.readSync(fd, b, 0, len, off));
  };
  const main = await probeSuperblock(readAt);
  t.equal(main.blocksize, 2048);
  t.equal(main.sb.label, 'bk-test');
  const blocks = main.sb.clusters * (main.sb.clustersize / main.blocksize);
  t.same(backupSuperblockBlknos(2048, blocks), [2 ** 30 / 2048]);
  const bk = await probeSuperblock(readAt, { backup: 1 });
  t.equal(bk.blkno, 524288);
  t.equal(bk.sb.inode.i_blkno, 524288, 'a backup carries its own block number');
  t.equal(bk.sb.uuidHex, main.sb.uuidHex);
  await t.rejects(probeSuperblock(readAt, { backup: 2 }), Ocfs2FormatError, 'no second backup on 1.1 GiB');
});

t.test('dinodes vs debugfs stat', async (t) => {
  for (const name of IMAGES) {
    const v = await openVol(name);
    const sb = v.probe.sb;
    const manifest = new Map(readManifest(name).map((r) => [r.path, r]));
    const paths = [...PATHS, ...systemPaths(sb.raw.s_max_slots, (sb.roCompat & 6) !== 0)];
    const outs = debugfs(v.file, paths.map((p) => `stat ${p}`));
    let checked = 0;
    let eblocks = 0;
    for (let i = 0; i < paths.length; i++) {
      const p = paths[i]!;
      if (!/\tInode: \d+/.test(outs[i]!)) continue; // not on this volume (e.g. sparse files on max-compat)
      const d = parseStat(outs[i]!);
      const tag = `${name}:${p}`;
      const blk = v.block(d.inode);
      const h = validateDinode(blk, d.inode, sb.fsGeneration, { requireValid: true });
      const ino = decodeInode(blk, d.inode, sb.fsGeneration);
      t.equal(ino.mode & 0o777, d.perm, `${tag} mode`);
      t.equal(ino.generation, d.generation, `${tag} generation`);
      t.equal(ino.fsGeneration, d.fsGeneration);
      t.same([ino.check.crc32e, ino.check.ecc], [d.crc, d.ecc], `${tag} check`);
      t.equal(ino.attr, d.attr);
      t.same(inodeFlagNames(ino.flags), d.flags, `${tag} flags`);
      t.equal(ino.dynFeatures, d.dyn, `${tag} dyn features`);
      t.same(dynFeatureNames(ino.dynFeatures), d.dynNames);
      t.same([ino.uid, ino.gid, ino.size], [d.uid, d.gid, d.size], `${tag} uid gid size`);
      t.equal(h.i_links_count, d.links, `${tag} links`);
      t.equal(ino.clusters, d.clusters, `${tag} clusters`);
      t.same([ino.ctime.sec, ino.ctime.nsec], d.ctime, `${tag} ctime`);
      t.same([ino.atime.sec, ino.atime.nsec], d.atime);
      t.same([ino.mtime.sec, ino.mtime.nsec], d.mtime, `${tag} mtime`);
      t.equal(ino.dtime, d.dtime);
      t.equal(ino.refcountLoc, d.refcountBlock);
      t.equal(ino.lastEbBlk, d.lastExtblk, `${tag} last eb`);
      t.equal(h.i_orphaned_slot, d.orphanSlot);
      t.same([ino.suballocSlot, ino.suballocBit, ino.suballocLoc], [d.subAllocSlot, d.subAllocBit, d.subAllocGroup], `${tag} suballoc`);
      if (d.xattrBlock !== undefined) {
        t.equal(ino.xattrLoc, d.xattrBlock, `${tag} xattr block`);
        t.equal(h.i_xattr_inline_size, d.xattrInlineSize);
      }
      const xa = inlineXattrArea(blk, d.inode);
      if (ino.dynFeatures & 4) t.same(xa, { offset: v.bs - h.i_xattr_inline_size, size: h.i_xattr_inline_size });
      else t.equal(xa, null);
      if (ino.flags & OCFS2_BITMAP_FL) {
        const b = readId1Bitmap(blk);
        t.same([b.i_total, b.i_used], [d.bitmapTotal, d.bitmapUsed], `${tag} bitmap1`);
      }
      if (ino.flags & OCFS2_JOURNAL_FL) {
        const j = readId1Journal(blk);
        t.equal((j.ij_flags & OCFS2_JOURNAL_DIRTY_FL) !== 0, d.journalDirty, `${tag} journal dirty`);
        t.equal(j.ij_recovery_generation, d.recoveryGeneration);
      }
      if (ino.dynFeatures & OCFS2_INLINE_DATA_FL) {
        const id = inodeInlineData(blk, d.inode);
        t.equal(id.count, d.inlineDataMax, `${tag} inline id_count`);
        t.equal(id.count, maxInlineData(v.bs, ino.xattrInlineSize), `${tag} id_count is the max`);
        const m = manifest.get(p === '/' ? '/' : p);
        if (m && m.type === 'f') t.equal(ino.size, m.size);
      } else if (ino.dynFeatures & OCFS2_INDEXED_DIR_FL) {
        t.equal(ino.dxRoot, d.indexedTreeRoot, `${tag} dx root`);
      }
      if (ino.flags & OCFS2_LOCAL_ALLOC_FL) {
        const la = inodeLocalAlloc(blk, d.inode);
        t.same([la.header.la_bm_off, la.header.la_size], [d.localBitmapOffset, d.localBitmapSize], `${tag} local alloc`);
        const out = scrambled(blk, DINODE_ID2_OFFSET, DINODE_ID2_OFFSET + 16 + la.header.la_size);
        writeInodeLocalAlloc(out, la);
        t.ok(out.equals(blk), `${tag} local alloc round trip`);
      }
      if (ino.flags & OCFS2_DEALLOC_FL) {
        const tl = inodeTruncateLog(blk, d.inode);
        t.same([tl.count, tl.used], [d.tlTotal, d.tlUsed], `${tag} truncate log`);
        t.same(tl.recs.map((r) => [r.t_start, r.t_clusters]), d.tlRecs);
        const out = scrambled(blk, DINODE_ID2_OFFSET, DINODE_ID2_OFFSET + 8 + tl.used * 8);
        writeInodeTruncateLog(out, tl);
        t.ok(out.equals(blk), `${tag} truncate log round trip`);
      }
      if (ino.flags & OCFS2_CHAIN_FL) {
        const cl = inodeChainList(blk, d.inode);
        t.same([cl.cpg, cl.bpc, cl.count, cl.nextFreeRec], [d.chain!.cpg, d.chain!.bpc, d.chain!.count, d.chain!.nextFree], `${tag} chain list`);
        t.same(cl.recs.map((r) => ({ total: r.c_total, used: r.c_total - r.c_free, free: r.c_free, blkno: r.c_blkno })), d.chain!.recs, `${tag} chain recs`);
        t.equal(cl.count, chainRecsPerInode(v.bs));
        const out = scrambled(blk, DINODE_ID2_OFFSET, DINODE_ID2_OFFSET + 16 + cl.nextFreeRec * 16);
        writeInodeChainList(out, cl);
        t.ok(out.equals(blk), `${tag} chain list round trip`);
        // Follow every chain through its groups, as debugfs prints them.
        const groups = [];
        for (const [ci, rec] of cl.recs.entries()) {
          let total = 0; let free = 0;
          for (let g = rec.c_blkno; g !== 0;) {
            const gb = v.block(g);
            const gd = decodeGroupDesc(gb, g, { fsGeneration: sb.fsGeneration, parentDinode: d.inode });
            t.equal(gd.header.bg_chain, ci);
            t.equal(gd.header.bg_bits - countSetBits(gd.bitmap, gd.header.bg_bits), gd.header.bg_free_bits_count, `${tag} group ${g} free bits = clear bits`);
            groups.push({ chain: gd.header.bg_chain, parent: gd.header.bg_parent_dinode, generation: gd.header.bg_generation,
              crc: gb.readUInt32LE(0x30), ecc: gb.readUInt16LE(0x34), blkno: gd.header.bg_blkno, total: gd.header.bg_bits,
              used: gd.header.bg_bits - gd.header.bg_free_bits_count, free: gd.header.bg_free_bits_count,
              contig: longestZeroRun(gd.bitmap, gd.header.bg_bits), size: gd.header.bg_size });
            total += gd.header.bg_bits; free += gd.header.bg_free_bits_count;
            const out = encodeGroupDesc(gd, scrambled(gb, 0, 0x40 + gd.header.bg_size));
            t.ok(out.equals(gb), `${tag} group ${g} round trip`);
            g = gd.header.bg_next_group;
          }
          t.same([total, free], [rec.c_total, rec.c_free], `${tag} chain ${ci} totals`);
        }
        t.same(groups, d.groups, `${tag} groups`);
      } else if (!(ino.dynFeatures & OCFS2_INLINE_DATA_FL) && !(ino.flags & (OCFS2_LOCAL_ALLOC_FL | OCFS2_DEALLOC_FL))
        && !(ino.clusters === 0 && (ino.mode & S_IFMT) === S_IFLNK)
        && (ino.mode & S_IFMT) !== S_IFCHR && (ino.mode & S_IFMT) !== S_IFBLK && !(d.lists.length === 0)) {
        // Extent-mapped: the root list and every extent block debugfs walks.
        const root = inodeExtentList(blk, d.inode);
        const dl = d.lists[0]!;
        checkList(t, root, dl, `${tag} root list`);
        t.equal(root.count, extentRecsPerInode(v.bs, ino.xattrInlineSize), `${tag} l_count`);
        const out = scrambled(blk, DINODE_ID2_OFFSET, DINODE_ID2_OFFSET + 16 + root.nextFreeRec * 16);
        writeInodeExtentList(out, root);
        t.ok(out.equals(blk), `${tag} extent list round trip`);
        let leafClusters = 0;
        for (const l of d.lists) if (l.depth === 0) for (const r of l.recs) leafClusters += r.clusters;
        t.equal(leafClusters, ino.clusters, `${tag} leaf records cover i_clusters`);
        for (const sub of d.lists.slice(1)) {
          const eb = sub.eb!;
          const ebuf = v.block(eb.blkno);
          validateExtentBlock(ebuf, eb.blkno, { fsGeneration: sb.fsGeneration });
          const x = decodeExtentBlock(ebuf, eb.blkno, { fsGeneration: sb.fsGeneration });
          t.same([x.header.h_suballoc_bit, x.header.h_suballoc_slot, x.header.h_next_leaf_blk], [eb.subAllocBit, eb.subAllocSlot, eb.nextLeaf]);
          t.same([x.header.h_check.readUInt32LE(0), x.header.h_check.readUInt16LE(4)], [eb.crc, eb.ecc]);
          checkList(t, x.list, sub, `${tag} eb ${eb.blkno}`);
          t.equal(x.list.count, extentRecsPerExtentBlock(v.bs));
          t.ok(encodeExtentBlock(x, scrambled(ebuf, 0, 0x40 + x.list.nextFreeRec * 16)).equals(ebuf), `${tag} eb ${eb.blkno} round trip`);
          eblocks++;
        }
      }
      // Special inodes.
      const m = manifest.get(p);
      if (m && (m.type === 'c' || m.type === 'b')) {
        const dev = decodeRdev(readRdev(blk));
        t.equal(`${dev.major}:${dev.minor}`, m.rdev.replace(',', ':'), `${tag} rdev`);
      }
      if (m && m.type === 'l' && ino.clusters === 0) {
        t.equal(fastSymlinkTarget(blk, d.inode).toString('latin1'), Buffer.from(m.target, 'utf8').toString('latin1'), `${tag} fast symlink`);
      }
      if (m) {
        t.equal(ino.size, m.size, `${tag} size vs manifest`);
        t.equal(ino.nlink, m.nlink, `${tag} nlink vs manifest`);
        t.equal(`${ino.mtime.sec}.${String(ino.mtime.nsec).padStart(9, '0')}`, m.mtime, `${tag} mtime vs manifest`);
        t.equal((ino.mode & 0o7777).toString(8).padStart(4, '0'), m.mode, `${tag} mode vs manifest`);
      }
      // Header round trip.
      const out = DinodeHeader.encode(h, scrambled(blk, 0, DINODE_ID2_OFFSET));
      t.ok(out.subarray(0, DINODE_ID2_OFFSET).equals(blk.subarray(0, DINODE_ID2_OFFSET)), `${tag} header round trip`);
      t.equal(((ino.flags & OCFS2_SYSTEM_FL) !== 0), p.startsWith('//') || p === '/', `${tag} system flag`);
      checked++;
    }
    t.ok(checked >= 40, `${name}: ${checked} inodes compared`);
    if (name !== 'cluster-4k-compat') t.ok(eblocks >= 1, `${name}: ${eblocks} extent blocks compared`);
  }
});

/**
 * A copy of `blk` with [from, to) overwritten by junk: encoding a decoded
 * structure over it must give back the original bytes, so every byte of the
 * region is reproduced by the field tables and nothing outside is touched.
 */
function scrambled(blk: Buffer, from: number, to: number): Buffer {
  const out = Buffer.from(blk);
  for (let i = from; i < to; i++) out[i] = (i * 131 + 7) & 0xff ^ 0xa5;
  return out;
}

function checkList(t: Test, ours: ExtentList, d: DbgList, tag: string): void {
  t.same([ours.treeDepth, ours.count, ours.nextFreeRec], [d.depth, d.count, d.nextFree], `${tag} header`);
  t.same(ours.recs.map((r) => ({ cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, ...(d.depth === 0 ? { flags: r.flags, flagNames: extentFlagNames(r.flags).join(' ') } : {}) })),
    d.recs.map((r) => ({ cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, ...(d.depth === 0 ? { flags: r.flags, flagNames: r.flagNames } : {}) })), `${tag} records`);
}

t.test('slot map', async (t) => {
  for (const name of IMAGES) {
    const v = await openVol(name);
    const sb = v.probe.sb;
    const [st, sm] = debugfs(v.file, ['stat //slot_map', 'slotmap']);
    const d = parseStat(st!);
    const ino = decodeInode(v.block(d.inode), d.inode);
    const list = inodeExtentList(v.block(d.inode), d.inode);
    const data = Buffer.concat(list.recs.map((r) => {
      const b = Buffer.alloc(r.clusters * sb.clustersize);
      fs.readSync(v.fd, b, 0, b.length, r.blkno * v.bs);
      return b;
    })).subarray(0, ino.size);
    const extended = (sb.incompat & OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP) !== 0;
    const map = decodeSlotMap(data, sb.raw.s_max_slots, extended, d.inode);
    t.equal(map.length, sb.raw.s_max_slots);
    const rows = sm!.split('\n').map((l) => /^\s*(\d+)\s+(\d+)\s*$/.exec(l)).filter((x) => x !== null)
      .map((m) => [Number(m[1]), Number(m[2])]);
    t.same(map.flatMap((n, i) => (n === null ? [] : [[i, n]])), rows, `${name}: slot map as debugfs prints it`);
    const enc = encodeSlotMap(map, extended, data.length);
    t.ok(enc.equals(data), `${name}: slot map round trip`);
  }
  // Both formats on a map with holes.
  const map = [3, null, 0, null];
  for (const ext of [true, false]) {
    const b = encodeSlotMap(map, ext);
    t.equal(b.length, slotMapBytes(4, ext));
    t.same(decodeSlotMap(b, 4, ext), map);
    t.equal(slotOfNode(map, 0), 2);
  }
  t.equal(encodeSlotMap([null], false).readUInt16LE(0), 0xffff, 'old format empty slot is 0xFFFF');
  t.throws(() => decodeSlotMap(Buffer.alloc(7), 1, true), Ocfs2CorruptError);
});

t.test('validation names the block and the check', async (t) => {
  const v = await openVol('local-4k');
  const root = v.probe.sb.raw.s_root_blkno;
  const blk = v.block(root);
  t.throws(() => validateDinode(blk, root + 1), { name: 'Ocfs2CorruptError', blkno: root + 1, message: /i_blkno/ });
  t.throws(() => validateDinode(blk, root, v.probe.sb.fsGeneration + 1), { message: /i_fs_generation/ });
  const bad = Buffer.from(blk);
  bad.write('INODE02', 0, 'latin1');
  t.throws(() => validateDinode(bad, root), { name: 'Ocfs2CorruptError', message: new RegExp(`block ${root}: dinode signature`) });
  const big = Buffer.from(blk);
  big.writeUInt16LE(4000, DINODE_ID2_OFFSET); // id_count beyond the block (root is inline)
  t.throws(() => validateDinode(big, root), /id_count/);
  const huge = Buffer.from(blk);
  huge.writeBigUInt64LE(2n ** 60n, 0x20); // i_size beyond 2^53: corruption, not a crash
  t.throws(() => validateDinode(huge, root), Ocfs2CorruptError);
  t.throws(() => validateExtentBlock(blk, root), /extent block signature/);
  t.throws(() => validateGroupDesc(blk, root), /group descriptor signature/);
  t.throws(() => validateRefcountBlock(blk, root), /refcount block signature/);
  // A group with more free bits than bits.
  const gdb = v.block(v.probe.sb.raw.s_first_cluster_group);
  const g2 = Buffer.from(gdb);
  g2.writeUInt16LE(g2.readUInt16LE(0x0a) + 1, 0x0c);
  t.throws(() => validateGroupDesc(g2, v.probe.sb.raw.s_first_cluster_group), /bg_free_bits_count/);
  // Extent list with next_free > count.
  const s2000 = debugfs(v.file, ['stat /small/s2000'])[0]!;
  const ino = parseStat(s2000).inode;
  const eb = Buffer.from(v.block(ino));
  eb.writeUInt16LE(300, DINODE_ID2_OFFSET + 4);
  t.throws(() => inodeExtentList(eb, ino), { blkno: ino, message: /l_next_free_rec/ });
});

t.test('bitmap helpers', async (t) => {
  const b = Buffer.alloc(4);
  setBit(b, 0); setBit(b, 9); setBit(b, 31);
  t.same([...b], [0x01, 0x02, 0x00, 0x80], 'little-endian bit order');
  t.ok(testBit(b, 9));
  t.equal(findNextSetBit(b, 32, 1), 9);
  t.equal(findNextZeroBit(b, 32, 0), 1);
  t.equal(countSetBits(b, 32), 3);
  t.equal(countSetBits(b, 31), 2);
  clearBit(b, 9);
  t.equal(findNextSetBit(b, 32, 1), 31);
  t.equal(longestZeroRun(b, 32), 30);
  t.equal(findNextSetBit(Buffer.alloc(2), 16), 16);
});

t.test('refcount block round trip', async (t) => {
  // The reference images hold no refcount trees (the kernel makes them only
  // for reflinks): build a leaf block and a tree root by the field tables.
  const bs = 4096;
  const leaf = Buffer.alloc(bs);
  leaf.write('REFCNT1', 0, 'latin1');
  const hdr = RefcountBlockHeader.decode(leaf);
  Object.assign(hdr, { rf_suballoc_slot: 0, rf_suballoc_bit: 5, rf_fs_generation: 0x1234, rf_blkno: 777, rf_parent: 700,
    rf_count: 2, rf_flags: 1, rf_clusters: 0, rf_cpos: 0, rf_generation: 99 });
  const rb = { header: hdr, list: null, records: { count: refcountRecsPerBlock(bs), used: 2, reserved2: 0, reserved1: 0n,
    recs: [{ r_cpos: 2 ** 33 + 5, r_clusters: 3, r_refcount: 2 }, { r_cpos: 10, r_clusters: 1, r_refcount: 4 }] } };
  const enc = encodeRefcountBlock(rb, Buffer.alloc(bs));
  t.equal(enc.readUInt32LE(0x80 + 16 + 8), 3, 'first record r_clusters at 0x98');
  const dec = decodeRefcountBlock(enc, 777, { fsGeneration: 0x1234 });
  t.same(dec, rb);
  t.ok(encodeRefcountBlock(dec, Buffer.alloc(bs)).equals(enc));
  t.throws(() => decodeRefcountBlock(enc, 778), /rf_blkno/);
  const tree = { header: { ...hdr, rf_flags: 2 }, records: null,
    list: { treeDepth: 1, count: 243, nextFreeRec: 1, reserved1: 0, reserved2: 0n, recs: [{ cpos: 0, clusters: 0, flags: 0, reserved1: 0, blkno: 800 }] } };
  const enc2 = encodeRefcountBlock(tree, Buffer.alloc(bs));
  t.same(decodeRefcountBlock(enc2, 777), tree);
});

t.test('quota file headers (cluster-1k-64k-max has usrquota and grpquota)', async (t) => {
  const v = await openVol('cluster-1k-64k-max');
  const files = ['//aquota.user', '//aquota.group', '//aquota.user:0000', '//aquota.group:0001'];
  const outs = debugfs(v.file, files.map((f) => `stat ${f}`));
  for (const [i, f] of files.entries()) {
    const d = parseStat(outs[i]!);
    const blk = v.block(d.inode);
    const ino = decodeInode(blk, d.inode, v.probe.sb.fsGeneration);
    t.ok(ino.flags & 0x1000, `${f}: QUOTA_FL`);
    const first = inodeExtentList(blk, d.inode).recs[0]!;
    const q0 = v.block(first.blkno);
    const type = f.includes('group') ? 1 : 0;
    const hdr = DiskDqHeader.decode(q0);
    const local = f.includes(':');
    t.equal(hdr.dqh_magic, (local ? OCFS2_LOCAL_QMAGICS : OCFS2_GLOBAL_QMAGICS)[type], `${f}: magic`);
    t.equal(hdr.dqh_version, 0);
    // Every quota block carries a block check in its last 8 bytes.
    verifyBlockCheck(q0, quotaCheckOffset(v.bs), first.blkno);
    if (local) {
      const info = LocalDiskDqinfo.decode(q0, QUOTA_INFO_OFFSET);
      t.ok(info.dqi_flags & OLQF_CLEAN, `${f}: clean after unmount`);
      t.equal(info.dqi_blocks, ino.size / v.bs, `${f}: dqi_blocks = file blocks`);
      t.ok(info.dqi_chunks >= 1);
      t.ok(LocalDiskDqinfo.encode(info, Buffer.from(q0), QUOTA_INFO_OFFSET).equals(q0), `${f}: round trip`);
    } else {
      const info = GlobalDiskDqinfo.decode(q0, QUOTA_INFO_OFFSET);
      t.equal(info.dqi_igrace, 604800, `${f}: default inode grace`);
      t.equal(info.dqi_syncms, 10000);
      t.equal(info.dqi_blocks, ino.size / v.bs, `${f}: dqi_blocks = file blocks`);
      t.ok(GlobalDiskDqinfo.encode(info, Buffer.from(q0), QUOTA_INFO_OFFSET).equals(q0), `${f}: round trip`);
    }
  }
  t.same([DiskDqHeader.size, GlobalDiskDqinfo.size, GlobalDiskDqblk.size, DiskDqdbHeader.size, LocalDiskDqinfo.size, LocalDiskDqblk.size],
    [8, 24, 88, 16, 12, 24]);
});

t.test('discontiguous group: bg_list at 0x140', async (t) => {
  // The reference images hold no discontiguous groups (the kernel makes them
  // only when contiguous space runs out): give a real suballocator group of
  // local-4k (bg_size 256 with discontig-bg) a two-extent bg_list.
  const v = await openVol('local-4k');
  const d = parseStat(debugfs(v.file, ['stat //inode_alloc:0000'])[0]!);
  const g = d.groups[0]!;
  const blk = v.block(g.blkno);
  const plain = decodeGroupDesc(blk, g.blkno);
  t.equal(plain.header.bg_size, 256, 'suballocator bitmap capped at 256 bytes');
  t.equal(plain.list, null, 'contiguous group has no list');
  const list: ExtentList = { treeDepth: 0, count: Math.floor((v.bs - 0x150) / 16), nextFreeRec: 2, reserved1: 0, reserved2: 0n,
    recs: [{ cpos: 0, clusters: 2, flags: 0, reserved1: 0, blkno: g.blkno }, { cpos: 2, clusters: 2, flags: 0, reserved1: 0, blkno: g.blkno + 100 }] };
  const withList = encodeGroupDesc({ ...plain, list }, Buffer.from(blk));
  t.equal(withList.readUInt16LE(0x140 + 4), 2, 'l_next_free_rec at 0x144');
  const dec = decodeGroupDesc(withList, g.blkno);
  t.same(dec.list, list);
  t.ok(encodeGroupDesc(dec, scrambled(withList, 0, 0x150 + 32)).equals(withList));
  withList.writeUInt16LE(1, 0x140);
  t.throws(() => decodeGroupDesc(withList, g.blkno), /not flat/);
});
