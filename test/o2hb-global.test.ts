/**
 * Global heartbeat aggregation in one process over in-memory devices: a node
 * is live if any region sees it, and a node fences only when failed quorum
 * regions are at least half of the quorum regions (o2hb_write_timeout).
 */
import t from 'tap';
import { Heartbeat } from '../src/cluster/heartbeat';
import { NodeManager, parseClusterConf } from '../src/cluster/nodemanager';
import type { DirectIo } from '../src/native/directio';

const REGIONS = ['11111111111111111111111111111111', '22222222222222222222222222222222', '33333333333333333333333333333333'];
const CONF = 'cluster:\n\tnode_count = 2\n\theartbeat_mode = global\n\tname = g\n\n'
  + 'node:\n\tip_port = 7777\n\tip_address = 127.0.0.1\n\tnumber = 0\n\tname = a\n\tcluster = g\n\n'
  + 'node:\n\tip_port = 7777\n\tip_address = 127.0.0.2\n\tnumber = 1\n\tname = b\n\tcluster = g\n\n'
  + REGIONS.map((r) => `heartbeat:\n\tregion = ${r}\n\tcluster = g\n\n`).join('');

/** Shared in-memory "disks", one per region. */
function memIo(disks: Map<string, Buffer>): DirectIo {
  const fds = new Map<number, Buffer>();
  let next = 100;
  return {
    open(file) { const d = disks.get(file); if (!d) throw new Error('ENOENT'); fds.set(next, d); return next++; },
    close(fd) { fds.delete(fd); },
    sectorSize() { return 512; },
    async pread(fd, buf, off) { await new Promise((r) => setImmediate(r)); fds.get(fd)!.copy(buf, 0, off, off + buf.length); return buf.length; },
    async pwrite(fd, buf, off) { await new Promise((r) => setImmediate(r)); buf.copy(fds.get(fd)!, off); return buf.length; },
    flock() { return true; },
  };
}

t.test('global mode: live in any region, fence at >= half failed quorum regions', async (t) => {
  const disks = new Map(REGIONS.map((r) => [`/mem/${r}`, Buffer.alloc(1 << 20)] as const));
  const clusters = parseClusterConf(CONF);
  const opts = { intervalMs: 100, deadThreshold: 5, io: memIo(disks) };
  const hbA = new Heartbeat(NodeManager.fromConfig(clusters, { node: 'a' }), opts);
  const hbB = new Heartbeat(NodeManager.fromConfig(clusters, { node: 'b' }), opts);
  t.teardown(async () => { await hbA.stop(); await hbB.stop(); });
  t.equal(hbA.mode, 'global');
  const ups: number[] = [];
  const downsA: number[] = [];
  hbA.on('node-up', (n: number) => ups.push(n));
  hbA.on('node-down', (n: number) => downsA.push(n));
  const area = (r: string): { device: string; startBlock: number; blocks: number; name: string } => ({ device: `/mem/${r}`, startBlock: 16, blocks: 255, name: r });
  await Promise.all(REGIONS.map(async (r) => { await hbA.addRegion(area(r)); await hbB.addRegion(area(r)); }));
  const until = async (f: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!f()) { if (Date.now() > end) return false; await new Promise((r) => setTimeout(r, 20)); }
    return true;
  };
  t.ok(await until(() => hbA.isNodeLive(1) && hbA.quorumRegions().size === 3, 60000), 'node b live, all three regions are quorum regions');
  t.same(ups.filter((n) => n === 1).length, 1, 'one node-up for b although three regions see it');

  const [r0, r1] = hbA.regions();
  let fenced = '';
  hbA.on('fence', (why: string) => { fenced = why; });
  r0!.setFault('block-writes');
  // write timeout = 100 * (5 - 1) = 400 ms: wait for the failure itself (generous deadline, a loaded machine)
  t.ok(await until(() => hbA.failedRegions().size > 0, 60000), 'the blocked region fails its write timeout');
  t.same([...hbA.failedRegions()], [r0!.regionNum], 'one failed region');
  t.notOk(hbA.isFenced(), '1 of 3 failed: 2 < 3, no fence');
  t.ok(hbB.isNodeLive(0), 'b still sees a through the other regions');
  r1!.setFault('block-writes');
  t.ok(await until(() => hbA.isFenced(), 60000), '2 of 3 failed: 4 >= 3, fence');
  t.match(fenced, /2 of 3 quorum regions/);
  t.ok(hbA.regions().every((r) => r.isFenced()), 'every region stopped');
  t.ok(await until(() => !hbB.isNodeLive(0), 60000), 'b declares a dead once no region sees it beat');
  t.same(downsA, [], 'a fenced node reports nothing further');
});
