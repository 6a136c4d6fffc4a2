#!/usr/bin/env node
/**
 * ocfs2-fuse command line.
 *
 *   ocfs2-fuse [-o OPTS] DEVICE MOUNTPOINT      mount (read-only for now: -o ro)
 *   ocfs2-fuse mkfs|check|inspect|cluster ...   the bundled tools
 *
 * Every command reports errors as one line on stderr and a non-zero exit,
 * never a stack trace (set OCFS2_FUSE_DEBUG=1 to see one).
 */
import { Command, CommanderError } from 'commander';
import { registerMountCommand } from './mount';
import { registerCheckCommand } from './check';
import { registerInspectCommand } from './inspect';
import { registerClusterConfigCommands } from './cluster';
import { registerClusterNodeCommands } from './cluster-node';
import { registerMkfsCommand } from './mkfs';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ocfs2-fuse')
    .description('OCFS2 shared-disk cluster filesystem in user space (FUSE)')
    .version(require('../../../package.json').version as string)
    .showHelpAfterError()
    // The mount's options (--node, --cluster-conf ...) are the cluster commands' too: each command parses its own.
    .enablePositionalOptions()
    .exitOverride();
  registerMountCommand(program);
  registerCheckCommand(program);
  registerInspectCommand(program);
  registerMkfsCommand(program);
  const cluster = program.command('cluster').description('o2cb cluster configuration, node and status (in the spirit of o2cb(8))');
  registerClusterConfigCommands(cluster);
  registerClusterNodeCommands(cluster);
  return program;
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  const msg = err instanceof Error ? err.message : String(err);
  if (!(err as { reported?: boolean } | null)?.reported) process.stderr.write(`ocfs2-fuse: ${msg}\n`);
  if (process.env.OCFS2_FUSE_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return typeof (err as { exitCode?: unknown })?.exitCode === 'number' ? (err as { exitCode: number }).exitCode : 1;
}

if (require.main === module) {
  buildProgram().parseAsync(process.argv).catch((err: unknown) => {
    process.exitCode = reportError(err);
  });
}
