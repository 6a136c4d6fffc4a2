/**
 * Interop with the Linux kernel's o2cb stack (one boot of the kernel harness,
 * ../shared/kernel): two node processes of ours and a kernel node heartbeat
 * on one image and connect over o2net in both directions.
 *
 *   ours0  num 0  10.78.0.1   our process, loop device (direct I/O) over the image
 *   kvm1   num 1  10.78.0.2   the kernel in qemu, image attached with cache=none
 *   ours2  num 2  10.78.0.3   our process, another loop device
 *   ours3  num 3  10.78.0.4   our process with a 1500 ms keepalive delay:
 *                             heartbeats, but its handshake is refused
 *
 * The VM's eth0 is a tap device inside a network namespace made by the test;
 * our nodes run inside that namespace on the tap's addresses, so every side
 * sees the addresses cluster.conf names.  o2net's rule is that the higher
 * node number connects, so the kernel connects to ours0 (we accept) and
 * ours2 connects to the kernel (it accepts): both directions in one boot.
 * The kernel side is configured through configfs exactly like o2cb does it
 * (kh_o2cb_setup, kh_hb_start_shell) with the same timeouts; the o2hb
 * HEARTBEAT log mask is enabled so node-up shows in dmesg ("Node N (id 0x…)
 * joined my region").
 *
 * Checked: each side sees the others live (kernel: dmesg and debugfs
 * o2hb/livenodes; ours: `cluster status`), the generations each side reports
 * are the ones the other wrote, the kernel logs "o2net: Connected to node
 * ours0" and "o2net: Accepted connection from node ours2" (handshake accepted
 * both ways: version, timeouts), the connections outlive the idle timeout
 * on keepalives alone (each side parses the other's frames), the
 * kill -9 of ours2 is seen by the kernel as a lost connection at once and a
 * dead node one dead threshold later, without fencing (o2quo's delay is
 * longer), the kernel's clean heartbeat stop (generation-0 block) is seen by
 * ours at once,
 * and mounted.ocfs2 -f in the guest says "Not mounted" while the kernel only
 * heartbeats (it reads the slot map, which only a mount fills).
 *
 * Runs when the harness directory exists (it builds itself; qemu comes from
 * apt).  Needs root for the namespace, tap and loop devices.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { makeO2cbImage } from './lib/o2cb-image';
import { KERNEL_HARNESS_DIR, kernelHarnessMissing, requireJudge } from './lib/judges';
import { NetNs, tapUnavailable, attachLoop, detachLoop, spawnNodeIn } from './lib/netns';
import { NodeProc, nodeArgsFor, cliScript, REPO, until } from './o2net-harness';
import type { StackStatus } from '../src/cluster/stack';

const KH_HOME = KERNEL_HARNESS_DIR;
const CLUSTER = 'kclu';
const PORT = 7777;
const NODES = [
  { name: 'ours0', num: 0, ip: '10.78.0.1' },
  { name: 'kvm1', num: 1, ip: '10.78.0.2' },
  { name: 'ours2', num: 2, ip: '10.78.0.3' },
  { name: 'ours3', num: 3, ip: '10.78.0.4' },
] as const;
/** ours3 runs with this keepalive delay instead of KEEPALIVE: its handshake must be refused. */
const BAD_KEEPALIVE = 1500;
// the o2cb defaults but a dead threshold of 7 (14 s, as the harness
// examples use) and a 10 s idle timeout, so that a death and an idle period
// are seen soon; the same on both sides (configfs / o2cb file); the kernel's
// heartbeat period is fixed at 2000 ms
const THRESHOLD = 7;
const IDLE = 10000;
const KEEPALIVE = 2000;
const RECONNECT = 2000;

function clusterConf(): string {
  let s = `cluster:\n\tnode_count = ${NODES.length}\n\theartbeat_mode = local\n\tname = ${CLUSTER}\n\n`;
  for (const n of NODES) s += `node:\n\tip_port = ${PORT}\n\tip_address = ${n.ip}\n\tnumber = ${n.num}\n\tname = ${n.name}\n\tcluster = ${CLUSTER}\n\n`;
  return s;
}

