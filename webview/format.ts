/** Number formatting for the panel. Fixed locale so tests and screenshots read the same everywhere. */

const LOCALE = 'en-US';

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString(LOCALE);
}

/** FLOPs with an SI prefix: 1.23 MFLOPs. */
export function formatFlops(n: number): string {
  return `${formatSi(n)}FLOPs`;
}

export function formatSi(n: number): string {
  const abs = Math.abs(n);
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [scale, prefix] of units) {
    if (abs >= scale) return `${trimNumber(n / scale)} ${prefix}`;
  }
  return `${trimNumber(n)} `;
}

export function formatBytes(n: number): string {
  const units: [number, string][] = [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
  for (const [scale, unit] of units) {
    if (Math.abs(n) >= scale) return `${trimNumber(n / scale)} ${unit}`;
  }
  return `${Math.round(n)} B`;
}

/** A fraction in [0, 1] as a percentage: 0.9812 → "98.12%". */
export function formatPercent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function formatMs(ms: number): string {
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(2)} ms`;
}

/** Remaining time: "45 s", "3 min 05 s", "1 h 02 min". */
export function formatEta(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Relative change, e.g. 210000 → 95000 gives "−54.8%". */
export function formatChange(before: number, after: number): string {
  if (before === 0) return '';
  const change = (after - before) / before;
  const sign = change > 0 ? '+' : change < 0 ? '\u2212' : '';
  return `${sign}${Math.abs(change * 100).toFixed(1)}%`;
}

export function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

function trimNumber(v: number): string {
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return String(Number(v.toFixed(digits)));
}
