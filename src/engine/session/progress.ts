import type { ProgressEvent } from '../../protocol/events.js';

/** The session's planned stages, in the order it runs them. */
export const STAGES = ['load', 'timeDense', 'evaluateDense', 'method', 'prune', 'finetune', 'evaluate', 'save', 'report'] as const;
export type Stage = (typeof STAGES)[number];

/** What the session knows before it starts: enough to weigh its stages by their expected cost. */
export interface ProgressPlan {
  /** Training steps the method phase plans (0 when the method does not train). */
  methodSteps: number;
  methodBatchSize: number;
  methodEpochs: number;
  finetuneSteps: number;
  finetuneBatchSize: number;
  finetuneEpochs: number;
  /** Validation samples one evaluation reads (0 without data). */
  validationSamples: number;
  latencyRuns: number;
  latencyBatchSize: number;
  /** Layers timed alone (0 when per-layer timing is skipped). */
  timedLayers: number;
}

/**
 * Expected cost in sample-forward passes (one sample through the whole model). A training sample
 * costs a forward and a backward pass, about 3; each layer timed alone costs its runs at the latency
 * batch plus a fixed dispatch worth a few samples' passes (measured on the test CNN: its 8 layers took
 * 150 ms to time against 2 s for 12 GoPrune steps of 16 samples; training dominates every session that trains).
 */
const TRAIN_SAMPLE_COST = 3;
const LAYER_TIMING_RUNS = 7;
const LAYER_DISPATCH_COST = 3;
/** Loading, removal, saving and the report: each a share of the rest, never nothing. */
const FIXED_STAGE_SHARE = 0.02;
const FIXED_STAGE_FLOOR = 50;
/** Steps the ETA's rate is measured over. */
const RATE_WINDOW_STEPS = 20;
/** A method without training steps (L1's ranking, i-SpaSP's support search) against one evaluation. */
const UNTRAINED_METHOD_COST = 2;

/** Steps a training config runs on `trainSize` samples, as the training loop counts them. */
export function plannedSteps(train: { epochs: number; batchSize: number; maxStepsPerEpoch?: number } | undefined, trainSize: number): number {
  if (!train || train.epochs <= 0 || trainSize <= 0) return 0;
  const stepsPerEpoch = Math.min(Math.ceil(trainSize / Math.max(1, Math.floor(train.batchSize))), train.maxStepsPerEpoch ?? Infinity);
  return Math.round(train.epochs * stepsPerEpoch);
}

export function stageWeights(plan: ProgressPlan): Record<Stage, number> {
  const evaluation = plan.validationSamples;
  const latency = (plan.latencyRuns + 1) * plan.latencyBatchSize;
  const layerTiming = plan.timedLayers > 0 ? LAYER_TIMING_RUNS * plan.latencyBatchSize + plan.timedLayers * LAYER_DISPATCH_COST : 0;
  const training = (steps: number, batch: number, epochs: number) => steps * batch * TRAIN_SAMPLE_COST + Math.ceil(epochs) * evaluation;
  const variable = {
    timeDense: latency + layerTiming,
    evaluateDense: evaluation,
    method: plan.methodSteps > 0 ? training(plan.methodSteps, plan.methodBatchSize, plan.methodEpochs) : UNTRAINED_METHOD_COST * Math.max(evaluation, 100),
    finetune: plan.finetuneSteps > 0 ? training(plan.finetuneSteps, plan.finetuneBatchSize, plan.finetuneEpochs) + evaluation : 0,
    evaluate: evaluation + latency + layerTiming,
  };
  const sum = Object.values(variable).reduce((a, b) => a + b, 0);
  const fixed = Math.max(FIXED_STAGE_FLOOR, FIXED_STAGE_SHARE * sum);
  return { load: fixed, ...variable, prune: fixed, save: fixed, report: fixed / 4 } as Record<Stage, number>;
}

/**
 * One session-wide progress in [0, 1] and an ETA for the whole session: each stage weighs its
 * expected cost, moves only forward (a stage entered again, such as OCSPruner's second training
 * run, goes on where it was), and streams `progress` events with the current activity in words.
 * The ETA appears once a rate is known: from training steps when the session trains, otherwise
 * from the time the session took for the work already done once the method has run.
 */
