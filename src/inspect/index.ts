/**
 * A debugfs.ocfs2-style inspector over libocfs2 (read-only).  Every command
 * returns a plain JSON-able object; `formatText` renders it for people.
 * Paths as debugfs: "/x" from the root, "//name" in the system directory,
 * "<123>" an inode (block) number.
 */
import * as fsp from 'node:fs/promises';
import { Volume, type InodeBlock } from '../libocfs2/volume';
import { PosixError, Ocfs2Error, Ocfs2FormatError } from '../libocfs2/errors';
import { iterateDirectory, lookupName } from '../libocfs2/directory';
import { readFile } from '../libocfs2/fileio';
import { allLeafExtents } from '../libocfs2/extentmap';
import { inodeExtentList, inodeChainList, readId1Bitmap } from '../libocfs2/structs/dinode';
import { decodeGroupDesc, countSetBits, testBit } from '../libocfs2/structs/group';
import { decodeSlotMap } from '../libocfs2/structs/slotmap';
import { O2hbDiskHeartbeatBlock, verifyO2hbBlock } from '../libocfs2/structs/heartbeat';
import { CHECK_OFFSET } from '../libocfs2/blockcheck';
import { inodeFlagNames, dynFeatureNames, OCFS2_INLINE_DATA_FL, OCFS2_CHAIN_FL, S_IFMT, S_IFLNK } from '../libocfs2/constants';
import { journalReader } from '../libocfs2/journal';
import { walkTransactions } from '../libocfs2/jbd2';
import { systemFileName, JOURNAL_SYSTEM_INODE } from '../libocfs2/sysfiles';
import { decodeExtentBlock, type ExtentList } from '../libocfs2/structs/extent';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export async function openForInspect(device: string): Promise<Volume> {
  const vol = await Volume.open(device, { readOnly: true, dirtyJournal: 'ignore' });
  const need = vol.sb.clusters * vol.clusterBlocks;
  if (need > vol.dev.blockCount) {
    await vol.close();
    throw new Ocfs2FormatError(`${device}: the volume has ${need} blocks but the device holds only ${vol.dev.blockCount} (truncated image?)`);
  }
  return vol;
}

/** Resolve a debugfs-style path to an inode. */
export async function resolvePath(vol: Volume, p: string): Promise<InodeBlock> {
  const m = /^<(\d+)>$/.exec(p);
  if (m) return vol.readInode(Number(m[1]));
  let cur: InodeBlock;
  let rest: string;
  if (p.startsWith('//')) { cur = await vol.readInode(vol.systemDirBlkno); rest = p.slice(2); }
  else if (p.startsWith('/')) { cur = await vol.readInode(vol.rootBlkno); rest = p.slice(1); }
  else throw new PosixError('EINVAL', `${p}: paths start with "/", "//" (system directory) or are "<inode>"`);
  for (const part of rest.split('/').filter(Boolean)) {
    const e = await lookupName(vol, cur, Buffer.from(part));
    if (!e) throw new PosixError('ENOENT', `${p}: no such file or directory`);
    cur = await vol.readInode(e.inode);
  }
  return cur;
}

export async function cmdStats(vol: Volume): Promise<Json> {
  const sb = vol.sb;
  return {
    revision: `${sb.raw.s_major_rev_level}.${sb.raw.s_minor_rev_level}`,
    mountCount: sb.raw.s_mnt_count, maxMountCount: sb.raw.s_max_mnt_count,
    state: sb.raw.s_state, errors: sb.raw.s_errors,
    blockSize: vol.blockSize, clusterSize: vol.clusterSize, blockBits: vol.blockBits, clusterBits: vol.clusterBits,
    clusters: sb.clusters, blocks: vol.dev.blockCount, maxSlots: vol.maxSlots,
    rootBlkno: vol.rootBlkno, systemDirBlkno: vol.systemDirBlkno, firstClusterGroup: sb.raw.s_first_cluster_group,
    label: sb.label, uuid: sb.uuidHex, fsGeneration: sb.fsGeneration >>> 0,
    featureCompat: sb.compat, featureIncompat: sb.incompat, featureRoCompat: sb.roCompat,
    features: vol.featureList,
    clusterStack: sb.clusterInfoValid ? sb.clusterStack : null, clusterName: sb.clusterInfoValid ? sb.clusterName : null,
  };
}

