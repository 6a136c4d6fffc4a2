/**
 * o2nm — the node manager (the user-space counterpart of the kernel's
 * fs/ocfs2/cluster/nodemanager.c configfs tree).
 *
 * EXPORTS (stable interface, consumed by o2net/o2quo/cluster commands):
 *
 *   class ConfigError extends Error            name 'ConfigError'; .detail, .file?, .line?
 *   interface O2nmNode    { name; num; ipv4Address; ipv4Port; cluster }
 *   interface O2nmCluster { name; heartbeatMode: 'local'|'global'; nodeCount; nodes: O2nmNode[];
 *                           heartbeatRegions: { region (UUID, upper hex, no dashes); cluster }[] }
 *   interface O2cbTimeouts { heartbeatDeadThreshold (31); idleTimeoutMs (30000);
 *                            keepaliveDelayMs (2000); reconnectDelayMs (2000);
 *                            heartbeatIntervalMs (2000 = O2HB_REGION_TIMEOUT_MS; tests only lower it) }
 *   parseClusterConf(text, file?): O2nmCluster[]        ConfigError "file:line: ..." on bad input
 *   formatClusterConf(clusters): string                 o2cb's layout (tab-indented stanzas, blank line after each)
 *   readClusterConf(file, {missingOk?}): O2nmCluster[]
 *   writeFileAtomic(file, text, mode?)                  temp file in same dir + fsync + rename + dir fsync
 *   parseO2cbSysconfig(text, file?) / readO2cbSysconfig(file): { timeouts: Partial<O2cbTimeouts>, bootCluster?, enabled?, stack? }
 *   loadO2cbTimeouts(file | undefined, overrides?): O2cbTimeouts     defaults < file < overrides
 *   maxWriteTimeoutMs(t) = heartbeatIntervalMs * (heartbeatDeadThreshold - 1)   (O2HB_MAX_WRITE_TIMEOUT_MS; o2net handshake value)
 *   deadMs(t) = heartbeatDeadThreshold * heartbeatIntervalMs                    (hb_dead_ms on disk)
 *   DEFAULT_O2CB_TIMEOUTS, DEFAULT_CLUSTER_CONF ('/etc/ocfs2/cluster.conf'),
 *   DEFAULT_O2CB_SYSCONFIG_PATHS (['/etc/sysconfig/o2cb', '/etc/default/o2cb']),
 *   O2NM_MAX_NODES (255), O2NM_INVALID_NODE_NUM (255), O2NM_MAX_REGIONS (32), O2CB_DEFAULT_IP_PORT (7777),
 *   validateClusterName, validateNodeName, isIpv4, normaliseRegion
 *   class NodeManager {
 *     static load({ clusterConf, node?, o2cbConfig?, timeouts?, cluster? }): NodeManager
 *     static fromConfig(clusters, { node?, cluster?, timeouts? }): NodeManager     (no file I/O; tests)
 *     readonly cluster: O2nmCluster; readonly localNode: O2nmNode; readonly timeouts: O2cbTimeouts
 *     readonly clusterConfPath?: string; readonly o2cbConfigPath?: string
 *     nodeByNum(n), nodeByAddress(ip), nodeByName(name): O2nmNode | undefined
 *     configuredNodeNums(): number[]   (ascending)
 *   }
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import {
  ConfigError, DEFAULT_O2CB_SYSCONFIG_PATHS, loadO2cbTimeouts, readClusterConf, readO2cbSysconfig,
  type O2cbTimeouts, type O2nmCluster, type O2nmNode,
} from './config';

export * from './config';

export interface NodeManagerLoadOptions {
  /** cluster.conf path (the CLI default is /etc/ocfs2/cluster.conf). */
  clusterConf: string;
  /** Local node name; default os.hostname() (also matched without its domain). */
  node?: string;
  /**
   * sysconfig-style o2cb file.  When absent, /etc/sysconfig/o2cb and then
   * /etc/default/o2cb are used if they exist, else the defaults.  When given,
   * the file must exist.
   */
  o2cbConfig?: string;
  /** Command-line overrides, applied last. */
  timeouts?: Partial<O2cbTimeouts>;
  /** Cluster to use; default O2CB_BOOTCLUSTER from the o2cb file, else the only cluster in the file. */
  cluster?: string;
}

