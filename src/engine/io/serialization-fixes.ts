import type * as tf from '@tensorflow/tfjs';
import { layerClassPrototype } from '../util/layer-classes.js';

/**
 * tfjs-layers 4.22's SeparableConv config omits `depthMultiplier`, so every serialisation of such
 * a layer (saving, and the topology JSON that surgery rebuilds from) reloads with multiplier 1 and
 * rejects its own depthwise weights. Patched once, on the layer classes, so all paths agree.
 */
function includeDepthMultiplier(className: string): void {
  const prototype = layerClassPrototype<{ getConfig(): tf.serialization.ConfigDict; depthMultiplier?: number; __prunelensDepthMultiplier?: boolean }>(className);
  if (!prototype || prototype.__prunelensDepthMultiplier) return;
  const getConfig = prototype.getConfig;
  prototype.getConfig = function (this: { depthMultiplier?: number }) {
    const config = getConfig.call(this);
    if (this.depthMultiplier !== undefined) config.depthMultiplier = this.depthMultiplier;
    return config;
  };
  prototype.__prunelensDepthMultiplier = true;
}

includeDepthMultiplier('SeparableConv1D');
includeDepthMultiplier('SeparableConv2D');
