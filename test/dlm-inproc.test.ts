/**
 * o2dlm state machines in one process: three nodes, each with its own o2net
 * endpoint on 127.0.0.x (real TCP), joined to the same domain.
 */
import t from 'tap';
import { O2Net, NetNode } from '../src/cluster/net/o2net';
import { O2Dlm, DlmDomain, DlmError } from '../src/cluster/dlm/dlm';
import { LkmMode, DlmStatus } from '../src/cluster/dlm/wire';
import { freePorts } from './o2net-harness';

interface Cluster { nets: O2Net[]; dlms: O2Dlm[]; live: Set<number>[]; logs: string[][]; stop(): Promise<void> }

async function cluster(n: number): Promise<Cluster> {
  const ports = await freePorts(n);
  const nodes: NetNode[] = ports.map((p, i) => ({ name: `n${i}`, num: i, ipv4Address: `127.0.0.${i + 1}`, ipv4Port: p }));
  const timeouts = { heartbeatDeadThreshold: 31, idleTimeoutMs: 10000, keepaliveDelayMs: 2000, reconnectDelayMs: 200 };
  const live = nodes.map(() => new Set(nodes.map((x) => x.num)));
  const logs: string[][] = nodes.map(() => []);
  const nets = nodes.map((nd, i) => new O2Net({ localNode: nd, nodes, timeouts, isHeartbeating: (x) => live[i]!.has(x), log: (l) => logs[i]!.push(l) }));
  for (const x of nets) await x.start();
  for (const x of nets) for (const nd of nodes) x.hbNodeUp(nd.num);
  const dlms = nodes.map((nd, i) => new O2Dlm({ localNode: nd.num, net: nets[i]!, nodes, liveNodes: () => new Set(live[i]), heartbeatMode: 'local', log: (l) => { logs[i]!.push(l); if (process.env.DLM_TEST_VERBOSE) process.stderr.write(`[n${i}] ${l}\n`); }, purgeIntervalMs: 300 }));
  return {
    nets, dlms, live, logs,
    async stop() { for (const x of nets) await x.stop(); },
  };
}

/** A node dies: its o2net stops, the others' heartbeat declares it down. */
async function kill(c: Cluster, dead: number): Promise<void> {
  await c.nets[dead]!.stop();
  for (let i = 0; i < c.nets.length; i++) {
    if (i === dead) continue;
    c.live[i]!.delete(dead);
    c.nets[i]!.hbNodeDown(dead);
    c.dlms[i]!.nodeDown(dead);
  }
}

const until = async (f: () => boolean, ms = 20000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) { if (Date.now() > end) throw new Error('timed out'); await new Promise((r) => setTimeout(r, 20)); }
};