function chooseLocalNode(cluster: O2nmCluster, node: string | undefined, where: string | undefined): O2nmNode {
  const want = node ?? os.hostname();
  const exact = cluster.nodes.find((n) => n.name === want);
  if (exact) return exact;
  if (node === undefined) {
    // ocfs2.cluster.conf(5): "the hostname without the domain".
    const short = want.split('.')[0]!;
    const s = cluster.nodes.find((n) => n.name === short);
    if (s) return s;
  }
  throw new ConfigError(
    `local node '${want}' is not a node of cluster '${cluster.name}' (known: ${cluster.nodes.map((n) => n.name).join(', ') || 'none'}); use --node NAME`,
    where,
  );
}

function chooseCluster(clusters: O2nmCluster[], name: string | undefined, where: string | undefined): O2nmCluster {
  if (name !== undefined) {
    const c = clusters.find((x) => x.name === name);
    if (!c) throw new ConfigError(`cluster '${name}' is not defined`, where);
    return c;
  }
  if (clusters.length === 1) return clusters[0]!;
  if (clusters.length === 0) throw new ConfigError('no cluster is defined', where);
  throw new ConfigError(`several clusters are defined (${clusters.map((c) => c.name).join(', ')}); choose one (O2CB_BOOTCLUSTER or --cluster)`, where);
}

export class NodeManager {
  private readonly byNum = new Map<number, O2nmNode>();
  private readonly byAddr = new Map<string, O2nmNode>();
  private readonly byName = new Map<string, O2nmNode>();

  private constructor(
    readonly cluster: O2nmCluster,
    readonly localNode: O2nmNode,
    readonly timeouts: O2cbTimeouts,
    readonly clusterConfPath?: string,
    readonly o2cbConfigPath?: string,
  ) {
    for (const n of cluster.nodes) {
      this.byNum.set(n.num, n);
      this.byAddr.set(n.ipv4Address, n);
      this.byName.set(n.name, n);
    }
  }

  static load(opts: NodeManagerLoadOptions): NodeManager {
    const clusters = readClusterConf(opts.clusterConf);
    let o2cbFile = opts.o2cbConfig;
    if (o2cbFile === undefined) o2cbFile = DEFAULT_O2CB_SYSCONFIG_PATHS.find((p) => fs.existsSync(p));
    const sys = o2cbFile !== undefined ? readO2cbSysconfig(o2cbFile) : undefined;
    let clusterName = opts.cluster;
    if (clusterName === undefined && sys?.bootCluster !== undefined && clusters.some((c) => c.name === sys.bootCluster)) {
      clusterName = sys.bootCluster;
    }
    const cluster = chooseCluster(clusters, clusterName, opts.clusterConf);
    const local = chooseLocalNode(cluster, opts.node, opts.clusterConf);
    const timeouts = loadO2cbTimeouts(o2cbFile, opts.timeouts);
    return new NodeManager(cluster, local, timeouts, opts.clusterConf, o2cbFile);
  }

  static fromConfig(
    clusters: O2nmCluster[],
    opts: { node?: string; cluster?: string; timeouts?: Partial<O2cbTimeouts> } = {},
  ): NodeManager {
    const cluster = chooseCluster(clusters, opts.cluster, undefined);
    return new NodeManager(cluster, chooseLocalNode(cluster, opts.node, undefined), loadO2cbTimeouts(undefined, opts.timeouts));
  }

  nodeByNum(n: number): O2nmNode | undefined { return this.byNum.get(n); }
  nodeByAddress(ip: string): O2nmNode | undefined { return this.byAddr.get(ip); }
  nodeByName(name: string): O2nmNode | undefined { return this.byName.get(name); }
  configuredNodeNums(): number[] { return [...this.byNum.keys()].sort((a, b) => a - b); }
}
