// A job's steps as the page shows them, derived from its events: one bar per step seen so far.
import type { Schemas } from "../api/client";

type Job = Pick<Schemas["JobOut"], "status" | "events" | "error_message" | "error_code">;
type JobEvent = Schemas["JobEventOut"];

export type StepState = "active" | "complete" | "failed" | "cancelled";

export interface StepView {
  step: string; // the job's own name for it ("queued" for the wait before the first)
  label: string;
  detail: string; // what the step said last
  state: StepState;
  fraction: number | null; // of this step, 0..1; null when the step does not say how far it is
}

export const ENDED_STATUSES = ["done", "failed", "cancelled"] as const;

export function jobEnded(status: string): boolean {
  return (ENDED_STATUSES as readonly string[]).includes(status);
}

const LABELS: Record<string, string> = {
  queued: "Waiting to start",
  decode: "Checking the sample",
  gpu: "Making room to train",
  slice: "Cutting the sample into clips",
  transcribe: "Transcribing the clips",
  reference: "Choosing a reference clip",
  adapt: "Adapting the voice",
  verify: "Testing the voice",
  train: "Training",
  register: "Saving the voice",
  speech: "Speaking the text",
  align: "Finding the mouth shapes",
  render: "Rendering the video",
};

export function stepLabel(step: string): string {
  if (LABELS[step]) return LABELS[step];
  if (step.startsWith("train:")) return `Training: ${step.slice("train:".length).replace(/[_-]+/g, " ")}`;
  const words = step.replace(/[_:-]+/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : "Working";
}

// "clip 3/12 ...", "frame 40/300": how far a step is, when its detail counts.
export function fractionFromDetail(detail: string): number | null {
  const match = /(\d+)\s*\/\s*(\d+)/.exec(detail);
  if (!match) return null;
  const [done, total] = [Number(match[1]), Number(match[2])];
  if (total <= 0 || done > total) return null;
  return done / total;
}

function stepOf(event: JobEvent): string | null {
  if (event.kind === "queued") return "queued";
  if (event.kind === "progress") return event.step || "working";
  return null; // done, failed, cancelled: the end of the step that ran
}

// The steps in the order they first appeared. A step is complete once a later one started, or the job is done.
export function jobSteps(job: Job): StepView[] {
  const events = [...job.events].sort((a, b) => a.seq - b.seq);
  const steps = new Map<string, { detail: string }>();
  let current: string | null = null;
  for (const event of events) {
    const step = stepOf(event);
    if (step === null) continue;
    steps.set(step, { detail: event.detail });
    current = step;
  }
  return [...steps].map(([step, { detail }]) => {
    let state: StepState = "complete";
    let fraction: number | null = 1;
    if (step === current && job.status !== "done") {
      state = job.status === "failed" ? "failed" : job.status === "cancelled" ? "cancelled" : "active";
      fraction = fractionFromDetail(detail);
    }
    return { step, label: stepLabel(step), detail, state, fraction };
  });
}

// One line for where the job is now.
export function jobHeadline(job: Job): string {
  const last = [...job.events].sort((a, b) => a.seq - b.seq).at(-1);
  switch (job.status) {
    case "done":
      return last?.detail ? `Done: ${last.detail}` : "Done";
    case "failed":
      return `Failed: ${job.error_message || last?.detail || job.error_code || "the job failed"}`;
    case "cancelled":
      return "Cancelled";
    default: {
      const steps = jobSteps(job);
      const active = steps.at(-1);
      if (!active) return "Waiting to start";
      return active.detail ? `${active.label}: ${active.detail}` : active.label;
    }
  }
}
