import type { Phase } from '../../protocol/events.js';

/**
 * Overall session progress in [0, 1]: training phases weigh by their epochs, every other
 * phase by a small fixed share, so the bar moves steadily in both short and long runs.
 */
export class SessionProgress {
  private readonly weights = new Map<Phase, number>();
  private readonly order: Phase[] = ['load', 'evaluate', 'train', 'prune', 'finetune', 'save', 'report'];
  private current: Phase = 'load';
  private fraction = 0;

  constructor(trainEpochs: number, finetuneEpochs: number) {
    const unit = Math.max(0.5, (trainEpochs + finetuneEpochs) / 20);
    for (const phase of this.order) this.weights.set(phase, unit);
    this.weights.set('train', Math.max(unit, trainEpochs));
    this.weights.set('finetune', finetuneEpochs > 0 ? finetuneEpochs : 0);
  }

  enter(phase: Phase): void {
    this.current = phase;
    this.fraction = 0;
  }

  within(fraction: number): number {
    this.fraction = Math.min(1, Math.max(0, fraction));
    return this.value();
  }

  value(): number {
    let total = 0;
    let done = 0;
    for (const phase of this.order) {
      const w = this.weights.get(phase) ?? 0;
      total += w;
      const index = this.order.indexOf(phase);
      const currentIndex = this.order.indexOf(this.current);
      if (index < currentIndex) done += w;
      else if (index === currentIndex) done += w * this.fraction;
    }
    return total > 0 ? done / total : 0;
  }
}