export class SessionProgress {
  private weights!: Record<Stage, number>;
  private total = 0;
  private plannedSteps: Partial<Record<Stage, number>> = {};
  private stageIndex = 0;
  private fraction = 0;
  private steps = 0;
  private activity = 'loading the model';
  private readonly startedAt: number;
  /** The last steps' times and work done: the rate the ETA reads (the first steps run slower). */
  private recentSteps: { at: number; done: number }[] = [];
  private msPerWeight: number | undefined;
  private lastEmitAt = -Infinity;
  private lastEmitted = -1;
  private lastKind = '';

  constructor(plan: ProgressPlan, private readonly emit: (event: ProgressEvent) => void = () => undefined, private readonly clock: () => number = Date.now) {
    this.replan(plan);
    this.startedAt = clock();
  }

  /** Weighs the stages again once more is known (the data's size, after loading); call before the first stage ends. */
  replan(plan: ProgressPlan): void {
    this.weights = stageWeights(plan);
    this.total = STAGES.reduce((sum, stage) => sum + this.weights[stage], 0);
    this.plannedSteps = { method: plan.methodSteps, finetune: plan.finetuneSteps };
  }

  get stage(): Stage {
    return STAGES[this.stageIndex];
  }

  /** Moves to `stage` (never back) and says what runs. */
  enter(stage: Stage, activity: string): number {
    const index = STAGES.indexOf(stage);
    if (index > this.stageIndex) {
      this.stageIndex = index;
      this.fraction = 0;
      this.steps = 0;
      this.recentSteps = [];
    }
    this.activity = activity;
    return this.report(true);
  }

  /** Within the current stage: `fraction` done (never less than before), and what runs. */
  update(fraction: number, activity?: string): number {
    this.fraction = Math.max(this.fraction, Math.min(1, Math.max(0, fraction)));
    if (activity) this.activity = activity;
    return this.report(false);
  }

  /** One training step of the current stage done; returns the session progress the step event carries. */
  step(activity: string): number {
    this.steps++;
    const planned = this.plannedSteps[this.stage] ?? 0;
    // More steps than planned (i-SpaSP's block fine-tuning): creep on towards the stage's end.
    const fraction = planned >= this.steps ? this.steps / planned : this.steps / (this.steps + 1);
    this.fraction = Math.max(this.fraction, Math.min(1, fraction));
    this.activity = activity;
    const done = this.done();
    const now = this.clock();
    this.recentSteps.push({ at: now, done });
    if (this.recentSteps.length > RATE_WINDOW_STEPS) this.recentSteps.shift();
    const oldest = this.recentSteps[0];
    if (done > oldest.done) this.msPerWeight = (now - oldest.at) / (done - oldest.done);
    return this.report(false);
  }

  value(): number {
    return this.total > 0 ? Math.min(1, this.done() / this.total) : 0;
  }

  /** Milliseconds until the session ends, once a rate is known. */
  etaMs(): number | undefined {
    let rate = this.msPerWeight;
    if (rate === undefined && this.stageIndex > STAGES.indexOf('method')) {
      const done = this.done();
      if (done > 0) rate = (this.clock() - this.startedAt) / done;
    }
    return rate === undefined ? undefined : Math.max(0, Math.round((this.total - this.done()) * rate));
  }

  /** The session ended: progress 1, nothing left. */
  finish(activity = 'done'): void {
    this.stageIndex = STAGES.length - 1;
    this.fraction = 1;
    this.activity = activity;
    this.emit({ type: 'progress', progress: 1, etaMs: 0, activity });
  }

  private done(): number {
    let done = 0;
    for (let i = 0; i < this.stageIndex; i++) done += this.weights[STAGES[i]];
    return done + this.weights[this.stage] * this.fraction;
  }

  /** Emits a progress event on stage changes, on a new kind of activity, and at most every 200 ms otherwise; returns the value. */
  private report(force: boolean): number {
    const progress = this.value();
    const now = this.clock();
    const kind = this.activity.replace(/\d+/g, '#');
    if (force || kind !== this.lastKind || (now - this.lastEmitAt >= 200 && progress >= this.lastEmitted)) {
      this.lastEmitAt = now;
      this.lastKind = kind;
      this.lastEmitted = progress;
      const etaMs = this.etaMs();
      this.emit({ type: 'progress', progress, ...(etaMs !== undefined ? { etaMs } : {}), activity: this.activity });
    }
    return progress;
  }
}
