// A turn's latency (turn_end.trace: seconds from the detected end of the user's speech to each stage), in words.

export interface TurnLatency {
  turn: number;
  status: string;
  trace: Record<string, number>;
}

export const STAGES: { key: string; label: string; title: string }[] = [
  { key: "final", label: "heard", title: "the final transcript" },
  { key: "first_token", label: "first word", title: "the model's first word" },
  { key: "first_audio", label: "voice", title: "the first sound of the answer" },
  { key: "first_frame", label: "face", title: "the first frame of the talking face" },
  { key: "end", label: "done", title: "the whole answer made" },
];

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  return `${Math.round(seconds)} s`;
}

// "heard 0.9 s · first word 1.1 s · voice 1.6 s · face 1.6 s · done 3.2 s"; stages the trace lacks are left out.
export function formatTrace(trace: Record<string, number>): string {
  return STAGES.filter((stage) => typeof trace[stage.key] === "number")
    .map((stage) => `${stage.label} ${formatSeconds(trace[stage.key])}`)
    .join(" · ");
}

// The newest first, at most `keep`; a turn reported again (done, then interrupted) replaces its entry.
export function pushLatency(list: TurnLatency[], entry: TurnLatency, keep = 4): TurnLatency[] {
  return [entry, ...list.filter((item) => item.turn !== entry.turn)].slice(0, keep);
}
