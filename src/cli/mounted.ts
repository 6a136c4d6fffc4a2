/**
 * `ocfs2-fuse mounted [-d|-f] [DEVICE...]`: mounted.ocfs2.  Without devices,
 * every block device of /proc/partitions larger than 1 MiB is probed.
 *   -d (default): Device, Stack, Cluster, F (G = global heartbeat), UUID, Label;
 *   -f: Device, Stack, Cluster, F, Nodes: the nodes holding slots in the slot
 *       map, by name from cluster.conf (the volume's cluster, else the first
 *       one), else by number; "Not mounted", "Heartbeat device".
 * The columns and widths are mounted.ocfs2's (print_quick_detect /
 * print_full_detect).  --json gives the same data as objects.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import {
  OCFS2_CLASSIC_CLUSTER_STACK, OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO,
  OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK,
  OCFS2_SUPER_BLOCK_SIGNATURE, hasSignature,
} from '../libocfs2/constants';
import { SuperBlock, SUPERBLOCK_OFFSET } from '../libocfs2/structs/superblock';
import { Volume } from '../libocfs2/volume';
import { readSlotMap } from '../libocfs2/rwmount';
import { DEFAULT_CLUSTER_CONF, readClusterConf } from '../cluster/nodemanager';

export interface MountedDevice {
  device: string;
  stack: string;
  cluster: string;
  globalHeartbeat: boolean;
  uuid: string;
  label: string;
  heartbeatDevice: boolean;
  /** -f: node numbers holding slots (null: not read). */
  nodes: number[] | null;
  nodeNames?: string[];
  error?: string;
}

const cstr = (b: Buffer): string => { const z = b.indexOf(0); return b.subarray(0, z < 0 ? b.length : z).toString('latin1'); };

/** Every block device in /proc/partitions above 1 MiB, whole disks dropped when a partition of theirs is listed. */
export function partitionDevices(): string[] {
  let text = '';
  try { text = fs.readFileSync('/proc/partitions', 'utf8'); } catch { return []; }
  const out: Array<{ name: string; major: number; minor: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const blocks1k = Number(m[3]);
    if (blocks1k * 1024 <= 1024 * 1024) continue;
    const name = m[4]!;
    out.push({ name: `/dev/${name}`, major: Number(m[1]), minor: Number(m[2]) });
    if (fs.existsSync(`/sys/dev/block/${m[1]}:${m[2]}/partition`)) {
      // find_whole_disk_minor: the disk of a partition is dropped from the list.
      const whole = fs.realpathSync(`/sys/dev/block/${m[1]}:${m[2]}/..`).split('/').pop();
      const i = out.findIndex((d) => d.name === `/dev/${whole}`);
      if (i >= 0) out.splice(i, 1);
    }
  }
  return out.map((d) => d.name);
}

/** do_quick_detect: the superblock at 1, 2, 4 or 8 KiB. */
export function quickDetect(device: string): MountedDevice | null {
  let fd: number;
  try { fd = fs.openSync(device, 'r'); } catch { return null; }
  try {
    const buf = Buffer.alloc(512);
    for (let off = 1; off <= 8; off <<= 1) {
      if (fs.readSync(fd, buf, 0, 512, off * 1024) !== 512) break;
      if (!hasSignature(buf, 0, OCFS2_SUPER_BLOCK_SIGNATURE)) continue;
      const sb = SuperBlock.decode(buf, SUPERBLOCK_OFFSET);
      const inc = sb.s_feature_incompat;
      let stack = OCFS2_CLASSIC_CLUSTER_STACK;
      let cluster = '';
      let flags = 0;
      if (inc & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) stack = 'None';
      else if (inc & (OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK | OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)) {
        stack = cstr(sb.ci_stack);
        cluster = cstr(sb.ci_cluster);
        flags = sb.ci_stackflags;
      }
      return {
        device, stack, cluster,
        globalHeartbeat: stack === OCFS2_CLASSIC_CLUSTER_STACK && (flags & OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT) !== 0,
        uuid: sb.s_uuid.toString('hex').toUpperCase(), label: cstr(sb.s_label),
        heartbeatDevice: (inc & OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV) !== 0, nodes: null,
      };
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** do_full_detect: add the slot map's nodes (ocfs2_check_heartbeats). */
async function fullDetect(d: MountedDevice, names: Map<number, string>): Promise<void> {
  if (d.heartbeatDevice) return;
  try {
    const vol = await Volume.open(d.device, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
    try {
      const map = await readSlotMap(vol);
      d.nodes = map.filter((n): n is number => n !== null);
      d.nodeNames = d.nodes.map((n) => names.get(n) ?? String(n));
    } finally {
      await vol.close();
    }
  } catch (e) {
    d.error = (e as Error).message;
  }
}

function nodeNames(confFile: string, cluster: string): Map<number, string> {
  const out = new Map<number, string>();
  let clusters;
  try { clusters = readClusterConf(confFile, { missingOk: true }); } catch { return out; }
  const c = clusters.find((x) => x.name === cluster) ?? clusters[0];
  for (const n of c?.nodes ?? []) out.set(n.num, n.name);
  return out;
}

export function formatMounted(list: MountedDevice[], full: boolean): string {
  let dw = 7;
  let cw = 7;
  for (const d of list) { dw = Math.max(dw, d.device.length); cw = Math.max(cw, d.cluster.length); }
  const row = (dev: string, stack: string, cl: string, f: string, rest: string): string =>
    `${dev.padEnd(dw)}  ${stack.padEnd(5)}  ${cl.padEnd(cw)}  ${f}  ${rest}`;
  const lines: string[] = [];
  if (full) {
    lines.push(row('Device', 'Stack', 'Cluster', 'F', 'Nodes'));
    for (const d of list) {
      const what = d.error !== undefined ? `Unknown: ${d.error}` : d.heartbeatDevice ? 'Heartbeat device'
        : d.nodes && d.nodes.length ? d.nodeNames!.join(', ') : 'Not mounted';
      lines.push(row(d.device, d.stack, d.cluster, d.globalHeartbeat ? 'G' : ' ', what));
    }
  } else {
    lines.push(row('Device', 'Stack', 'Cluster', 'F', `${'UUID'.padEnd(32)}  Label`));
    for (const d of list) lines.push(row(d.device, d.stack, d.cluster, d.globalHeartbeat ? 'G' : ' ', `${d.uuid.padEnd(32)}  ${d.label}`));
  }
  return `${lines.join('\n')}\n`;
}

export function registerMountedCommand(program: Command): void {
  program.command('mounted')
    .description('list OCFS2 volumes and the nodes that have them mounted (mounted.ocfs2)')
    .argument('[devices...]', 'devices or image files (default: every block device)')
    .option('-d, --quick', 'quick detect: stack, cluster, UUID, label (default)')
    .option('-f, --full', 'full detect: the nodes holding slots')
    .option('--json', 'JSON output')
    .option('--cluster-conf <file>', 'cluster configuration for node names', DEFAULT_CLUSTER_CONF)
    .action(async (devices: string[], o: { quick?: boolean; full?: boolean; json?: boolean; clusterConf: string }) => {
      const full = !!o.full && !o.quick;
      const list: MountedDevice[] = [];
      for (const dev of devices.length ? devices : partitionDevices()) {
        const d = quickDetect(dev);
        if (!d) continue;
        if (full) await fullDetect(d, nodeNames(o.clusterConf, d.cluster));
        list.push(d);
      }
      process.stdout.write(o.json ? `${JSON.stringify(list, null, 2)}\n` : formatMounted(list, full));
    });
}
