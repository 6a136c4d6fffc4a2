/**
 * o2net between real node processes on 127.0.0.1-3 (static heartbeat: the
 * disk is not involved here), plus raw clients impersonating a fourth
 * configured node (127.0.0.4) or an unknown address (127.0.0.9).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32_le } from '../src/libocfs2/crc32';
import { TEST_MSG_TYPE, TEST_MSG_KEY } from '../src/cluster/stack';
import { O2NET_MSG_KEEP_REQ_MAGIC, O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, encodeFrame, O2NetSysErr } from '../src/cluster/net/wire';
import { makeNodes, writeCluster, spawnNode, NodeProc, RawPeer, handParams, until, o2cbText, O2cbVals, startInOrder, loggedIdleMs, rawHandshake, WAIT_MS } from './o2net-harness';

const V: O2cbVals = { threshold: 31, idle: 3000, keepalive: 1000, reconnect: 500 };

t.test('three node processes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2net-'));
  const nodes = await makeNodes(4); // node3 is configured but played by raw clients
  writeCluster(dir, nodes, V);
  const procs: NodeProc[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // static heartbeat: acceptors (lower numbers) must listen before their connectors start
  await startInOrder(procs, 3, (i) => spawnNode({ dir, node: `node${i}` }));
  const [p0, p1, p2] = procs as [NodeProc, NodeProc, NodeProc];

  await t.test('connections establish in the kernel direction (higher number connects)', async (t) => {
    await p2.waitFor(/o2net: Connected to node node0 \(num 0\)/);
    await p2.waitFor(/o2net: Connected to node node1 \(num 1\)/);
    await p1.waitFor(/o2net: Connected to node node0 \(num 0\)/);
    await p1.waitFor(/o2net: Accepted connection from node node2 \(num 2\)/);
    await p0.waitFor(/o2net: Accepted connection from node node1/);
    await p0.waitFor(/o2net: Accepted connection from node node2/);
    t.equal(p0.count(/Connected to/), 0, 'node 0 never initiates');
    const s0 = (await p0.request({ op: 'status' })).status as { connections: { node: number; state: string; direction: string }[] };
    const byNode = new Map(s0.connections.map((c) => [c.node, c]));
    t.equal(byNode.get(1)?.direction, 'accepted-from');
    t.equal(byNode.get(2)?.direction, 'accepted-from');
    t.equal(byNode.get(1)?.state, 'connected');
    const s2 = (await p2.request({ op: 'status' })).status as { connections: { node: number; direction: string }[] };
    t.same(s2.connections.filter((c) => c.node < 2).map((c) => c.direction), ['connected-to', 'connected-to']);
  });

  await t.test('messages round-trip between processes, both directions of a connection', async (t) => {
    for (const [from, to] of [[p2, 0], [p0, 1], [p1, 2], [p0, 2]] as const) {
      const payload = Buffer.from(`hello from ${from.name} to ${to} ${Math.random()}`);
      const r = await from.request({ op: 'send', node: to, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: payload.toString('hex') });
      t.equal(r.ok, true, `${from.name} -> node${to}`);
      t.equal(r.status, crc32_le(0, payload) | 0, 'status is the handler return for this payload');
    }
    const big = Buffer.alloc(4072, 7);
    const rb = await p2.request({ op: 'send', node: 1, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: big.toString('hex') });
    t.equal(rb.status, crc32_le(0, big) | 0, 'a maximum-size payload');
    const tooBig = await p2.request({ op: 'send', node: 1, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: Buffer.alloc(4073).toString('hex') });
    t.equal(tooBig.ok, false, 'over O2NET_MAX_PAYLOAD_BYTES is refused by the sender');
    const noh = await p1.request({ op: 'send', node: 0, msgType: 501, key: 0x12345678, payload: '00' });
    t.equal(noh.ok, false);
    t.equal(noh.code, 'ENOPROTOOPT', 'unknown type/key: sys_status NO_HNDLR -> ENOPROTOOPT');
  });

  await t.test('unknown message type answered on the wire with NO_HNDLR', async (t) => {
    // impersonate node3 toward node0 and look at the status frame itself
    const { raw } = await rawHandshake('127.0.0.4', nodes[0]!, handParams(V), p0, 'node3', true);
    raw.write(encodeFrame({ magic: O2NET_MSG_MAGIC, msgType: 4242, key: 0xdeadbeef, msgNum: 77 }, Buffer.from('abc')));
    const payload = Buffer.from('echo me');
    raw.write(encodeFrame({ magic: O2NET_MSG_MAGIC, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, msgNum: 78 }, payload));
    await until(() => raw.frames.filter((f) => f.hdr.magic === O2NET_MSG_STATUS_MAGIC).length >= 2, WAIT_MS, 'two status replies');
    const st = raw.frames.filter((f) => f.hdr.magic === O2NET_MSG_STATUS_MAGIC);
    t.equal(st[0]!.hdr.msg_num, 77, 'msg_num echoed');
    t.equal(st[0]!.hdr.msg_type, 4242, 'msg_type kept');
    t.equal(st[0]!.hdr.key, 0xdeadbeef, 'key kept');
    t.equal(st[0]!.hdr.sys_status, O2NetSysErr.NO_HNDLR);
    t.equal(st[0]!.hdr.data_len, 0, 'status replies carry no payload');
    t.equal(st[1]!.hdr.msg_num, 78);
    t.equal(st[1]!.hdr.sys_status, O2NetSysErr.NONE);
    t.equal(st[1]!.hdr.status, crc32_le(0, payload) | 0);
    await p0.waitFor(/Accepted connection from node node3/);
    raw.destroy();
    await p0.waitFor(/No longer connected to node node3/);
  });

  await t.test('a connection from an address not in cluster.conf is refused', async (t) => {
    const raw = await RawPeer.connect('127.0.0.9', nodes[0]!);
    raw.handshake(handParams(V));
    await raw.closedAt;
    await p0.waitFor(/o2net: Attempt to connect from unknown node at 127\.0\.0\.9:\d+/);
    t.equal(raw.frames.length, 0, 'nothing but a close');
  });

  await t.test('a lower-numbered node connecting to a higher one is refused', async (t) => {
    const raw = await RawPeer.connect('127.0.0.1', nodes[2]!);
    await raw.closedAt;
    await p2.waitFor(/Unexpected connect attempt seen at node 'node2' \(2, 127\.0\.0\.3:\d+\) from node 'node0' \(0, 127\.0\.0\.1:\d+\)/);
    t.pass('refused with the kernel log line');
  });

  await t.test('handshake mismatches are refused with a line naming the mismatch', async (t) => {
    const cases: [string, (p: RawPeer) => void, RegExp][] = [
      ['protocol version', (p) => p.handshake(handParams(V), 10n), /Advertised net protocol version 10 but 11 is required\. Disconnecting\./],
      ['idle timeout', (p) => p.handshake({ ...handParams(V), idleTimeoutMs: 4000 }), /uses a network idle timeout of 4000 ms, but we use 3000 ms locally\. Disconnecting\./],
      ['keepalive delay', (p) => p.handshake({ ...handParams(V), keepaliveDelayMs: 1500 }), /uses a keepalive delay of 1500 ms, but we use 1000 ms locally\. Disconnecting\./],
      ['heartbeat timeout', (p) => p.handshake({ ...handParams(V), heartbeatTimeoutMs: 12000 }), /uses a heartbeat timeout of 12000 ms, but we use 60000 ms locally\. Disconnecting\./],
    ];
    for (const [what, send, re] of cases) {
      const raw = await RawPeer.connect('127.0.0.4', nodes[1]!);
      send(raw);
      await raw.closedAt;
      const line = await p1.waitFor(re);
      t.match(line, /node node3 \(num 3\) at 127\.0\.0\.4/, `${what}: names the peer`);
    }
    t.equal(p1.count(/Accepted connection from node node3/), 0, 'none of them became a connection');
  });

  await t.test('a real node process with different timeouts is refused on both sides', async (t) => {
    const other = path.join(dir, 'o2cb-other');
    fs.writeFileSync(other, o2cbText({ ...V, idle: 5000 }));
    const p3 = spawnNode({ dir, node: 'node3', o2cb: other });
    try {
      await p3.ready();
      const l0 = await p0.waitFor(/node node3 .* uses a network idle timeout of 5000 ms, but we use 3000 ms locally\. Disconnecting\./);
      t.ok(l0, 'node0 names the idle timeout mismatch');
      await p3.waitFor(/node node0 .* uses a network idle timeout of 3000 ms, but we use 5000 ms locally\. Disconnecting\./);
      const s3 = (await p3.request({ op: 'status' })).status as { connections: { node: number; state: string }[] };
      t.notOk(s3.connections.some((c) => c.state === 'connected'), 'node3 has no connection');
    } finally {
      await p3.stop();
    }
  });

  await t.test('keepalive and idle timeout: a silent peer is dropped after idle_timeout', async (t) => {
    const idleLines = p0.count(/Connection to node node3 \(num 3\) .* has been idle for/);
    // sent: before the handshake, so the node's idle timer cannot start earlier
    const { raw: silent, sentAt: sent } = await rawHandshake('127.0.0.4', nodes[0]!, handParams(V), p0, 'node3');
    const { raw: alive, sentAt: aliveSent } = await rawHandshake('127.0.0.4', nodes[1]!, handParams(V), p1, 'node3', true);
    const closed = await silent.closedAt;
    t.ok(closed - sent >= V.idle - 50, `not dropped before idle_timeout (${closed - sent} ms after the handshake was sent)`);
    // how long it was idle, as the node itself measured it (from its last
    // receive): the wall clock of this process is unreliable on a loaded machine
    await until(() => p0.count(/Connection to node node3 \(num 3\) .* has been idle for/) > idleLines, WAIT_MS, 'node0 logs the idle timeout');
    const line = p0.lines.filter((l) => /Connection to node node3 \(num 3\) .* has been idle for \d+\.\d+ secs, shutting it down\./.test(l))[idleLines]!;
    const idleMs = loggedIdleMs(line);
    // the promise is the lower bound; the upper one only says "a timeout, not a hang" (a loaded node's timer fires late)
    t.ok(idleMs >= V.idle && idleMs <= 3 * V.idle + 10000, `dropped after ~${V.idle} ms idle (node0 logged ${idleMs} ms)`);
    t.ok(silent.frames.some((f) => f.hdr.magic === O2NET_MSG_KEEP_REQ_MAGIC), 'node sent KEEP_REQ after keepalive_delay of silence');
    await p0.waitFor(/No longer connected to node node3/);
    // the peer that answers keepalives outlives the idle timeout
    // (events, not a fixed sleep: two keepalives answered, and the idle timeout passed since the handshake)
    await until(() => alive.closed || (alive.frames.filter((f) => f.hdr.magic === O2NET_MSG_KEEP_REQ_MAGIC).length >= 2
      && Date.now() > aliveSent + V.idle + 1000), WAIT_MS, 'two keepalives past the idle timeout, or a close');
    t.equal(alive.closed, false, 'a peer answering KEEP_REQ stays connected past idle_timeout');
    t.ok(alive.frames.filter((f) => f.hdr.magic === O2NET_MSG_KEEP_REQ_MAGIC).length >= 2, 'keepalives keep coming');
    alive.destroy();
  });

  await t.test('connection loss: pending state reported, other connections unaffected', async (t) => {
    p2.proc.kill('SIGKILL');
    await p2.exited;
    await p0.waitFor(/No longer connected to node node2/);
    await p1.waitFor(/No longer connected to node node2/);
    const r = await p1.request({ op: 'send', node: 2, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: '00' });
    t.equal(r.code, 'ENOTCONN', 'sends to a lost node fail with ENOTCONN (persistent error) until heartbeat sees it again');
    const payload = Buffer.from('still here');
    const ok = await p1.request({ op: 'send', node: 0, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: payload.toString('hex') });
    t.equal(ok.status, crc32_le(0, payload) | 0);
  });
});
