import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import {
  ConfigError, NodeManager, formatClusterConf, loadO2cbTimeouts, maxWriteTimeoutMs, parseClusterConf, parseO2cbSysconfig,
} from '../src/cluster/nodemanager';
import { registerClusterConfigCommands } from '../src/cli/cluster';
import { makeO2cbImage } from './lib/o2cb-image';

// The sample shipped with ocfs2-tools (documentation/samples/cluster.conf), byte for byte.
const SAMPLE = 'cluster:\n\theartbeat_mode = global\n\tnode_count = 3\n\tname = webcluster\n\n'
  + 'node:\n\tnumber = 7\n\tcluster = webcluster\n\tip_port = 7777\n\tip_address = 192.168.0.107\n\tname = node7\n\n'
  + 'node:\n\tnumber = 6\n\tcluster = webcluster\n\tip_port = 7777\n\tip_address = 192.168.0.106\n\tname = node6\n\n'
  + 'node:\n\tnumber = 10\n\tcluster = webcluster\n\tip_port = 7777\n\tip_address = 192.168.0.110\n\tname = node10\n\n'
  + 'heartbeat:\n\tcluster = webcluster\n\tregion = 77D95EF51C0149D2823674FCC162CF8B\n\n'
  + 'heartbeat:\n\tcluster = webcluster\n\tregion = DCDA2845177F4D59A0F2DCD8DE507CC3\n\n'
  + 'heartbeat:\n\tcluster = webcluster\n\tregion = BBA1DBD0F73F449384CE75197D9B7098\n';

const GOOD = 'cluster:\n\tnode_count = 3\n\theartbeat_mode = local\n\tname = hb\n\n'
  + 'node:\n\tip_port = 7777\n\tip_address = 127.0.0.1\n\tnumber = 0\n\tname = n0\n\tcluster = hb\n\n'
  + 'node:\n\tip_port = 7777\n\tip_address = 127.0.0.2\n\tnumber = 1\n\tname = n1\n\tcluster = hb\n\n'
  + 'node:\n\tip_port = 7777\n\tip_address = 127.0.0.3\n\tnumber = 2\n\tname = n2\n\tcluster = hb\n\n';

t.test('parses the ocfs2-tools sample', async (t) => {
  const [c, ...rest] = parseClusterConf(SAMPLE);
  t.equal(rest.length, 0);
  t.equal(c!.name, 'webcluster');
  t.equal(c!.heartbeatMode, 'global');
  t.equal(c!.nodeCount, 3);
  t.same(c!.nodes.map((n) => [n.name, n.num, n.ipv4Address, n.ipv4Port]), [
    ['node7', 7, '192.168.0.107', 7777], ['node6', 6, '192.168.0.106', 7777], ['node10', 10, '192.168.0.110', 7777]]);
  t.same(c!.heartbeatRegions.map((h) => h.region), [
    '77D95EF51C0149D2823674FCC162CF8B', 'DCDA2845177F4D59A0F2DCD8DE507CC3', 'BBA1DBD0F73F449384CE75197D9B7098']);
});

t.test('format is o2cb layout and round-trips', async (t) => {
  const cs = parseClusterConf(SAMPLE);
  const text = formatClusterConf(cs);
  t.match(text, /^cluster:\n\tnode_count = 3\n\theartbeat_mode = global\n\tname = webcluster\n\n/);
  t.match(text, /node:\n\tip_port = 7777\n\tip_address = 192\.168\.0\.107\n\tnumber = 7\n\tname = node7\n\tcluster = webcluster\n\n/);
  t.ok(text.split('\n').every((l) => l === '' || /^\w+:$/.test(l) || /^\t\w+ = \S+$/.test(l)), 'stanza headers in column 0, tab-indented parameters');
  t.same(parseClusterConf(text), cs);
  t.equal(formatClusterConf(parseClusterConf(text)), text);
  t.same(parseClusterConf(GOOD.replace(/\n/g, '\r\n')), parseClusterConf(GOOD), 'CRLF tolerated');
  t.same(parseClusterConf('# comment\n' + GOOD), parseClusterConf(GOOD), 'comments tolerated');
});

