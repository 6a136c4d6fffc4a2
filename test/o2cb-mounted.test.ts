/**
 * Who is on the volume, as `cluster status` and Debian's `mounted.ocfs2 -f`
 * see it.  Three node processes on 127.0.0.1-3 heartbeat on one image, each
 * through its own loop device with direct I/O (separate hosts).
 *
 * What mounted.ocfs2 -f reads (ocfs2-tools 1.8: mounted.c do_full_detect ->
 * libocfs2/checkhb.c ocfs2_check_heartbeats): despite the name, not the
 * heartbeat area.  It opens the volume read-only, loads the slot map
 * (ocfs2_load_slot_map) and prints the node number in every valid slot,
 * else "Not mounted".  The kernel fills a slot only at mount
 * (ocfs2_find_slot / ocfs2_update_disk_slot); a kernel node that only
 * heartbeats is "Not mounted" too (checked in the guest by
 * test/o2cb-kernel.test.ts).  So:
 *   - heartbeat only: `cluster status` on every node lists the three live
 *     nodes, mounted.ocfs2 -f says "Not mounted", exactly as with kernel nodes;
 *   - our read-write open (openReadWrite, what the rw mount uses) claims a
 *     slot the way the kernel's mount does, and mounted.ocfs2 -f lists that
 *     node; the clean close releases it.  openReadWrite is a single-node mount
 *     (no DLM yet): it refuses while other nodes heartbeat, so the mounted
 *     case runs after the heartbeat nodes left.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { makeO2cbImage } from './lib/o2cb-image';
import { CLI } from './lib/mount';
import { loopDevicesMissing, requireJudge } from './lib/judges';
import { attachLoop, detachLoop, run } from './lib/netns';
import { makeNodes, writeCluster, spawnNode, NodeProc, O2cbVals, nodeArgsFor, cliScript, REPO, WAIT_MS } from './o2net-harness';
import { openReadWrite } from '../src/libocfs2/rwmount';

const INTERVAL = 300;
const V: O2cbVals = { threshold: 6, idle: 3000, keepalive: 1000, reconnect: 500 };

function mountedF(dev: string): string {
  const r = run(['mounted.ocfs2', '-f', dev], 60);
  if (r.status !== 0) throw new Error(`mounted.ocfs2 -f ${dev} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The Nodes column of mounted.ocfs2 -f for one device. */
function nodesColumn(out: string, dev: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`${dev} `));
  if (!line) throw new Error(`no line for ${dev} in:\n${out}`);
  // Device  Stack  Cluster  F  Nodes  (F is a blank or 'G')
  const m = /^\S+\s+\S+\s+\S+\s+(?:G\s+)?(.*)$/.exec(line);
  return m![1]!.trim();
}

function statusOf(dir: string, p: NodeProc): Promise<string> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
    delete env.NODE_OPTIONS;
    // the real CLI (ocfs2-fuse cluster status), as an administrator runs it
    const c = spawn('timeout', ['120', process.execPath, CLI, 'cluster', 'status',
      '--cluster-conf', path.join(dir, 'cluster.conf'), '--o2cb-config', path.join(dir, 'o2cb'),
      '--node', p.name, '--control-socket', p.controlSocket], { cwd: REPO, env });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('exit', () => resolve(out));
  });
}

t.test('three heartbeating nodes: cluster status and mounted.ocfs2 -f', async (t) => {
  if (!requireJudge(t, loopDevicesMissing())) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2mounted-'));
  const { image } = makeO2cbImage(dir, { cluster: 'testclu', slots: 4, sizeMiB: 64 });
  const nodes = await makeNodes(3);
  writeCluster(dir, nodes, V);
  const loops: string[] = [];
  const procs: NodeProc[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    for (const l of loops) detachLoop(l);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 3; i++) loops.push(attachLoop(image));

  t.equal(nodesColumn(mountedF(loops[0]!), loops[0]!), 'Not mounted', 'a fresh volume is not mounted');

  for (let i = 0; i < 3; i++) {
    procs.push(spawnNode({ dir, node: `node${i}`, staticHeartbeat: false, extra: ['--device', loops[i]!, '--heartbeat-interval-ms', String(INTERVAL)] }));
  }
  await Promise.all(procs.map((p) => p.ready()));
  for (const p of procs) for (const n of [0, 1, 2]) await p.waitFor(new RegExp(`o2hb: Node ${n} \\(node${n}\\) is up`), WAIT_MS);

  for (const p of procs) {
    const s = await statusOf(dir, p);
    t.match(s, /Live nodes: 0 \(node0\), 1 \(node1\), 2 \(node2\)/, `cluster status on ${p.name} lists the three live nodes`);
    t.match(s, new RegExp(`device ${loops[procs.indexOf(p)]!.replace(/[/]/g, '\\/')}: live nodes 0 1 2`), `${p.name}: through its own loop device`);
  }
  for (const l of loops) {
    const out = mountedF(l);
    t.match(out, /Device\s+Stack\s+Cluster\s+F\s+Nodes/, 'mounted.ocfs2 -f header');
    t.equal(nodesColumn(out, l), 'Not mounted', `${l}: heartbeat alone fills no slot (as for a kernel node that only heartbeats)`);
  }

  await Promise.all(procs.map((p) => p.stop()));

  // what a mount does: claim a slot; mounted.ocfs2 -f then lists the node
  const rv = await openReadWrite(loops[1]!, { node: 2, heartbeatWaitMs: 3 * INTERVAL + 200 });
  try {
    t.equal(rv.node, 2);
    for (const l of loops) t.equal(nodesColumn(mountedF(l), l), '2', `${l}: mounted.ocfs2 -f lists node 2 from the slot map (slot ${rv.slot})`);
  } finally {
    await rv.close();
  }
  t.equal(nodesColumn(mountedF(loops[2]!), loops[2]!), 'Not mounted', 'a clean unmount releases the slot');
});
