/**
 * `ocfs2-fuse inspect DEVICE CMD [ARGS]` in the spirit of `debugfs.ocfs2 -R`:
 * stats, ls [-l] PATH, stat PATH|<ino>, cat PATH, dump PATH OUT, slotmap, hb,
 * logdump SLOT, bitmap, freefrag; `--json` on every command.  Read-only.
 */
import type { Command } from 'commander';
import {
  openForInspect, cmdStats, cmdLs, cmdStat, cmdCat, cmdDump, cmdSlotmap, cmdHb, cmdLogdump, cmdBitmap, cmdFreefrag,
  formatText, type Json,
} from '../inspect';

const USAGE = 'commands: stats | ls [-l] PATH | stat PATH | cat PATH | dump PATH OUTFILE | slotmap | hb | logdump SLOT | bitmap | freefrag';

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description(`inspect an OCFS2 volume read-only, like debugfs.ocfs2 -R (${USAGE})`)
    .argument('<device>', 'image file or block device')
    .argument('<cmd>', 'command')
    .argument('[args...]', 'command arguments')
    .option('--json', 'print the result as JSON')
    .allowUnknownOption(true)
    .action(async (device: string, cmd: string, args: string[], flags: { json?: boolean }) => {
      args = args.filter((a) => a !== '--json');
      try {
        const vol = await openForInspect(device);
        try {
          const need = (n: number): void => { if (args.length < n) throw new Error(`${cmd}: missing argument (${USAGE})`); };
          const pathArg = (): string => args.filter((a) => a !== '-l')[0] ?? '/';
          let r: Json;
          switch (cmd) {
            case 'stats': r = await cmdStats(vol); break;
            case 'ls': r = await cmdLs(vol, pathArg()); break;
            case 'stat': need(1); r = await cmdStat(vol, args[0]!); break;
            case 'cat': {
              need(1);
              const data = await cmdCat(vol, args[0]!);
              if (flags.json) r = { path: args[0]!, size: data.length, base64: data.toString('base64') };
              else { process.stdout.write(data); return; }
              break;
            }
            case 'dump': need(2); r = await cmdDump(vol, args[0]!, args[1]!); break;
            case 'slotmap': r = await cmdSlotmap(vol); break;
            case 'hb': r = await cmdHb(vol); break;
            case 'logdump': need(1); r = await cmdLogdump(vol, Number(args[0])); break;
            case 'bitmap': r = await cmdBitmap(vol); break;
            case 'freefrag': r = await cmdFreefrag(vol); break;
            default: throw new Error(`unknown command "${cmd}" (${USAGE})`);
          }
          process.stdout.write(flags.json ? `${JSON.stringify(r, null, 2)}\n` : formatText(cmd, r));
        } finally {
          await vol.close();
        }
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        process.stderr.write(`ocfs2-fuse inspect: ${msg}\n`);
        if (process.env.OCFS2_FUSE_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
        process.exitCode = 1;
      }
    });
}
