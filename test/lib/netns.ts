/**
 * Network namespaces for cluster tests: every namespace, veth pair, bridge
 * and tap device is made by the test and removed in its teardown; addresses
 * exist only inside those namespaces, so nothing touches the host's network.
 * All commands run under `timeout`.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NodeProc, nodeArgsFor, cliScript, REPO } from '../o2net-harness';

export interface CmdResult { status: number; stdout: string; stderr: string }

export function run(argv: string[], timeoutSec = 30): CmdResult {
  const r = spawnSync('timeout', [String(timeoutSec), ...argv], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Run, and throw with the command and its stderr when it fails. */
export function must(argv: string[], timeoutSec = 30): string {
  const r = run(argv, timeoutSec);
  if (r.status !== 0) throw new Error(`'${argv.join(' ')}' failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * Why network namespaces cannot be used here, or null when they can: we need
 * root (CAP_NET_ADMIN, CAP_SYS_ADMIN for `ip netns add`) and iproute2, and
 * the kernel must let us make a namespace with a veth pair in it.
 */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespace tests need root (ip netns add, veth, tap)';
  if (run(['ip', '-V']).status !== 0) return 'iproute2 (ip) is not installed';
  const probe = `o2probe${process.pid}`;
  const r = run(['ip', 'netns', 'add', probe]);
  if (r.status !== 0) return `ip netns add failed: ${r.stderr.trim()}`;
  try {
    const v = run(['ip', '-n', probe, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']);
    if (v.status !== 0) return `cannot make a veth pair in a namespace: ${v.stderr.trim()}`;
  } finally {
    run(['ip', 'netns', 'del', probe]);
  }
  return null;
}

/** Like netnsUnavailable, plus a tap device (qemu's -netdev tap). */
export function tapUnavailable(): string | null {
  const n = netnsUnavailable();
  if (n) return n;
  if (!fs.existsSync('/dev/net/tun')) return '/dev/net/tun is missing (tun module not loaded)';
  const probe = `o2tprobe${process.pid}`;
  must(['ip', 'netns', 'add', probe]);
  try {
    const r = run(['ip', 'netns', 'exec', probe, 'ip', 'tuntap', 'add', 'dev', 'tp0', 'mode', 'tap']);
    if (r.status !== 0) return `cannot make a tap device: ${r.stderr.trim()}`;
  } finally {
    run(['ip', 'netns', 'del', probe]);
  }
  return null;
}

export class NetNs {
  private deleted = false;
  private constructor(readonly name: string) {}

  /** A fresh namespace with its loopback up; the name includes our pid. */
  static create(tag: string): NetNs {
    const name = `o2${tag}${process.pid}`.slice(0, 30);
    run(['ip', 'netns', 'del', name]); // leftover of a crashed run with the same pid
    must(['ip', 'netns', 'add', name]);
    const ns = new NetNs(name);
    ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n NS ...` */
  ip(...args: string[]): string { return must(['ip', '-n', this.name, ...args]); }

  /** The argv prefix that runs a program inside the namespace. */
  exec(argv: string[]): string[] { return ['ip', 'netns', 'exec', this.name, ...argv]; }

  /** A tap device inside the namespace, up, with these addresses (CIDR). */
  addTap(dev: string, addrs: string[]): void {
    must(this.exec(['ip', 'tuntap', 'add', 'dev', dev, 'mode', 'tap']));
    for (const a of addrs) this.ip('addr', 'add', a, 'dev', dev);
    this.ip('link', 'set', dev, 'up');
  }

  /** A bridge inside the namespace (the hub of a star of veth pairs). */
  addBridge(dev: string): void {
    this.ip('link', 'add', dev, 'type', 'bridge');
    this.ip('link', 'set', dev, 'up');
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    run(['ip', 'netns', 'del', this.name]);
  }
}

/**
 * A veth pair from `a` (device aDev, addresses aAddrs) to `b` (device bDev,
 * enslaved to bBridge when given).  Both ends up.
 */
export function vethPair(a: NetNs, aDev: string, aAddrs: string[], b: NetNs, bDev: string, bBridge?: string): void {
  a.ip('link', 'add', aDev, 'type', 'veth', 'peer', 'name', bDev, 'netns', b.name);
  for (const x of aAddrs) a.ip('addr', 'add', x, 'dev', aDev);
  a.ip('link', 'set', aDev, 'up');
  if (bBridge) b.ip('link', 'set', bDev, 'master', bBridge);
  b.ip('link', 'set', bDev, 'up');
}

/** A loop device over `file` with direct I/O (each node its own: separate hosts). */
export function attachLoop(file: string): string {
  return must(['losetup', '--direct-io=on', '-f', '--show', file]).trim();
}

export function detachLoop(dev: string): void {
  run(['losetup', '-d', dev]);
}

/**
 * A `cluster node` process run inside a namespace (`ip netns exec` execs the
 * program, so the pid is the node's own and SIGTERM reaches it).
 */
export function spawnNodeIn(ns: NetNs, o: { dir: string; node: string; args: string[] }): NodeProc {
  const sock = path.join(o.dir, `${o.node}.sock`);
  const argv = ns.exec([process.execPath, ...nodeArgsFor(cliScript()), 'cluster', 'node',
    '--cluster-conf', path.join(o.dir, 'cluster.conf'), '--o2cb-config', path.join(o.dir, 'o2cb'),
    '--node', o.node, '--control-socket', sock, ...o.args]);
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  delete env.NODE_OPTIONS;
  return new NodeProc(o.node, spawn(argv[0]!, argv.slice(1), { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] }), sock);
}
