// Writes src/engine/io/onnx/onnx-schema.json, the protobufjs descriptor of the official onnx.proto
// vendored beside it (ONNX 1.23.0, github.com/onnx/onnx onnx/onnx.proto at f7546912). The engine
// loads the descriptor, so it needs no .proto parser at run time; test/engine/onnx-proto.test.ts checks it is current.
import protobuf from 'protobufjs';
import { readFileSync, writeFileSync } from 'node:fs';

const dir = 'src/engine/io/onnx';
export function onnxSchemaJson() {
  const { root } = protobuf.parse(readFileSync(`${dir}/onnx.proto`, 'utf8'), { keepCase: true });
  return `${JSON.stringify(root.toJSON(), null, 1)}\n`;
}

if (process.argv[1]?.endsWith('onnx-schema.mjs')) writeFileSync(`${dir}/onnx-schema.json`, onnxSchemaJson());