t.test('malformed files give ConfigError with file:line', async (t) => {
  const cases: [string, string, number, RegExp][] = [
    ['duplicate node number', GOOD.replace('number = 2', 'number = 1'), 23, /duplicate node number 1/],
    ['duplicate node name', GOOD.replace('name = n2', 'name = n1'), 24, /duplicate node name 'n1'/],
    ['duplicate address', GOOD.replace('127.0.0.3', '127.0.0.1'), 22, /duplicate ip_address 127\.0\.0\.1/],
    ['number out of range', GOOD.replace('number = 2', 'number = 255'), 23, /out of range 0\.\.254/],
    ['negative number', GOOD.replace('number = 2', 'number = -1'), 23, /out of range/],
    ['bad address', GOOD.replace('127.0.0.3', '127.0.0.300'), 22, /not a dotted-quad/],
    ['bad port', GOOD.replace(/ip_port = 7777(?![\s\S]*ip_port)/, 'ip_port = 70000'), 21, /ip_port '70000'/],
    ['unknown key', GOOD.replace('\tname = n2\n', '\tname = n2\n\tcolour = red\n'), 25, /unknown parameter 'colour'/],
    ['missing field', GOOD.replace('\tip_address = 127.0.0.3\n', ''), 20, /missing 'ip_address'/],
    ['unknown cluster', GOOD.replace('cluster = hb\n\n', 'cluster = other\n\n'), 11, /unknown cluster 'other'/],
    ['unknown stanza', GOOD + 'nodes:\n\tname = x\n', 27, /unknown stanza 'nodes:'/],
    ['missing colon', GOOD.replace('node:\n', 'node\n'), 6, /invalid stanza header/],
    ['no equals sign', GOOD.replace('number = 0', 'number 0'), 9, /expected 'key = value'/],
    ['parameter after blank line', GOOD.replace('\tnumber = 0\n', '\n\tnumber = 0\n'), 10, /outside a stanza/],
    ['duplicate key', GOOD.replace('\tnumber = 0\n', '\tnumber = 0\n\tnumber = 0\n'), 10, /duplicate parameter 'number'/],
    ['bad cluster name', GOOD.replace(/name = hb\n/, 'name = hb-1\n'), 4, /\[0-9A-Za-z\]/],
    ['long cluster name', GOOD.replace(/name = hb\n/, 'name = abcdefghijklmnopq\n'), 4, /longer than 16/],
    ['bad heartbeat mode', GOOD.replace('= local', '= both'), 3, /local or global/],
    ['bad region', GOOD + 'heartbeat:\n\tregion = xyz\n\tcluster = hb\n', 28, /not a volume UUID/],
    ['empty value', GOOD.replace('name = n0', 'name ='), 10, /empty value/],
  ];
  for (const [what, text, line, re] of cases) {
    try {
      parseClusterConf(text, '/x/cluster.conf');
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.type(e, ConfigError, what);
      const ce = e as ConfigError;
      t.equal(ce.line, line, `${what}: line ${line}`);
      t.match(ce.message, re, `${what}: message`);
      t.match(ce.message, new RegExp(`^/x/cluster\\.conf:${line}: `), `${what}: file:line prefix`);
    }
  }
  t.throws(() => parseClusterConf('node:\n\tname = x\n'), ConfigError);
});

t.test('o2cb sysconfig timeouts', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2cbcfg-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = loadO2cbTimeouts(undefined);
  t.same(d, { heartbeatDeadThreshold: 31, idleTimeoutMs: 30000, keepaliveDelayMs: 2000, reconnectDelayMs: 2000, heartbeatIntervalMs: 2000 });
  t.equal(maxWriteTimeoutMs(d), 60000, 'O2HB_MAX_WRITE_TIMEOUT_MS');
  const f = path.join(dir, 'o2cb');
  fs.writeFileSync(f, '# c\nO2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=hb\nO2CB_HEARTBEAT_THRESHOLD=61\nO2CB_IDLE_TIMEOUT_MS="60000"\nO2CB_KEEPALIVE_DELAY_MS=\nO2CB_RECONNECT_DELAY_MS=3000\nSOMETHING_ELSE=1\n');
  const tm = loadO2cbTimeouts(f, { reconnectDelayMs: 4000 });
  t.same(tm, { heartbeatDeadThreshold: 61, idleTimeoutMs: 60000, keepaliveDelayMs: 2000, reconnectDelayMs: 4000, heartbeatIntervalMs: 2000 });
  t.equal(parseO2cbSysconfig(fs.readFileSync(f, 'utf8')).bootCluster, 'hb');
  t.throws(() => parseO2cbSysconfig('O2CB_HEARTBEAT_THRESHOLD=abc\n', 'o2cb'), ConfigError);
  t.throws(() => parseO2cbSysconfig('O2CB_HEARTBEAT_THRESHOLD=2\n'), ConfigError, 'threshold must be > 2');
  t.throws(() => parseO2cbSysconfig('garbage line\n'), ConfigError);
  t.throws(() => loadO2cbTimeouts(undefined, { idleTimeoutMs: 1000, keepaliveDelayMs: 2000 }), ConfigError, 'idle > keepalive');
  t.throws(() => loadO2cbTimeouts(path.join(dir, 'missing')), ConfigError);
  let bad: unknown;
  try { parseO2cbSysconfig('\n\nO2CB_IDLE_TIMEOUT_MS=x\n', 'F'); } catch (e) { bad = e; }
  t.type(bad, ConfigError, 'a bad value is refused');
  t.equal((bad as ConfigError | undefined)?.line, 3, 'the error names the bad line');
});

