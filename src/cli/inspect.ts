/**
 * `ocfs2-fuse inspect DEVICE [CMD [ARGS]]`, like debugfs.ocfs2 (read-only):
 *   inspect DEVICE CMD ARGS     one command
 *   inspect -R "CMD ARGS" DEVICE / inspect DEVICE -R "CMD"   one command (debugfs -R)
 *   inspect -f CMDFILE DEVICE   the file's commands, each echoed as "debugfs: CMD"
 *   inspect DEVICE              interactive: a "debugfs: " prompt with history on
 *                               a terminal; commands read from a pipe are echoed
 * Commands: stats, ls [-l] PATH, stat PATH, cat PATH, dump PATH OUT, slotmap,
 * hb, logdump SLOT, bitmap, freefrag, help, quit (q).  stats/stat/ls -l print
 * debugfs.ocfs2's layout; --json prints every result as JSON (unchanged).
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import type { Command } from 'commander';
import {
  openForInspect, cmdStats, cmdLs, cmdStat, cmdCat, cmdDump, cmdSlotmap, cmdHb, cmdLogdump, cmdBitmap, cmdFreefrag,
  formatText, resolvePath, type Json,
} from '../inspect';
import { lsLongLine, statsText, statText } from '../inspect/text';
import { DinodeHeader } from '../libocfs2/structs/dinode';
import { iterateDirectory } from '../libocfs2/directory';
import type { Volume } from '../libocfs2/volume';

const HELP: Array<[string, string]> = [
  ['bitmap', 'global bitmap groups'],
  ['cat <path>', 'print a file'],
  ['dump <path> <outfile>', 'copy a file out'],
  ['freefrag', 'free space fragmentation'],
  ['hb', 'heartbeat blocks'],
  ['help, ?', 'this list'],
  ['logdump <slot>', 'the journal of a slot'],
  ['ls [-l] <path>', 'list a directory'],
  ['quit, q', 'leave'],
  ['slotmap', 'the slot map'],
  ['stat <path>', 'an inode'],
  ['stats', 'the superblock'],
];
const USAGE = HELP.map(([c]) => c).join(' | ');

class CommandError extends Error {}

/** Split a command line like a shell would for simple quoting ("..." and '...'). */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Run one command; returns false for quit. */
async function runCommand(vol: Volume, argv: string[], json: boolean, write: (s: string | Buffer) => void): Promise<boolean> {
  const [cmd, ...rest] = argv;
  if (!cmd) return true;
  const args = rest.filter((a) => a !== '--json');
  const asJson = json || rest.includes('--json');
  const need = (n: number): void => { if (args.length < n) throw new CommandError(`${cmd}: missing argument (usage: ${HELP.find(([c]) => c.startsWith(cmd))?.[0] ?? USAGE})`); };
  const pathArg = (): string => args.filter((a) => a !== '-l')[0] ?? '/';
  let r: Json;
  switch (cmd) {
    case 'quit': case 'q': return false;
    case 'help': case '?':
      write(`${HELP.map(([c, d]) => `${c.padEnd(24)}${d}`).join('\n')}\n`);
      return true;
    case 'stats':
      if (!asJson) { write(statsText(vol, vol.sbBlock)); return true; }
      r = await cmdStats(vol);
      break;
    case 'ls': {
      if (!asJson && args.includes('-l')) {
        const dir = await resolvePath(vol, pathArg());
        const lines: string[] = [];
        for await (const e of iterateDirectory(vol, dir)) {
          const ib = await vol.readInode(e.inode).catch(() => null);
          lines.push(lsLongLine(e.inode, e.name.toString('utf8'), ib ? DinodeHeader.decode(ib.buf, 0) : null));
        }
        write(`${lines.join('\n')}\n`);
        return true;
      }
      r = await cmdLs(vol, pathArg());
      break;
    }
    case 'stat':
      need(1);
      if (!asJson) { write(await statText(vol, (await resolvePath(vol, args[0]!)).buf)); return true; }
      r = await cmdStat(vol, args[0]!);
      break;
    case 'cat': {
      need(1);
      const data = await cmdCat(vol, args[0]!);
      if (!asJson) { write(data); return true; }
      r = { path: args[0]!, size: data.length, base64: data.toString('base64') };
      break;
    }
    case 'dump': need(2); r = await cmdDump(vol, args[0]!, args[1]!); break;
    case 'slotmap': r = await cmdSlotmap(vol); break;
    case 'hb': r = await cmdHb(vol); break;
    case 'logdump': need(1); r = await cmdLogdump(vol, Number(args[0])); break;
    case 'bitmap': r = await cmdBitmap(vol); break;
    case 'freefrag': r = await cmdFreefrag(vol); break;
    default: throw new CommandError(`unknown command "${cmd}" (try help)`);
  }
  write(asJson ? `${JSON.stringify(r, null, 2)}\n` : formatText(cmd, r));
  return true;
}