t.test('join, mastery, grant order, BAST, LVB, leave with migration', async (t) => {
  const c = await cluster(3);
  t.teardown(() => c.stop());
  const [d0, d1, d2] = [await c.dlms[0]!.register('DOM'), await c.dlms[1]!.register('DOM'), await c.dlms[2]!.register('DOM')] as DlmDomain[];
  t.same([...d0!.domainMap].sort(), [0, 1, 2]);
  t.same([...d2!.domainMap].sort(), [0, 1, 2]);
  t.equal(d2!.dlmProto.minor, 3, 'negotiated DLM 1.3');

  // node 1 takes EX first: it masters the resource
  const basts: string[] = [];
  const a = await d1!.lock('res1', LkmMode.EX, { valblk: true, onBast: (m) => basts.push(`a:${m}`) });
  t.equal(d1!.res.get('res1')!.owner, 1, 'first locker masters');
  t.equal(d0!.res.get('res1'), undefined, 'others have no resource yet');
  // trylock from node 0 fails with NOTQUEUED (EAGAIN)
  const tryErr = await d0!.lock('res1', LkmMode.PR, { noqueue: true }).then(() => null, (e: unknown) => e);
  t.ok(tryErr instanceof DlmError && tryErr.status === DlmStatus.NOTQUEUED && tryErr.errno === 11, 'trylock: NOTQUEUED -> EAGAIN');
  t.equal(d0!.res.get('res1')!.owner, 1, 'node 0 learned the master');
  // a blocking PR from node 0 and node 2: one BAST per blocked level
  const order: string[] = [];
  const p0 = d0!.lock('res1', LkmMode.PR, { valblk: true }).then((h) => { order.push('n0'); return h; });
  const p2 = d2!.lock('res1', LkmMode.PR, { valblk: true }).then((h) => { order.push('n2'); return h; });
  await until(() => d1!.res.get('res1')!.blocked.length === 2);
  await until(() => basts.length >= 1);
  await new Promise((r) => setTimeout(r, 100));
  // a BAST goes out per shuffle that finds the holder blocking (dlm_flush_asts resets highest_blocked)
  t.ok(basts.length >= 1 && basts.length <= 2 && basts.every((b) => b === `a:${LkmMode.PR}`), `BASTs at PR: ${basts.join(' ')}`);
  // the EX holder writes the LVB and down-converts: the PR waiters get it
  a.lvb.write('counter=41', 'latin1');
  await a.convert(LkmMode.NL, { valblk: true });
  const [h0, h2] = await Promise.all([p0, p2]);
  t.equal(h0.lvb.toString('latin1', 0, 10), 'counter=41', 'LVB reached node 0');
  t.equal(h2.lvb.toString('latin1', 0, 10), 'counter=41', 'LVB reached node 2');
  // an up-convert of node 1 to EX waits on the converting queue; PR holders get BASTs
  const bast0: number[] = []; const bast2: number[] = [];
  (h0.lock.onBast) = (m) => bast0.push(m);
  (h2.lock.onBast) = (m) => bast2.push(m);
  const up = a.convert(LkmMode.EX, { valblk: true });
  await until(() => bast0.length > 0 && bast2.length > 0);
  t.same([bast0, bast2], [[LkmMode.EX], [LkmMode.EX]]);
  // a new EX request waits (blocked) until the converting one is granted and released
  let lateGranted = false;
  const late = d0!.lock('res1', LkmMode.EX).then((h) => { lateGranted = true; return h; });
  await until(() => d1!.res.get('res1')!.blocked.length === 1);
  t.notOk(lateGranted, 'new EX waits on the blocked queue');
  await h0.unlock();
  await h2.unlock();
  await up;
  t.equal(a.mode, LkmMode.EX);
  t.equal(a.lvb.toString('latin1', 0, 10), 'counter=41', 'up-convert with valblk got the LVB');
  a.lvb.write('counter=42', 'latin1');
  await a.unlock({ valblk: true });
  const hl = await late;
  t.ok(lateGranted);
  await hl.convert(LkmMode.NL);
  await hl.convert(LkmMode.EX, { valblk: true });
  t.equal(hl.lvb.toString('latin1', 0, 10), 'counter=42', 'LVB written by the EX unlock');
  // PR holder's LVB is not written back
  hl.lvb.write('counter=99', 'latin1');
  await hl.convert(LkmMode.PR, { valblk: true });
  await hl.convert(LkmMode.NL, { valblk: true });
  const check = await d2!.lock('res1', LkmMode.PR, { valblk: true });
  t.equal(check.lvb.toString('latin1', 0, 10), 'counter=99', 'EX down-convert put the LVB');
  await check.unlock();
  await hl.unlock();

  // cancel of a blocked request
  const ex = await d2!.lock('res2', LkmMode.EX);
  let cancelledResult: unknown = null;
  const waiting = d0!.lock('res2', LkmMode.EX).catch((e: unknown) => { cancelledResult = e; });
  await until(() => (d2!.res.get('res2')?.blocked.length ?? 0) === 1);
  const lk = d0!.res.get('res2')!.blocked[0]!;
  const handle = new (await import('../src/cluster/dlm/dlm')).DlmLockHandle(d0!, 'res2', lk);
  t.equal(await handle.cancel(), DlmStatus.NORMAL);
  await ex.unlock();
  await waiting;
  t.equal(d2!.res.get('res2')!.granted.length, 0, 'the cancelled request is gone on the master');
  void cancelledResult;

  // node 1 leaves: what it masters (res1, referenced by 0 and 2) migrates
  const stay = await d0!.lock('res1', LkmMode.PR, { valblk: true });
  await c.dlms[1]!.domains.get('DOM')!.unregister();
  t.notOk(d0!.domainMap.has(1), 'EXIT_DOMAIN cleared the map');
  const owner = d0!.res.get('res1')!.owner;
  t.not(owner, 1, 'res1 migrated away from the leaving node');
  t.equal(d2!.res.get('res1')?.owner ?? owner, owner, 'both survivors agree on the new master');
  const res1 = (owner === 0 ? d0 : d2)!.res.get('res1')!;
  t.equal(res1.granted.length, 1, 'the PR lock moved with the resource');
  t.equal(res1.lvb.toString('latin1', 0, 10), 'counter=99', 'LVB moved with the resource');
  // the lock is usable against the new master
  await stay.convert(LkmMode.EX);
  await stay.unlock();
});

t.test('dlm_shuffle_lists: converting first, one BAST per shuffle at the highest blocked level', async (t) => {
  const c = await cluster(1);
  t.teardown(() => c.stop());
  const d = await c.dlms[0]!.register('SHUF');
  const got: string[] = [];
  const ex = await d.lock('r', LkmMode.PR, { onBast: (m) => got.push(`pr1:${m}`) });
  const pr2 = await d.lock('r', LkmMode.PR, { onBast: (m) => got.push(`pr2:${m}`) });
  const res = d.res.get('r')!;
  // queue two requests before the dlm thread runs: a blocked EX and a converting PR->EX
  const wantEx = d.lock('r', LkmMode.EX);
  const conv = pr2.convert(LkmMode.EX);
  await until(() => got.length >= 2);
  await new Promise((r) => setTimeout(r, 50));
  t.same(got.sort(), [`pr1:${LkmMode.EX}`, `pr2:${LkmMode.EX}`], 'each blocking holder got one BAST at EX');
  t.equal(res.converting.length, 1);
  t.equal(res.blocked.length, 1);
  await ex.unlock();
  await conv;
  t.equal(pr2.mode, LkmMode.EX, 'the converting lock was granted before the blocked one');
  t.equal(res.blocked.length, 1, 'the blocked EX still waits');
  await pr2.unlock();
  const h = await wantEx;
  await h.unlock();
});