/** The guest's part (busybox sh, guest-lib.sh sourced, cwd on the 9p share). */
function guestScript(): string {
  const specs = NODES.map((n) => `${n.name}:${n.num}:${n.ip}:${PORT}`).join(' ');
  return `
KH_HB_DEAD_THRESHOLD=${THRESHOLD} KH_IDLE_TIMEOUT_MS=${IDLE} KH_KEEPALIVE_MS=${KEEPALIVE} KH_RECONNECT_MS=${RECONNECT} \\
  kh_o2cb_setup ${CLUSTER} kvm1 ${specs} || exit 1
echo allow > /sys/fs/o2cb/logmask/HEARTBEAT || exit 1
kh_hb_start_shell /dev/vda || exit 1
: > hb-started
rc=0
kh_wait_dmesg 'Node 0 \\(id 0x[0-9a-f]+\\) joined my region' 120 || rc=1
kh_wait_dmesg 'Node 2 \\(id 0x[0-9a-f]+\\) joined my region' 120 || rc=1
kh_wait_dmesg 'o2net: Connected to node ours0 ' 120 || rc=1
kh_wait_dmesg 'o2net: Accepted connection from node ours2 ' 120 || rc=1
kh_wait_dmesg 'Node 3 \\(id 0x[0-9a-f]+\\) joined my region' 120 || rc=1
kh_wait_dmesg 'node ours3 .* uses a keepalive delay of ${BAD_KEEPALIVE} ms, but we use ${KEEPALIVE} ms locally' 120 || rc=1
echo "KH livenodes: $(cat /sys/kernel/debug/o2hb/livenodes)"
for f in /sys/kernel/debug/o2hb/*/livenodes; do echo "KH region livenodes: $(cat $f)"; done
for a in dead_threshold; do echo "KH configfs heartbeat/$a: $(cat /sys/kernel/config/cluster/${CLUSTER}/heartbeat/$a)"; done
for a in idle_timeout_ms keepalive_delay_ms reconnect_delay_ms; do echo "KH configfs $a: $(cat /sys/kernel/config/cluster/${CLUSTER}/$a)"; done
echo "KH mounted: $(mounted.ocfs2 -f /dev/vda | tail -n 1)"
: > kernel-ready
i=0; while [ ! -e host-killed ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done
[ -e host-killed ] || { echo "KH host never killed ours2"; rc=1; }
# connections to ours0 must have survived the whole check (keepalives both ways)
dmesg | grep -q 'o2net: No longer connected to node ours0' && { echo "KH connection lost early"; rc=1; }
# ours2 was killed with SIGKILL: o2net sees the socket close, o2hb the silence
kh_wait_dmesg 'o2net: No longer connected to node ours2 ' 60 || rc=1
kh_wait_dmesg 'Node 2 left my region' 120 || rc=1
: > saw-death
i=0; while [ ! -e host-done ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done
[ -e host-done ] || { echo "KH host never finished"; rc=1; }
echo off > /sys/fs/o2cb/logmask/HEARTBEAT
# clean heartbeat stop: the kernel writes its generation-0 block
rmdir /sys/kernel/config/cluster/${CLUSTER}/heartbeat/$(ls /sys/kernel/config/cluster/${CLUSTER}/heartbeat | grep -E '^[0-9A-F]{32}$') || rc=1
: > hb-stopped
i=0; while [ ! -e host-saw-stop ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
exit $rc
`;
}

