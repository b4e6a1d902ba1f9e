/**
 * How values read wherever PruneLens shows them: the CLI, the extension's notifications and
 * status bar, and the panel. One rule per kind of value; pure and locale-free, so tests and
 * screenshots read the same everywhere.
 */

const MINUS = '\u2212';

/** Compact count for tables and one-line summaries: 5773, 115.4k, 3.14M, 1.20G. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** A fraction as a percentage: 0.507 → "50.7%"; "—" when unknown. */
export function formatPercent(fraction: number | undefined, digits = 1): string {
  return fraction === undefined || !Number.isFinite(fraction) ? '—' : `${(fraction * 100).toFixed(digits)}%`;
}

/** Top-1 accuracy: two decimals, since fine-tuning moves it by tenths of a point. */
export function formatAccuracy(fraction: number | undefined): string {
  return formatPercent(fraction, 2);
}

/** Whether a metric is a fraction shown in percent (top-1, F1, agreement) rather than a value (MAE, R², relative error). */
export function isFractionMetric(name: string): boolean {
  return /^top-1|F1|agreement/.test(name);
}

/** A metric's value: fractions as percentages with two decimals, others with four significant digits. */
export function formatMetricValue(metric: { name: string; value: number | undefined }): string {
  const { name, value } = metric;
  if (value === undefined || !Number.isFinite(value)) return '—';
  return isFractionMetric(name) ? formatAccuracy(value) : value.toPrecision(4);
}

/** A metric's change: points for fractions ("−0.38 pp"), a difference otherwise ("+0.0123"). */
export function formatMetricChange(name: string, before: number, after: number): string {
  if (!Number.isFinite(before) || !Number.isFinite(after)) return '—';
  if (isFractionMetric(name)) return formatPointChange(before, after);
  const difference = after - before;
  const shown = Math.abs(difference).toPrecision(3);
  const sign = Number(shown) === 0 ? '' : difference > 0 ? '+' : MINUS;
  return `${sign}${shown}`;
}

/**
 * What fine-tuning bought, the metric's three measurements in order: "62.40% right after pruning"
 * sits between the dense model's and the fine-tuned one's. Callers put the metric's name in front.
 * "99.12% dense → 62.40% right after pruning → 98.74% after fine-tuning".
 */
export function formatRecovery(metric: { name: string; before: number; afterPruning?: number; after: number }): string {
  const value = (v: number) => formatMetricValue({ name: metric.name, value: v });
  if (metric.afterPruning === undefined) return `${value(metric.before)} dense \u2192 ${value(metric.after)} pruned (not fine-tuned)`;
  return `${value(metric.before)} dense \u2192 ${value(metric.afterPruning)} right after pruning \u2192 ${value(metric.after)} after fine-tuning`;
}

/** Relative change: 210000 → 95000 gives "−54.8%"; "—" when there is nothing to compare with. */
export function formatChange(before: number, after: number): string {
  if (before === 0 || !Number.isFinite(before) || !Number.isFinite(after)) return '—';
  const percent = ((after - before) / before) * 100;
  const shown = Math.abs(percent).toFixed(1);
  const sign = Number(shown) === 0 ? '' : percent > 0 ? '+' : MINUS;
  return `${sign}${shown}%`;
}

/** Change of a fraction in percentage points: 0.9912 → 0.9874 gives "−0.38 pp". */
export function formatPointChange(before: number, after: number): string {
  const points = (after - before) * 100;
  const shown = Math.abs(points).toFixed(2);
  const sign = Number(shown) === 0 ? '' : points > 0 ? '+' : MINUS;
  return `${sign}${shown} pp`;
}

/** Time taken: "850 ms", "13.6 s", "2 min 5 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** Time left, to the second: "45 s", "3 min 05 s", "1 h 02 min"; empty when unknown. */
export function formatEta(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/**
 * A session's one progress as every place shows it (panel header, notification, status bar): whole percent,
 * the ETA while there is time left, and indeterminate (words, no "0%") while nothing is known yet.
 */
export function progressDisplay(fraction: number, etaMs: number | undefined): { percent: number; indeterminate: boolean; eta: string } {
  const percent = Math.round((Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0) * 100);
  const eta = etaMs !== undefined && Number.isFinite(etaMs) && etaMs > 0 ? formatEta(etaMs) : '';
  return { percent, indeterminate: percent === 0 && eta === '', eta };
}

/** A latency: "4.20 ms", "123 ms". */
export function formatMs(ms: number): string {
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(2)} ms`;
}

/** The interquartile range of a latency's runs: "4.10–4.35 ms"; empty when it was not recorded. */
export function formatLatencyRange(latency: { p25Ms?: number; p75Ms?: number }): string {
  if (latency.p25Ms === undefined || latency.p75Ms === undefined) return '';
  return `${formatMs(latency.p25Ms).replace(/ ms$/, '')}–${formatMs(latency.p75Ms)}`;
}

/** A latency's median with the interquartile range of its runs when recorded: "4.20 ms (IQR 4.10–4.35 ms)". */
export function formatLatency(latency: { medianMs: number; p25Ms?: number; p75Ms?: number }): string {
  const range = formatLatencyRange(latency);
  return range ? `${formatMs(latency.medianMs)} (IQR ${range})` : formatMs(latency.medianMs);
}

/** Bytes in binary units with about three significant digits: "371 KiB", "12.5 MiB", "1.52 GiB". */
export function formatBytes(n: number): string {
  const units: [number, string][] = [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
  for (const [scale, unit] of units) {
    if (Math.abs(n) >= scale) return `${significant(n / scale)} ${unit}`;
  }
  return `${Math.round(n)} B`;
}

/** A tensor or input shape; unknown dimensions read "?": [?, 28, 28, 1]. */
export function formatShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** A plain-text table with a header rule; columns of numbers (and dashes) align right. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => NUMERIC_CELL.test(String(r[i] ?? ''))));
  const line = (r: string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const NUMERIC_CELL = /^[-+−]?[\d.,]+[%kMG]?B?$|^—$|^[-+−]?[\d.]+ ?(ms|s|×|pp|B|KiB|MiB|GiB)$|^[\d.]+ ms \(IQR [\d.]+–[\d.]+ ms\)$/;

function significant(v: number): string {
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return String(Number(v.toFixed(digits)));
}

/** How closely two runs of one model agree: "max diff 2.4e-6 (relative 1.1e-7)". */
export function formatDifference(agreement: { maxAbsDifference: number; maxRelDifference: number }): string {
  return `max diff ${agreement.maxAbsDifference.toExponential(1)} (relative ${agreement.maxRelDifference.toExponential(1)})`;
}

/**
 * An ONNX model's check in ONNX Runtime, one line: "onnxruntime (cpu) on 8 validation samples: imported graph vs
 * original file max diff 2.4e-6 (relative 1.1e-7); pruned model vs written file max diff …".
 */
export function formatOnnxCheck(check: { runtime: string; inputs: string; maxAbsDifference: number; maxRelDifference: number; pruned?: { maxAbsDifference: number; maxRelDifference: number } }): string {
  const pruned = check.pruned ? `; pruned model vs written file ${formatDifference(check.pruned)}` : '';
  return `${check.runtime} on ${check.inputs}: imported graph vs original file ${formatDifference(check)}${pruned}`;
}

/** Which runtime timed a latency and on what batch: "onnxruntime (cpu), batch 8". */
export function formatLatencyRuntime(runtime: string, batchSize: number): string {
  return `${runtime}, batch ${batchSize}`;
}
