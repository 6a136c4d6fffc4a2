/**
 * A node that looks alive on disk: writes valid o2hb blocks for `node` into
 * a volume's heartbeat area every 200 ms (sequence increasing), as a live
 * o2hb region would, until stopped.  For refusal tests of the offline tools.
 */
import * as fs from 'node:fs';
import { locateHeartbeatArea } from '../../src/cluster/heartbeat/locate';
import { prepareO2hbBlock } from '../../src/libocfs2/structs/heartbeat';

export function fakeHeartbeat(img: string, node: number): { stop(): void } {
  const area = locateHeartbeatArea(img);
  const fd = fs.openSync(img, 'r+');
  let seq = 1n;
  const beat = (): void => {
    const blk = prepareO2hbBlock(area.blockBytes, { seq: seq++, node, generation: 0x1234n, deadMs: 62000 });
    fs.writeSync(fd, blk, 0, blk.length, (area.startBlock + node) * area.blockBytes);
  };
  beat();
  const timer = setInterval(beat, 200);
  return { stop(): void { clearInterval(timer); fs.closeSync(fd); } };
}
