/**
 * `ocfs2-fuse tunefs [options] DEVICE [NEW-SIZE]`: tunefs.ocfs2's options
 * on an unmounted volume (refused while mounted, heartbeating or with a
 * dirty journal).  Silent on success, as tunefs.ocfs2; -v says what changed;
 * progress on a terminal only.  -Q prints the query and changes nothing.
 */
import { Command, Option } from 'commander';
import { Volume } from '../libocfs2/volume';
import { OCFS2_CLASSIC_CLUSTER_STACK } from '../libocfs2/constants';
import { parseJournalOptions, parseSize } from '../libocfs2/mkfs/options';
import {
  TuneSession, TunefsError, clonedVolume, growVolume, queryFormat, resetUuid, setFeatures, setJournalSize, setLabel,
  setSlotCount, updateClusterStack, type TunefsOpenOptions,
} from '../libocfs2/tunefs';
import { DEFAULT_CLUSTER_CONF, readClusterConf } from '../cluster/nodemanager';
import { progressPrinter } from './progress';
import { VolumeClaim } from '../libocfs2/claim';

export interface TunefsCliOptions {
  label?: string;
  uuidReset?: string | boolean;
  nodeSlots?: string;
  journalOptions?: string;
  volumeSize?: boolean;
  query?: string;
  fsFeatures?: string;
  updateClusterStack?: boolean;
  clonedVolume?: string | boolean;
  clusterConf: string;
  cluster?: string;
  quiet?: boolean;
  verbose?: boolean;
  /** Test hook: heartbeat watch interval. */
  heartbeatIntervalMs?: string;
}

/** The cluster this host runs (--update-cluster-stack): the one in cluster.conf, or --cluster. */
function runningCluster(o: TunefsCliOptions): { name: string; global: boolean } {
  const clusters = readClusterConf(o.clusterConf);
  const c = o.cluster !== undefined ? clusters.find((x) => x.name === o.cluster) : clusters.length === 1 ? clusters[0] : undefined;
  if (!c) {
    throw new TunefsError(o.cluster !== undefined
      ? `cluster ${o.cluster} is not in ${o.clusterConf}`
      : `${o.clusterConf} defines ${clusters.length} clusters: name the running one with --cluster`);
  }
  return { name: c.name, global: c.heartbeatMode === 'global' };
}

export async function runTunefs(device: string, newSize: string | undefined, o: TunefsCliOptions): Promise<number> {
  const say = (l: string): void => { if (o.verbose && !o.quiet) process.stdout.write(`${l}\n`); };
  const progress = progressPrinter({ quiet: o.quiet });
  if (newSize !== undefined && !o.volumeSize) throw new TunefsError('[new-size] is only valid with the -S option');

  if (o.query !== undefined) {
    const vol = await Volume.open(device, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
    try {
      process.stdout.write(queryFormat(o.query, vol.sb));
    } finally {
      await vol.close();
    }
    return 0;
  }

  // Parse everything before touching the volume.
  let slots: number | undefined;
  if (o.nodeSlots !== undefined) {
    if (!/^\d+$/.test(o.nodeSlots) || Number(o.nodeSlots) < 1) throw new TunefsError(`invalid number of node slots "${o.nodeSlots}"`);
    slots = Number(o.nodeSlots);
  }
  let journalBytes: number | undefined;
  if (o.journalOptions !== undefined) {
    const j = parseJournalOptions(o.journalOptions);
    if (j.journal64 !== undefined) throw new TunefsError('changing the journal block format (block32/block64) is not supported yet');
    journalBytes = j.size;
  }
  const newBlocks = newSize !== undefined ? parseSize(newSize) : undefined;
  const cluster = o.updateClusterStack ? runningCluster(o) : undefined;
  const nothing = o.label === undefined && o.uuidReset === undefined && slots === undefined && journalBytes === undefined
    && !o.volumeSize && o.fsFeatures === undefined && !o.updateClusterStack && o.clonedVolume === undefined;
  if (nothing) throw new TunefsError('nothing to do: give at least one option (see --help)');

  // One writer at a time on this host (claim.ts): a mount, mkfs or check of this volume refuses us and we them.
  const claim = VolumeClaim.acquire(device, { mode: 'write', tool: 'tunefs' });
  try {
    return await runSteps(device, o, { slots, journalBytes, newBlocks, cluster }, say, progress);
  } finally {
    claim.release();
  }
}

interface Steps {
  slots?: number;
  journalBytes?: number;
  newBlocks?: number;
  cluster?: { name: string; global: boolean };
}

async function runSteps(device: string, o: TunefsCliOptions, p: Steps, say: (l: string) => void,
  progress: ReturnType<typeof progressPrinter>): Promise<number> {
  const { slots, journalBytes, newBlocks, cluster } = p;
  const openOpts: TunefsOpenOptions = o.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: Number(o.heartbeatIntervalMs) } : {};
  let first = true;
  // One session per operation: each starts from what the previous one wrote.
  const step = async <T>(fn: (s: TuneSession) => Promise<T>): Promise<T> => {
    const s = await TuneSession.open(device, first ? openOpts : { ...openOpts, skipAccessCheck: true });
    first = false;
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  };

  if (o.fsFeatures !== undefined) {
    const done = await step((s) => setFeatures(s, o.fsFeatures!));
    for (const c of done) say(`${c.on ? 'Enabled' : 'Disabled'} ${c.name}`);
  }
  if (o.volumeSize) {
    // [new-size] counts blocks ("for historical reasons", ocfs2ne.c parse_resize).
    const r = await step((s) => growVolume(s, newBlocks !== undefined ? Math.floor((newBlocks * s.vol.blockSize) / s.vol.clusterSize) : undefined, progress));
    say(r.from === r.to ? `Volume already has ${r.to} clusters` : `Grew the volume from ${r.from} to ${r.to} clusters`);
  }
  if (slots !== undefined) {
    const changed = await step((s) => setSlotCount(s, slots!, progress));
    say(changed ? `Node slots set to ${slots}` : `Volume already has ${slots} node slots`);
  }
  if (journalBytes !== undefined) {
    const n = await step((s) => setJournalSize(s, journalBytes!, progress));
    say(`Resized ${n} journal(s)`);
  }
  if (o.label !== undefined) {
    const changed = await step((s) => setLabel(s, o.label!));
    say(changed ? `Label set to "${o.label}"` : `Volume already has the label "${o.label}"`);
  }
  if (o.uuidReset !== undefined) {
    const u = await step((s) => resetUuid(s, typeof o.uuidReset === 'string' && o.uuidReset !== '' ? o.uuidReset : undefined));
    say(`UUID set to ${u}`);
  }
  if (o.clonedVolume !== undefined) {
    const r = await step((s) => clonedVolume(s, typeof o.clonedVolume === 'string' && o.clonedVolume !== '' ? o.clonedVolume : undefined));
    say(`UUID set to ${r.uuid}, label to "${r.label}"`);
  }
  if (cluster) {
    await step((s) => updateClusterStack(s, { stack: OCFS2_CLASSIC_CLUSTER_STACK, cluster: cluster.name, globalHeartbeat: cluster.global }));
    say(`Cluster stack set to ${OCFS2_CLASSIC_CLUSTER_STACK}, cluster ${cluster.name}${cluster.global ? ', global heartbeat' : ''}`);
  }
  return 0;
}

