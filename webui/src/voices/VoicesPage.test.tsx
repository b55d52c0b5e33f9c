import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../api/client";

const fake = await vi.hoisted(async () => (await import("./fakeFetch")).installFakeFetch());
const { json } = await import("./fakeFetch");
const { VoicesPage } = await import("../pages/Voices");
const { VOICE_JOBS_KEY } = await import("./storedJobs");

function voice(id: string, name: string, kind: "cloned" | "approximated", active = false): Schemas["VoiceOut"] {
  return {
    voice_id: id,
    name,
    language: "en",
    kind,
    status: "ready",
    consent: "yes",
    consent_at: 1_700_000_000,
    reference_text: "hello",
    clips: 9,
    created_at: 1_700_000_000,
    updated_at: 1_700_000_000,
    active,
    note: kind === "approximated" ? "Piper adapted toward the sample" : "",
    measures: {},
  };
}

function job(status: Schemas["JobOut"]["status"], events: Schemas["JobEventOut"][], voice_id: string | null = null) {
  return {
    job_id: "j9",
    kind: "train-voice",
    status,
    step: events.at(-1)?.step ?? "",
    progress: events.at(-1)?.progress ?? 0,
    error_code: "",
    error_message: "",
    voice_id,
    created_at: 1_700_000_000,
    updated_at: 1_700_000_100,
    events,
  };
}

describe("VoicesPage", () => {
  beforeEach(() => {
    fake.reset();
    localStorage.clear();
    localStorage.setItem("mynah.token", "tok");
    URL.createObjectURL = vi.fn(() => "blob:x");
    URL.revokeObjectURL = vi.fn();
  });
  afterEach(() => cleanup());

  it("lists the voices and says plainly that an approximated voice is not a clone", async () => {
    fake.on("GET", "/api/voices", json(200, { voices: [voice("v1", "Rose", "approximated", true), voice("v2", "Sam", "cloned")], active_voice_id: "v1" }));
    render(<VoicesPage />);
    const rose = await screen.findByRole("article", { name: "Voice Rose" });
    expect(within(rose).getByText("In use")).toBeTruthy();
    expect(within(rose).getByText(/An approximation of the speaker, not a clone/)).toBeTruthy();
    expect(within(rose).getByText("Piper adapted toward the sample")).toBeTruthy();
    expect(within(rose).queryByText("Use this voice")).toBeNull();
    const sam = screen.getByRole("article", { name: "Voice Sam" });
    expect(within(sam).queryByText(/not a clone/)).toBeNull();
    expect(within(sam).getByText("Cloned")).toBeTruthy();
  });

  it("activates a voice, and the built-in one by its id", async () => {
    const list = { voices: [voice("v2", "Sam", "cloned", true)], active_voice_id: "v2" };
    fake.on("GET", "/api/voices", json(200, list));
    fake.on("POST", /^\/api\/voices\/[^/]+\/activate$/, json(200, list));
    render(<VoicesPage />);
    const builtin = await screen.findByRole("article", { name: "Built-in voice" });
    fireEvent.click(within(builtin).getByText("Use this voice"));
    await waitFor(() => expect(fake.calls.some((c) => c.path === "/api/voices/builtin/activate")).toBe(true));
  });

  it("deletes a voice only after the question is answered", async () => {
    fake.on("GET", "/api/voices", json(200, { voices: [voice("v2", "Sam", "cloned")], active_voice_id: null }));
    fake.on("DELETE", "/api/voices/v2", new Response(null, { status: 204 }));
    render(<VoicesPage />);
    const sam = await screen.findByRole("article", { name: "Voice Sam" });
    fireEvent.click(within(sam).getByText("Delete"));
    expect(fake.calls.some((c) => c.method === "DELETE")).toBe(false);
    fireEvent.click(within(within(sam).getByRole("group")).getByText("Delete"));
    await waitFor(() => expect(fake.calls.some((c) => c.method === "DELETE" && c.path === "/api/voices/v2")).toBe(true));
  });

  it("previews a voice through /api/speak and plays the answer", async () => {
    fake.on("GET", "/api/voices", json(200, { voices: [voice("v2", "Sam", "cloned")], active_voice_id: null }));
    fake.on("POST", "/api/speak", new Response(new Uint8Array(44), { headers: { "Content-Type": "audio/wav" } }));
    const play = vi.spyOn(HTMLMediaElement.prototype, "play").mockResolvedValue(undefined);
    render(<VoicesPage />);
    const sam = await screen.findByRole("article", { name: "Voice Sam" });
    fireEvent.click(within(sam).getByText("Preview"));
    fireEvent.click(within(sam).getByText("Play"));
    await waitFor(() => expect(play).toHaveBeenCalled());
    const speak = fake.calls.find((c) => c.path === "/api/speak")!;
    expect(JSON.parse(speak.body as string)).toEqual({ text: "Hello! This is how I sound.", format: "wav", voice: "v2" });
    expect(sam.querySelector("audio")?.getAttribute("src")).toBe("blob:x");
  });

  it("brings back a stored training job, follows it to the end, then offers the new voice", async () => {
    localStorage.setItem(VOICE_JOBS_KEY, JSON.stringify(["j9"]));
    const before: Schemas["VoicesOut"] = { voices: [], active_voice_id: null };
    const after = { voices: [voice("v7", "Rose", "approximated")], active_voice_id: null };
    let voicesAnswer = before;
    fake.on("GET", "/api/voices", () => json(200, voicesAnswer));
    const running = job("running", [
      { seq: 0, at: 1, kind: "queued", step: "", progress: 0, detail: "waiting for the trainer" },
      { seq: 1, at: 2, kind: "progress", step: "slice", progress: 0.08, detail: "cutting" },
      { seq: 2, at: 3, kind: "progress", step: "transcribe", progress: 0.2, detail: "clip 2/8" },
    ]);
    fake.on("GET", "/api/jobs/j9", json(200, running));
    render(<VoicesPage />);

    const bar = await screen.findByTestId("job-progress");
    expect(bar.getAttribute("data-status")).toBe("running");
    expect(bar.getAttribute("value")).toBe("0.2");
    expect(screen.getByTestId("job-step").textContent).toBe("Transcribing the clips: clip 2/8");
    expect(screen.getAllByRole("listitem").map((li) => li.className)).toEqual([
      "job-step complete",
      "job-step complete",
      "job-step active",
    ]);

    voicesAnswer = after;
    const done = job("done", [...running.events, { seq: 3, at: 4, kind: "done", step: "verify", progress: 1, detail: "ready" }], "v7");
    fake.on("GET", "/api/jobs/j9", json(200, done));
    await waitFor(() => expect(screen.getByTestId("job-progress").getAttribute("data-status")).toBe("done"), {
      timeout: 3000,
    });
    expect(localStorage.getItem(VOICE_JOBS_KEY)).toBeNull();
    const training = screen.getByRole("article", { name: "Training “Rose”" });
    await within(training).findByText("The voice “Rose” is ready.");
    fake.on("POST", "/api/voices/v7/activate", json(200, after));
    fireEvent.click(within(training).getByText("Use this voice"));
    await waitFor(() => expect(fake.calls.some((c) => c.path === "/api/voices/v7/activate")).toBe(true));
    fireEvent.click(within(training).getByText("Dismiss"));
    expect(screen.queryByTestId("job-progress")).toBeNull();
  });
});
