/**
 * `ocfs2-fuse cluster node` (run this host's node of the cluster) and
 * `ocfs2-fuse cluster status` (in the spirit of `service o2cb status`).
 *
 * `cluster node` joins the node's running stack over its control socket when
 * one runs (a node is one host identity: one stack), else starts it.  It runs
 * until SIGTERM/SIGINT and then leaves cleanly: its volumes' heartbeat stops
 * with the final generation-0 block, connections close.
 */
import { Command, Option } from 'commander';
import {
  ClusterStack, StackClient, StackOptions, StackStatus, joinOrStart, controlSocketPath, FENCE_EXIT_CODE,
} from '../cluster/stack';
import { NodeManager, type O2cbTimeouts } from '../cluster/nodemanager';
import { locateHeartbeatArea } from '../cluster/heartbeat/locate';
import { liveHeartbeatNodes } from '../libocfs2/rwmount';

export const DEFAULT_CLUSTER_CONF = '/etc/ocfs2/cluster.conf';

export interface CommonOpts {
  clusterConf: string;
  node?: string;
  o2cbConfig?: string;
  cluster?: string;
  controlSocket?: string;
  runtimeDir?: string;
  heartbeatThreshold?: number;
  idleTimeoutMs?: number;
  keepaliveDelayMs?: number;
  reconnectDelayMs?: number;
  heartbeatIntervalMs?: number;
}

interface NodeOpts extends CommonOpts {
  device: string[];
  staticHeartbeat?: boolean;
  quorumDelayMs?: number;
  testHandlers?: boolean;
}

interface StatusOpts extends CommonOpts {
  device: string[];
  json?: boolean;
}

function int(v: string): number {
  if (!/^\d+$/.test(v)) throw new Error(`'${v}' is not a whole number`);
  return Number(v);
}

function collect(v: string, prev: string[]): string[] { return [...prev, v]; }

export function addCommon(c: Command): Command {
  return c
    .option('--cluster-conf <file>', 'cluster configuration', DEFAULT_CLUSTER_CONF)
    .option('--node <name>', 'local node name (default: the host name)')
    .option('--o2cb-config <file>', 'o2cb timeouts file (default /etc/sysconfig/o2cb if present)')
    .option('--cluster <name>', 'cluster to use when the file defines several')
    .option('--control-socket <path>', 'control socket of the node stack (default <runtime dir>/<cluster>.<node>.sock)')
    .option('--runtime-dir <dir>', 'directory for control sockets (default $XDG_RUNTIME_DIR/ocfs2-fuse or /run/ocfs2-fuse)')
    .option('--heartbeat-threshold <n>', 'O2CB_HEARTBEAT_THRESHOLD override', int)
    .option('--idle-timeout-ms <ms>', 'O2CB_IDLE_TIMEOUT_MS override', int)
    .option('--keepalive-delay-ms <ms>', 'O2CB_KEEPALIVE_DELAY_MS override', int)
    .option('--reconnect-delay-ms <ms>', 'O2CB_RECONNECT_DELAY_MS override', int)
    .addOption(new Option('--heartbeat-interval-ms <ms>', 'heartbeat period (tests only; the kernel uses 2000)').argParser(int).hideHelp());
}

function timeoutOverrides(o: CommonOpts): Partial<O2cbTimeouts> {
  const t: Partial<O2cbTimeouts> = {};
  if (o.heartbeatThreshold !== undefined) t.heartbeatDeadThreshold = o.heartbeatThreshold;
  if (o.idleTimeoutMs !== undefined) t.idleTimeoutMs = o.idleTimeoutMs;
  if (o.keepaliveDelayMs !== undefined) t.keepaliveDelayMs = o.keepaliveDelayMs;
  if (o.reconnectDelayMs !== undefined) t.reconnectDelayMs = o.reconnectDelayMs;
  if (o.heartbeatIntervalMs !== undefined) t.heartbeatIntervalMs = o.heartbeatIntervalMs;
  return t;
}

