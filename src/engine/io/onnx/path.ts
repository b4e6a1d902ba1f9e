import { extname } from 'node:path';

const ONNX_EXTENSION = '.onnx';

/** Whether a path names an ONNX file; apart from load.ts so that checking it loads no ONNX reader. */
export function isOnnxPath(path: string): boolean {
  return extname(path).toLowerCase() === ONNX_EXTENSION;
}
