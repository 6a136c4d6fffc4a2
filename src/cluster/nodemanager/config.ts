/**
 * /etc/ocfs2/cluster.conf (ocfs2.cluster.conf(5)) and /etc/sysconfig/o2cb
 * (o2cb.sysconfig(5)) — parse, validate, format, and replace safely.
 *
 * cluster.conf grammar, as ocfs2-tools' jconfig reads it and o2cb writes it:
 *   - a stanza header starts in column 0: `cluster:`, `node:` or `heartbeat:`;
 *   - its parameters follow on lines that start with whitespace (o2cb writes a
 *     tab), `key = value`;
 *   - a blank line ends the stanza; `#` starts a comment line.
 * Validation mirrors what o2cb_ctl and the kernel's configfs (nodemanager.c)
 * would refuse: node numbers 0..254 (O2NM_MAX_NODES = 255 is "invalid node"),
 * unique node names, numbers and IPv4 addresses within a cluster (the kernel
 * keys nodes by number and by address: EEXIST), cluster names of up to 16
 * characters [0-9A-Za-z] (OCFS2_CLUSTER_NAME_LEN), node names of up to 64
 * (O2NM_MAX_NAME_LEN), at most 32 heartbeat regions (O2NM_MAX_REGIONS).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly detail: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file !== undefined ? `${file}${line !== undefined ? `:${line}` : ''}: ${detail}` : detail);
  }
}

export interface O2nmNode {
  name: string;
  num: number;
  ipv4Address: string;
  ipv4Port: number;
  cluster: string;
}

export interface O2nmHeartbeatRegion {
  /** Volume UUID, upper-case hex without dashes (the kernel's region name). */
  region: string;
  cluster: string;
}

export interface O2nmCluster {
  name: string;
  heartbeatMode: 'local' | 'global';
  /** `node_count` as written in the file (o2cb keeps it equal to nodes.length). */
  nodeCount: number;
  nodes: O2nmNode[];
  heartbeatRegions: O2nmHeartbeatRegion[];
}

export const O2NM_MAX_NODES = 255;
export const O2NM_INVALID_NODE_NUM = 255;
export const O2NM_MAX_NAME_LEN = 64;
export const O2NM_MAX_REGIONS = 32;
export const OCFS2_CLUSTER_NAME_LEN = 16;
export const O2CB_DEFAULT_IP_PORT = 7777;
export const DEFAULT_CLUSTER_CONF = '/etc/ocfs2/cluster.conf';

const STANZA_KEYS: Record<string, readonly string[]> = {
  cluster: ['node_count', 'heartbeat_mode', 'name'],
  node: ['ip_port', 'ip_address', 'number', 'name', 'cluster'],
  heartbeat: ['region', 'cluster'],
};

interface RawStanza {
  type: string;
  line: number;
  attrs: Map<string, { value: string; line: number }>;
}

export function validateClusterName(name: string): string | undefined {
  if (name.length === 0) return 'cluster name is empty';
  if (name.length > OCFS2_CLUSTER_NAME_LEN) return `cluster name '${name}' is longer than ${OCFS2_CLUSTER_NAME_LEN} characters`;
  if (!/^[0-9A-Za-z]+$/.test(name)) return `cluster name '${name}' may only contain [0-9A-Za-z]`;
  return undefined;
}

export function validateNodeName(name: string): string | undefined {
  if (name.length === 0) return 'node name is empty';
  if (name.length > O2NM_MAX_NAME_LEN) return `node name '${name}' is longer than ${O2NM_MAX_NAME_LEN} characters`;
  // configfs item names: no '/', and whitespace would not survive the file format.
  if (/[\s/]/.test(name)) return `node name '${name}' contains whitespace or '/'`;
  return undefined;
}

export function isIpv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  return m !== null && m.slice(1).every((p) => Number(p) <= 255 && (p.length === 1 || p[0] !== '0'));
}

/** Region names are volume UUIDs: 32 hex digits; normalised to upper case as the kernel names them. */
export function normaliseRegion(s: string): string | undefined {
  const r = s.replace(/-/g, '');
  return /^[0-9A-Fa-f]{32}$/.test(r) ? r.toUpperCase() : undefined;
}

function parseDecimal(v: string): number | undefined {
  return /^\d+$/.test(v) ? Number(v) : undefined;
}

