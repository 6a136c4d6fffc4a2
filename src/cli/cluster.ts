/**
 * `ocfs2-fuse cluster ...` — the cluster.conf editing commands, in the spirit
 * of o2cb(8) (ocfs2-tools o2cb_ctl/op_cluster.c, op_node.c, op_heartbeat.c,
 * op_lists.c):
 *
 *   add-cluster NAME                     remove-cluster NAME
 *   add-node CLUSTER NODE [--ip A] [--port P] [--number N]
 *   remove-node CLUSTER NODE
 *   add-heartbeat CLUSTER DEVICE|REGION  remove-heartbeat CLUSTER DEVICE|REGION
 *   heartbeat-mode CLUSTER local|global
 *   list-clusters   list-cluster CLUSTER [--oneline]   list-nodes CLUSTER [--oneline]
 *   list-heartbeats CLUSTER [--oneline]
 * each with --cluster-conf FILE (default /etc/ocfs2/cluster.conf).
 *
 * Export: registerClusterConfigCommands(cluster: Command, io?: ClusterCliIo).
 * The `cluster` Command is created by main.ts; `status` and `node` are
 * registered on it by cluster-node.ts.  Actions throw Error (ConfigError,
 * ClusterCommandError) with one-line messages; main.ts prints them and exits 1.
 */
import * as fs from 'node:fs';
import * as dns from 'node:dns';
import type { Command } from 'commander';
import {
  DEFAULT_CLUSTER_CONF, O2CB_DEFAULT_IP_PORT, O2NM_MAX_NODES, O2NM_MAX_REGIONS,
  formatClusterConf, isIpv4, normaliseRegion, readClusterConf, validateClusterName, validateNodeName, writeFileAtomic,
  type O2nmCluster,
} from '../cluster/nodemanager';
import { readVolumeUuid } from '../cluster/heartbeat/locate';

export class ClusterCommandError extends Error {
  override name = 'ClusterCommandError';
  readonly exitCode = 1;
}

export interface ClusterCliIo {
  out(text: string): void;
}

const defaultIo: ClusterCliIo = { out: (t) => { process.stdout.write(t); } };

interface ConfOpt { clusterConf: string }

function load(file: string): O2nmCluster[] {
  return readClusterConf(file, { missingOk: true });
}

function save(file: string, clusters: O2nmCluster[]): void {
  writeFileAtomic(file, formatClusterConf(clusters));
}

function findCluster(clusters: O2nmCluster[], name: string): O2nmCluster {
  const c = clusters.find((x) => x.name === name);
  if (!c) throw new ClusterCommandError(`Unknown cluster '${name}'`);
  return c;
}

function parseIntArg(v: string, what: string): number {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(v)) throw new ClusterCommandError(`Invalid ${what} '${v}'`);
  return Number(v);
}

/** A device (block device or image file holding an OCFS2 volume) gives its UUID; otherwise the argument must be a region UUID. */
function regionOf(arg: string): string {
  let st: fs.Stats | undefined;
  try { st = fs.statSync(arg); } catch { st = undefined; }
  if (st && (st.isBlockDevice() || st.isFile())) {
    const uuid = readVolumeUuid(arg);
    if (!uuid) throw new ClusterCommandError(`'${arg}' does not hold an OCFS2 volume`);
    return uuid;
  }
  const r = normaliseRegion(arg.trim());
  if (!r) throw new ClusterCommandError(`'${arg}' is neither a device nor a heartbeat region UUID (32 hex digits)`);
  return r;
}

async function lookupIpv4(name: string): Promise<string> {
  try {
    const r = await dns.promises.lookup(name, { family: 4 });
    return r.address;
  } catch (e) {
    throw new ClusterCommandError(`${(e as NodeJS.ErrnoException).code ?? 'lookup failed'}, while looking up the IP address for '${name}' (use --ip)`);
  }
}

function showHeartbeats(c: O2nmCluster, oneline: boolean): string {
  return c.heartbeatRegions.map((h) => (oneline
    ? `heartbeat: ${h.region} ${c.name}\n`
    : `heartbeat:\n\tregion = ${h.region}\n\tcluster = ${c.name}\n\n`)).join('');
}