function modeString(mode: number): string {
  const t: Record<number, string> = { 0o040000: 'd', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's' };
  const ch = t[mode & S_IFMT] ?? '-';
  const rwx = (v: number, s: number, sc: string): string =>
    `${v & 4 ? 'r' : '-'}${v & 2 ? 'w' : '-'}${s ? (v & 1 ? sc : sc.toUpperCase()) : (v & 1 ? 'x' : '-')}`;
  return ch + rwx((mode >> 6) & 7, mode & 0o4000, 's') + rwx((mode >> 3) & 7, mode & 0o2000, 's') + rwx(mode & 7, mode & 0o1000, 't');
}

export async function cmdLs(vol: Volume, p: string): Promise<Json> {
  const dir = await resolvePath(vol, p);
  const out: Json[] = [];
  for await (const e of iterateDirectory(vol, dir)) {
    const ib = await vol.readInode(e.inode).catch(() => null);
    out.push({
      inode: e.inode, name: e.name.toString('utf8'), fileType: e.fileType,
      mode: ib ? modeString(ib.inode.mode) : null, nlink: ib?.inode.nlink ?? null, uid: ib?.inode.uid ?? null,
      gid: ib?.inode.gid ?? null, size: ib?.inode.size ?? null, mtime: ib?.inode.mtime.sec ?? null,
    });
  }
  return { path: p, inode: dir.inode.blkno, entries: out };
}

async function extentTree(vol: Volume, list: ExtentList, depth = 0): Promise<Json> {
  const recs: Json[] = [];
  for (const r of list.recs) {
    const rec: { [k: string]: Json } = { cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags };
    if (list.treeDepth > 0 && depth < 5) {
      const eb = decodeExtentBlock(await vol.readMetaBlock(r.blkno, CHECK_OFFSET.extentBlock), r.blkno);
      rec.child = await extentTree(vol, eb.list, depth + 1);
    }
    recs.push(rec);
  }
  return { treeDepth: list.treeDepth, count: list.count, nextFreeRec: list.nextFreeRec, recs };
}

export async function cmdStat(vol: Volume, p: string): Promise<Json> {
  const { inode: i, buf } = await resolvePath(vol, p);
  const out: { [k: string]: Json } = {
    inode: i.blkno, mode: (i.mode & 0o7777).toString(8).padStart(4, '0'), type: modeString(i.mode)[0]!,
    generation: i.generation >>> 0, fsGeneration: i.fsGeneration >>> 0, crc32: i.check.crc32e, ecc: i.check.ecc,
    flags: inodeFlagNames(i.flags), flagsRaw: i.flags, dynFeatures: dynFeatureNames(i.dynFeatures), dynFeaturesRaw: i.dynFeatures,
    uid: i.uid, gid: i.gid, size: i.size, links: i.nlink, clusters: i.clusters,
    ctime: i.ctime.sec, atime: i.atime.sec, mtime: i.mtime.sec, dtime: i.dtime,
    refcountBlock: i.refcountLoc, lastExtblk: i.lastEbBlk, orphanSlot: Math.max(0, i.orphanedSlot),
    subAllocSlot: i.suballocSlot, subAllocBit: i.suballocBit, xattrLoc: i.xattrLoc, dxRoot: i.dxRoot,
  };
  if (i.flags & OCFS2_CHAIN_FL) {
    const cl = inodeChainList(buf, i.blkno);
    const id1 = readId1Bitmap(buf);
    out.bitmapTotal = id1.i_total; out.bitmapUsed = id1.i_used; out.bitmapFree = id1.i_total - id1.i_used;
    out.chains = { cpg: cl.cpg, bpc: cl.bpc, count: cl.count, nextFreeRec: cl.nextFreeRec,
      recs: cl.recs.map((r, n) => ({ chain: n, free: r.c_free, total: r.c_total, blkno: r.c_blkno })) };
  } else if (!(i.dynFeatures & OCFS2_INLINE_DATA_FL) && !((i.mode & S_IFMT) === S_IFLNK && i.clusters === 0)
      && !(i.flags & 0x20 /* superblock */) && !(i.flags & 0x40) && !(i.flags & 0x800)) {
    out.extents = await extentTree(vol, inodeExtentList(buf, i.blkno));
  }
  return out;
}

