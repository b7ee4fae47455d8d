// A one-line progress bar for long replays, redrawn in place on a terminal's stderr.
import { printable } from '../../common/printable.js';
import type { ReplayProgress } from '../core/replay.js';

/** Where the bar is drawn: stderr when it is a TTY (the CLI decides). */
export interface ProgressStream {
  write(text: string): unknown;
  /** Terminal width, when known. */
  columns?: number;
}

const BAR = 20;
const MB = 1024 * 1024;

/**
 * Draws at most every `everyMs` (drawing costs more than a frame's replay), and only once the
 * replay has run for `afterMs`: a short replay never flashes a bar.
 */
export class ProgressLine {
  readonly #out: ProgressStream;
  readonly #now: () => number;
  readonly #everyMs: number;
  readonly #afterMs: number;
  readonly #start: number;
  #last = Number.NEGATIVE_INFINITY;
  #drawn = false;

  constructor(
    out: ProgressStream,
    opts: { now?: () => number; everyMs?: number; afterMs?: number } = {},
  ) {
    this.#out = out;
    this.#now = opts.now ?? (() => performance.now());
    this.#everyMs = opts.everyMs ?? 200;
    this.#afterMs = opts.afterMs ?? 500;
    this.#start = this.#now();
  }

  update(p: ReplayProgress): void {
    const now = this.#now();
    if (now - this.#start < this.#afterMs || now - this.#last < this.#everyMs) return;
    this.#last = now;
    this.#out.write(`\r${this.#fit(progressText(p, (now - this.#start) / 1000))}\x1b[K`);
    this.#drawn = true;
  }

  /** Erases the bar (before the report or a message is written). */
  clear(): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }

  #fit(text: string): string {
    const width = (this.#out.columns || 80) - 1;
    return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
  }
}

/** The bar's text, e.g. `[1/2] fw1.mpk [#########...........]  45%  120/267 MB  3.1 M events/s`. */
export function progressText(p: ReplayProgress, seconds: number): string {
  const share = p.total > 0 ? Math.min(1, p.bytes / p.total) : 1;
  const full = Math.round(share * BAR);
  const bar = `[${'#'.repeat(full)}${'.'.repeat(BAR - full)}]`;
  const percent = `${Math.floor(share * 100)}%`.padStart(4);
  const sizes = `${(p.bytes / MB).toFixed(0)}/${(p.total / MB).toFixed(0)} MB`;
  const rate = seconds > 0 ? p.events / seconds : 0;
  const which = p.count > 1 ? `[${p.index + 1}/${p.count}] ` : '';
  return `${which}${printable(p.path)} ${bar} ${percent}  ${sizes}  ${rateText(rate)} events/s`;
}

function rateText(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)} M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(0)} k`;
  return perSecond.toFixed(0);
}
