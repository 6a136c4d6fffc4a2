/**
 * Heartbeat CPU cost per node (not a test): three `cluster node` processes
 * heartbeat on one image (each through its own loop device with direct I/O
 * when we may make loop devices, else the image file with O_DIRECT), connected
 * over o2net on 127.0.0.1-3.  Once every node sees the other two live, the
 * CPU time each process (all its threads) uses over a measuring window is
 * scaled to CPU seconds per minute.  Rows:
 *   - disk heartbeat at the kernel's period, 2000 ms (the default);
 *   - disk heartbeat at a short test period (default 200 ms);
 *   - the same processes with --static-heartbeat (no disk I/O; o2net
 *     keepalives and timers only), the floor the heartbeat adds to.
 *
 *   node dist/bench/hb-bench.js            (or via `make bench`)
 *   HB_BENCH_SECONDS=60 HB_BENCH_TEST_INTERVAL_MS=100 node dist/bench/hb-bench.js
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeO2cbImage } from '../test/lib/o2cb-image';
import { makeNodes, writeCluster, spawnNode, NodeProc, until } from '../test/o2net-harness';

const WINDOW_S = Number(process.env.HB_BENCH_SECONDS ?? 30);
const TEST_INTERVAL = Number(process.env.HB_BENCH_TEST_INTERVAL_MS ?? 200);
const NODES = 3;

function clockTicks(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
}
const HZ = clockTicks();

/**
 * CPU time of a process and all its threads (the libuv pool does the O_DIRECT
 * I/O), in seconds: the sum of /proc/PID/task/TID/schedstat's first field
 * (ns on a CPU); where schedstat is missing, utime + stime from
 * /proc/PID/stat (clock ticks, coarse).
 */
function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread ended */ }
    }
    if (ns > 0) return ns / 1e9;
  } catch { /* no schedstat */ }
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may hold spaces: split after its closing paren
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / HZ;
}

function attachLoop(img: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('timeout', ['30', 'losetup', '--direct-io=on', '-f', '--show', img], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

interface Row { what: string; intervalMs: number | null; perNodeCpuSPerMin: number[]; iterations: number }

async function measure(dir: string, devs: string[], what: string, intervalMs: number | null): Promise<Row> {
  const procs: NodeProc[] = [];
  try {
    for (let i = 0; i < NODES; i++) {
      const extra = intervalMs === null ? [] : ['--device', devs[i]!, '--heartbeat-interval-ms', String(intervalMs)];
      procs.push(spawnNode({ dir, node: `node${i}`, staticHeartbeat: intervalMs === null, extra }));
    }
    await Promise.all(procs.map((p) => p.ready()));
    // steady: every node sees every node, and the mesh is connected
    const steadyMs = Math.max(60000, 12 * (intervalMs ?? 0));
    for (const p of procs) {
      for (let n = 0; n < NODES; n++) await p.waitFor(new RegExp(`o2hb: Node ${n} \\(node${n}\\) is up`), steadyMs);
    }
    await until(async () => {
      for (const p of procs) {
        const st = await p.request({ op: 'status' });
        const s = st.status as { quorum: { connected: number[] } } | undefined;
        if (!s || s.quorum.connected.length !== NODES) return false;
      }
      return true;
    }, steadyMs, 'o2net mesh connected');
    // let start-up work (JIT, first connections) settle before measuring
    await new Promise((r) => setTimeout(r, 2000));
    const before = procs.map((p) => cpuSeconds(p.proc.pid!));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const after = procs.map((p) => cpuSeconds(p.proc.pid!));
    const el = (Date.now() - t0) / 1000;
    for (const p of procs) if (p.exitCode !== undefined) throw new Error(`${p.name} exited (${String(p.exitCode)}) during the measurement`);
    return {
      what, intervalMs,
      perNodeCpuSPerMin: after.map((a, i) => ((a - before[i]!) / el) * 60),
      iterations: intervalMs === null ? 0 : Math.round((el * 1000) / intervalMs),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hb-bench-'));
  const loops: string[] = [];
  const rows: Row[] = [];
  try {
    const { image } = makeO2cbImage(dir, { cluster: 'testclu', slots: 4, sizeMiB: 64 });
    const nodes = await makeNodes(NODES);
    writeCluster(dir, nodes, { threshold: 31, idle: 30000, keepalive: 2000, reconnect: 2000 });
    const devs: string[] = [];
    for (let i = 0; i < NODES; i++) {
      const l = attachLoop(image);
      if (l) loops.push(l);
      devs.push(l ?? image);
    }
    rows.push(await measure(dir, devs, 'disk heartbeat', 2000));
    rows.push(await measure(dir, devs, 'disk heartbeat', TEST_INTERVAL));
    rows.push(await measure(dir, devs, 'static (no disk I/O)', null));
    const cpu = os.cpus();
    process.stdout.write(`heartbeat CPU cost per node: ${NODES} node processes on one image via ${loops.length ? 'loop devices (direct I/O)' : 'the image file (O_DIRECT)'}, `
      + `${WINDOW_S} s window each (${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}, CLK_TCK ${HZ})\n`);
    process.stdout.write(`${'mode'.padEnd(22)} ${'period'.padStart(8)} ${'CPU s/min per node (each)'.padEnd(28)} ${'mean'.padStart(7)} ${'ms/beat'.padStart(8)}\n`);
    const floor = rows[2]!.perNodeCpuSPerMin.reduce((a, b) => a + b, 0) / NODES;
    for (const r of rows) {
      const mean = r.perNodeCpuSPerMin.reduce((a, b) => a + b, 0) / NODES;
      // CPU per heartbeat iteration above the static floor
      const perBeat = r.intervalMs === null ? '-' : ((Math.max(0, mean - floor) * 1000) / (60000 / r.intervalMs)).toFixed(2);
      process.stdout.write(`${r.what.padEnd(22)} ${(r.intervalMs === null ? '-' : `${r.intervalMs} ms`).padStart(8)} `
        + `${r.perNodeCpuSPerMin.map((x) => x.toFixed(3)).join(' ').padEnd(28)} ${mean.toFixed(3).padStart(7)} ${perBeat.padStart(8)}\n`);
    }
    process.stdout.write('(CPU s/min = CPU seconds used per minute of wall time; ms/beat = CPU per heartbeat iteration above the static floor)\n');
  } finally {
    for (const l of loops) spawnSync('timeout', ['30', 'losetup', '-d', l]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`hb-bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