interface InspectFlags { json?: boolean; request?: string; file?: string }

const out = (s: string | Buffer): void => { process.stdout.write(s); };
const err = (e: unknown): void => {
  process.stderr.write(`ocfs2-fuse inspect: ${e instanceof Error ? e.message : String(e)}\n`);
  if (process.env.OCFS2_FUSE_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
};

/** Several commands, each echoed as debugfs does with -f or a piped stdin; errors do not stop the run. */
async function runScript(vol: Volume, lines: AsyncIterable<string> | Iterable<string>, json: boolean, fromFile: boolean): Promise<number> {
  let status = 0;
  for await (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    out(`debugfs: ${line}\n`);
    try {
      if (!(await runCommand(vol, splitCommandLine(line), json, out))) break;
    } catch (e) {
      err(e);
      status = 1;
    }
  }
  // As debugfs.ocfs2: -f ends with a blank line, a piped session with the prompt it read EOF at.
  out(fromFile ? '\n' : 'debugfs: \n');
  return status;
}

/** The interactive prompt on a terminal: readline with history, help, quit, Ctrl-D. */
async function interactive(vol: Volume, json: boolean): Promise<number> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: 'debugfs: ', historySize: 1000, terminal: true });
  rl.prompt();
  for await (const line of rl) {
    try {
      if (!(await runCommand(vol, splitCommandLine(line), json, out))) break;
    } catch (e) {
      err(e);
    }
    rl.prompt();
  }
  rl.close();
  return 0;
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description(`inspect an OCFS2 volume read-only, like debugfs.ocfs2 (${USAGE}); no command: interactive`)
    .argument('<device>', 'image file or block device')
    .argument('[cmd]', 'command (none: read commands from the terminal or stdin)')
    .argument('[args...]', 'command arguments')
    .option('-R, --request <cmd>', 'run one command line (debugfs -R)')
    .option('-f, --file <cmdfile>', 'run the commands in a file (debugfs -f)')
    .option('--json', 'print results as JSON')
    .allowUnknownOption(true)
    .action(async (device: string, cmd: string | undefined, args: string[], flags: InspectFlags) => {
      // A reader that went away (| head) ends the session quietly.
      process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
      let vol: Volume;
      try {
        vol = await openForInspect(device);
      } catch (e) {
        err(e);
        process.exitCode = 1;
        return;
      }
      try {
        const json = !!flags.json;
        if (flags.request !== undefined || cmd !== undefined) {
          const argv = flags.request !== undefined ? splitCommandLine(flags.request) : [cmd!, ...args];
          await runCommand(vol, argv, json, out);
        } else if (flags.file !== undefined) {
          process.exitCode = await runScript(vol, fs.readFileSync(flags.file, 'utf8').split('\n'), json, true);
        } else if (process.stdin.isTTY) {
          process.exitCode = await interactive(vol, json);
        } else {
          process.exitCode = await runScript(vol, readline.createInterface({ input: process.stdin, terminal: false }), json, false);
        }
      } catch (e) {
        err(e);
        process.exitCode = 1;
      } finally {
        await vol.close();
      }
    });
}
