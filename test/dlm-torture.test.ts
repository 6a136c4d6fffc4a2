/**
 * o2dlm between real node processes (`cluster node` on 127.0.0.x, real TCP):
 * lock torture with a cross-process checker, `cluster locks`, and node death
 * (kill -9) during torture with recovery by the survivors.  The heartbeat is
 * the static one: node death is announced to the survivors through their
 * control socket (the 'hb' op raises o2hb's node-down), as the disk
 * heartbeat would after its dead threshold.
 * DLM_TORTURE_MS (default 6000) sets the torture time (`make soak` raises it).
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { makeNodes, writeCluster, spawnNode, NodeProc, O2cbVals, startInOrder, nodeArgsFor, cliScript, REPO, until, WAIT_MS } from './o2net-harness';
import type { TortureResult } from '../src/cluster/dlm/torture';
import { StackClient } from '../src/cluster/stack';
import type { DomainStatus } from '../src/cluster/dlm/dlm';

const V: O2cbVals = { threshold: 31, idle: 10000, keepalive: 2000, reconnect: 500 };
const TORTURE_MS = Number(process.env.DLM_TORTURE_MS ?? 6000);
const NAMES = Array.from({ length: 40 }, (_, i) => `T${String(i).padStart(3, '0')}`);

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
    delete env.NODE_OPTIONS;
    const p = spawn('timeout', ['120', process.execPath, ...nodeArgsFor(cliScript()), 'cluster', ...args], { cwd: REPO, env });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('exit', (code) => resolve({ code, out }));
  });
}

async function ok(p: NodeProc, req: Record<string, unknown> & { op: string }): Promise<Record<string, unknown>> {
  const r = await p.request(req);
  if (!r.ok) throw new Error(`${p.name} ${req.op}: ${r.error}`);
  return r;
}

function logLines(dir: string, name: string): number[] {
  const f = path.join(dir, `${Buffer.from(name).toString('hex')}.log`);
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => Number(l.split(' ')[2]));
}

async function noWaiters(t: Test, p: NodeProc, domain: string): Promise<void> {
  const r = await ok(p, { op: 'dlm-locks' });
  const d = (r.domains as unknown as DomainStatus[]).find((x) => x.name === domain)!;
  const left = d.resources.flatMap((res) => [...res.granted, ...res.converting, ...res.blocked].map((l) => `${res.name}:${l.list}:${l.node}`));
  t.same(left, [], `${p.name}: no lock left in ${domain}`);
  t.same(d.recoveryMap, [], `${p.name}: no recovery pending`);
}

/** Three node processes on 127.0.0.1-3, started in order and all connected; stopped and removed in teardown. */
async function startThreeNodes(t: Test, prefix: string): Promise<{ dir: string; chk: string; nodes: Awaited<ReturnType<typeof makeNodes>>; procs: NodeProc[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const chk = path.join(dir, 'check');
  fs.mkdirSync(chk);
  const nodes = await makeNodes(3);
  writeCluster(dir, nodes, V);
  const procs: NodeProc[] = [];
  t.teardown(async () => { await Promise.all(procs.map((p) => p.stop())); fs.rmSync(dir, { recursive: true, force: true }); });
  await startInOrder(procs, 3, (i) => spawnNode({ dir, node: `node${i}` }));
  for (const p of procs) await until(async () => (await p.request({ op: 'status' })).ok === true && ((await p.request({ op: 'status' })).status as { connections: { state: string }[] }).connections.every((c) => c.state === 'connected'), WAIT_MS, `${p.name} connected`);
  return { dir, chk, nodes, procs };
}

t.test('lock torture between three node processes', async (t) => {
  const { dir, chk, nodes, procs } = await startThreeNodes(t, 'dlmtort-');
  for (const p of procs) {
    const j = await ok(p, { op: 'dlm-join', domain: 'TORTURE' });
    t.equal(j.dlmProto, '1.3');
  }
  const j3 = await ok(procs[0]!, { op: 'dlm-locks' });
  t.same((j3.domains as unknown as DomainStatus[])[0]!.domainMap, [0, 1, 2], 'all three in the domain');

  const res = await Promise.all(procs.map((p) => ok(p, { op: 'dlm-torture', domain: 'TORTURE', names: NAMES, durationMs: TORTURE_MS, workers: 3, dir: chk })));
  const results = res.map((r) => r.result as unknown as TortureResult);
  let exTotal = 0;
  for (const r of results) {
    t.same(r.violations, [], `node ${r.node}: no violations`);
    t.same(r.errors, [], `node ${r.node}: no errors`);
    t.ok(r.ops > 20, `node ${r.node}: ${r.ops} ops, ${Object.values(r.exGrants).reduce((a, b) => a + b, 0)} EX grants, ${r.prGrants} PR grants, ${r.converts} converts, ${r.trylockFailed} trylocks refused`);
    exTotal += Object.values(r.exGrants).reduce((a, b) => a + b, 0);
  }
  t.comment(`torture: ${TORTURE_MS} ms, ${results.reduce((a, r) => a + r.ops, 0)} ops, ${exTotal} EX grants`);
  const counters = (await ok(procs[1]!, { op: 'dlm-counters', domain: 'TORTURE', names: NAMES })).counters as Record<string, number>;
  let bad = 0;
  for (const n of NAMES) {
    const grants = results.reduce((a, r) => a + (r.exGrants[n] ?? 0), 0);
    const log = logLines(chk, n);
    const chain = log.every((c, i) => c === i + 1);
    if (counters[n] !== grants || log.length !== grants || !chain) { bad++; t.fail(`${n}: LVB counter ${counters[n]}, EX grants ${grants}, log ${log.length} lines, chain ${chain}`); }
  }
  t.equal(bad, 0, 'every LVB counter equals the EX grant count and the log is one unbroken chain');
  for (const p of procs) await noWaiters(t, p, 'TORTURE');

  // cluster locks (like debugfs.ocfs2 dlm_locks)
  const sock = path.join(dir, 'node0.sock');
  // a lock held for as long as this control connection stays open
  const holder = (await StackClient.connect(sock))!;
  t.teardown(() => holder.close());
  const hold = await holder.request({ op: 'dlm-lock', domain: 'TORTURE', name: 'HOLD', mode: 'PR', valblk: true });
  t.ok(hold.ok && hold.id, 'lock held through the control socket');
  const txt = await runCli(['locks', '--cluster-conf', path.join(dir, 'cluster.conf'), '--node', 'node0', '--o2cb-config', path.join(dir, 'o2cb'), '--control-socket', sock]);
  t.equal(txt.code, 0, txt.out);
  t.match(txt.out, /Domain: TORTURE {2}Key: 0x[0-9a-f]{8} {2}Protocol: 1\.3/);
  t.match(txt.out, /Lockres: HOLD {2}Owner: \d+ {2}State: 0x0\n {2}Refmap: \[[ \d]*\]\n {2}LVB: [0-9a-f ]+\n {2}Granted queue:\n {4}Type: PR {2}Convert: IV {2}Node: 0 /);
  const js = await runCli(['locks', '--json', '--cluster-conf', path.join(dir, 'cluster.conf'), '--node', 'node0', '--o2cb-config', path.join(dir, 'o2cb'), '--control-socket', sock]);
  const doms = JSON.parse(js.out) as DomainStatus[];
  t.equal(doms[0]!.name, 'TORTURE');
  const st = await runCli(['status', '--cluster-conf', path.join(dir, 'cluster.conf'), '--node', 'node0', '--o2cb-config', path.join(dir, 'o2cb'), '--control-socket', sock]);
  t.match(st.out, /DLM domain TORTURE: nodes 0 1 2, \d+ resources, \d+ locks/);
});

t.test('node death during torture: survivors recover, waiters granted, the node rejoins', async (t) => {
  const { dir, chk, nodes, procs } = await startThreeNodes(t, 'dlmdeath-');
  for (const p of procs) await ok(p, { op: 'dlm-join', domain: 'DEATH' });
  // node 2 masters some names and holds EX on one of them; node 0 will wait for it
  await ok(procs[2]!, { op: 'dlm-lock', domain: 'DEATH', name: 'HELD', mode: 'EX', valblk: true });
  const waiter = procs[0]!.request({ op: 'dlm-lock', domain: 'DEATH', name: 'HELD', mode: 'EX', valblk: true });
  const tort = procs.map((p) => p.request({ op: 'dlm-torture', domain: 'DEATH', names: NAMES, durationMs: TORTURE_MS + 3000, workers: 3, dir: chk }).catch((e: Error) => ({ ok: false, error: e.message } as Record<string, unknown> & { ok: boolean; error?: string })));
  await new Promise((r) => setTimeout(r, Math.min(3000, TORTURE_MS / 2)));
  procs[2]!.proc.kill('SIGKILL');
  await procs[2]!.exited;
  // heartbeat declares it dead on the survivors
  for (const p of procs.slice(0, 2)) await ok(p, { op: 'hb', node: 2, up: false });
  const w = await Promise.race([waiter, new Promise<null>((r) => setTimeout(() => r(null), 60000))]);
  if (!w) {
    for (const p of procs.slice(0, 2)) t.comment(JSON.stringify(((await p.request({ op: 'dlm-locks' })).domains as unknown as DomainStatus[])[0]!.resources.filter((r) => r.name === 'HELD' || r.granted.length + r.converting.length + r.blocked.length > 0)));
    throw new Error('waiter not granted');
  }
  t.ok(w.ok, `the waiter on the dead node's EX lock was granted: ${w.error ?? ''}`);
  t.equal(w.lvb, '00'.repeat(64), 'its LVB was invalidated (the dead node held EX)');
  const both = await Promise.race([Promise.all(tort.slice(0, 2)), new Promise<null>((r) => setTimeout(() => r(null), TORTURE_MS + 90000))]);
  if (!both) {
    for (const p of procs.slice(0, 2)) t.comment(`${p.name}: ${JSON.stringify(((await p.request({ op: 'dlm-locks' })).domains as unknown as DomainStatus[])[0]!.resources.filter((r) => r.granted.length + r.converting.length + r.blocked.length > 0 || r.state.length > 0))}`);
    throw new Error('torture did not finish on the survivors');
  }
  const [r0, r1] = both;
  for (const r of [r0!, r1!]) {
    const res = r.result as unknown as TortureResult;
    t.ok(r.ok, r.error ?? '');
    t.same(res.violations, [], `node ${res.node}: no violations across the death`);
    t.same(res.errors, [], `node ${res.node}: no errors`);
    t.ok(res.ops > 10, `node ${res.node}: ${res.ops} ops`);
  }
  // (the waiter's lock belonged to its control connection, closed by now: released)
  for (const p of procs.slice(0, 2)) await noWaiters(t, p, 'DEATH');
  t.ok(procs[0]!.count(/Recovery Master for the dead node 2|recovery of node 2 done/) + procs[1]!.count(/Recovery Master for the dead node 2|recovery of node 2 done/) > 0, 'a recovery master recovered node 2');
  // every name still works after recovery
  await ok(procs[1]!, { op: 'dlm-counters', domain: 'DEATH', names: NAMES });

  // node 2 comes back as a new process (new generation) and rejoins
  const again = spawnNode({ dir, node: 'node2' });
  procs[2] = again;
  await again.ready();
  for (const p of procs.slice(0, 2)) await ok(p, { op: 'hb', node: 2, up: true });
  await until(async () => ((await again.request({ op: 'status' })).status as { connections: { state: string }[] }).connections.every((c) => c.state === 'connected'), WAIT_MS, 'node2 reconnected');
  const j = await ok(again, { op: 'dlm-join', domain: 'DEATH' });
  t.same(j.nodes, [0, 1, 2], 'the restarted node rejoined the domain');
  const h = await ok(again, { op: 'dlm-lock', domain: 'DEATH', name: 'HELD', mode: 'EX' });
  t.ok(h.id, 'and takes locks');
});
