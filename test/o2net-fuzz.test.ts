/**
 * Fuzz: thousands of malformed o2net frames thrown at a node process from a
 * configured address (127.0.0.3 = node2, which no process plays), while a good
 * peer (node1) keeps exchanging messages with it.  Every bad connection must
 * be dropped and logged; the node must stay up and keep serving node1 on its
 * original connection.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { crc32_le } from '../src/libocfs2/crc32';
import { TEST_MSG_TYPE, TEST_MSG_KEY } from '../src/cluster/stack';
import { O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, O2NET_MSG_KEEP_REQ_MAGIC, O2NetMsg, encodeFrame, encodeHandshake, FrameReader } from '../src/cluster/net/wire';
import { makeNodes, writeCluster, spawnNode, NodeProc, handParams, O2cbVals, HNode, startInOrder, WAIT_MS } from './o2net-harness';

const V: O2cbVals = { threshold: 31, idle: 10000, keepalive: 2000, reconnect: 500 };
const N = Number(process.env.O2NET_FUZZ_CONNECTIONS ?? 2000);

// deterministic PRNG so a failure can be replayed: the seed is printed, O2NET_FUZZ_SEED sets it
const SEED = Number(process.env.O2NET_FUZZ_SEED ?? 0x2f6e3a1);
let seed = SEED;
function rnd(n: number): number {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
function bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = rnd(256); return b; }

type Kind = 'garbage' | 'garbage-after-handshake' | 'bad-magic' | 'oversize' | 'truncated-payload' | 'truncated-header' | 'valid-then-garbage';

function malformed(kind: Kind, hs: Buffer): { data: Buffer; valid: number } {
  const hdr = (magic: number, len: number): Buffer => {
    const h = O2NetMsg.encode({ magic, data_len: len, msg_type: rnd(65536), pad1: 0, sys_status: rnd(4), status: rnd(1000), key: rnd(0x7fffffff), msg_num: rnd(1000) });
    return h;
  };
  switch (kind) {
    case 'garbage': return { data: bytes(1 + rnd(200)), valid: 0 };
    case 'garbage-after-handshake': return { data: Buffer.concat([hs, bytes(1 + rnd(300))]), valid: 0 };
    case 'bad-magic': {
      let m = rnd(65536);
      while (m >= 0xfa55 && m <= 0xfa58) m = rnd(65536);
      return { data: Buffer.concat([hs, hdr(m, rnd(100)), bytes(rnd(100))]), valid: 0 };
    }
    case 'oversize': return { data: Buffer.concat([hs, hdr(O2NET_MSG_MAGIC, 4073 + rnd(65536 - 4073))]), valid: 0 };
    case 'truncated-payload': {
      const len = 10 + rnd(4000);
      return { data: Buffer.concat([hs, hdr(O2NET_MSG_MAGIC, len), bytes(rnd(len))]), valid: 0 };
    }
    case 'truncated-header': return { data: Buffer.concat([hs, hdr(O2NET_MSG_MAGIC, 0).subarray(0, 1 + rnd(23))]), valid: 0 };
    case 'valid-then-garbage': {
      const n = 1 + rnd(3);
      const good: Buffer[] = [];
      for (let i = 0; i < n; i++) good.push(encodeFrame({ magic: O2NET_MSG_MAGIC, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, msgNum: 1000 + i }, bytes(rnd(64))));
      return { data: Buffer.concat([hs, ...good, hdr(0x1234, 0)]), valid: n };
    }
  }
}

const KINDS: Kind[] = ['garbage', 'garbage-after-handshake', 'bad-magic', 'oversize', 'truncated-payload', 'truncated-header', 'valid-then-garbage'];

/** One fuzz connection: send, half-close, wait until the node closes it. */
function fuzzOnce(to: HNode, data: Buffer): Promise<{ replies: number; closedByNode: boolean }> {
  return new Promise((resolve) => {
    const reader = new FrameReader({ expectHandshake: true });
    let replies = 0;
    const s = net.createConnection({ host: to.ip, port: to.port, localAddress: '127.0.0.3' }, () => {
      s.write(data);
      s.end();
    });
    s.on('data', (d: Buffer) => {
      reader.push(d);
      try {
        reader.takeHandshake();
        for (let f = reader.takeFrame(); f; f = reader.takeFrame()) if (f.hdr.magic === O2NET_MSG_STATUS_MAGIC) replies++;
      } catch { /* not our concern */ }
    });
    // only bounds a hang (the node closes at once; a loaded machine may delay it)
    const timer = setTimeout(() => { s.destroy(); resolve({ replies, closedByNode: false }); }, WAIT_MS);
    s.on('error', () => undefined);
    s.on('close', () => { clearTimeout(timer); resolve({ replies, closedByNode: true }); });
  });
}

