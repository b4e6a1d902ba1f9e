// Real pretrained models that no one on the project wrote, unpacked from npm packages.
// nsfwjs ships Keras-made TF.js layers models as JS modules (model.json as a UMD module,
// every shard as a base64 string); this writes them out as model.json + .bin shards.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export type NsfwjsModel = 'mobilenet_v2' | 'inception_v3';

const ROOT = resolve(__dirname, '../..');
/** Cache folder for unpacked models (git-ignored). */
const CACHE = join(ROOT, '.cache', 'real-models');
/** The package's exports hide its files from require.resolve; it is a devDependency of this repository. */
const NSFWJS = join(ROOT, 'node_modules', 'nsfwjs');

/** Whether the devDependency is installed (a production install has no nsfwjs). */
export function nsfwjsAvailable(): boolean {
  return existsSync(join(NSFWJS, 'dist', 'models'));
}

/** Path of model.json of an nsfwjs model, unpacked once into `.cache/real-models/`. */
export function nsfwjsModel(name: NsfwjsModel): string {
  const out = join(CACHE, `nsfwjs-${name}`);
  const modelJson = join(out, 'model.json');
  if (existsSync(modelJson)) return modelJson;
  const source = join(NSFWJS, 'dist', 'models', name);
  const json = require(join(source, 'model.min.js')) as { weightsManifest: { paths: string[] }[] };
  const staging = `${out}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const shards = readdirSync(source).filter((f) => /^group\d+-shard\d+of\d+\.min\.js$/.test(f));
  for (const shard of shards) {
    const base64 = require(join(source, shard)) as string;
    writeFileSync(join(staging, shard.replace(/\.min\.js$/, '.bin')), Buffer.from(base64, 'base64'));
  }
  for (const group of json.weightsManifest) group.paths = group.paths.map((p) => `${p.replace(/^.*\//, '').replace(/(\.min\.js|\.bin)$/, '')}.bin`);
  writeFileSync(join(staging, 'model.json'), JSON.stringify(json));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(staging, out);
  return modelJson;
}