export async function cmdCat(vol: Volume, p: string): Promise<Buffer> {
  const f = await resolvePath(vol, p);
  if ((f.inode.mode & S_IFMT) === 0o040000) throw new PosixError('EISDIR', `${p}: is a directory`);
  return readFile(vol, f, 0, f.inode.size);
}

export async function cmdDump(vol: Volume, p: string, outFile: string): Promise<Json> {
  const data = await cmdCat(vol, p);
  await fsp.writeFile(outFile, data);
  return { path: p, outFile, bytes: data.length };
}

export async function cmdSlotmap(vol: Volume): Promise<Json> {
  const f = await vol.readInode(vol.systemFile('slot_map'));
  const data = await readFile(vol, f, 0, f.inode.size);
  const map = decodeSlotMap(data, vol.maxSlots, vol.extendedSlotMap, f.inode.blkno);
  return { slots: map.map((node, slot) => ({ slot, node })) };
}

export async function cmdHb(vol: Volume): Promise<Json> {
  const f = await vol.readInode(vol.systemFile('heartbeat'));
  const data = await readFile(vol, f, 0, f.inode.size);
  const out: Json[] = [];
  const sector = 512;
  for (let n = 0; (n + 1) * sector <= data.length && n < 255; n++) {
    const blk = data.subarray(n * sector, (n + 1) * sector);
    const b = O2hbDiskHeartbeatBlock.decode(blk, 0);
    if (b.hb_seq === 0n && b.hb_generation === 0n) continue;
    out.push({
      slot: n, node: b.hb_node, seq: `0x${b.hb_seq.toString(16).padStart(16, '0')}`, lastWrite: Number(b.hb_seq),
      generation: `0x${b.hb_generation.toString(16).padStart(16, '0')}`, checksum: b.hb_cksum, checksumOk: verifyO2hbBlock(blk),
      deadMs: b.hb_dead_ms,
    });
  }
  return { blocks: out };
}

export async function cmdLogdump(vol: Volume, slot: number): Promise<Json> {
  if (!Number.isInteger(slot) || slot < 0 || slot >= vol.maxSlots) throw new PosixError('EINVAL', `slot ${slot} out of range (0..${vol.maxSlots - 1})`);
  const blkno = vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, slot));
  const r = await journalReader(vol, blkno);
  const w = await walkTransactions(r);
  const sb = w.superblock;
  return {
    slot, journalInode: blkno,
    superblock: { blocksize: sb.s_blocksize, maxlen: sb.s_maxlen, first: sb.s_first, sequence: sb.s_sequence, start: sb.s_start,
      featureCompat: sb.s_feature_compat, featureIncompat: sb.s_feature_incompat },
    transactions: w.transactions.map((t) => ({
      sequence: t.sequence, committed: t.committed,
      entries: t.entries.map((e): Json => {
        if (e.kind === 'descriptor') return { kind: e.kind, logBlock: e.logBlock, tags: e.tags.map((tg) => ({ fsBlock: Number(tg.blocknr), logBlock: tg.dataLogBlock, flags: tg.flags })) };
        if (e.kind === 'revoke') return { kind: e.kind, logBlock: e.logBlock, records: e.records };
        return { kind: e.kind, logBlock: e.logBlock, commitSec: Number(e.commitSec) };
      }),
    })),
    end: { logBlock: w.end.logBlock, reason: w.end.reason },
  };
}

interface GroupSummary { blkno: number; chain: number; bits: number; free: number; bitmap: Buffer; start: number }

