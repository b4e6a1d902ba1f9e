/** The protobufjs descriptor of src/engine/io/onnx/onnx.proto, as onnx-schema.json holds it. */
export function onnxSchemaJson(): string;
