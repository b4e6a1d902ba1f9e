import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { rememberingTeacher } from '../../src/engine/sensitivity/teacher.js';
import { frozenTeacher } from '../../src/engine/train/objective.js';
import { buildFragileAndRobust } from '../helpers/fragile-robust.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('the remembering teacher answers a batch it has seen from memory, the same as the teacher, and leaks nothing', async () => {
  const teacher = await frozenTeacher(buildFragileAndRobust());
  const shape = [6, ...(teacher.inputs[0].shape.slice(1) as number[])];
  const a = tf.randomNormal(shape, 0, 1, 'float32', 1);
  const b = tf.randomNormal(shape, 0, 1, 'float32', 2);
  // The same samples in another order are another batch.
  const shuffled = tf.gather(a, [1, 0, 2, 3, 4, 5]);
  const expected = [a, b, shuffled].map((x) => (teacher.apply(x, { training: false }) as tf.Tensor).arraySync());
  const remembering = rememberingTeacher(teacher);
  const answer = (x: tf.Tensor) => tf.tidy(() => (remembering.teacher.apply(x, { training: false }) as tf.Tensor).arraySync());
  assert.deepEqual([a, b, shuffled].map(answer), expected);
  // Change the real teacher's weights: batches already seen come from memory, a new one runs the changed teacher.
  for (const w of teacher.weights) w.write(tf.zerosLike(w.read()));
  const tensorsBefore = tf.memory().numTensors;
  assert.deepEqual([a, b, shuffled].map(answer), expected);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'a remembered answer leaves no tensor behind');
  const fresh = tf.randomNormal(shape, 0, 1, 'float32', 3);
  const reference = buildFragileAndRobust();
  assert.notDeepEqual(answer(fresh), (reference.apply(fresh, { training: false }) as tf.Tensor).arraySync());
  reference.dispose();
  remembering.dispose();
  tf.dispose([a, b, shuffled, fresh]);
  teacher.dispose();
});