async function globalGroups(vol: Volume): Promise<GroupSummary[]> {
  const gb = vol.systemFile('global_bitmap');
  const { buf } = await vol.readInode(gb);
  const cl = inodeChainList(buf, gb);
  const out: GroupSummary[] = [];
  cl.recs.forEach(() => undefined);
  for (let ci = 0; ci < cl.recs.length; ci++) {
    const seen = new Set<number>();
    for (let g = cl.recs[ci]!.c_blkno; g !== 0 && !seen.has(g);) {
      seen.add(g);
      const gd = decodeGroupDesc(await vol.readMetaBlock(g, CHECK_OFFSET.groupDesc), g);
      const c = Math.floor(g / vol.clusterBlocks);
      out.push({ blkno: g, chain: ci, bits: gd.header.bg_bits, free: gd.header.bg_free_bits_count, bitmap: gd.bitmap, start: Math.floor(c / cl.cpg) * cl.cpg });
      g = gd.header.bg_next_group;
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

export async function cmdBitmap(vol: Volume): Promise<Json> {
  const gs = await globalGroups(vol);
  const gb = vol.systemFile('global_bitmap');
  const id1 = readId1Bitmap((await vol.readInode(gb)).buf);
  return {
    totalClusters: id1.i_total, usedClusters: id1.i_used, freeClusters: id1.i_total - id1.i_used,
    groups: gs.map((g) => ({ blkno: g.blkno, chain: g.chain, firstCluster: g.start, bits: g.bits, free: g.free, used: countSetBits(g.bitmap, g.bits) })),
  };
}

export async function cmdFreefrag(vol: Volume): Promise<Json> {
  const gs = await globalGroups(vol);
  const hist = new Map<number, { count: number; clusters: number }>();
  let free = 0;
  let extents = 0;
  let max = 0;
  // Free runs may continue across group boundaries.
  let run = 0;
  const flush = (): void => {
    if (run === 0) return;
    const bucket = 2 ** Math.floor(Math.log2(run));
    const h = hist.get(bucket) ?? { count: 0, clusters: 0 };
    h.count++; h.clusters += run; hist.set(bucket, h);
    extents++; free += run; max = Math.max(max, run); run = 0;
  };
  let expect = 0;
  for (const g of gs) {
    if (g.start !== expect) flush();
    for (let b = 0; b < g.bits; b++) { if (testBit(g.bitmap, b)) flush(); else run++; }
    expect = g.start + g.bits;
  }
  flush();
  return {
    clusterSize: vol.clusterSize, totalClusters: vol.sb.clusters, freeClusters: free, freeExtents: extents,
    maxFreeExtentClusters: max, avgFreeExtentClusters: extents ? free / extents : 0,
    histogram: [...hist.entries()].sort((a, b) => a[0] - b[0]).map(([from, h]) => ({ from, to: from * 2 - 1, extents: h.count, clusters: h.clusters })),
  };
}

/* ---- text rendering ---------------------------------------------------------------------------------- */

export function formatText(cmd: string, r: Json): string {
  const o = r as { [k: string]: Json };
  const lines: string[] = [];
  const kv = (obj: { [k: string]: Json }): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (v !== null && typeof v === 'object') continue;
      lines.push(`\t${k}: ${String(v)}`);
    }
  };
  switch (cmd) {
    case 'ls':
      for (const e of o.entries as Array<{ [k: string]: Json }>) {
        lines.push(`\t${String(e.inode).padEnd(15)} ${String(e.mode ?? '?').padEnd(11)} ${String(e.nlink ?? '').padStart(3)} ${String(e.uid ?? '').padStart(5)} ${String(e.gid ?? '').padStart(5)} ${String(e.size ?? '').padStart(15)} ${String(e.name)}`);
      }
      break;
    case 'slotmap':
      lines.push('\tSlot#   Node#');
      for (const s of o.slots as Array<{ slot: number; node: number | null }>) if (s.node !== null) lines.push(`\t${String(s.slot).padStart(5)}   ${String(s.node).padStart(5)}`);
      break;
    case 'hb':
      lines.push('\tnode: node              seq       generation checksum deadms');
      for (const b of o.blocks as Array<{ [k: string]: Json }>) {
        lines.push(`\t${String(b.slot).padStart(4)}: ${String(b.node).padStart(4)} ${String(b.seq).slice(2)} ${String(b.generation).slice(2)} ${(b.checksum as number).toString(16).padStart(8, '0')} ${String(b.deadMs).padStart(6)}`);
      }
      break;
    case 'stat': {
      kv(o);
      const walk = (t: Json, ind: string): void => {
        const l = t as { treeDepth: number; count: number; nextFreeRec: number; recs: Array<{ [k: string]: Json }> };
        lines.push(`${ind}Tree Depth: ${l.treeDepth}   Count: ${l.count}   Next Free Rec: ${l.nextFreeRec}`);
        lines.push(`${ind}## Offset        Clusters       Block#          Flags`);
        l.recs.forEach((rec, n) => {
          lines.push(`${ind}${String(n).padStart(2)} ${String(rec.cpos).padEnd(13)} ${String(rec.clusters).padEnd(14)} ${String(rec.blkno).padEnd(15)} 0x${(rec.flags as number).toString(16)}`);
          if (rec.child) walk(rec.child, `${ind}\t`);
        });
      };
      if (o.extents) walk(o.extents, '\t');
      if (o.chains) {
        const c = o.chains as { cpg: number; bpc: number; count: number; nextFreeRec: number; recs: Array<{ [k: string]: number }> };
        lines.push(`\tClusters per Group: ${c.cpg}   Bits per Cluster: ${c.bpc}`);
        lines.push(`\tCount: ${c.count}   Next Free Rec: ${c.nextFreeRec}`);
        lines.push('\t## Total        Used         Free         Block#');
        for (const rec of c.recs) lines.push(`\t${String(rec.chain).padStart(2)} ${String(rec.total).padEnd(12)} ${String(rec.total! - rec.free!).padEnd(12)} ${String(rec.free).padEnd(12)} ${rec.blkno}`);
      }
      break;
    }
    case 'logdump':
      lines.push(`Journal of slot ${String(o.slot)} (inode ${String(o.journalInode)})`);
      kv(o.superblock as { [k: string]: Json });
      for (const t of o.transactions as Array<{ sequence: number; committed: boolean; entries: Array<{ [k: string]: Json }> }>) {
        lines.push(`Transaction ${t.sequence}${t.committed ? '' : ' (not committed)'}`);
        for (const e of t.entries) {
          if (e.kind === 'descriptor') {
            lines.push(`  block ${String(e.logBlock)}: descriptor`);
            for (const tg of e.tags as Array<{ [k: string]: Json }>) lines.push(`    FS block ${String(tg.fsBlock)} logged at journal block ${String(tg.logBlock)} (flags 0x${(tg.flags as number).toString(16)})`);
          } else if (e.kind === 'revoke') {
            lines.push(`  block ${String(e.logBlock)}: revoke ${JSON.stringify(e.records)}`);
          } else lines.push(`  block ${String(e.logBlock)}: commit at ${String(e.commitSec)}`);
        }
      }
      lines.push(`End of log at journal block ${String((o.end as { [k: string]: Json }).logBlock)}: ${String((o.end as { [k: string]: Json }).reason)}`);
      break;
    case 'bitmap':
      kv(o);
      lines.push('\t## Block#     FirstCluster  Bits     Free');
      for (const g of o.groups as Array<{ [k: string]: number }>) lines.push(`\t${String(g.chain).padStart(2)} ${String(g.blkno).padEnd(12)} ${String(g.firstCluster).padEnd(13)} ${String(g.bits).padEnd(8)} ${g.free}`);
      break;
    case 'freefrag':
      kv(o);
      lines.push('\tExtent Size Range :  Free extents   Free Clusters');
      for (const h of o.histogram as Array<{ [k: string]: number }>) lines.push(`\t${String(h.from).padStart(8)}...${String(h.to).padEnd(8)}: ${String(h.extents).padStart(12)} ${String(h.clusters).padStart(12)}`);
      break;
    default:
      kv(o);
      if (Array.isArray(o.features)) lines.push(`\tfeatures: ${(o.features as string[]).join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export { Ocfs2Error };
