/**
 * A minimal heartbeat node for tests: one HeartbeatRegion in its own process.
 * Config: JSON in argv[2] ({device, startBlock, blocks, name, localNode, nodes,
 * deadThreshold, intervalMs}).  Prints one JSON object per line on stdout:
 *   {ev:'steady', gen} {ev:'up', num, gen} {ev:'down', num} {ev:'fence', reason}
 *   {ev:'stopped'} {ev:'error', message}
 * Commands on stdin, one per line: block-writes | fail-writes | none | stop.
 */
import * as readline from 'node:readline';
import { HeartbeatRegion, type HeartbeatFault } from '../../src/cluster/heartbeat';

interface Cfg {
  device: string; startBlock: number; blocks: number; name: string; localNode: number;
  nodes: number[]; deadThreshold: number; intervalMs: number;
}
const cfg = JSON.parse(process.argv[2] ?? '{}') as Cfg;
const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ ...o, t: Date.now() }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v)) + '\n');
};
const reg = new HeartbeatRegion({ ...cfg });
reg.on('node-up', (num: number, gen: bigint) => out({ ev: 'up', num, gen }));
reg.on('node-down', (num: number) => out({ ev: 'down', num }));
reg.on('fence', (reason: string) => out({ ev: 'fence', reason }));
reg.on('log', (level: string, msg: string) => { if (level !== 'debug') process.stderr.write(`[node ${cfg.localNode}] ${msg}\n`); });
readline.createInterface({ input: process.stdin }).on('line', (l) => {
  const cmd = l.trim();
  if (cmd === 'stop') {
    void reg.stop().then(() => { out({ ev: 'stopped' }); process.exit(0); });
  } else if (cmd === 'block-writes' || cmd === 'fail-writes' || cmd === 'none') {
    reg.setFault(cmd as HeartbeatFault);
    out({ ev: 'fault', mode: cmd });
  }
});
reg.start().then(
  () => out({ ev: 'steady', gen: reg.generation }),
  (e: Error) => { out({ ev: 'error', message: e.message }); process.exit(1); },
);
