/**
 * `ocfs2-fuse tunefs` judged by tunefs.ocfs2: every option is run by both
 * tools on copies of the same local volume; ours must leave the volume
 * fsck.ocfs2 -fn clean and `debugfs.ocfs2 -R stats` equal to tunefs.ocfs2's
 * (the UUID aside where a new random one is made).  -N also compares the
 * system directory listing (same files at the same blocks).  On cluster
 * volumes (tunefs.ocfs2 needs a running o2cb there) ours is checked with
 * fsck and against mkfs.ocfs2's own stats.  Refusals: live heartbeat, a
 * mounted volume, a dirty journal, unsupported feature changes.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diffText, fsckClean, refMkfs, run, sparseImage, tmp } from './mkfs-compare';
import { CLI, mountRo } from './lib/mount';
import { Volume } from '../src/libocfs2/volume';
import { setJournalDinodeFlags } from '../src/libocfs2/journal';
import { JOURNAL_SYSTEM_INODE, systemFileName } from '../src/libocfs2/sysfiles';
import { fakeHeartbeat } from './lib/fake-heartbeat';

const dir = tmp('tunefs');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

function ours(args: string[]): { status: number; stdout: string; stderr: string } {
  return run(process.execPath, [CLI, 'tunefs', ...args]);
}
function theirs(args: string[]): { status: number; stdout: string; stderr: string } {
  return run('tunefs.ocfs2', args, 'y\ny\ny\n');
}
function stats(img: string, keepUuid = true): string {
  const s = run('debugfs.ocfs2', ['-R', 'stats', img]).stdout;
  return keepUuid ? s : s.replace(/UUID: [0-9A-F]+/, 'UUID: U');
}
function sysdir(img: string): string {
  return run('debugfs.ocfs2', ['-R', 'ls -l //', img]).stdout.replace(/\d+-\w{3}-\d{4} \d\d:\d\d/g, 'DATE');
}

/** A base volume made by mkfs.ocfs2 once; each case works on two copies of it. */
const bases = new Map<string, string>();
function base(name: string, bytes: number, args: string[]): string {
  let f = bases.get(name);
  if (!f) {
    f = path.join(dir, `${name}.base`);
    sparseImage(f, bytes);
    refMkfs(f, args);
    bases.set(name, f);
  }
  return f;
}
function copies(b: string, tag: string, grow?: number): [string, string] {
  const o = path.join(dir, `${tag}.ours.img`);
  const r = path.join(dir, `${tag}.ref.img`);
  for (const f of [o, r]) {
    fs.copyFileSync(b, f);
    if (grow) fs.truncateSync(f, grow);
  }
  return [o, r];
}

const DEFAULT = (): string => base('default', 200 * MiB, ['-M', 'local', '-N', '2', '-b', '1k', '-L', 'lab']);
const COMPAT = (): string => base('compat', 1200 * MiB, ['-M', 'local', '-N', '2', '-b', '4k', '--fs-feature-level=max-compat', '--no-backup-super', '-L', 'mc']);
const BIG = (): string => base('big', 1200 * MiB, ['-M', 'local', '-N', '2', '-b', '4k', '-L', 'big']);

interface Case {
  name: string; base: () => string; ours: string[]; after?: string[]; newUuid?: boolean; grow?: number; sysdir?: boolean;
  /** Journal sizes change nothing in stats: compare every journal's size instead. */
  journals?: number;
}

function journalSizes(img: string, slots: number): string {
  const out: string[] = [];
  for (let i = 0; i < slots; i++) {
    const s = run('debugfs.ocfs2', ['-R', `stat //journal:${String(i).padStart(4, '0')}`, img]).stdout;
    out.push(`${i}: ${/Size: (\d+)/.exec(s)?.[1]} ${/Clusters: (\d+)/.exec(s)?.[1]}`);
  }
  return out.join('\n');
}

