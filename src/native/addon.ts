/**
 * Loading our N-API addons (src/native/*.c, built by tools/build-native.sh
 * into src/native/build/Release), from the TypeScript sources or dist/.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Repo root: this file lives in src/native (ts) or dist/src/native (compiled). */
function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'tools', 'build-native.sh'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
}

/** The addon `name`.node, built first if missing. */
export function loadAddon<T>(name: string): T {
  const root = repoRoot();
  const addon = path.join(root, 'src', 'native', 'build', 'Release', `${name}.node`);
  if (!fs.existsSync(addon)) {
    const r = spawnSync('bash', [path.join(root, 'tools', 'build-native.sh')], { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0 || !fs.existsSync(addon)) {
      throw new Error(`${name} addon missing and could not be built (run tools/build-native.sh): ${(r.stderr ?? '').trim()}`);
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(addon) as T;
}
