import * as tf from '@tensorflow/tfjs';

/** The prototype of the tf.layers class registered under `className`, to patch a method for every instance. */
export function layerClassPrototype<T extends object>(className: string): T | undefined {
  const registered = tf.serialization.SerializationMap.getMap().classNameMap[className];
  return registered?.[0]?.prototype as T | undefined;
}
