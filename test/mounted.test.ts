/**
 * `ocfs2-fuse mounted` against Debian's mounted.ocfs2 on the same images and
 * loop devices: -d (stack, cluster, global-heartbeat flag, UUID, label) and
 * -f (nodes in the slot map, "Not mounted") byte for byte; with a
 * cluster.conf ours names the nodes; without devices both scan
 * /proc/partitions and list our loop device the same way.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { refMkfs, run, sparseImage, tmp } from './mkfs-compare';
import { CLI } from './lib/mount';
import { Volume } from '../src/libocfs2/volume';
import { SLOT_MAP_SYSTEM_INODE, systemFileName } from '../src/libocfs2/sysfiles';
import { allLeafExtents } from '../src/libocfs2/extentmap';
import { inodeExtentList } from '../src/libocfs2/structs/dinode';
import { encodeSlotMap } from '../src/libocfs2/structs/slotmap';

const dir = tmp('mounted');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

const ours = (args: string[]): string => run(process.execPath, [CLI, 'mounted', ...args]).stdout;
const theirs = (args: string[]): string => run('mounted.ocfs2', args).stdout;

function image(name: string, args: string[]): string {
  const f = path.join(dir, name);
  sparseImage(f, 300 * MiB);
  refMkfs(f, args);
  return f;
}

/** Put nodes into the slot map as if they had mounted the volume. */
async function setSlots(img: string, nodes: Array<number | null>): Promise<void> {
  const vol = await Volume.open(img, { readOnly: false });
  try {
    const blkno = vol.systemFile(systemFileName(SLOT_MAP_SYSTEM_INODE));
    const { buf } = await vol.readInode(blkno);
    const ext = (await allLeafExtents(vol, inodeExtentList(buf, blkno), blkno)).find((e) => e.cpos === 0)!;
    const map = [...nodes, ...new Array<number | null>(vol.maxSlots - nodes.length).fill(null)];
    await vol.dev.writeBlocks(ext.blkno, encodeSlotMap(map, vol.extendedSlotMap, vol.blockSize));
    await vol.dev.flush();
  } finally {
    await vol.close();
  }
}

t.test('images: -d and -f as mounted.ocfs2', async (t) => {
  const local = image('local.img', ['-M', 'local', '-L', 'my label']);
  const cl = image('cluster.img', ['-N', '4', '--cluster-stack=o2cb', '--cluster-name=longclustername', '--global-heartbeat', '-L', 'cl']);
  const classic = image('classic.img', ['-N', '4', '--fs-feature-level=max-compat']);
  for (const img of [local, cl, classic]) {
    t.equal(ours(['-d', img]), theirs(['-d', img]), `-d ${path.basename(img)}`);
    t.equal(ours([img]), theirs([img]), `default is -d: ${path.basename(img)}`);
    t.equal(ours(['-f', img]), theirs(['-f', img]), `-f ${path.basename(img)} (not mounted)`);
  }
  t.match(ours(['-d', cl]), /o2cb   longclustername  G  [0-9A-F]{32}  cl\n/);
  await setSlots(cl, [3, null, 7]);
  const f = ours(['-f', cl]);
  t.equal(f, theirs(['-f', cl]), '-f with nodes 3 and 7 in the slot map');
  t.match(f, /G  3, 7\n/);
  const conf = path.join(dir, 'cluster.conf');
  fs.writeFileSync(conf, [
    'cluster:', '\tnode_count = 2', '\theartbeat_mode = global', '\tname = longclustername', '',
    'node:', '\tip_port = 7777', '\tip_address = 127.0.0.3', '\tnumber = 3', '\tname = alpha', '\tcluster = longclustername', '',
    'node:', '\tip_port = 7777', '\tip_address = 127.0.0.7', '\tnumber = 7', '\tname = beta', '\tcluster = longclustername', '', '',
  ].join('\n'));
  t.match(ours(['-f', '--cluster-conf', conf, cl]), /G  alpha, beta\n/, 'node names from cluster.conf');
  const j = JSON.parse(ours(['-f', '--json', '--cluster-conf', conf, cl])) as Array<{ nodes: number[]; nodeNames: string[]; cluster: string }>;
  t.same(j[0]!.nodes, [3, 7]);
  t.same(j[0]!.nodeNames, ['alpha', 'beta']);
  t.equal(j[0]!.cluster, 'longclustername');
  // Not an OCFS2 volume: not listed.
  const junk = path.join(dir, 'junk.img');
  sparseImage(junk, 8 * MiB);
  t.equal(ours(['-d', junk]), theirs(['-d', junk]));
});

t.test('a loop device, named and found by the scan', { skip: process.getuid?.() !== 0 ? 'needs root for losetup' : false }, async (t) => {
  const img = image('loop.img', ['-N', '2', '--cluster-stack=o2cb', '--cluster-name=loopcl', '-L', 'looplabel']);
  const lo = run('losetup', ['--direct-io=on', '-f', '--show', img]).stdout.trim();
  t.match(lo, /^\/dev\/loop\d+$/);
  t.teardown(() => { run('losetup', ['-d', lo]); });
  t.equal(ours(['-d', lo]), theirs(['-d', lo]), '-d on the loop device');
  t.equal(ours(['-f', lo]), theirs(['-f', lo]), '-f on the loop device');
  // The scan lists every device (other loop devices come and go): compare our line.
  const line = (s: string): string | undefined => s.split('\n').find((l) => l.startsWith(`${lo} `));
  const a = line(ours(['-d']));
  t.ok(a, 'the scan finds our loop device');
  t.equal(a, line(theirs(['-d'])));
});