const CASES: Case[] = [
  { name: 'label', base: DEFAULT, ours: ['-L', 'new label'] },
  { name: 'uuid random', base: DEFAULT, ours: ['-U'], newUuid: true },
  { name: 'uuid given', base: DEFAULT, ours: ['-U0123456789abcdef0123456789ABCDEF'] },
  { name: 'uuid given dashed', base: DEFAULT, ours: ['--uuid-reset=01234567-89ab-cdef-0123-456789abcdef'] },
  { name: 'cloned volume', base: DEFAULT, ours: ['--cloned-volume'], newUuid: true },
  { name: 'add slots', base: DEFAULT, ours: ['-N', '5'], sysdir: true },
  { name: 'add slots + journal size', base: COMPAT, ours: ['-N', '4', '-J', 'size=8M'], sysdir: true, journals: 4 },
  { name: 'journal grow', base: DEFAULT, ours: ['-J', 'size=16M'], journals: 2 },
  { name: 'journal shrink', base: COMPAT, ours: ['-J', 'size=8M'], journals: 2 },
  { name: 'grow volume to the device', base: DEFAULT, ours: ['-S'], grow: 1200 * MiB },
  { name: 'grow volume to a size', base: COMPAT, ours: ['-S'], after: ['384000'], grow: 2000 * MiB },
  ...['sparse', 'unwritten', 'inline-data', 'xattr', 'refcount', 'discontig-bg', 'append-dio', 'extended-slotmap', 'backup-super',
    'sparse,unwritten,inline-data,xattr']
    .map((f) => ({ name: `feature ${f} on`, base: COMPAT, ours: [`--fs-features=${f}`] })),
  ...['noappend-dio', 'noextended-slotmap', 'nodiscontig-bg'].map((f) => ({ name: `feature ${f}`, base: DEFAULT, ours: [`--fs-features=${f}`] })),
  { name: 'feature nobackup-super', base: BIG, ours: ['--fs-features=nobackup-super'] },
];

for (const c of CASES) {
  t.test(`${c.name}: as tunefs.ocfs2`, async (t) => {
    const tag = c.name.replace(/\W+/g, '-');
    const [o, r] = copies(c.base(), tag, c.grow);
    const before = stats(o);
    const journalsBefore = c.journals ? journalSizes(o, c.journals) : '';
    const a = ours([...c.ours, o, ...(c.after ?? [])]);
    t.equal(a.status, 0, `ours: ${a.stderr}`);
    t.equal(a.stdout, '', 'silent on success, like tunefs.ocfs2');
    const b = theirs([...c.ours, r, ...(c.after ?? [])]);
    t.equal(b.status, 0, `tunefs.ocfs2: ${b.stderr}`);
    const f = fsckClean(o);
    t.ok(f.ok, `fsck.ocfs2 -fn clean:\n${f.out}`);
    if (c.journals) {
      t.not(journalSizes(o, c.journals), journalsBefore, 'the journals changed');
      t.equal(journalSizes(o, c.journals), journalSizes(r, c.journals), 'journal sizes equal to tunefs.ocfs2\'s');
    } else {
      t.not(stats(o), before, 'the volume changed');
    }
    const so = stats(o, !c.newUuid);
    const sr = stats(r, !c.newUuid);
    t.equal(diffText(sr, so), '', 'debugfs stats equal to tunefs.ocfs2\'s');
    if (c.newUuid) t.not(/UUID: (\w+)/.exec(stats(o))![1], /UUID: (\w+)/.exec(before)![1], 'a new UUID');
    if (c.sysdir) t.equal(diffText(sysdir(r), sysdir(o)), '', 'system directory: same files at the same blocks');
    fs.rmSync(o, { force: true });
    fs.rmSync(r, { force: true });
  });
}

t.test('add slots on other geometries (512-byte blocks, 64K clusters, metaecc)', async (t) => {
  for (const args of [['-b', '512', '-C', '4k'], ['-b', '4k', '-C', '64k'], ['-b', '4k', '--fs-features=metaecc']]) {
    const b = base(`geo${args.join('')}`, 600 * MiB, ['-M', 'local', '-N', '2', ...args]);
    const [o, r] = copies(b, 'geo');
    t.equal(ours(['-N', '6', o]).status, 0);
    t.equal(theirs(['-N', '6', r]).status, 0);
    t.ok(fsckClean(o).ok, `${args.join(' ')}: fsck clean`);
    t.equal(diffText(stats(r), stats(o)), '', `${args.join(' ')}: stats equal`);
    t.equal(diffText(sysdir(r), sysdir(o)), '', `${args.join(' ')}: system directory equal`);
  }
});

