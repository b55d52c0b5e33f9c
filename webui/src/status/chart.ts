// The recent turns' stage latencies as grouped bars: the scale, the ticks and where every bar goes. The SVG
// component only draws what this computes.
import type { Schemas } from "../api/client";

type Turn = Schemas["TurnStatusOut"];

// A voice turn's trace, in the order the stages happen (seconds from the end of the user's speech).
export const VOICE_STAGES = ["final", "first_token", "first_audio", "first_frame", "end"] as const;

const LABELS: Record<string, string> = {
  final: "final transcript",
  first_token: "first token",
  first_audio: "first audio",
  first_frame: "first frame",
  end: "end",
  queue_s: "queued (text)",
  first_token_s: "first token (text)",
  total_s: "total (text)",
};

const COLORS: Record<string, string> = {
  final: "#6aa8ff",
  first_token: "#f2b84b",
  first_audio: "#5cc98a",
  first_frame: "#e07be0",
  end: "#a0a8b8",
  queue_s: "#4fd1c5",
  first_token_s: "#ff8a5c",
  total_s: "#c0a0ff",
};
const SPARE_COLORS = ["#b8c26a", "#7fc8f8", "#f49ac2", "#d9d9d9"];

export function stageLabel(key: string): string {
  return LABELS[key] ?? key.replace(/_s$/, "").replace(/_/g, " ");
}

export function stageColor(key: string, index: number): string {
  return COLORS[key] ?? SPARE_COLORS[index % SPARE_COLORS.length];
}

// Text turns also carry token counts; only keys that are seconds belong on a seconds axis.
export function isSecondsKey(key: string): boolean {
  return (VOICE_STAGES as readonly string[]).includes(key) || key.endsWith("_s");
}

// The stages to chart: the voice stages present, in their order, then the other seconds keys as first met.
export function chartKeys(turns: Turn[]): string[] {
  const present = new Set<string>();
  const others: string[] = [];
  for (const turn of turns) {
    for (const [key, value] of Object.entries(turn.stages)) {
      if (!isSecondsKey(key) || !Number.isFinite(value)) continue;
      if (!present.has(key) && !(VOICE_STAGES as readonly string[]).includes(key)) others.push(key);
      present.add(key);
    }
  }
  return [...VOICE_STAGES.filter((key) => present.has(key)), ...others];
}

// Ticks from 0 at a round step (1, 2, 2.5 or 5 times a power of ten), the last at or above `max`.
export function niceTicks(max: number, target = 4): { top: number; step: number; ticks: number[] } {
  if (!(max > 0) || !Number.isFinite(max)) return { top: 1, step: 0.25, ticks: [0, 0.25, 0.5, 0.75, 1] };
  const rough = max / target;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const count = Math.ceil(max / step - 1e-9);
  const ticks = Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)));
  return { top: ticks[ticks.length - 1], step, ticks };
}

// A turn that did not end well: "failed" (an error), or done but with a code (e.g. interrupted).
export function turnMark(turn: Turn): { code: string; failed: boolean } | null {
  if (turn.status === "failed") return { code: turn.error_code || "failed", failed: true };
  if (turn.error_code) return { code: turn.error_code, failed: false };
  return null;
}

export interface Bar {
  key: string;
  value: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Group {
  turn: Turn;
  x: number;
  width: number;
  bars: Bar[];
  mark: { code: string; failed: boolean } | null;
  showLabel: boolean;
}

export interface ChartLayout {
  width: number;
  height: number;
  plot: { left: number; top: number; right: number; bottom: number };
  max: number;
  top: number;
  ticks: { value: number; y: number }[];
  keys: string[];
  groups: Group[];
}

export interface ChartSize {
  width: number; // what the container offers; the chart grows past it when the groups need more
  height: number;
  minGroupWidth?: number;
}

export const MARGIN = { left: 48, right: 8, top: 18, bottom: 26 };
const MAX_LABELS = 6;

// `turns` newest first (as the API sends them); the chart puts the oldest on the left.
export function chartLayout(turns: Turn[], size: ChartSize): ChartLayout {
  const ordered = [...turns].reverse();
  const keys = chartKeys(ordered);
  const values = ordered.flatMap((t) => keys.map((k) => t.stages[k]).filter((v): v is number => Number.isFinite(v)));
  const max = values.length ? Math.max(...values) : 0;
  const { top, ticks } = niceTicks(max);

  const n = ordered.length;
  // Room for the most bars one turn has (a voice turn's five), not for every key of every kind.
  const mostBars = Math.max(0, ...ordered.map((t) => keys.filter((k) => Number.isFinite(t.stages[k])).length));
  const minGroup = size.minGroupWidth ?? Math.max(12, mostBars * 4 + 4);
  const innerWidth = Math.max(size.width - MARGIN.left - MARGIN.right, n * minGroup, 0);
  const width = MARGIN.left + innerWidth + MARGIN.right;
  const plot = { left: MARGIN.left, top: MARGIN.top, right: MARGIN.left + innerWidth, bottom: size.height - MARGIN.bottom };
  const innerHeight = Math.max(plot.bottom - plot.top, 1);
  const y = (value: number) => plot.bottom - (Math.min(value, top) / top) * innerHeight;

  const groupWidth = n ? innerWidth / n : 0;
  const gap = Math.min(groupWidth * 0.2, 12);
  const labelEvery = Math.max(1, Math.ceil(n / MAX_LABELS));
  const groups = ordered.map((turn, i): Group => {
    const x = plot.left + i * groupWidth;
    const own = keys.filter((k) => Number.isFinite(turn.stages[k]));
    const barWidth = own.length ? (groupWidth - gap) / own.length : 0;
    const bars = own.map((key, j): Bar => {
      const value = turn.stages[key];
      const barTop = y(value);
      return { key, value, x: x + gap / 2 + j * barWidth, y: barTop, width: barWidth, height: plot.bottom - barTop };
    });
    // Label every few groups, counted from the newest so the latest turn is always labelled.
    return { turn, x, width: groupWidth, bars, mark: turnMark(turn), showLabel: (n - 1 - i) % labelEvery === 0 };
  });

  return { width, height: size.height, plot, max, top, ticks: ticks.map((value) => ({ value, y: y(value) })), keys, groups };
}

// The middle value of each stage over the turns that have it.
export function medians(turns: Turn[], keys: string[]): { key: string; value: number }[] {
  return keys.flatMap((key) => {
    const values = turns
      .map((t) => t.stages[key])
      .filter((v): v is number => Number.isFinite(v))
      .sort((a, b) => a - b);
    if (!values.length) return [];
    const mid = values.length >> 1;
    const value = values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    return [{ key, value }];
  });
}
