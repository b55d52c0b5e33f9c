import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { fractionFromDetail, jobEnded, jobHeadline, jobSteps, stepLabel } from "./jobSteps";

type JobEvent = Schemas["JobEventOut"];

let seq = 0;
function event(kind: JobEvent["kind"], step: string, progress: number, detail = ""): JobEvent {
  return { seq: seq++, at: 1000 + seq, kind, step, progress, detail };
}

function job(status: Schemas["JobOut"]["status"], events: JobEvent[], error_message = "") {
  return { status, events, error_message, error_code: error_message ? "voice-training-failed" : "" };
}

describe("jobSteps", () => {
  it("shows only the wait while the job is queued", () => {
    const steps = jobSteps(job("queued", [event("queued", "", 0, "waiting for the trainer")]));
    expect(steps).toEqual([
      { step: "queued", label: "Waiting to start", detail: "waiting for the trainer", state: "active", fraction: null },
    ]);
  });

  it("completes a step once a later one starts, and follows the active one", () => {
    const events = [
      event("queued", "", 0),
      event("progress", "decode", 0, "the trainer took the job"),
      event("progress", "decode", 0.05, "61.0 s of audio, 48.2 s of speech"),
      event("progress", "slice", 0.08, "cutting the sample into clips at its pauses"),
      event("progress", "transcribe", 0.2, "clip 3/12 (4.1 s): 'hello'"),
    ];
    const steps = jobSteps(job("running", events));
    expect(steps.map((s) => [s.step, s.state, s.fraction])).toEqual([
      ["queued", "complete", 1],
      ["decode", "complete", 1],
      ["slice", "complete", 1],
      ["transcribe", "active", 0.25],
    ]);
    expect(steps[1].detail).toBe("61.0 s of audio, 48.2 s of speech");
  });

  it("orders by seq, whatever order the events came in", () => {
    const a = event("progress", "slice", 0.08);
    const b = event("progress", "reference", 0.5);
    expect(jobSteps(job("running", [b, a])).map((s) => s.step)).toEqual(["slice", "reference"]);
  });

  it("completes every step when the job is done", () => {
    const events = [event("progress", "adapt", 0.55), event("progress", "verify", 0.95), event("done", "verify", 1, "ok")];
    expect(jobSteps(job("done", events)).map((s) => [s.step, s.state, s.fraction])).toEqual([
      ["adapt", "complete", 1],
      ["verify", "complete", 1],
    ]);
  });

  it("marks the step that was running when the job failed or was cancelled", () => {
    const events = [event("progress", "slice", 0.08), event("progress", "transcribe", 0.3, "clip 1/4")];
    const failed = jobSteps(job("failed", [...events, event("failed", "transcribe", 0.3, "too few clips")], "x"));
    expect(failed.map((s) => s.state)).toEqual(["complete", "failed"]);
    const cancelled = jobSteps(job("cancelled", [...events, event("cancelled", "transcribe", 0.3, "cancelled")]));
    expect(cancelled.map((s) => s.state)).toEqual(["complete", "cancelled"]);
  });

  it("has no steps before any event", () => {
    expect(jobSteps(job("queued", []))).toEqual([]);
  });
});

describe("fractionFromDetail", () => {
  it("reads a count of done over total", () => {
    expect(fractionFromDetail("frame 30/120")).toBe(0.25);
    expect(fractionFromDetail("clip 12 / 12 (3.0 s)")).toBe(1);
  });

  it("ignores details without a sensible count", () => {
    expect(fractionFromDetail("measuring the sample's voice")).toBeNull();
    expect(fractionFromDetail("5/0")).toBeNull();
    expect(fractionFromDetail("7/3")).toBeNull();
  });
});

describe("labels and headline", () => {
  it("names known steps and tidies unknown ones", () => {
    expect(stepLabel("transcribe")).toBe("Transcribing the clips");
    expect(stepLabel("train:s2_train")).toBe("Training: s2 train");
    expect(stepLabel("warm_up")).toBe("Warm up");
  });

  it("says where the job is", () => {
    const running = job("running", [event("progress", "transcribe", 0.2, "clip 2/8")]);
    expect(jobHeadline(running)).toBe("Transcribing the clips: clip 2/8");
    expect(jobHeadline(job("failed", [event("failed", "x", 0.3, "gone")], "the trainer crashed"))).toBe(
      "Failed: the trainer crashed",
    );
    expect(jobHeadline(job("done", [event("done", "verify", 1, "voice ready")]))).toBe("Done: voice ready");
    expect(jobHeadline(job("cancelled", []))).toBe("Cancelled");
    expect(jobEnded("done") && jobEnded("cancelled") && !jobEnded("running")).toBe(true);
  });
});
