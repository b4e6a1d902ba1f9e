// picomatch 2.x ships no types; only what the data loaders use.
declare module 'picomatch' {
  interface ScanResult { base: string; glob: string; isGlob: boolean; negated: boolean }
  interface Picomatch {
    (pattern: string, options?: { dot?: boolean }): (path: string) => boolean;
    scan(pattern: string): ScanResult;
  }
  const picomatch: Picomatch;
  export default picomatch;
}