function tokenize(text: string, file: string): RawStanza[] {
  const out: RawStanza[] = [];
  let cur: RawStanza | undefined;
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') { cur = undefined; return; }
    if (line.trimStart().startsWith('#')) return;
    if (!/^\s/.test(line)) {
      const m = /^([A-Za-z_]\w*):\s*$/.exec(line);
      if (!m) throw new ConfigError(`invalid stanza header '${line}' (expected e.g. 'node:' in column 0)`, file, lineNo);
      const type = m[1]!;
      if (!(type in STANZA_KEYS)) throw new ConfigError(`unknown stanza '${type}:' (expected cluster:, node: or heartbeat:)`, file, lineNo);
      cur = { type, line: lineNo, attrs: new Map() };
      out.push(cur);
      return;
    }
    if (!cur) throw new ConfigError('parameter outside a stanza (a blank line ends a stanza)', file, lineNo);
    const m = /^\s+([A-Za-z_]\w*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) throw new ConfigError(`invalid parameter line '${line.trim()}' (expected 'key = value')`, file, lineNo);
    const key = m[1]!;
    const value = m[2]!;
    if (!STANZA_KEYS[cur.type]!.includes(key)) {
      throw new ConfigError(`unknown parameter '${key}' in ${cur.type}: stanza (allowed: ${STANZA_KEYS[cur.type]!.join(', ')})`, file, lineNo);
    }
    if (cur.attrs.has(key)) throw new ConfigError(`duplicate parameter '${key}' in ${cur.type}: stanza`, file, lineNo);
    if (value === '') throw new ConfigError(`empty value for '${key}'`, file, lineNo);
    cur.attrs.set(key, { value, line: lineNo });
  });
  return out;
}

function need(st: RawStanza, key: string, file: string): { value: string; line: number } {
  const a = st.attrs.get(key);
  if (!a) throw new ConfigError(`${st.type}: stanza is missing '${key}'`, file, st.line);
  return a;
}

/** Parse cluster.conf text.  Throws ConfigError with file:line on any defect. */
export function parseClusterConf(text: string, file = 'cluster.conf'): O2nmCluster[] {
  const stanzas = tokenize(text, file);
  const clusters = new Map<string, O2nmCluster>();
  for (const st of stanzas.filter((s) => s.type === 'cluster')) {
    const name = need(st, 'name', file);
    const bad = validateClusterName(name.value);
    if (bad) throw new ConfigError(bad, file, name.line);
    if (clusters.has(name.value)) throw new ConfigError(`duplicate cluster '${name.value}'`, file, name.line);
    const count = need(st, 'node_count', file);
    const nodeCount = parseDecimal(count.value);
    if (nodeCount === undefined || nodeCount > O2NM_MAX_NODES) {
      throw new ConfigError(`node_count '${count.value}' is not a number in 0..${O2NM_MAX_NODES}`, file, count.line);
    }
    const mode = st.attrs.get('heartbeat_mode');
    // o2cb_config.c: a missing heartbeat_mode means local.
    const hm = mode?.value ?? 'local';
    if (hm !== 'local' && hm !== 'global') throw new ConfigError(`heartbeat_mode '${hm}' must be local or global`, file, mode?.line);
    clusters.set(name.value, { name: name.value, heartbeatMode: hm, nodeCount, nodes: [], heartbeatRegions: [] });
  }
  const seen = new Map<string, { names: Map<string, number>; nums: Map<number, number>; ips: Map<string, number> }>();
  for (const st of stanzas) {
    if (st.type === 'node') {
      const cl = need(st, 'cluster', file);
      const c = clusters.get(cl.value);
      if (!c) throw new ConfigError(`node: stanza names unknown cluster '${cl.value}'`, file, cl.line);
      const name = need(st, 'name', file);
      const badName = validateNodeName(name.value);
      if (badName) throw new ConfigError(badName, file, name.line);
      const numA = need(st, 'number', file);
      const num = parseDecimal(numA.value);
      if (num === undefined || num >= O2NM_MAX_NODES) {
        throw new ConfigError(`node number '${numA.value}' is out of range 0..${O2NM_MAX_NODES - 1}`, file, numA.line);
      }
      const ip = need(st, 'ip_address', file);
      if (!isIpv4(ip.value)) throw new ConfigError(`ip_address '${ip.value}' is not a dotted-quad IPv4 address`, file, ip.line);
      const portA = need(st, 'ip_port', file);
      const port = parseDecimal(portA.value);
      if (port === undefined || port < 1 || port > 65535) throw new ConfigError(`ip_port '${portA.value}' is not a port number 1..65535`, file, portA.line);
      let s = seen.get(c.name);
      if (!s) { s = { names: new Map(), nums: new Map(), ips: new Map() }; seen.set(c.name, s); }
      const prevName = s.names.get(name.value);
      if (prevName !== undefined) throw new ConfigError(`duplicate node name '${name.value}' in cluster '${c.name}' (first at line ${prevName})`, file, name.line);
      const prevNum = s.nums.get(num);
      if (prevNum !== undefined) throw new ConfigError(`duplicate node number ${num} in cluster '${c.name}' (first at line ${prevNum})`, file, numA.line);
      const prevIp = s.ips.get(ip.value);
      if (prevIp !== undefined) throw new ConfigError(`duplicate ip_address ${ip.value} in cluster '${c.name}' (first at line ${prevIp})`, file, ip.line);
      s.names.set(name.value, name.line); s.nums.set(num, numA.line); s.ips.set(ip.value, ip.line);
      c.nodes.push({ name: name.value, num, ipv4Address: ip.value, ipv4Port: port, cluster: c.name });
    } else if (st.type === 'heartbeat') {
      const cl = need(st, 'cluster', file);
      const c = clusters.get(cl.value);
      if (!c) throw new ConfigError(`heartbeat: stanza names unknown cluster '${cl.value}'`, file, cl.line);
      const reg = need(st, 'region', file);
      const region = normaliseRegion(reg.value);
      if (!region) throw new ConfigError(`region '${reg.value}' is not a volume UUID (32 hex digits)`, file, reg.line);
      if (c.heartbeatRegions.some((r) => r.region === region)) throw new ConfigError(`duplicate heartbeat region ${region} in cluster '${c.name}'`, file, reg.line);
      if (c.heartbeatRegions.length >= O2NM_MAX_REGIONS) throw new ConfigError(`more than ${O2NM_MAX_REGIONS} heartbeat regions in cluster '${c.name}'`, file, reg.line);
      c.heartbeatRegions.push({ region, cluster: c.name });
    }
  }
  return [...clusters.values()];
}