t.test('a kernel node and ours: heartbeat, o2net both ways, a refused handshake', async (t) => {
  if (!requireJudge(t, kernelHarnessMissing() ?? tapUnavailable())) return;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2kernel-'));
  const { image, uuid } = makeO2cbImage(dir, { cluster: CLUSTER, slots: 4, sizeMiB: 64 });
  fs.writeFileSync(path.join(dir, 'cluster.conf'), clusterConf());
  fs.writeFileSync(path.join(dir, 'o2cb'), `O2CB_HEARTBEAT_THRESHOLD=${THRESHOLD}\nO2CB_IDLE_TIMEOUT_MS=${IDLE}\nO2CB_KEEPALIVE_DELAY_MS=${KEEPALIVE}\nO2CB_RECONNECT_DELAY_MS=${RECONNECT}\n`);
  fs.writeFileSync(path.join(dir, 'guest.sh'), guestScript());
  const rundir = path.join(dir, 'run');
  const vmdir = path.join(rundir, 'vm');

  const ns = NetNs.create('k');
  const loops: string[] = [];
  const procs: NodeProc[] = [];
  let vm: ChildProcess | undefined;
  const T0 = Date.now();
  const stamp = (what: string): void => { if (process.env.O2CB_KERNEL_VERBOSE) t.comment(`+${((Date.now() - T0) / 1000).toFixed(1)} s ${what}`); };
  t.teardown(async () => {
    stamp('teardown');
    try { for (const f of ['host-killed', 'host-done']) fs.writeFileSync(path.join(vmdir, f), ''); fs.writeFileSync(path.join(vmdir, 'host-saw-stop'), ''); } catch { /* no VM dir */ }
    await Promise.all(procs.map((p) => p.stop()));
    if (vm && vm.exitCode === null && vm.pid) {
      await Promise.race([new Promise((r) => vm!.once('exit', r)), new Promise((r) => setTimeout(r, 20000).unref())]);
      if (vm.exitCode === null) { try { process.kill(-vm.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    stamp('teardown: processes gone');
    if (!t.passing()) {
      // what the guest and our nodes said, for the failure report
      for (const f of ['out.log', 'dmesg.log']) {
        try {
          const txt = fs.readFileSync(path.join(vmdir, f), 'utf8').split('\n').filter((l) => f === 'out.log' || /o2net|o2hb|joined|left my|o2quo/.test(l));
          t.comment(`guest ${f}:\n${txt.slice(-60).join('\n')}`);
        } catch { /* not written */ }
      }
      for (const p of procs) t.comment(`${p.name}:\n${p.lines.slice(-25).join('\n')}`);
    }
    for (const l of loops) detachLoop(l);
    ns.delete();
    stamp('teardown: done');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  ns.addTap('o2ktap', [`${NODES[0].ip}/24`, `${NODES[2].ip}/24`, `${NODES[3].ip}/24`]);
  loops.push(attachLoop(image), attachLoop(image), attachLoop(image));

  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  delete env.NODE_OPTIONS;
  const common = ['--cluster-conf', path.join(dir, 'cluster.conf'), '--o2cb-config', path.join(dir, 'o2cb')];
  const ours = [NODES[0], NODES[2]].map((n, i) => {
    const p = spawnNodeIn(ns, { dir, node: n.name, args: ['--device', loops[i]!] });
    procs.push(p);
    return p;
  });
  const [p0, p2] = ours as [NodeProc, NodeProc];
  // a node whose handshake differs in the keepalive delay only: refused both
  // ways, which shows the field sits where the kernel reads it (a swap with
  // the reconnect delay, which nobody compares, would pass unnoticed)
  const p3 = spawnNodeIn(ns, { dir, node: 'ours3', args: ['--device', loops[2]!, '--keepalive-delay-ms', String(BAD_KEEPALIVE)] });
  procs.push(p3);

  // boot the kernel node while ours start (the guest's heartbeat start alone
  // takes some 10 s; either side may come up first)
  let vmOut = '';
  vm = spawn('bash', [path.join(REPO, 'tools', 'kh-run-tap.sh'), '-n', ns.name, '-T', 'o2ktap', '-a', `${NODES[1].ip}/24`,
    '-k', rundir, '-t', '420', image, path.join(dir, 'guest.sh')], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KH_HOME } });
  vm.stdout!.on('data', (d: Buffer) => { vmOut += d.toString(); });
  vm.stderr!.on('data', (d: Buffer) => { vmOut += d.toString(); });
  const vmExit = new Promise<number | null>((r) => vm!.once('exit', (c) => r(c)));
  const vmGone = vmExit.then((c) => { throw new Error(`the VM ended early (${String(c)}):\n${vmOut}`); });
  vmGone.catch(() => undefined);
  const orVm = <T>(p: Promise<T>): Promise<T> => Promise.race([p, vmGone]);
  await orVm(Promise.all([p3, ...ours].map((p) => p.ready())));
  await orVm(p0.waitFor(/o2net: Accepted connection from node ours2/, 120000));
  stamp('our nodes up');

  // our side: heartbeat sees the kernel, o2net connects in both directions
  const upRe = /o2hb: Node 1 \(kvm1\) is up, generation ([0-9a-f]+)/;
  const up0 = await orVm(p0.waitFor(upRe, 300000));
  const up2 = await orVm(p2.waitFor(upRe, 120000));
  await orVm(p0.waitFor(/o2net: Accepted connection from node kvm1 \(num 1\) at 10\.78\.0\.2:7777/, 120000));
  await orVm(p2.waitFor(/o2net: Connected to node kvm1 \(num 1\) at 10\.78\.0\.2:7777/, 120000));
  const connectedAt = Date.now();
  stamp('kernel seen by ours');
  const kernelGen = upRe.exec(up0)![1]!;
  t.equal(upRe.exec(up2)![1], kernelGen, 'both of ours read the same kernel generation');

  // the kernel's view, once its checks in the guest passed
  await orVm(until(() => fs.existsSync(path.join(vmdir, 'kernel-ready')), 240000, 'the guest saw both nodes and both connections'));

  const status = async (n: NodeProc, name: string): Promise<{ text: string; json: StackStatus }> => {
    const base = [...nodeArgsFor(cliScript()), 'cluster', 'status', ...common, '--node', name, '--control-socket', n.controlSocket];
    const runIt = (extra: string[]): Promise<string> => new Promise((resolve) => {
      const c = spawn('timeout', ['120', process.execPath, ...base, ...extra], { cwd: REPO, env });
      let out = '';
      c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      c.on('exit', () => resolve(out));
    });
    // the text through the CLI, the structured view straight from the control socket
    const [text, reply] = await Promise.all([runIt([]), n.request({ op: 'status' })]);
    return { text, json: reply.status as unknown as StackStatus };
  };
  const [s0, s2] = await Promise.all([status(p0, 'ours0'), status(p2, 'ours2')]);
  t.comment(s0.text);
  for (const s of [s0, s2]) {
    t.match(s.text, /Live nodes: 0 \(ours0\), 1 \(kvm1\), 2 \(ours2\), 3 \(ours3\)/, 'status lists the kernel node live');
    t.same(s.json.liveNodes, [0, 1, 2, 3], 'ours3 heartbeats too');
    t.same(s.json.quorum.connected, [0, 1, 2], 'connected to every node but the mismatched ours3');
    t.equal(s.json.regions[0]?.region, uuid);
  }
  t.match(s0.text, /node kvm1 \(num 1\) at 10\.78\.0\.2:7777: connected, accepted from it/, 'ours0 accepted the kernel');
  t.match(s2.text, /node kvm1 \(num 1\) at 10\.78\.0\.2:7777: connected, connected to it/, 'ours2 connected to the kernel');

  // our own generations, as each process reported itself up
  const own = (p: NodeProc, n: number): string => new RegExp(`o2hb: Node ${n} \\(\\S+\\) is up, generation ([0-9a-f]+)`).exec(p.lines.find((l) => l.includes(`o2hb: Node ${n} (`))!)![1]!;
  const gen0 = own(p0, 0);
  const gen2 = own(p2, 2);

  // kill -9 ours2: the kernel must see it die by heartbeat after its dead
  // threshold, and not fence itself over the lost connection (o2quo waits
  // O2NET_QUORUM_DELAY_MS = (threshold + 2) periods, longer than the death)
  const tk = Date.now();
  p2.proc.kill('SIGKILL');
  await p2.exited;
  fs.writeFileSync(path.join(vmdir, 'host-killed'), '');
  await orVm(p0.waitFor(/o2hb: Node 2 \(ours2\) is down/, 120000));
  const ourDeath = Date.now() - tk;
  t.ok(ourDeath >= (THRESHOLD - 2) * 2000, `ours0 saw ours2 dead after ${ourDeath} ms (threshold ${THRESHOLD} x 2000 ms)`);
  await orVm(until(() => fs.existsSync(path.join(vmdir, 'saw-death')), 120000, 'the kernel saw ours2 die'));

  // meanwhile ours0's connection to the kernel is held past the idle timeout:
  // each side's idle timer only stays quiet because the other's keepalive
  // frames arrive and parse
  const hold = connectedAt + IDLE + 2 * KEEPALIVE - Date.now();
  if (hold > 0) await orVm(new Promise((r) => setTimeout(r, hold)));
  t.equal(p0.count(/No longer connected to node kvm1|idle for/), 0,
    `ours0's connection to the kernel held for over the idle timeout (${IDLE} ms) on keepalives alone`);
  fs.writeFileSync(path.join(vmdir, 'host-done'), '');
  await orVm(until(() => fs.existsSync(path.join(vmdir, 'hb-stopped')), 120000, 'the kernel stopped its heartbeat'));
  const t0 = Date.now();
  await orVm(p0.waitFor(/o2hb: Node 1 \(kvm1\) is down/, 60000));
  await orVm(p3.waitFor(/o2hb: Node 1 \(kvm1\) is down/, 60000));
  const dt = Date.now() - t0;
  t.ok(dt < (THRESHOLD - 2) * 2000, `the kernel's clean stop is seen in ${dt} ms, not after the dead threshold`);
  t.ok(p0.lines.some((l) => /Node 1 left my region \(generation changed\)/.test(l)), 'by its generation-0 block');
  fs.writeFileSync(path.join(vmdir, 'host-saw-stop'), '');

  stamp('stop seen');
  const rc = await Promise.race([vmExit, new Promise<string>((r) => setTimeout(() => r('timeout'), 120000).unref())]);
  t.equal(rc, 0, 'the guest checks passed');
  if (rc !== 0) t.comment(vmOut);
  const out = fs.readFileSync(path.join(vmdir, 'out.log'), 'utf8');
  const dmesg = fs.readFileSync(path.join(vmdir, 'dmesg.log'), 'utf8');
  t.match(out, /KH livenodes: 0 1 2 3\b/, 'kernel debugfs o2hb/livenodes: 0 1 2 3');
  t.match(out, /KH region livenodes: 0 1 2 3\b/, 'and in the region');
  t.match(out, new RegExp(`KH configfs heartbeat/dead_threshold: ${THRESHOLD}`));
  // the kernel's view of the kill: connection gone at once, heartbeat death a threshold later
  const stampOf = (re: RegExp): number => Number(/^\[\s*([\d.]+)\]/.exec(dmesg.split('\n').find((l) => re.test(l)) ?? '')?.[1] ?? NaN);
  const lost = stampOf(/o2net: No longer connected to node ours2 /);
  const left = stampOf(/Node 2 left my region/);
  t.ok(left - lost >= (THRESHOLD - 2) * 2 && left - lost <= (THRESHOLD + 3) * 2,
    `kernel: ours2's connection lost at ${lost} s, its heartbeat dead at ${left} s (${(left - lost).toFixed(1)} s: the dead threshold)`);
  t.notMatch(dmesg, /o2quo: fencing|fencing this node/, 'the kernel did not fence');
  t.match(out, /KH mounted: \/dev\/vda\s+o2cb\s+kclu\s+Not mounted/, 'mounted.ocfs2 -f: heartbeat alone is "Not mounted" on the kernel too');
  t.match(dmesg, new RegExp(`Node 0 \\(id 0x${gen0}\\) joined my region`), `kernel: node 0 joined with our generation ${gen0}`);
  t.match(dmesg, new RegExp(`Node 2 \\(id 0x${gen2}\\) joined my region`), `kernel: node 2 joined with our generation ${gen2}`);
  t.match(dmesg, new RegExp(`Node 1 \\(id 0x${kernelGen}\\) joined my region`), 'the generation we read is the kernel\'s own');
  t.match(dmesg, /o2net: Connected to node ours0 \(num 0\) at 10\.78\.0\.1:7777/, 'kernel connected to ours0 (handshake accepted)');
  t.match(dmesg, /o2net: Accepted connection from node ours2 \(num 2\) at 10\.78\.0\.3:7777/, 'kernel accepted ours2 (handshake accepted)');
  t.match(dmesg, new RegExp(`o2net: node ours3 \\(num 3\\) at 10\\.78\\.0\\.4:7777 uses a keepalive delay of ${BAD_KEEPALIVE} ms, but we use ${KEEPALIVE} ms locally\\. Disconnecting\\.`),
    'the kernel refused ours3\'s handshake, naming the keepalive delay it read from it');
  t.ok(p3.lines.some((l) => new RegExp(`node kvm1 \\(num 1\\) at 10\\.78\\.0\\.2:7777 uses a keepalive delay of ${KEEPALIVE} ms, but we use ${BAD_KEEPALIVE} ms locally`).test(l)),
    'ours3 refused the kernel\'s handshake the same way');
  const others = (l: string): boolean => !/ours3/.test(l);
  t.notOk(dmesg.split('\n').some((l) => others(l) && /Disconnecting|has a dead count of|bad crc|Another node is heartbeating/.test(l)), 'no other handshake, dead count, checksum or slot complaints');
  for (const p of ours) t.equal(p.lines.filter((l) => others(l) && /Disconnecting|fencing/.test(l)).length, 0, `${p.name}: no refusal other than ours3, no fencing`);
  t.equal(p0.exitCode, undefined, 'ours0 kept running through both departures');
  t.equal(p3.exitCode, undefined, 'ours3, refused by every peer, did not fence: it never lost a valid connection (the kernel\'s rule)');
  t.equal(p3.count(/^o2quo:/), 0, 'ours3 took no quorum decision');
});