t.test('NodeManager picks the cluster and the local node', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2nm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'cluster.conf');
  const sys = path.join(dir, 'o2cb');
  fs.writeFileSync(conf, GOOD + 'cluster:\n\tnode_count = 0\n\tname = other\n');
  fs.writeFileSync(sys, 'O2CB_BOOTCLUSTER=hb\nO2CB_HEARTBEAT_THRESHOLD=7\n');
  const nm = NodeManager.load({ clusterConf: conf, node: 'n1', o2cbConfig: sys });
  t.equal(nm.cluster.name, 'hb');
  t.equal(nm.localNode.num, 1);
  t.equal(nm.timeouts.heartbeatDeadThreshold, 7);
  t.equal(nm.nodeByNum(2)?.name, 'n2');
  t.equal(nm.nodeByAddress('127.0.0.1')?.name, 'n0');
  t.equal(nm.nodeByAddress('127.0.0.9'), undefined);
  t.same(nm.configuredNodeNums(), [0, 1, 2]);
  t.throws(() => NodeManager.load({ clusterConf: conf, node: 'nope', o2cbConfig: sys }), ConfigError);
  t.throws(() => NodeManager.load({ clusterConf: conf, node: 'n1', o2cbConfig: sys, cluster: 'zzz' }), ConfigError);
  fs.writeFileSync(sys, '');
  t.throws(() => NodeManager.load({ clusterConf: conf, node: 'n1', o2cbConfig: sys }), /several clusters/);
  t.equal(NodeManager.load({ clusterConf: conf, node: 'n0', o2cbConfig: sys, cluster: 'hb', timeouts: { heartbeatDeadThreshold: 5 } }).timeouts.heartbeatDeadThreshold, 5);
  t.throws(() => NodeManager.load({ clusterConf: path.join(dir, 'absent'), node: 'n0', o2cbConfig: sys }), /cannot read/);
});

async function cli(args: string[]): Promise<{ out: string; err?: Error }> {
  let out = '';
  const program = new Command('ocfs2-fuse').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  const cluster = program.command('cluster');
  registerClusterConfigCommands(cluster, { out: (s) => { out += s; } });
  try {
    await program.parseAsync(['cluster', ...args], { from: 'user' });
    return { out };
  } catch (e) {
    return { out, err: e as Error };
  }
}

