import * as tf from '@tensorflow/tfjs';

/**
 * The frozen teacher, answering each batch it has seen before from memory: sensitivity evaluates the
 * same few samples dozens of times, and the dense teacher's outputs on them never change, so only the
 * masked student runs each time (half the work when the metric is agreement with the dense model).
 *
 * Batches are recognised by their content (shape, sum, sum of squares and a position-weighted sum), so
 * the memory holds whatever batching the evaluation chooses; a batch not seen before runs the teacher.
 */
export interface RememberingTeacher {
  teacher: tf.LayersModel;
  dispose(): void;
}

export function rememberingTeacher(teacher: tf.LayersModel): RememberingTeacher {
  const remembered = new Map<string, tf.Tensor[]>();
  const apply = (inputs: tf.Tensor | tf.Tensor[], kwargs?: Record<string, unknown>): tf.Tensor | tf.Tensor[] => {
    const x = Array.isArray(inputs) ? undefined : inputs;
    if (!x || kwargs?.training) return teacher.apply(inputs, kwargs) as tf.Tensor | tf.Tensor[];
    const key = fingerprint(x);
    let outputs = remembered.get(key);
    if (!outputs) {
      const fresh = teacher.apply(x, kwargs) as tf.Tensor | tf.Tensor[];
      outputs = (Array.isArray(fresh) ? fresh : [fresh]).map((t) => tf.keep(t.clone()));
      tf.dispose(fresh);
      remembered.set(key, outputs);
    }
    // Callers dispose what they get (inside tf.tidy too): hand out copies, keep the originals.
    const copies = outputs.map((t) => t.clone());
    return copies.length === 1 ? copies[0] : copies;
  };
  const proxy = new Proxy(teacher, {
    get(target, property, receiver) {
      return property === 'apply' ? apply : Reflect.get(target, property, receiver);
    },
  });
  return {
    teacher: proxy,
    dispose() {
      for (const outputs of remembered.values()) tf.dispose(outputs);
      remembered.clear();
    },
  };
}

function fingerprint(x: tf.Tensor): string {
  const sums = tf.tidy(() => {
    const flat = tf.reshape(x.toFloat(), [-1]);
    const ramp = tf.add(tf.range(0, flat.shape[0], 1, 'float32'), 1);
    return tf.stack([tf.sum(flat), tf.sum(tf.square(flat)), tf.sum(tf.mul(flat, tf.div(ramp, flat.shape[0])))]);
  });
  const values = sums.dataSync();
  sums.dispose();
  return `${x.shape.join('x')}:${x.dtype}:${Array.from(values).join(',')}`;
}