t.test('contended mastery: every node races for the same names', async (t) => {
  const c = await cluster(3);
  t.teardown(() => c.stop());
  const ds = [await c.dlms[0]!.register('RACE'), await c.dlms[1]!.register('RACE'), await c.dlms[2]!.register('RACE')];
  const names = Array.from({ length: 30 }, (_, i) => `n${i}`);
  await Promise.all(ds.flatMap((d) => names.map(async (nm) => { const h = await d.lock(nm, LkmMode.PR); await h.unlock(); })));
  for (const nm of names) {
    const owners = ds.map((d) => d.res.get(nm)?.owner).filter((o) => o !== undefined);
    t.equal(new Set(owners).size, 1, `one master for ${nm}: ${owners.join(',')}`);
    const masters = ds.filter((d) => d.res.get(nm)?.owner === d.node);
    t.equal(masters.length, 1, `exactly one node thinks it masters ${nm}`);
  }
  // purge: unused resources go away (non-masters deref, then the master drops it)
  await until(() => ds.every((d) => d.res.size === 0), 30000);
  t.pass('all resources purged after DEREF_LOCKRES');
});

t.test('node death: recovery remasters, waiters granted, LVB invalidated after EX', async (t) => {
  const c = await cluster(3);
  t.teardown(() => c.stop());
  const ds = [await c.dlms[0]!.register('RECO'), await c.dlms[1]!.register('RECO'), await c.dlms[2]!.register('RECO')];
  const evicted: number[] = [];
  ds[0]!.registerEvictionCallback((n) => evicted.push(n));
  // node 2 masters A and holds EX on it; node 0 waits for it
  const a2 = await ds[2]!.lock('A', LkmMode.EX, { valblk: true });
  a2.lvb.write('from-2', 'latin1');
  await a2.convert(LkmMode.PR, { valblk: true });
  await a2.convert(LkmMode.EX, { valblk: true });
  const wait0 = ds[0]!.lock('A', LkmMode.EX, { valblk: true });
  // node 2 masters B, node 1 holds PR on it with the LVB
  const b2 = await ds[2]!.lock('B', LkmMode.EX, { valblk: true });
  b2.lvb.write('B-lvb', 'latin1');
  await b2.unlock({ valblk: true });
  const b1 = await ds[1]!.lock('B', LkmMode.PR, { valblk: true });
  t.equal(b1.lvb.toString('latin1', 0, 5), 'B-lvb');
  // node 0 masters C; node 2 holds EX there with a new LVB it never wrote back
  const c0 = await ds[0]!.lock('C', LkmMode.EX, { valblk: true });
  c0.lvb.write('C-lvb', 'latin1');
  await c0.unlock({ valblk: true });
  await ds[2]!.lock('C', LkmMode.EX, { valblk: true });
  await until(() => ds[2]!.res.get('A')!.blocked.length === 1);

  await kill(c, 2);
  t.same(evicted, [2], 'eviction callback fired for node 2');
  const h = await wait0;
  t.equal(h.mode, LkmMode.EX, 'the waiter on the dead node\'s resource was granted after recovery');
  t.equal(h.lvb.toString('hex'), '00'.repeat(64), 'LVB of A zeroed: the dead node held EX');
  const ownerB = ds[0]!.res.get('B')?.owner ?? ds[1]!.res.get('B')!.owner;
  t.ok(ownerB === 0 || ownerB === 1, `B remastered on a survivor (${ownerB})`);
  const bRes = (ownerB === 0 ? ds[0] : ds[1])!.res.get('B')!;
  t.equal(bRes.lvb.toString('latin1', 0, 5), 'B-lvb', 'B kept the LVB a surviving PR holder vouches for');
  t.equal(bRes.granted.length, 1, 'B lists only the survivor\'s lock');
  const cRes = ds[0]!.res.get('C')!;
  t.equal(cRes.owner, 0);
  t.equal(cRes.granted.length, 0, 'the dead node\'s EX lock on C is gone');
  t.equal(cRes.lvb.toString('hex'), '00'.repeat(64), 'C\'s LVB invalidated (dead node held EX)');
  const c1 = await ds[1]!.lock('C', LkmMode.EX);
  await c1.unlock();
  await b1.unlock();
  await h.unlock();
  t.equal(ds[0]!.recoveryMap.size + ds[1]!.recoveryMap.size, 0, 'recovery finished on both');
});
