import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { METHOD_NAMES } from '../../src/protocol/methods.js';
import { METHOD_SIGNALS } from '../../src/protocol/signals.js';

/** Every `.ts` file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

test('every signal name the engine emits has a label, a unit and an explanation for some method', () => {
  const known = new Set(Object.values(METHOD_SIGNALS).flatMap((signals) => Object.keys(signals)));
  const emitted = new Set<string>();
  for (const file of sources('src/engine')) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/type: 'signal',[^}]*?\bname: '([A-Za-z]+)'/g)) emitted.add(match[1]);
  }
  assert.ok(emitted.size >= 8, `found ${emitted.size} emitted signal names`);
  for (const name of emitted) assert.ok(known.has(name), `signal "${name}" has no entry in src/protocol/signals.ts`);
});

test('the signal table covers every method and says what each value counts', () => {
  assert.deepEqual(Object.keys(METHOD_SIGNALS).sort(), [...METHOD_NAMES].sort());
  for (const [method, signals] of Object.entries(METHOD_SIGNALS)) {
    for (const [name, info] of Object.entries(signals)) {
      assert.ok(info.label && info.unit && info.explanation.length > 20, `${method}.${name}`);
      assert.doesNotMatch(info.label, /^[a-z]+[A-Z]/, `${method}.${name}: a label, not a camelCase name`);
    }
  }
  // The contradiction a user read ("zeroGroups 144" beside "62 removed"): both are channels, and the explanation says why they differ.
  assert.match(METHOD_SIGNALS.goprune.zeroGroups.explanation, /target/);
  assert.equal(METHOD_SIGNALS.goprune.zeroGroups.unit, METHOD_SIGNALS.goprune.removedGroups.unit);
});
