/**
 * The read-write mount of a cluster-mode volume as a member of its cluster:
 * the node's o2cb stack (started here, or the node's running stack joined
 * over its control socket) heartbeats on the volume for the whole life of
 * the mount, so that other nodes, the kernel's, `mounted.ocfs2 -f`, check
 * and mkfs see it; leaving stops the heartbeat with the final generation-0
 * block (o2hb_shutdown_slot... as a clean `cluster node` stop does).
 *
 * As the kernel refuses to mount a cluster volume while o2cb is offline, a
 * read-write mount without a usable cluster configuration is refused, with
 * the way out: `-o ro`, or a configured node.
 */
import { joinOrStart, type ClusterStack, type StackClient, type StackStatus } from '../cluster/stack';
import { readVolumeUuid } from '../cluster/heartbeat/locate';
import { NodeManager } from '../cluster/nodemanager';
import { Ocfs2Error } from '../libocfs2/errors';
import { stackOptions, type CommonOpts } from './cluster-node';

export interface VolumeHeartbeat {
  /** Our node number (the slot map and the heartbeat area use it). */
  readonly nodeNum: number;
  readonly nodeName: string;
  /** Stop heartbeating on the volume (idempotent). */
  leave(): Promise<void>;
}

/** Load the node's configuration for a cluster volume, or say how to mount it instead. */
export function loadClusterConfig(device: string, volumeCluster: string, o: CommonOpts): NodeManager {
  let nm: NodeManager;
  try {
    nm = NodeManager.load({ clusterConf: o.clusterConf, node: o.node, o2cbConfig: o.o2cbConfig, cluster: o.cluster || volumeCluster || undefined });
  } catch (e) {
    throw new Ocfs2Error(`${device} is a cluster-mode volume${volumeCluster ? ` (cluster "${volumeCluster}")` : ''} and this node has no usable `
      + `cluster configuration (${(e as Error).message}): mount it read-only with -o ro, or give the cluster configuration `
      + '(--cluster-conf FILE --node NAME; see ocfs2-fuse cluster add-cluster/add-node)');
  }
  if (volumeCluster && nm.cluster.name !== volumeCluster) {
    throw new Ocfs2Error(`${device} belongs to cluster "${volumeCluster}" but the configuration is of cluster "${nm.cluster.name}": `
      + 'mount it read-only with -o ro, or give that cluster\'s configuration');
  }
  return nm;
}

/** Start (or join) this node's stack with a heartbeat on `device`. */
export async function startVolumeHeartbeat(device: string, volumeCluster: string, o: CommonOpts): Promise<VolumeHeartbeat> {
  const nm = loadClusterConfig(device, volumeCluster, o);
  const res = await joinOrStart({ ...stackOptions({ ...o, cluster: nm.cluster.name }) }, [device]);
  let left = false;
  const stack: ClusterStack | undefined = res.kind === 'started' ? res.stack : undefined;
  const client: StackClient | undefined = res.kind === 'joined' ? res.client : undefined;
  const leave = async (): Promise<void> => {
    if (stack) await stack.stop();
    if (client) {
      try { await client.request({ op: 'leave', devices: [device] }); } finally { client.close(); }
    }
  };
  // Global mode heartbeats on the configured regions only (o2cb add-heartbeat): this volume must be one.
  if (nm.cluster.heartbeatMode === 'global') {
    const uuid = readVolumeUuid(device);
    let status: StackStatus | undefined;
    if (stack) status = stack.status();
    else if (client) status = (await client.request({ op: 'status' })).status as unknown as StackStatus | undefined;
    if (!status?.regions.some((r) => r.region.toUpperCase() === uuid)) {
      await leave();
      throw new Ocfs2Error(`${device}: cluster ${nm.cluster.name} heartbeats in global mode and region ${uuid ?? '?'} (this volume) is not `
        + 'one of its heartbeat regions: add it (ocfs2-fuse cluster add-heartbeat), or mount it read-only with -o ro');
    }
  }
  return {
    nodeNum: nm.localNode.num,
    nodeName: nm.localNode.name,
    async leave() {
      if (left) return;
      left = true;
      await leave();
    },
  };
}
