/**
 * Progress of long work on stderr, only when stderr is a terminal (never in
 * pipes, under -q or with --json): one line per phase, rewritten in place
 * ("\r"), ended with a newline when the phase is done.
 */
export type ProgressFn = (phase: string, done: number, total: number) => void;

export function progressPrinter(opts: { quiet?: boolean; json?: boolean; stream?: NodeJS.WriteStream } = {}): ProgressFn | undefined {
  const out = opts.stream ?? process.stderr;
  if (opts.quiet || opts.json || !out.isTTY) return undefined;
  let last = '';
  return (phase, done, total) => {
    const pct = total ? Math.floor((done * 100) / total) : 100;
    const line = `\r${phase}: ${pct}% (${done}/${total})`;
    if (line === last && done < total) return;
    last = line;
    out.write(`${line}${done >= total ? '\n' : ''}`);
  };
}