export function stackOptions(o: CommonOpts & Partial<NodeOpts>): StackOptions {
  return {
    clusterConf: o.clusterConf,
    node: o.node,
    o2cbConfig: o.o2cbConfig,
    cluster: o.cluster,
    timeouts: timeoutOverrides(o),
    controlSocket: o.controlSocket,
    runtimeDir: o.runtimeDir,
    staticHeartbeat: o.staticHeartbeat,
    quorumDelayMs: o.quorumDelayMs,
    testHandlers: o.testHandlers,
  };
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(s);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

async function runNode(o: NodeOpts): Promise<number> {
  const res = await joinOrStart(stackOptions(o), o.device);
  if (res.kind === 'joined') {
    process.stderr.write(`o2cb: joined the running stack of this node (pid ${res.pid})${o.device.length ? ` with ${o.device.join(', ')}` : ''}\n`);
    let fenced = false;
    res.client.on('event', (ev: { event: string; reason?: string }) => {
      if (ev.event === 'fence') { fenced = true; process.stderr.write(`o2cb: the node fenced itself: ${ev.reason ?? ''}\n`); }
    });
    const ended = res.client.closedPromise().then(() => 'stack' as const);
    const why = await Promise.race([waitForSignal(), ended]);
    if (why === 'stack') {
      process.stderr.write('o2cb: the node stack went away\n');
      return fenced ? FENCE_EXIT_CODE : 1;
    }
    try { await res.client.request({ op: 'leave', devices: o.device }); } catch { /* it stopped meanwhile */ }
    res.client.close();
    return 0;
  }
  const stack: ClusterStack = res.stack;
  let fenced = false;
  stack.on('fence', () => { fenced = true; });
  const requested = new Promise<'stop'>((r) => stack.once('exit-requested', () => r('stop')));
  const sig = await Promise.race([waitForSignal(), requested]);
  if (sig !== 'stop') {
    process.stderr.write(`o2cb: ${sig}: leaving the cluster\n`);
    await stack.stop();
  }
  return fenced ? FENCE_EXIT_CODE : 0;
}

// ------------------------------------------------------------------ status

function names(nm: NodeManager | null, nums: number[]): string {
  if (!nums.length) return '(none)';
  return nums.map((n) => { const x = nm?.nodeByNum(n); return x ? `${n} (${x.name})` : String(n); }).join(', ');
}

export function formatStatus(s: StackStatus, nm: NodeManager | null): string {
  const L: string[] = [];
  const t = s.timeouts;
  L.push(`Cluster ${s.cluster}: Online`);
  L.push(`  Local node: ${s.node.name} (num ${s.node.num}) at ${s.node.address}, pid ${s.pid}, control ${s.controlSocket}`);
  L.push(`  Heartbeat dead threshold: ${t.heartbeatDeadThreshold}`);
  L.push(`  Network idle timeout: ${t.idleTimeoutMs}`);
  L.push(`  Network keepalive delay: ${t.keepaliveDelayMs}`);
  L.push(`  Network reconnect delay: ${t.reconnectDelayMs}`);
  L.push(`  Heartbeat mode: ${s.heartbeatMode === 'global' ? 'Global' : 'Local'}${s.staticHeartbeat ? ' (static: no disk heartbeat)' : ''}`);
  L.push(`Checking O2CB heartbeat: ${s.regions.length ? 'Active' : 'Not active'}`);
  for (const r of s.regions) {
    L.push(`  Region ${r.region} device ${r.device}: live nodes ${r.liveNodes.join(' ') || '(none)'}`);
  }
  L.push(`Live nodes: ${names(nm, s.liveNodes)}`);
  L.push('Connections:');
  for (const c of s.connections) {
    const dir = c.direction === 'connected-to' ? ', connected to it' : c.direction === 'accepted-from' ? ', accepted from it' : '';
    L.push(`  node ${c.name} (num ${c.node}) at ${c.address}: ${c.state}${dir}${c.pendingSends ? `, ${c.pendingSends} pending` : ''}`);
  }
  const q = s.quorum;
  L.push(`Quorum: heartbeating ${q.heartbeating.join(' ') || '-'}, connected ${q.connected.join(' ') || '-'}${q.fenced ? ', FENCED' : ''}`);
  return `${L.join('\n')}\n`;
}


/** Offline: the configuration, and a one-shot read of each device's heartbeat area. */
async function offlineStatus(nm: NodeManager, devices: string[]): Promise<string> {
  const t = nm.timeouts;
  const L: string[] = [];
  L.push(`Cluster ${nm.cluster.name}: Offline (no running node stack for ${nm.localNode.name})`);
  L.push(`  Local node: ${nm.localNode.name} (num ${nm.localNode.num}) at ${nm.localNode.ipv4Address}:${nm.localNode.ipv4Port}`);
  L.push(`  Heartbeat dead threshold: ${t.heartbeatDeadThreshold}`);
  L.push(`  Network idle timeout: ${t.idleTimeoutMs}`);
  L.push(`  Network keepalive delay: ${t.keepaliveDelayMs}`);
  L.push(`  Network reconnect delay: ${t.reconnectDelayMs}`);
  L.push(`  Heartbeat mode: ${nm.cluster.heartbeatMode === 'global' ? 'Global' : 'Local'}`);
  if (nm.cluster.heartbeatMode === 'global') {
    for (const r of nm.cluster.heartbeatRegions) L.push(`  Configured region ${r.region}`);
  }
  L.push(`Nodes: ${nm.cluster.nodes.map((n) => `${n.num} (${n.name} ${n.ipv4Address}:${n.ipv4Port})`).join(', ')}`);
  for (const d of devices) {
    try {
      const live = await liveHeartbeatNodes(d, nm.timeouts.heartbeatIntervalMs);
      L.push(`  ${d}: heartbeating on disk: ${names(nm, live)}`);
    } catch (e) {
      L.push(`  ${d}: cannot read the heartbeat area: ${(e as Error).message}`);
    }
  }
  L.push('Connections: (none: no running node)');
  return `${L.join('\n')}\n`;
}

async function runStatus(o: StatusOpts): Promise<number> {
  const nm = NodeManager.load({ clusterConf: o.clusterConf, node: o.node, o2cbConfig: o.o2cbConfig, cluster: o.cluster, timeouts: timeoutOverrides(o) });
  const sock = o.controlSocket ?? controlSocketPath(nm.cluster.name, nm.localNode.name, o.runtimeDir);
  const c = await StackClient.connect(sock);
  if (c) {
    try {
      const r = await c.request({ op: 'status' });
      if (r.ok && r.status) {
        const s = r.status as unknown as StackStatus;
        process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s, nm));
        return 0;
      }
    } finally {
      c.close();
    }
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ online: false, cluster: nm.cluster.name, node: nm.localNode, timeouts: nm.timeouts, heartbeatMode: nm.cluster.heartbeatMode }, null, 2)}\n`);
  } else {
    process.stdout.write(await offlineStatus(nm, o.device));
  }
  return 3; // like `service ... status` for a stopped service
}

/** Adds `node` and `status` to the `cluster` command. */
export function registerClusterNodeCommands(cluster: Command): void {
  const node = cluster.command('node')
    .description("run this host's node of the cluster (heartbeat, o2net, quorum) until SIGTERM/SIGINT");
  addCommon(node)
    .option('--device <dev>', 'volume to heartbeat on (local mode; repeatable)', collect, [] as string[])
    .addOption(new Option('--static-heartbeat', 'no disk heartbeat: treat every configured node as live (tests)').hideHelp())
    .addOption(new Option('--quorum-delay-ms <ms>', 'O2NET_QUORUM_DELAY_MS override (tests)').argParser(int).hideHelp())
    .addOption(new Option('--test-handlers', 'register the diagnostic echo handler (tests, benchmark)').hideHelp())
    .action(async (o: NodeOpts) => {
      const code = await runNode(o);
      process.exitCode = code;
      // sockets and timers are closed; leave now even if a handle lingers
      setImmediate(() => process.exit(code));
    });

  const status = cluster.command('status')
    .description('cluster, timeouts, heartbeat mode, active regions, live nodes and connections of this node');
  addCommon(status)
    .option('--device <dev>', 'also read this volume\'s heartbeat area when no node runs (repeatable)', collect, [] as string[])
    .option('--json', 'machine-readable output')
    .action(async (o: StatusOpts) => {
      process.exitCode = await runStatus(o);
    });
}

// Runnable on its own (tests and the benchmark spawn it): `cluster-node cluster node ...`.
if (require.main === module) {
  const program = new Command().name('ocfs2-fuse').exitOverride();
  registerClusterNodeCommands(program.command('cluster').description('cluster stack'));
  program.parseAsync(process.argv).catch((err: unknown) => {
    const e = err as { exitCode?: number; message?: string; code?: string };
    if (typeof e?.exitCode === 'number' && e.code?.startsWith('commander.')) { process.exitCode = e.exitCode; return; }
    process.stderr.write(`ocfs2-fuse: ${e?.message ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