/** Format as o2cb writes it: per cluster, the cluster stanza, its heartbeat regions, then its nodes. */
export function formatClusterConf(clusters: O2nmCluster[]): string {
  const out: string[] = [];
  const stanza = (type: string, kv: [string, string | number][]): void => {
    out.push(`${type}:\n${kv.map(([k, v]) => `\t${k} = ${v}\n`).join('')}\n`);
  };
  for (const c of clusters) {
    stanza('cluster', [['node_count', c.nodeCount], ['heartbeat_mode', c.heartbeatMode], ['name', c.name]]);
    for (const h of c.heartbeatRegions) stanza('heartbeat', [['region', h.region], ['cluster', c.name]]);
    for (const n of c.nodes) {
      stanza('node', [['ip_port', n.ipv4Port], ['ip_address', n.ipv4Address], ['number', n.num], ['name', n.name], ['cluster', c.name]]);
    }
  }
  return out.join('');
}

/**
 * Replace `file` atomically: write a temporary file in the same directory,
 * fsync it, rename it over the target, fsync the directory.  A crash leaves
 * either the old or the new file, never a torn one.
 */
export function writeFileAtomic(file: string, text: string, mode = 0o644): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* directory fsync is best effort (some filesystems refuse it) */ }
}

/** Read and parse a cluster.conf file; a missing file is a ConfigError naming it. */
export function readClusterConf(file: string, opts: { missingOk?: boolean } = {}): O2nmCluster[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && opts.missingOk) return [];
    throw new ConfigError(`cannot read cluster configuration: ${code ?? String(e)}`, file);
  }
  return parseClusterConf(text, file);
}

// ---------------------------------------------------------------------------
// /etc/sysconfig/o2cb

export interface O2cbTimeouts {
  /** O2CB_HEARTBEAT_THRESHOLD: 2-second iterations before a silent node is dead (default 31 = 60 s; the kernel needs > 2). */
  heartbeatDeadThreshold: number;
  /** O2CB_IDLE_TIMEOUT_MS (default 30000). */
  idleTimeoutMs: number;
  /** O2CB_KEEPALIVE_DELAY_MS (default 2000). */
  keepaliveDelayMs: number;
  /** O2CB_RECONNECT_DELAY_MS (default 2000). */
  reconnectDelayMs: number;
  /**
   * O2HB_REGION_TIMEOUT_MS, the heartbeat period: 2000 in the kernel and not
   * settable there.  Only tests lower it; anything else breaks interop.
   */
  heartbeatIntervalMs: number;
}

export const O2HB_REGION_TIMEOUT_MS = 2000;
export const O2HB_DEFAULT_DEAD_THRESHOLD = 31;
export const O2HB_MIN_DEAD_THRESHOLD = 2;

export const DEFAULT_O2CB_TIMEOUTS: Readonly<O2cbTimeouts> = Object.freeze({
  heartbeatDeadThreshold: O2HB_DEFAULT_DEAD_THRESHOLD,
  idleTimeoutMs: 30000,
  keepaliveDelayMs: 2000,
  reconnectDelayMs: 2000,
  heartbeatIntervalMs: O2HB_REGION_TIMEOUT_MS,
});

