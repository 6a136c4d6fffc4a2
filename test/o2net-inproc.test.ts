import t from 'tap';
import { O2Net, NetNode } from '../src/cluster/net/o2net';
import { O2Quo } from '../src/cluster/quorum';
import { freePorts } from './o2net-harness';

t.test('in-process round trip', async (t) => {
  const ports = await freePorts(3);
  const nodes: NetNode[] = [0, 1, 2].map((i) => ({ name: `n${i}`, num: i, ipv4Address: `127.0.0.${i + 1}`, ipv4Port: ports[i]! }));
  const timeouts = { heartbeatDeadThreshold: 31, idleTimeoutMs: 3000, keepaliveDelayMs: 1000, reconnectDelayMs: 200 };
  const nets = nodes.map((n) => new O2Net({ localNode: n, nodes, timeouts, isHeartbeating: () => true, quorum: new O2Quo({ thisNode: n.num, fence: (r) => { throw new Error(r); } }), log: () => undefined }));
  for (const x of nets) await x.start();
  nets[1]!.registerHandler(77, 0xabc, 100, (m) => m.payload.length * 10 + m.from);
  for (const x of nets) for (const n of nodes) x.hbNodeUp(n.num);
  const r = await nets[2]!.sendMessage(77, 0xabc, Buffer.alloc(5), 1);
  t.equal(r.status, 52);
  const r2 = await nets[0]!.sendMessage(77, 0xabc, Buffer.alloc(7), 1);
  t.equal(r2.status, 70);
  await t.rejects(nets[0]!.sendMessage(78, 0xabc, Buffer.alloc(7), 1), { code: 'ENOPROTOOPT' });
  await t.rejects(nets[0]!.sendMessage(77, 0xabc, Buffer.alloc(101), 1), { code: 'EOVERFLOW' });
  t.same(nets[0]!.connections().map((c) => c.direction), ['accepted-from', 'accepted-from']);
  t.same(nets[2]!.connections().map((c) => c.direction), ['connected-to', 'connected-to']);
  for (const x of nets) await x.stop();
});