t.test('malformed frames: dropped and logged, the node stays up', async (t) => {
  t.comment(`seed ${SEED} (O2NET_FUZZ_SEED=${SEED} replays this run), ${N} connections`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2fuzz-'));
  const nodes = await makeNodes(3);
  writeCluster(dir, nodes, V);
  const procs: NodeProc[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // static heartbeat: node0 must listen before node1 (its connector) starts
  const [p0, p1] = await startInOrder(procs, 2, (i) => spawnNode({ dir, node: `node${i}` })) as [NodeProc, NodeProc];
  await p0.waitFor(/Accepted connection from node node1/, WAIT_MS);

  const hs = encodeHandshake(handParams(V));
  const counts = new Map<Kind, number>();
  let validReplies = 0;
  let expectedValid = 0;
  let closedByNode = 0;
  let goodChecks = 0;
  for (let i = 0; i < N; i++) {
    const kind = KINDS[rnd(KINDS.length)]!;
    const { data, valid } = malformed(kind, hs);
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const r = await fuzzOnce(nodes[0]!, data);
    if (r.closedByNode) closedByNode++;
    else t.fail(`connection ${i} (${kind}) was not closed by the node`);
    validReplies += r.replies;
    expectedValid += valid;
    if (i % 200 === 199) {
      // the good peer is still served, both ways
      const payload = bytes(1 + rnd(2000));
      const a = await p1.request({ op: 'send', node: 0, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: payload.toString('hex') });
      const b = await p0.request({ op: 'send', node: 1, msgType: TEST_MSG_TYPE, key: TEST_MSG_KEY, payload: payload.toString('hex') });
      if (a.status !== (crc32_le(0, payload) | 0) || b.status !== (crc32_le(0, payload) | 0)) t.fail(`good peer not served after ${i + 1} bad connections`);
      else goodChecks++;
    }
  }
  t.equal(closedByNode, N, `the node closed all ${N} malformed connections (${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')})`);
  t.equal(validReplies, expectedValid, 'valid requests ahead of the garbage were answered before the drop');
  t.equal(goodChecks, Math.floor(N / 200), 'the good peer was served throughout');
  t.equal(p0.exitCode, undefined, 'node0 is still running');
  const st = (await p0.request({ op: 'status' })).status as { connections: { node: number; state: string }[] };
  t.equal(st.connections.find((c) => c.node === 1)?.state, 'connected', 'node1 still connected');
  t.equal(p0.count(/Accepted connection from node node1/), 1, 'on its original connection (never dropped)');
  t.ok(p0.count(/framing error from node node2 .*bad magic/) > 0, 'bad magic logged');
  t.ok(p0.count(/framing error from node node2 .*exceeds O2NET_MAX_PAYLOAD_BYTES/) > 0, 'oversize logged');
  t.ok(p0.count(/closed with \d+ bytes of a truncated message/) > 0, 'truncated message logged');
  t.ok(p0.count(/Advertised net protocol version \d+ but 11 is required|closed with \d+ bytes of a truncated handshake|uses a (network idle timeout|keepalive delay|heartbeat timeout)/) > 0, 'garbage handshakes logged');
  t.equal(p0.count(/keepalive|KEEP/), 0, 'no stray output');
  void O2NET_MSG_KEEP_REQ_MAGIC;
});
