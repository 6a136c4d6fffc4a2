/**
 * o2net benchmark (not a test): request/status round trips between two node
 * processes on loopback (node1 -> node0, sequential, one outstanding request,
 * as the kernel's o2net_send_message waits for each reply), next to a plain
 * TCP echo of the same number of bytes between two processes as the floor.
 *
 *   node dist/bench/o2net-bench.js [count]      (or via `make bench`)
 *   O2NET_BENCH_COUNT=20000 ...
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeNodes, writeCluster, spawnNode, freePorts } from '../test/o2net-harness';

const COUNT = Number(process.argv[2] ?? process.env.O2NET_BENCH_COUNT ?? 5000);
const SIZES = [0, 1024, 4072];
const HEADER = 24;

interface Row { what: string; size: number; rtps: number; p50: number; p99: number }

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarise(what: string, size: number, lat: number[], elapsedMs: number): Row {
  const s = [...lat].sort((a, b) => a - b);
  return { what, size, rtps: (lat.length / elapsedMs) * 1000, p50: pct(s, 50) * 1000, p99: pct(s, 99) * 1000 };
}

/** A TCP echo server in its own process: reads `n` bytes, writes them back. */
async function echoFloor(size: number, count: number): Promise<Row> {
  const [port] = await freePorts(1);
  const msg = HEADER + size;
  const src = `
    const net = require('net');
    net.createServer({ noDelay: true }, (s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); })
      .listen(${port}, '127.0.0.1', () => process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
  try {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ host: '127.0.0.1', port: port!, localAddress: '127.0.0.2', noDelay: true }, () => resolve(s));
      s.once('error', reject);
    });
    const buf = Buffer.alloc(msg, 0x5a);
    const lat: number[] = [];
    let got = 0;
    let done: (() => void) | null = null;
    sock.on('data', (d: Buffer) => { got += d.length; if (got >= msg && done) { got -= msg; const f = done; done = null; f(); } });
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const a = performance.now();
      await new Promise<void>((r) => { done = r; sock.write(buf); });
      lat.push(performance.now() - a);
    }
    const el = performance.now() - t0;
    sock.destroy();
    return summarise('tcp echo (floor)', size, lat, el);
  } finally {
    child.kill();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2net-bench-'));
  const nodes = await makeNodes(2);
  writeCluster(dir, nodes, { threshold: 31, idle: 30000, keepalive: 2000, reconnect: 2000 });
  const p0 = spawnNode({ dir, node: 'node0' });
  const p1 = spawnNode({ dir, node: 'node1' });
  const rows: Row[] = [];
  try {
    await Promise.all([p0.ready(), p1.ready()]);
    await p1.waitFor(/Connected to node node0/, 60000);
    // warm up both processes' JIT
    await p1.request({ op: 'bench', node: 0, count: 500, size: 64 });
    for (const size of SIZES) {
      const r = await p1.request({ op: 'bench', node: 0, count: COUNT, size });
      if (!r.ok) throw new Error(`bench failed: ${String(r.error)}`);
      rows.push(summarise('o2net request/status', size, r.latMs as number[], r.elapsedMs as number));
      rows.push(await echoFloor(size, COUNT));
    }
  } finally {
    await Promise.all([p0.stop(), p1.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const cpu = os.cpus();
  process.stdout.write(`o2net round trips on loopback, ${COUNT} sequential requests each (${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)})\n`);
  process.stdout.write(`${'path'.padEnd(22)} ${'payload'.padStart(8)} ${'rt/s'.padStart(9)} ${'p50 us'.padStart(9)} ${'p99 us'.padStart(9)}\n`);
  for (const r of rows) {
    process.stdout.write(`${r.what.padEnd(22)} ${String(r.size).padStart(8)} ${r.rtps.toFixed(0).padStart(9)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(9)}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`o2net-bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
