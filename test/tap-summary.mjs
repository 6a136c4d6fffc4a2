// Reads tap's TAP 14 output (stdin or a file) and prints the suite's summary:
// the skip reasons, the failed tests, then `tests: N passed, N failed, N skipped`.
// A test is a subtest with no subtests of its own (a file without subtests is
// one test); a skipped test point (t.test {skip}, t.plan(0, why), t.skip) is a
// skip; a file or subtest that fails while none of its own tests failed (a
// throw, a timeout, a crash) counts as one failed test.  Exit status: 1 when
// anything failed or the output holds no test at all.
import * as fs from 'node:fs';

const text = fs.readFileSync(process.argv[2] ?? 0, 'utf8');
const POINT = /^( *)(not )?ok \d+(?: - (.*?))?(?: # (SKIP|TODO)\b ?(.*))?$/i;
const SUBTEST = /^( *)# Subtest: (.*)$/;

/** One open subtest: its depth, name, and what its children reported. */
const root = { depth: -1, name: '', kids: [] };
const stack = [root];
let inYaml = -1; // indentation of the open YAML block, -1 when none

function close(node, ok, skip, reason) {
  node.ok = ok; node.skip = skip; node.reason = reason;
}

for (const line of text.split('\n')) {
  if (inYaml >= 0) {
    if (/^ *\.\.\.$/.test(line) && line.indexOf('.') === inYaml) inYaml = -1;
    continue;
  }
  const y = /^( *)---$/.exec(line);
  if (y) { inYaml = y[1].length; continue; }
  const s = SUBTEST.exec(line);
  if (s) {
    const node = { depth: s[1].length / 4, name: s[2], kids: [], subtest: true };
    while (stack.length > 1 && stack[stack.length - 1].depth >= node.depth) stack.pop();
    stack[stack.length - 1].kids.push(node);
    stack.push(node);
    continue;
  }
  const p = POINT.exec(line);
  if (!p) continue;
  const depth = p[1].length / 4;
  const ok = !p[2];
  const directive = (p[4] ?? '').toUpperCase();
  const reason = (p[5] ?? '').replace(/\s*# time=.*$/, '').trim();
  // the point closing an open subtest at this depth
  while (stack.length > 1 && stack[stack.length - 1].depth > depth) stack.pop();
  const top = stack[stack.length - 1];
  if (top !== root && top.depth === depth && top.ok === undefined) {
    close(top, ok, directive !== '', reason);
    stack.pop();
    continue;
  }
  // a plain point: an assertion, or a subtest skipped before it ran (no "# Subtest:" header)
  const parent = stack[stack.length - 1];
  parent.kids.push({ depth, name: p[3] ?? '', kids: [], ok, skip: directive !== '', reason, subtest: false, point: true });
}

const passed = [];
const failed = [];
const skipped = [];
const pathOf = (trail) => trail.filter((n) => n).join(' > ');

/** Counts the tests under node; returns how many failures were counted. */
function walk(node, trail) {
  const here = [...trail, node.name];
  if (node.point) {
    if (node.skip) skipped.push({ where: pathOf(here), reason: node.reason });
    return 0; // assertions count through the subtest that holds them
  }
  const subtests = node.kids.filter((k) => k.subtest || (k.point && k.skip));
  if (node.skip && subtests.length === 0) { skipped.push({ where: pathOf(here), reason: node.reason }); return 0; }
  let fails = 0;
  for (const k of node.kids) fails += walk(k, here);
  const childTests = node.kids.filter((k) => k.subtest);
  if (childTests.length === 0) {
    if (node.ok === false) { failed.push(pathOf(here)); return fails + 1; }
    if (node.ok === true) passed.push(pathOf(here));
    return fails;
  }
  if (node.ok === false && fails === 0) { failed.push(`${pathOf(here)} (failed outside its subtests)`); return 1; }
  return fails;
}
for (const k of root.kids) walk(k, []);

if (skipped.length) {
  console.log(`# skipped (${skipped.length}):`);
  for (const s of skipped) console.log(`#   ${s.where}: ${s.reason || '(no reason given)'}`);
}
if (failed.length) {
  console.log(`# failed (${failed.length}):`);
  for (const f of failed) console.log(`#   ${f}`);
}
console.log(`tests: ${passed.length} passed, ${failed.length} failed, ${skipped.length} skipped`);
process.exit(failed.length > 0 || passed.length + skipped.length === 0 ? 1 : 0);