t.test('-Q prints the superblock fields', async (t) => {
  const b = DEFAULT();
  const q = ours(['-Q', '%B %T %N %R %Y %P [%V] %U\\n%M\\n%H\\n%O\\n%-6N|%6B|%%', b]);
  t.equal(q.status, 0, q.stderr);
  const s = stats(b);
  const field = (re: RegExp): string => re.exec(s)![1]!;
  const bits = Number(field(/Block Size Bits: (\d+)/));
  const cbits = Number(field(/Cluster Size Bits: (\d+)/));
  const expected = [
    `${2 ** bits} ${2 ** cbits} ${field(/Max Node Slots: (\d+)/)} ${field(/Root Blknum: (\d+)/)} ${field(/System Dir Blknum: (\d+)/)} `
      + `${field(/First Cluster Group Blknum: (\d+)/)} [${field(/Label: (.*)/)}] ${field(/UUID: (\w+)/)}`,
    field(/Feature Compat: \d+ (.*)/).trim(),
    field(/Feature Incompat: \d+ (.*)/).trim(),
    field(/Feature RO compat: \d+ (.*)/).trim() || 'None',
    `2     |  1024|%`,
  ].join('\n');
  t.equal(q.stdout, expected);
  const bad = ours(['-Q', '%d', b]);
  t.not(bad.status, 0);
  t.match(bad.stderr, /unknown type specifier/);
});

t.test('cluster volumes: add slots, update the cluster stack', async (t) => {
  const img = path.join(dir, 'cl.img');
  sparseImage(img, 400 * MiB);
  refMkfs(img, ['-N', '2', '--cluster-stack=o2cb', '--cluster-name=oldcl']);
  const a = ours(['-N', '4', img]);
  t.equal(a.status, 0, a.stderr);
  t.ok(fsckClean(img).ok, 'fsck clean after adding slots');
  t.match(stats(img), /Max Node Slots: 4/);

  const conf = path.join(dir, 'cluster.conf');
  fs.writeFileSync(conf, 'cluster:\n\tnode_count = 0\n\theartbeat_mode = global\n\tname = newcl\n\n');
  const u = ours(['--update-cluster-stack', '--cluster-conf', conf, img]);
  t.equal(u.status, 0, u.stderr);
  t.ok(fsckClean(img).ok, 'fsck clean after the stack update');
  // The same fields mkfs.ocfs2 writes for that cluster.
  const ref = path.join(dir, 'clref.img');
  sparseImage(ref, 400 * MiB);
  refMkfs(ref, ['-N', '4', '--cluster-stack=o2cb', '--cluster-name=newcl', '--global-heartbeat']);
  const pick = (s: string): string => s.split('\n').filter((l) => /Cluster (stack|name|flags)|Feature Incompat/.test(l)).join('\n');
  t.equal(pick(stats(img)), pick(stats(ref)));
  t.match(stats(img), /Cluster name: newcl/);
});

t.test('refuses a volume in use or in need of recovery, and changes it cannot make', async (t) => {
  // Live heartbeat on a cluster volume.
  const img = path.join(dir, 'hb.img');
  sparseImage(img, 256 * MiB);
  refMkfs(img, ['-N', '4', '--cluster-stack=o2cb', '--cluster-name=hbt']);
  const hb = fakeHeartbeat(img, 3);
  const before = stats(img);
  // The child process watches while this one beats: run it asynchronously.
  const { spawn } = await import('node:child_process');
  const res = await new Promise<{ code: number; err: string }>((resolve) => {
    const p = spawn('timeout', ['120', process.execPath, CLI, 'tunefs', '-L', 'x', '--heartbeat-interval-ms', '800', img]);
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('exit', (code) => resolve({ code: code ?? -1, err }));
  });
  hb.stop();
  t.not(res.code, 0);
  t.match(res.err, /live heartbeat from node\(s\) 3/);
  t.equal(stats(img), before, 'nothing written');

  // Mounted.
  const loc = path.join(dir, 'mnt.img');
  fs.copyFileSync(DEFAULT(), loc);
  const m = mountRo(loc);
  try {
    const x = ours(['-L', 'x', loc]);
    t.not(x.status, 0);
    t.match(x.stderr, /is mounted/);
  } finally {
    m.unmount();
  }

  // A dirty journal.
  const vol = await Volume.open(loc, { readOnly: false });
  await setJournalDinodeFlags(vol, vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, 1)), true, false);
  await vol.close();
  const d = ours(['-N', '4', loc]);
  t.not(d.status, 0);
  t.match(d.stderr, /journal of slot\(s\) 1 is dirty/);

  // Changes that would convert existing files are refused before anything is written.
  const c = path.join(dir, 'conv.img');
  fs.copyFileSync(DEFAULT(), c);
  const s0 = stats(c);
  for (const spec of ['metaecc', 'nosparse', 'noinline-data']) {
    const r = ours([`--fs-features=${spec}`, c]);
    t.not(r.status, 0, spec);
    t.match(r.stderr, /not supported by this tunefs yet/, spec);
  }
  const shrink = ours(['-N', '1', c]);
  t.match(shrink.stderr, /removing node slots/);
  t.equal(stats(c), s0, 'nothing written');
});
