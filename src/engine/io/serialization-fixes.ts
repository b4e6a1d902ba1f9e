import * as tf from '@tensorflow/tfjs';

/**
 * tfjs-layers 4.22's SeparableConv config omits `depthMultiplier`, so every serialisation of such
 * a layer (saving, and the topology JSON that surgery rebuilds from) reloads with multiplier 1 and
 * rejects its own depthwise weights. Patched once, on the layer classes, so all paths agree.
 */
function includeDepthMultiplier(className: string): void {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  const prototype = entry?.[0]?.prototype as { getConfig(): tf.serialization.ConfigDict; depthMultiplier?: number; __prunelensDepthMultiplier?: boolean } | undefined;
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