function showNodes(c: O2nmCluster, oneline: boolean): string {
  return c.nodes.map((n) => (oneline
    ? `node: ${n.num} ${n.name} ${n.ipv4Address}:${n.ipv4Port} ${c.name}\n`
    : `node:\n\tnumber = ${n.num}\n\tname = ${n.name}\n\tip_address = ${n.ipv4Address}\n\tip_port = ${n.ipv4Port}\n\tcluster = ${c.name}\n\n`)).join('');
}

function showCluster(c: O2nmCluster, oneline: boolean): string {
  return oneline
    ? `cluster: ${c.nodeCount} ${c.heartbeatMode} ${c.name}\n`
    : `cluster:\n\tnode_count = ${c.nodeCount}\n\theartbeat_mode = ${c.heartbeatMode}\n\tname = ${c.name}\n\n`;
}

export function registerClusterConfigCommands(cluster: Command, io: ClusterCliIo = defaultIo): void {
  const confOpt = (cmd: Command): Command =>
    cmd.option('--cluster-conf <file>', 'cluster configuration file', DEFAULT_CLUSTER_CONF);

  confOpt(cluster.command('add-cluster')
    .description('add a cluster to cluster.conf')
    .argument('<name>', 'cluster name (up to 16 characters [0-9A-Za-z])'))
    .action((name: string, o: ConfOpt) => {
      const bad = validateClusterName(name.trim());
      if (bad) throw new ClusterCommandError(`Invalid cluster name: ${bad}`);
      const clusters = load(o.clusterConf);
      if (clusters.some((c) => c.name === name.trim())) throw new ClusterCommandError(`Cluster '${name.trim()}' already exists`);
      clusters.push({ name: name.trim(), heartbeatMode: 'local', nodeCount: 0, nodes: [], heartbeatRegions: [] });
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('remove-cluster')
    .description('remove a cluster, its nodes and heartbeat regions from cluster.conf')
    .argument('<name>'))
    .action((name: string, o: ConfOpt) => {
      const clusters = load(o.clusterConf);
      const i = clusters.findIndex((c) => c.name === name);
      if (i < 0) throw new ClusterCommandError(`Unknown cluster '${name}'`);
      clusters.splice(i, 1);
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('add-node')
    .description('add a node to a cluster')
    .argument('<cluster>')
    .argument('<node>', 'node name (the host name without domain)')
    .option('--ip <address>', 'IPv4 address (default: the node name resolved)')
    .option('--port <port>', `TCP port (default ${O2CB_DEFAULT_IP_PORT})`)
    .option('--number <num>', 'node number 0..254 (default: the lowest unused)'))
    .action(async (clusterName: string, nodeName: string, o: ConfOpt & { ip?: string; port?: string; number?: string }) => {
      const clusters = load(o.clusterConf);
      const c = findCluster(clusters, clusterName);
      const name = nodeName.trim();
      const bad = validateNodeName(name);
      if (bad) throw new ClusterCommandError(`Invalid node name: ${bad}`);
      if (c.nodes.some((n) => n.name === name)) throw new ClusterCommandError(`Node '${name}' already exists`);
      let num: number;
      if (o.number !== undefined) {
        num = parseIntArg(o.number, 'node number');
        if (num >= O2NM_MAX_NODES) throw new ClusterCommandError(`Nodenum should be >=0 and < ${O2NM_MAX_NODES} but is ${num}`);
        if (c.nodes.some((n) => n.num === num)) throw new ClusterCommandError(`Choose another node number as '${num}' is in use`);
      } else {
        num = 0;
        while (num < O2NM_MAX_NODES && c.nodes.some((n) => n.num === num)) num++;
        if (num >= O2NM_MAX_NODES) throw new ClusterCommandError('Cluster is full - No more nodes can be added to it');
      }
      let port = O2CB_DEFAULT_IP_PORT;
      if (o.port !== undefined) {
        port = parseIntArg(o.port, 'port number');
        if (port < 1 || port > 65535) throw new ClusterCommandError(`Invalid port number '${o.port}'`);
      }
      const ip = o.ip !== undefined ? o.ip.trim() : await lookupIpv4(name);
      if (!isIpv4(ip)) throw new ClusterCommandError(`Bad IP Address '${ip}'`);
      const clash = c.nodes.find((n) => n.ipv4Address === ip);
      if (clash) throw new ClusterCommandError(`IP address ${ip} is already used by node '${clash.name}'`);
      c.nodes.push({ name, num, ipv4Address: ip, ipv4Port: port, cluster: c.name });
      c.nodeCount = c.nodes.length;
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('remove-node')
    .description('remove a node from a cluster')
    .argument('<cluster>')
    .argument('<node>'))
    .action((clusterName: string, nodeName: string, o: ConfOpt) => {
      const clusters = load(o.clusterConf);
      const c = findCluster(clusters, clusterName);
      const i = c.nodes.findIndex((n) => n.name === nodeName);
      if (i < 0) throw new ClusterCommandError(`Unknown node '${nodeName}'`);
      c.nodes.splice(i, 1);
      c.nodeCount = c.nodes.length;
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('add-heartbeat')
    .description('add a global heartbeat region (a device holding an OCFS2 volume, or its UUID)')
    .argument('<cluster>')
    .argument('<device-or-region>'))
    .action((clusterName: string, what: string, o: ConfOpt) => {
      const region = regionOf(what);
      const clusters = load(o.clusterConf);
      const c = findCluster(clusters, clusterName);
      if (c.heartbeatRegions.some((h) => h.region === region)) throw new ClusterCommandError(`Heartbeat region '${region}' already exists`);
      if (c.heartbeatRegions.length >= O2NM_MAX_REGIONS) throw new ClusterCommandError(`Cluster '${c.name}' already has ${O2NM_MAX_REGIONS} heartbeat regions`);
      c.heartbeatRegions.push({ region, cluster: c.name });
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('remove-heartbeat')
    .description('remove a global heartbeat region')
    .argument('<cluster>')
    .argument('<device-or-region>'))
    .action((clusterName: string, what: string, o: ConfOpt) => {
      const region = regionOf(what);
      const clusters = load(o.clusterConf);
      const c = findCluster(clusters, clusterName);
      const i = c.heartbeatRegions.findIndex((h) => h.region === region);
      if (i < 0) throw new ClusterCommandError(`Unknown heartbeat region '${region}'`);
      c.heartbeatRegions.splice(i, 1);
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('heartbeat-mode')
    .description('set the heartbeat mode of a cluster')
    .argument('<cluster>')
    .argument('<mode>', 'local or global'))
    .action((clusterName: string, mode: string, o: ConfOpt) => {
      if (mode !== 'local' && mode !== 'global') throw new ClusterCommandError(`Invalid heartbeat mode '${mode}' (local or global)`);
      const clusters = load(o.clusterConf);
      const c = findCluster(clusters, clusterName);
      c.heartbeatMode = mode;
      save(o.clusterConf, clusters);
    });

  confOpt(cluster.command('list-clusters')
    .description('list the clusters in cluster.conf'))
    .action((o: ConfOpt) => {
      io.out(load(o.clusterConf).map((c) => `${c.name}\n`).join(''));
    });

  const lister = (cmdName: string, what: string, show: (c: O2nmCluster, oneline: boolean) => string): void => {
    confOpt(cluster.command(cmdName)
      .description(what)
      .argument('<cluster>')
      .option('--oneline', 'one line per object'))
      .action((clusterName: string, o: ConfOpt & { oneline?: boolean }) => {
        const c = findCluster(load(o.clusterConf), clusterName);
        io.out(show(c, o.oneline === true));
      });
  };
  lister('list-cluster', 'print the heartbeat, node and cluster stanzas of a cluster',
    (c, one) => showHeartbeats(c, one) + showNodes(c, one) + showCluster(c, one));
  lister('list-nodes', 'print the nodes of a cluster', showNodes);
  lister('list-heartbeats', 'print the heartbeat regions of a cluster', showHeartbeats);
}