/**
 * getopt's optional arguments must be attached (-UUUID, --uuid-reset=UUID,
 * --cloned-volume=LABEL); commander would take the next word (the device).
 * A bare -U / --uuid-reset / --cloned-volume becomes "=" with an empty value.
 */
export function attachOptionalArgs(argv: string[]): string[] {
  const i = argv.indexOf('tunefs');
  if (i < 0) return argv;
  return argv.map((a, k) => {
    if (k <= i) return a;
    if (a === '-U' || a === '--uuid-reset') return '--uuid-reset=';
    if (a.startsWith('-U') && !a.startsWith('--')) return `--uuid-reset=${a.slice(2)}`;
    if (a === '--cloned-volume') return '--cloned-volume=';
    return a;
  });
}

export function registerTunefsCommand(program: Command): void {
  program.command('tunefs')
    .description('change parameters of an unmounted OCFS2 volume (options of tunefs.ocfs2)')
    .argument('<device>', 'block device or image file')
    .argument('[new-size]', 'with -S: the new size in blocks (default: the whole device)')
    .option('-L, --label <label>', 'set the volume label')
    .option('-U, --uuid-reset [uuid]', 'set a new UUID (random unless given)')
    .option('-N, --node-slots <n>', 'add node slots (journals, orphan dirs, local alloc, truncate log per slot)')
    .option('-J, --journal-options <opts>', 'journal options: size=<bytes> resizes every journal')
    .option('-S, --volume-size', 'grow the volume to the device size (or to [new-size])')
    .option('-Q, --query <format>', 'print superblock fields: %B %T %N %R %Y %P %V %U %M %H %O')
    .option('--fs-features <list>', 'turn features on, or off with a "no" prefix')
    .option('--update-cluster-stack', 'write the running cluster (from cluster.conf) to the volume')
    .option('--cloned-volume [label]', 'new UUID and label for a cloned volume')
    .option('--cluster-conf <file>', 'cluster configuration (for --update-cluster-stack)', DEFAULT_CLUSTER_CONF)
    .option('--cluster <name>', 'the running cluster when cluster.conf has several')
    .option('-q, --quiet', 'no progress')
    .option('-v, --verbose', 'say what changed')
    .addOption(new Option('-y, --yes', 'accepted for compatibility (no prompts)').hideHelp())
    .addOption(new Option('-p, --progress', 'accepted for compatibility (progress is shown on a terminal)').hideHelp())
    .addOption(new Option('--heartbeat-interval-ms <ms>').hideHelp())
    .action(async (device: string, newSize: string | undefined, o: TunefsCliOptions) => {
      process.exitCode = await runTunefs(device, newSize, o);
    });
}
