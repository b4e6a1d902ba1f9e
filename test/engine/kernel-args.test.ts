import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KERNEL_ARGS, argInts, kernelArgsHeader, writeArgs } from '../../src/engine/backend/simd/kernel-args.js';

const kernelsC = readFileSync(resolve('src/engine/backend/simd/kernels.c'), 'utf8');

test('the generated header declares every argument block with the table\'s fields in order', () => {
  const header = kernelArgsHeader();
  assert.match(header, /typedef struct \{ int32_t n, h, w, ci, ho, wo, co, kh, kw, sh, sw, dh, dw, pad_top, pad_left, x, y, bias, activation, scratch, scratch_bytes, tile, aux, next; \} Conv;/);
  for (const [name, block] of Object.entries(KERNEL_ARGS)) {
    assert.match(header, new RegExp(`\\} ${name};\\n_Static_assert\\(sizeof\\(${name}\\) == ${block.fields.length * 4},`), name);
  }
});

test('kernels.c reads its arguments only through the generated structs', () => {
  assert.match(kernelsC, /#include "kernel-args.h"/);
  assert.doesNotMatch(kernelsC, /args\[\d+\]/, 'no positional argument reads');
  assert.doesNotMatch(kernelsC, /typedef struct \{[^}]*\} (Conv|Depthwise);/, 'no hand-kept copy of a block');
  for (const name of Object.keys(KERNEL_ARGS)) assert.match(kernelsC, new RegExp(`\\b${name} \\*`), `${name} is read by a kernel`);
});

test('writeArgs puts each field in its slot at the byte offset given', () => {
  const ints = new Int32Array(2 + argInts('MatmulArgs')).fill(-1);
  writeArgs(ints, 8, 'MatmulArgs', { batch: 1, m: 2, n: 3, k: 4, a: 5, panels: 6, c: 7, bias: 8, activation: 9, aStride: 10, panelStride: 11, rs: 12, ks: 13, next: 0 });
  assert.deepEqual([...ints], [-1, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0]);
});
