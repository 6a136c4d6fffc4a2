/**
 * Malformed DLM messages of every type (500-522) from a raw peer that
 * impersonates a configured node: random, truncated, oversized, wrong-state
 * and out-of-range payloads, under the module key and the domain key.  The
 * node stays up, answers every request (the kernel sender would wait for it
 * forever), logs bad input once, and keeps serving its real peers.
 * DLM_FUZZ_COUNT (default 3000) sets the number of messages.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeNodes, writeCluster, spawnNode, NodeProc, O2cbVals, startInOrder, rawHandshake, handParams, until, WAIT_MS } from './o2net-harness';
import { encodeFrame, O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, O2NetSysErr } from '../src/cluster/net/wire';
import { StackClient } from '../src/cluster/stack';
import { DlmMsg, DLM_MOD_KEY, DLM_MAX_LEN, domainKey, nameField } from '../src/cluster/dlm/wire';

const V: O2cbVals = { threshold: 31, idle: 30000, keepalive: 2000, reconnect: 500 };
const N = Number(process.env.DLM_FUZZ_COUNT ?? 3000);
let seed = 0x5eed1234;
const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
const bytes = (n: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = rnd(256); return b; };

const JOIN_TYPES = [DlmMsg.QUERY_JOIN, DlmMsg.ASSERT_JOINED, DlmMsg.CANCEL_JOIN, DlmMsg.QUERY_REGION, DlmMsg.QUERY_NODEINFO];

t.test('malformed DLM messages from a raw peer', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlmfuzz-'));
  const nodes = await makeNodes(3);
  writeCluster(dir, nodes, V);
  const procs: NodeProc[] = [];
  t.teardown(async () => { await Promise.all(procs.map((p) => p.stop())); fs.rmSync(dir, { recursive: true, force: true }); });
  const [p0, p1] = await startInOrder(procs, 2, (i) => spawnNode({ dir, node: `node${i}` })) as [NodeProc, NodeProc];
  await p0.waitFor(/Accepted connection from node node1/, WAIT_MS);
  for (const p of [p0, p1]) { const r = await p.request({ op: 'dlm-join', domain: 'FUZZ' }); t.ok(r.ok, `${p.name} joined: ${r.error ?? ''}`); }
  // held for as long as this control connection is open
  const holder = (await StackClient.connect(p1.controlSocket))!;
  t.teardown(() => holder.close());
  const lockA = await holder.request({ op: 'dlm-lock', domain: 'FUZZ', name: 'known', mode: 'EX' });
  t.ok(lockA.ok);

  const { raw } = await rawHandshake(nodes[2]!.ip, nodes[0]!, handParams(V), p0, 'node2', true);
  const dkey = domainKey('FUZZ');
  const types = Object.values(DlmMsg).filter((v): v is number => typeof v === 'number');
  let sent = 0; let overflow = 0;
  const kinds = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const type = types[rnd(types.length)]!;
    const key = JOIN_TYPES.includes(type) ? (rnd(8) ? DLM_MOD_KEY : dkey) : (rnd(8) ? dkey : DLM_MOD_KEY);
    const max = DLM_MAX_LEN[type] ?? 72;
    let payload: Buffer;
    const kind = ['random', 'truncated', 'oversized', 'named', 'empty'][rnd(5)]!;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    if (kind === 'random') payload = bytes(max);
    else if (kind === 'truncated') payload = bytes(rnd(max));
    else if (kind === 'oversized') {
      payload = bytes(max + 1 + rnd(4072 - max));
      // OVERFLOW where a handler is registered for (type, key); NO_HNDLR otherwise
      if (type !== DlmMsg.UNUSED1 && (JOIN_TYPES.includes(type) ? key === DLM_MOD_KEY : key === dkey)) overflow++;
    }
    else if (kind === 'empty') payload = Buffer.alloc(0);
    else {
      // plausible fields, real names, impossible values (wrong node, bad modes, bad lengths)
      payload = bytes(max);
      const nm = rnd(2) ? Buffer.from('known') : Buffer.from('FUZZ');
      if (type === DlmMsg.CREATE_LOCK || type === DlmMsg.CONVERT_LOCK || type === DlmMsg.PROXY_AST || type === DlmMsg.UNLOCK_LOCK) { payload[15] = rnd(2) ? nm.length : rnd(256); nameField(nm).copy(payload, 16); }
      else if (type === DlmMsg.QUERY_JOIN) { payload[0] = rnd(2) ? 2 : rnd(256); payload[3] = nm.length; nameField(nm).copy(payload, 8); }
      else if (type === DlmMsg.ASSERT_JOINED || type === DlmMsg.CANCEL_JOIN) { payload[0] = 2; payload[3] = nm.length; nameField(nm).copy(payload, 4); }
      else if (payload.length >= 72) { payload[1] = nm.length; nameField(nm).copy(payload, 8); }
    }
    raw.write(encodeFrame({ magic: O2NET_MSG_MAGIC, msgType: type, key, msgNum: i }, payload));
    sent++;
    if (i % 500 === 499) {
      await until(() => raw.frames.filter((f) => f.hdr.magic === O2NET_MSG_STATUS_MAGIC).length >= sent, WAIT_MS, `replies to ${sent}`);
      // the real peers are still served, both ways
      const l = await p0.request({ op: 'dlm-lock', domain: 'FUZZ', name: `ok${i}`, mode: 'EX' });
      const l2 = await p1.request({ op: 'dlm-lock', domain: 'FUZZ', name: `ok${i}`, mode: 'PR' });
      if (!l.ok || !l2.ok) t.fail(`real peers not served after ${i + 1} messages: ${l.error ?? ''} ${l2.error ?? ''}`);
    }
  }
  await until(() => raw.frames.filter((f) => f.hdr.magic === O2NET_MSG_STATUS_MAGIC).length >= sent, WAIT_MS, 'all replies');
  const replies = raw.frames.filter((f) => f.hdr.magic === O2NET_MSG_STATUS_MAGIC);
  t.equal(replies.length, sent, `every one of ${sent} requests answered (${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')})`);
  t.equal(new Set(replies.map((f) => f.hdr.msg_num)).size, sent, 'one reply per msg_num');
  t.equal(replies.filter((f) => f.hdr.sys_status === O2NetSysErr.OVERFLOW).length, overflow, 'oversized ones answered OVERFLOW (handler max_len)');
  t.equal(p0.exitCode, undefined, 'node0 is still running');
  t.ok(raw.closed === false, 'the raw peer connection was never dropped for DLM-level garbage');
  t.ok(p0.count(/o2dlm: bad message type \d+ /) > 0, 'bad DLM messages logged');
  const lines = p0.lines.filter((l) => /o2dlm: bad message/.test(l));
  t.equal(new Set(lines).size, lines.length, 'each bad-message line logged once');
  const st = await p0.request({ op: 'dlm-locks' });
  const dom = (st.domains as { name: string; domainMap: number[]; recoveryMap: number[] }[]).find((d) => d.name === 'FUZZ')!;
  t.same(dom.domainMap, [0, 1], 'the raw peer never got into the domain');
  t.same(dom.recoveryMap, [], 'no recovery was started by garbage');
  // the lock held before the fuzz still blocks as it should (state was not corrupted)
  const tryIt = await p0.request({ op: 'dlm-lock', domain: 'FUZZ', name: 'known', mode: 'PR', noqueue: true });
  t.equal(tryIt.ok, false, 'the EX held by node1 still refuses a trylock');
  t.equal(tryIt.errno, 11);
  raw.destroy();
});
