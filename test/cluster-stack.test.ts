/**
 * The whole node stack in real processes: three `cluster node` processes
 * heartbeating on one shared image (each through its own loop device with
 * direct I/O when loop devices can be made, else the image file with
 * O_DIRECT), o2net driven by the heartbeat events, `cluster status` online
 * and offline, a second invocation joining the running stack over the
 * control socket, clean leave vs kill -9.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { makeO2cbImage } from './lib/o2cb-image';
import { CLI } from './lib/mount';
import { loopDevicesMissing, requireJudge } from './lib/judges';
import { attachLoop, detachLoop } from './lib/netns';
import { crc32_le } from '../src/libocfs2/crc32';
import { TEST_MSG_TYPE, TEST_MSG_KEY, StackStatus, FENCE_EXIT_CODE } from '../src/cluster/stack';
import { makeNodes, writeCluster, spawnNode, NodeProc, O2cbVals, nodeArgsFor, cliScript, REPO, until, WAIT_MS } from './o2net-harness';

const INTERVAL = 300; // heartbeat period for the test (the kernel's is 2000)
const V: O2cbVals = { threshold: 6, idle: 3000, keepalive: 1000, reconnect: 500 };
const DEAD_MS = V.threshold * INTERVAL;

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
    delete env.NODE_OPTIONS;
    // the real CLI (ocfs2-fuse cluster ...), as an administrator runs it
    const p = spawn('timeout', ['120', process.execPath, CLI, 'cluster', ...args], { cwd: REPO, env });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('exit', (code) => resolve({ code, out }));
  });
}

t.test('three node stacks on one shared image', async (t) => {
  if (!requireJudge(t, loopDevicesMissing())) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2stack-'));
  const { image, uuid } = makeO2cbImage(dir, { cluster: 'testclu', slots: 4, sizeMiB: 64 });
  const nodes = await makeNodes(4); // node3 is configured, never started
  writeCluster(dir, nodes, V);
  // one loop device per node (separate hosts)
  const loops: string[] = [];
  for (let i = 0; i < 3; i++) loops.push(attachLoop(image));
  const devs = loops;
  t.comment(`loop devices ${loops.join(' ')}`);
  const hbArgs = (i: number): string[] => ['--device', devs[i]!, '--heartbeat-interval-ms', String(INTERVAL)];
  const procs: NodeProc[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    for (const l of loops) detachLoop(l);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 3; i++) procs.push(spawnNode({ dir, node: `node${i}`, staticHeartbeat: false, extra: hbArgs(i) }));
  const [p0, p1, p2] = procs as [NodeProc, NodeProc, NodeProc];
  await Promise.all(procs.map((p) => p.ready()));

  await t.test('heartbeat brings nodes up, then o2net connects the higher to the lower', async (t) => {
    for (const p of procs) {
      for (const n of [0, 1, 2]) await p.waitFor(new RegExp(`o2hb: Node ${n} \\(node${n}\\) is up`), WAIT_MS);
    }
    await p2.waitFor(/o2net: Connected to node node0/, WAIT_MS);
    await p2.waitFor(/o2net: Connected to node node1/, WAIT_MS);
    await p1.waitFor(/o2net: Connected to node node0/, WAIT_MS);
    t.equal(p0.count(/o2net: Connected to/), 0, 'node0 only accepts');
    const payload = Buffer.from('over the heartbeat-driven connection');
    const r = await p0.request({ op: 'send', node: 2, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: payload.toString('hex') });
    t.equal(r.status, crc32_le(0, payload) | 0, 'a message round-trips');
  });

  await t.test('cluster status from the running node', async (t) => {
    const r = await runCli(['status', '--cluster-conf', path.join(dir, 'cluster.conf'), '--node', 'node1', '--o2cb-config', path.join(dir, 'o2cb'), '--control-socket', p1.controlSocket]);
    t.equal(r.code, 0, 'status exits 0');
    t.match(r.out, /Cluster testclu: Online/);
    t.match(r.out, /Heartbeat dead threshold: 6/);
    t.match(r.out, /Network idle timeout: 3000/);
    t.match(r.out, /Heartbeat mode: Local/);
    t.match(r.out, new RegExp(`Region ${uuid} device ${devs[1]!.replace(/[/.]/g, '\\$&')}: live nodes 0 1 2`));
    t.match(r.out, /Live nodes: 0 \(node0\), 1 \(node1\), 2 \(node2\)/);
    t.match(r.out, /node node0 \(num 0\) at 127\.0\.0\.1:\d+: connected, connected to it/);
    t.match(r.out, /node node2 \(num 2\) at 127\.0\.0\.3:\d+: connected, accepted from it/);
    const j = await runCli(['status', '--json', '--cluster-conf', path.join(dir, 'cluster.conf'), '--node', 'node1', '--o2cb-config', path.join(dir, 'o2cb'), '--control-socket', p1.controlSocket]);
    const s = JSON.parse(j.out) as StackStatus;
    t.same(s.liveNodes, [0, 1, 2]);
    t.same(s.quorum.connected, [0, 1, 2]);
  });

  await t.test('cluster status with no node running reads the heartbeat area', async (t) => {
    const r = await runCli(['status', '--cluster-conf', path.join(dir, 'cluster.conf'), '--node', 'node3', '--o2cb-config', path.join(dir, 'o2cb'),
      '--control-socket', path.join(dir, 'node3.sock'), '--heartbeat-interval-ms', String(INTERVAL), '--device', image]);
    t.equal(r.code, 3, 'exit 3 like a stopped service');
    t.match(r.out, /Cluster testclu: Offline/);
    t.match(r.out, /heartbeating on disk: 0 \(node0\), 1 \(node1\), 2 \(node2\)/);
  });

  await t.test('a second invocation for the same node joins the running stack', async (t) => {
    const join = spawnNode({ dir, node: 'node0', staticHeartbeat: false, extra: hbArgs(0) });
    const line = await join.waitFor(/o2cb: joined the running stack of this node \(pid (\d+)\)/, WAIT_MS);
    t.match(line, new RegExp(`pid ${p0.proc.pid}`), 'joined node0\'s process');
    const st = (await p0.request({ op: 'status' })).status as StackStatus;
    t.equal(st.regions.length, 1, 'still one heartbeat region');
    t.equal(st.regions[0]!.users, 2, 'now used twice');
    t.equal(p0.count(/o2net: .*online at|online at/), 1, 'no second stack');
    t.equal(await join.stop(), 0, 'the joiner leaves cleanly on SIGTERM');
    // wait for the event (the reference dropped), not a fixed time
    await until(async () => ((await p0.request({ op: 'status' })).status as StackStatus).regions[0]?.users === 1, WAIT_MS, 'the joiner\'s reference dropped');
    const st2 = (await p0.request({ op: 'status' })).status as StackStatus;
    t.equal(st2.regions.length, 1, 'its reference is gone, the heartbeat stays');
  });

  await t.test('clean leave: the others see it down at once (generation 0)', async (t) => {
    t.equal(await p2.stop(), 0, 'node2 exits 0 on SIGTERM');
    // its generation-0 block is on disk before it exits: time from there (the
    // SIGTERM handling itself can take long on a loaded machine)
    const t0 = Date.now();
    await p0.waitFor(/o2hb: Node 2 \(node2\) is down/, WAIT_MS);
    await p1.waitFor(/o2hb: Node 2 \(node2\) is down/, WAIT_MS);
    // The promise is "at once, by the generation-0 block, not after the dead threshold": the
    // observers' own log says which rule took the node down (a wall-clock bound across
    // processes only measures the machine's load).
    t.comment(`down ${Date.now() - t0} ms after it exited (dead threshold ${DEAD_MS} ms)`);
    for (const p of [p0, p1]) t.ok(p.lines.some((l) => /Node 2 left my region \(generation changed\)/.test(l)), `${p.name}: by its generation-0 block`);
    for (const p of [p0, p1]) t.notOk(p.lines.some((l) => /Node 2 left my region$/.test(l)), `${p.name}: not by the dead threshold`);
    await p0.waitFor(/No longer connected to node node2/);
    await p2.waitFor(/left cluster testclu/);
  });

  await t.test('kill -9: seen dead after the dead threshold, no fencing among the survivors', async (t) => {
    const t0 = Date.now();
    p1.proc.kill('SIGKILL');
    await p1.exited;
    await p0.waitFor(/No longer connected to node node1/, WAIT_MS);
    await p0.waitFor(/o2hb: Node 1 \(node1\) is down/, WAIT_MS);
    const dt = Date.now() - t0;
    t.ok(dt >= DEAD_MS - 2 * INTERVAL, `dead after ${dt} ms, not before the threshold (${DEAD_MS} ms)`);
    // the quorum delay ((threshold + 2) periods) lets heartbeat decide first
    await new Promise((r) => setTimeout(r, (V.threshold + 3) * INTERVAL));
    t.equal(p0.count(/fencing/), 0, 'node0 made no quorum decision and did not fence');
    t.equal(p0.exitCode, undefined);
  });

  await t.test('restart with a new generation; blocked heartbeat writes fence the node and its joiner', async (t) => {
    const genRe = /o2hb: Node 1 \(node1\) is up, generation ([0-9a-f]+)/;
    const firstGen = genRe.exec(p0.lines.find((l) => genRe.test(l))!)![1];
    const again = spawnNode({ dir, node: 'node1', staticHeartbeat: false, extra: hbArgs(1) });
    procs.push(again);
    await again.ready();
    await until(() => p0.count(genRe) >= 2, WAIT_MS, 'node0 sees node1 up again');
    const gens = p0.lines.filter((l) => genRe.test(l)).map((l) => genRe.exec(l)![1]);
    t.not(gens[1], firstGen, `new generation ${gens[1]} (was ${firstGen})`);
    await again.waitFor(/o2net: Connected to node node0/, WAIT_MS);
    const joiner = spawnNode({ dir, node: 'node1', staticHeartbeat: false, extra: hbArgs(1) });
    procs.push(joiner);
    await joiner.waitFor(/joined the running stack/, WAIT_MS);
    const t0 = Date.now();
    t.equal((await again.request({ op: 'hb-fault', mode: 'block-writes' })).ok, true);
    t.equal(await Promise.race([again.exited, new Promise((r) => setTimeout(() => r('timeout'), WAIT_MS).unref())]), FENCE_EXIT_CODE, 'node1 fenced itself');
    const dt = Date.now() - t0;
    const writeTimeout = (V.threshold - 1) * INTERVAL;
    t.ok(dt >= writeTimeout - INTERVAL, `not before the write timeout (${writeTimeout} ms): ${dt} ms after the fault`);
    // how long after its last good write it fenced, as the node measured it
    // (an upper bound on the time since the fault; this process's wall clock
    // also counts the control request and the exit on a loaded machine)
    const wt = /Heartbeat write timeout to device \S+ after (\d+) milliseconds/.exec(again.lines.find((l) => /Heartbeat write timeout to device/.test(l)) ?? '');
    t.ok(wt, 'node1 logged the write timeout');
    const elapsed = Number(wt?.[1]);
    t.ok(elapsed >= writeTimeout && elapsed < writeTimeout + 5000, `fenced within the write timeout (${writeTimeout} ms): ${elapsed} ms after its last write`);
    await again.waitFor(/ocfs2-fuse is fencing this node \(node1, num 1\)/);
    t.equal(await joiner.exited, FENCE_EXIT_CODE, 'the joined invocation learns of the fence');
    await joiner.waitFor(/the node fenced itself/);
    await until(() => p0.count(/o2hb: Node 1 \(node1\) is down/) >= 2, WAIT_MS, 'node0 sees node1 down again');
    t.equal(p0.exitCode, undefined, 'node0 unaffected');
  });
});
