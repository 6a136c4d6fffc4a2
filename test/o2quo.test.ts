/**
 * o2quo: the decision rule of quorum.c's o2quo_make_decision, the hold /
 * pending state machine around it, and (process level) which side of a cut
 * network fences.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeQuorumDecision, O2Quo } from '../src/cluster/quorum';
import { FENCE_EXIT_CODE } from '../src/cluster/stack';
import { makeNodes, writeCluster, spawnNode, NodeProc, O2cbVals, startInOrder, WAIT_MS } from './o2net-harness';

const S = (...n: number[]): Set<number> => new Set(n);

t.test('decision rule (o2quo_make_decision)', async (t) => {
  const cases: { hb: number[]; conn: number[]; self: number; fence: boolean; why: string }[] = [
    { hb: [0, 1], conn: [2], self: 2, fence: false, why: 'not heartbeating itself: no action' },
    { hb: [3], conn: [3], self: 3, fence: false, why: 'alone: no action' },
    // odd: quorum (N+1)/2
    { hb: [0, 1, 2], conn: [2], self: 2, fence: true, why: '3 nodes, connected to none: 1 < 2' },
    { hb: [0, 1, 2], conn: [0, 2], self: 2, fence: false, why: '3 nodes, connected to one: 2 >= 2' },
    { hb: [0, 1, 2], conn: [1, 2], self: 1, fence: false, why: 'odd: the lowest node does not matter' },
    { hb: [0, 1, 2, 3, 4], conn: [3, 4], self: 4, fence: true, why: '5 nodes, 2 < 3' },
    { hb: [0, 1, 2, 3, 4], conn: [2, 3, 4], self: 4, fence: false, why: '5 nodes, 3 >= 3' },
    // even: quorum N/2, a half without the lowest heartbeating node loses
    { hb: [0, 1], conn: [1], self: 1, fence: true, why: '2 nodes: the higher one alone fences (lowest 0 unreachable)' },
    { hb: [0, 1], conn: [0], self: 0, fence: false, why: '2 nodes: the lowest one alone survives' },
    { hb: [3, 7], conn: [7], self: 7, fence: true, why: '2 nodes 3 and 7: 7 fences' },
    { hb: [0, 1, 2, 3], conn: [0, 1], self: 1, fence: false, why: '4 nodes, half with the lowest survives' },
    { hb: [0, 1, 2, 3], conn: [2, 3], self: 3, fence: true, why: '4 nodes, half without the lowest fences' },
    { hb: [0, 1, 2, 3], conn: [3], self: 3, fence: true, why: '4 nodes, 1 < 2' },
    { hb: [0, 1, 2, 3], conn: [0, 2, 3], self: 2, fence: false, why: '4 nodes, 3 > 2' },
    { hb: [1, 2, 5, 6], conn: [5, 6], self: 6, fence: true, why: 'lowest heartbeating (1), not lowest configured' },
    { hb: [1, 2, 5, 6], conn: [1, 6], self: 6, fence: false, why: 'half including the lowest heartbeating node' },
  ];
  for (const c of cases) {
    const d = makeQuorumDecision({ heartbeating: new Set(c.hb), connected: new Set(c.conn), thisNode: c.self });
    t.equal(d.fence, c.fence, c.why);
  }
  const d = makeQuorumDecision({ heartbeating: S(0, 1, 2, 3), connected: S(2, 3), thisNode: 3 });
  t.match(d.reason, /connected to a half-quorum of 2 out of 4 nodes which doesn't include the lowest active node 0/);
  const d2 = makeQuorumDecision({ heartbeating: S(0, 1, 2), connected: S(2), thisNode: 2 });
  t.match(d2.reason, /only connected to 1 nodes and 2 is needed to make a quorum out of 3 heartbeating nodes/);
});

t.test('holds and pending decisions (o2quo state machine)', async (t) => {
  const fenced: string[] = [];
  const q = new O2Quo({ thisNode: 2, fence: (r) => fenced.push(r), log: () => undefined });
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  q.connUp(2); q.hbUp(2);
  q.hbUp(0); q.hbUp(1);
  t.equal(q.holdCount, 2, 'heartbeating but not connected: held');
  q.connUp(0); q.connUp(1);
  t.equal(q.holdCount, 0, 'connections drop the holds');
  q.connErr(0);
  t.equal(q.holdCount, 1, 'lost connection to a heartbeating node: held');
  q.hbDown(0);
  t.equal(q.holdCount, 0, 'heartbeat down releases it');
  await tick();
  t.equal(q.decisions.length, 0, 'no decision: the node really died');
  q.hbUp(0); q.connUp(0);
  // now lose both peers while they keep heartbeating
  q.connErr(0); q.connErr(1);
  t.equal(q.holdCount, 2);
  q.hbStillUp(0);
  await tick();
  t.equal(q.decisions.length, 0, 'another hold is still in place: decision waits');
  q.hbStillUp(1);
  await tick();
  t.equal(q.decisions.length, 1, 'last hold gone: decision runs');
  t.equal(fenced.length, 1, 'connected to 1 of 3: fences');
  t.ok(q.hasFenced);

  const fenced2: string[] = [];
  const q2 = new O2Quo({ thisNode: 0, fence: (r) => fenced2.push(r), log: () => undefined });
  for (const n of [0, 1, 2]) { q2.connUp(n); q2.hbUp(n); }
  q2.connErr(2);
  q2.hbStillUp(2);
  await tick();
  t.equal(q2.decisions.length, 1);
  t.equal(fenced2.length, 0, '2 of 3 connected: no fence');
});

const V: O2cbVals = { threshold: 31, idle: 2000, keepalive: 500, reconnect: 500 };
const QD = ['--quorum-delay-ms', '1500'];

async function startCluster(t: { teardown: (fn: () => Promise<void>) => void }, count: number): Promise<{ procs: NodeProc[]; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2quo-'));
  const nodes = await makeNodes(count);
  writeCluster(dir, nodes, V);
  const procs: NodeProc[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // static heartbeat: acceptors (lower numbers) must listen before their connectors start
  await startInOrder(procs, count, (i) => spawnNode({ dir, node: nodes[i]!.name, extra: QD }));
  // fully meshed
  for (const p of procs) {
    for (const q of procs) {
      if (q === p) continue;
      await p.waitFor(new RegExp(`(Connected to|Accepted connection from) node ${q.name} `), WAIT_MS);
    }
  }
  return { procs, dir };
}

t.test('process level: one node of three cut off fences, the majority stays', async (t) => {
  const { procs } = await startCluster(t, 3);
  const [p0, p1, p2] = procs as [NodeProc, NodeProc, NodeProc];
  // the fault is injected on node1's side only
  t.equal((await p1.request({ op: 'fault', cut: [0, 2] })).ok, true);
  const code = await Promise.race([p1.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), WAIT_MS).unref())]);
  t.equal(code, FENCE_EXIT_CODE, 'node1 exited with the fence status');
  await p1.waitFor(/fencing this node because it is only connected to 1 nodes and 2 is needed to make a quorum out of 3 heartbeating nodes/);
  await p0.waitFor(/not fencing this node, heartbeating: 3, connected: 2/, WAIT_MS);
  await p2.waitFor(/not fencing this node, heartbeating: 3, connected: 2/, WAIT_MS);
  t.equal(p0.exitCode, undefined, 'node0 still runs');
  t.equal(p2.exitCode, undefined, 'node2 still runs');
  t.equal(p0.count(/ocfs2-fuse is fencing/), 0);
});

t.test('process level: a 2/2 split fences the half without the lowest node', async (t) => {
  const { procs } = await startCluster(t, 4);
  const [p0, p1, p2, p3] = procs as [NodeProc, NodeProc, NodeProc, NodeProc];
  // cut between {0,1} and {2,3}, injected on the side that will survive
  await p0.request({ op: 'fault', cut: [2, 3] });
  await p1.request({ op: 'fault', cut: [2, 3] });
  const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), WAIT_MS).unref());
  t.equal(await Promise.race([p2.exited, timeout]), FENCE_EXIT_CODE, 'node2 fenced');
  t.equal(await Promise.race([p3.exited, timeout]), FENCE_EXIT_CODE, 'node3 fenced');
  // whichever of them decided first did so on the tie-break; the other may
  // then have lost its partner too (with a static heartbeat the fenced node
  // still counts as heartbeating) and fenced on the plain majority rule
  const half = /connected to a half-quorum of 2 out of 4 nodes which doesn't include the lowest active node 0/;
  t.ok(p2.count(half) + p3.count(half) >= 1, 'the tie-break (lowest node 0 unreachable) fenced the {2,3} side');
  await p0.waitFor(/not fencing this node, heartbeating: 4, connected: 2, lowest: 0 \(reachable\)/, WAIT_MS);
  await p1.waitFor(/not fencing this node, heartbeating: 4, connected: 2, lowest: 0 \(reachable\)/, WAIT_MS);
  t.equal(p0.exitCode, undefined, 'node0 still runs');
  t.equal(p1.exitCode, undefined, 'node1 still runs');
});