/** O2HB_MAX_WRITE_TIMEOUT_MS = period * (dead_threshold - 1): the self-fence timeout, also sent in the o2net handshake. */
export function maxWriteTimeoutMs(t: O2cbTimeouts): number {
  return t.heartbeatIntervalMs * (t.heartbeatDeadThreshold - 1);
}

/** hb_dead_ms written in every heartbeat block: dead_threshold * period. */
export function deadMs(t: O2cbTimeouts): number {
  return t.heartbeatDeadThreshold * t.heartbeatIntervalMs;
}

export interface O2cbSysconfig {
  timeouts: Partial<O2cbTimeouts>;
  bootCluster?: string;
  enabled?: boolean;
  stack?: string;
}

const SYSCONFIG_TIMEOUT_KEYS: Record<string, keyof O2cbTimeouts> = {
  O2CB_HEARTBEAT_THRESHOLD: 'heartbeatDeadThreshold',
  O2CB_IDLE_TIMEOUT_MS: 'idleTimeoutMs',
  O2CB_KEEPALIVE_DELAY_MS: 'keepaliveDelayMs',
  O2CB_RECONNECT_DELAY_MS: 'reconnectDelayMs',
};

/**
 * Parse the shell-variable file.  Known variables are validated; other
 * variables (it is a shell fragment, distributions add their own) are ignored.
 * An empty value means "use the default", as the o2cb init script treats it.
 */
export function parseO2cbSysconfig(text: string, file = 'o2cb'): O2cbSysconfig {
  const out: O2cbSysconfig = { timeouts: {} };
  text.split('\n').forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new ConfigError(`invalid line '${line}' (expected NAME=value)`, file, lineNo);
    const key = m[1]!;
    let value = m[2]!.replace(/\s+#.*$/, '').trim();
    const q = /^(["'])(.*)\1$/.exec(value);
    if (q) value = q[2]!;
    const tkey = SYSCONFIG_TIMEOUT_KEYS[key];
    if (tkey) {
      if (value === '') return;
      if (!/^\d+$/.test(value)) throw new ConfigError(`${key}='${value}' is not a whole number`, file, lineNo);
      const n = Number(value);
      if (tkey === 'heartbeatDeadThreshold' && n <= O2HB_MIN_DEAD_THRESHOLD) {
        throw new ConfigError(`${key}=${n} is too small (the kernel needs more than ${O2HB_MIN_DEAD_THRESHOLD})`, file, lineNo);
      }
      if (n <= 0) throw new ConfigError(`${key}=${n} must be positive`, file, lineNo);
      out.timeouts[tkey] = n;
    } else if (key === 'O2CB_BOOTCLUSTER') {
      if (value !== '') out.bootCluster = value;
    } else if (key === 'O2CB_ENABLED') {
      out.enabled = value === 'true';
    } else if (key === 'O2CB_STACK') {
      if (value !== '') out.stack = value;
    }
  });
  return out;
}

export const DEFAULT_O2CB_SYSCONFIG_PATHS = ['/etc/sysconfig/o2cb', '/etc/default/o2cb'] as const;

export function readO2cbSysconfig(file: string): O2cbSysconfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read o2cb configuration: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, file);
  }
  return parseO2cbSysconfig(text, file);
}

function checkTimeouts(t: O2cbTimeouts, where: string | undefined): O2cbTimeouts {
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isInteger(v) || v <= 0) throw new ConfigError(`timeout ${k}=${String(v)} must be a positive integer`, where);
  }
  if (t.heartbeatDeadThreshold <= O2HB_MIN_DEAD_THRESHOLD) {
    throw new ConfigError(`heartbeat dead threshold ${t.heartbeatDeadThreshold} is too small (must be > ${O2HB_MIN_DEAD_THRESHOLD})`, where);
  }
  // nodemanager.c: idle_timeout_ms must exceed keepalive_delay_ms.
  if (t.idleTimeoutMs <= t.keepaliveDelayMs) {
    throw new ConfigError(`idle timeout ${t.idleTimeoutMs} ms must be greater than keepalive delay ${t.keepaliveDelayMs} ms`, where);
  }
  return t;
}

/**
 * Defaults, then the sysconfig file (if `file` is given; it must exist), then
 * `overrides` (command-line options).
 */
export function loadO2cbTimeouts(file: string | undefined, overrides: Partial<O2cbTimeouts> = {}): O2cbTimeouts {
  const fromFile = file !== undefined ? readO2cbSysconfig(file).timeouts : {};
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<O2cbTimeouts>;
  return checkTimeouts({ ...DEFAULT_O2CB_TIMEOUTS, ...fromFile, ...defined }, file);
}