t.test('cluster commands edit the file like o2cb', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2cbcli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'etc', 'cluster.conf');
  const C = ['--cluster-conf', conf];
  t.notOk((await cli(['add-cluster', 'webcluster', ...C])).err);
  t.match((await cli(['add-cluster', 'webcluster', ...C])).err?.message, /already exists/);
  t.match((await cli(['add-cluster', 'bad-name', ...C])).err?.message, /Invalid cluster name/);
  t.notOk((await cli(['add-node', 'webcluster', 'node7', '--ip', '192.168.0.107', '--number', '7', ...C])).err);
  t.notOk((await cli(['add-node', 'webcluster', 'node6', '--ip', '192.168.0.106', '--number', '6', ...C])).err);
  t.notOk((await cli(['add-node', 'webcluster', 'node10', '--ip', '192.168.0.110', '--number', '10', ...C])).err);
  t.notOk((await cli(['add-node', 'webcluster', 'auto', '--ip', '192.168.0.111', '--port', '7778', ...C])).err, 'default number');
  t.match((await cli(['add-node', 'webcluster', 'node7', '--ip', '192.168.0.120', ...C])).err?.message, /Node 'node7' already exists/);
  t.match((await cli(['add-node', 'webcluster', 'x', '--ip', '192.168.0.121', '--number', '6', ...C])).err?.message, /'6' is in use/);
  t.match((await cli(['add-node', 'webcluster', 'x', '--ip', '192.168.0.121', '--number', '255', ...C])).err?.message, /< 255/);
  t.match((await cli(['add-node', 'webcluster', 'x', '--ip', '192.168.0.106', ...C])).err?.message, /already used/);
  t.match((await cli(['add-node', 'webcluster', 'x', '--ip', '1.2.3', ...C])).err?.message, /Bad IP/);
  t.match((await cli(['add-node', 'nocluster', 'x', '--ip', '1.2.3.4', ...C])).err?.message, /Unknown cluster 'nocluster'/);
  // a device argument: its volume UUID becomes the region
  const img = makeO2cbImage(dir, { name: 'v.img', cluster: 'webcluster', slots: 2, sizeMiB: 64 }).image;
  const uuid = execFileSync('timeout', ['30', 'debugfs.ocfs2', '-R', 'stats', img], { encoding: 'utf8' }).match(/UUID: ([0-9A-F]{32})/)![1]!;
  t.notOk((await cli(['add-heartbeat', 'webcluster', img, ...C])).err);
  t.notOk((await cli(['add-heartbeat', 'webcluster', 'dcda2845-177f-4d59-a0f2-dcd8de507cc3', ...C])).err);
  t.match((await cli(['add-heartbeat', 'webcluster', img, ...C])).err?.message, /already exists/);
  t.match((await cli(['add-heartbeat', 'webcluster', 'nonsense', ...C])).err?.message, /neither a device nor/);
  t.notOk((await cli(['heartbeat-mode', 'webcluster', 'global', ...C])).err);
  t.match((await cli(['heartbeat-mode', 'webcluster', 'sometimes', ...C])).err?.message, /Invalid heartbeat mode/);
  const c = parseClusterConf(fs.readFileSync(conf, 'utf8'))[0]!;
  t.equal(c.heartbeatMode, 'global');
  t.equal(c.nodeCount, 4);
  t.same(c.nodes.map((n) => [n.name, n.num, n.ipv4Port]), [['node7', 7, 7777], ['node6', 6, 7777], ['node10', 10, 7777], ['auto', 0, 7778]]);
  t.same(c.heartbeatRegions.map((h) => h.region), [uuid, 'DCDA2845177F4D59A0F2DCD8DE507CC3']);
  const list = await cli(['list-cluster', 'webcluster', ...C]);
  t.equal(list.out.split('\n')[0], 'heartbeat:');
  t.match(list.out, `heartbeat:\n\tregion = ${uuid}\n\tcluster = webcluster\n\n`);
  t.match(list.out, 'node:\n\tnumber = 7\n\tname = node7\n\tip_address = 192.168.0.107\n\tip_port = 7777\n\tcluster = webcluster\n\n');
  t.match(list.out, /cluster:\n\tnode_count = 4\n\theartbeat_mode = global\n\tname = webcluster\n\n$/);
  t.equal((await cli(['list-nodes', 'webcluster', '--oneline', ...C])).out,
    'node: 7 node7 192.168.0.107:7777 webcluster\nnode: 6 node6 192.168.0.106:7777 webcluster\nnode: 10 node10 192.168.0.110:7777 webcluster\nnode: 0 auto 192.168.0.111:7778 webcluster\n');
  t.notOk((await cli(['remove-node', 'webcluster', 'node6', ...C])).err);
  t.match((await cli(['remove-node', 'webcluster', 'node6', ...C])).err?.message, /Unknown node/);
  t.notOk((await cli(['remove-heartbeat', 'webcluster', 'DCDA2845177F4D59A0F2DCD8DE507CC3', ...C])).err);
  t.match((await cli(['remove-heartbeat', 'webcluster', 'DCDA2845177F4D59A0F2DCD8DE507CC3', ...C])).err?.message, /Unknown heartbeat region/);
  const c2 = parseClusterConf(fs.readFileSync(conf, 'utf8'))[0]!;
  t.equal(c2.nodeCount, 3);
  t.same(c2.heartbeatRegions.map((h) => h.region), [uuid]);
  t.same(fs.readdirSync(path.dirname(conf)), ['cluster.conf'], 'no temporary files left behind');
  t.notOk((await cli(['remove-cluster', 'webcluster', ...C])).err);
  t.equal(fs.readFileSync(conf, 'utf8'), '');
  // a malformed file is reported, not overwritten
  fs.writeFileSync(conf, 'cluster:\n\tname = a\n\tbogus = 1\n');
  const r = await cli(['add-cluster', 'b', ...C]);
  t.match(r.err?.message, new RegExp(`${conf.replace(/[.]/g, '\\.')}:3: unknown parameter 'bogus'`));
  t.equal(fs.readFileSync(conf, 'utf8'), 'cluster:\n\tname = a\n\tbogus = 1\n');
});
