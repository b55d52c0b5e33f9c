import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const fake = await vi.hoisted(async () => (await import("./fakeFetch")).installFakeFetch());
const { json } = await import("./fakeFetch");
const { MakeVoice } = await import("./MakeVoice");
const { CONSENT_STATEMENT } = await import("./recording");

describe("MakeVoice", () => {
  beforeEach(() => {
    fake.reset();
    localStorage.setItem("mynah.token", "tok");
    URL.createObjectURL = vi.fn(() => "blob:sample");
    URL.revokeObjectURL = vi.fn();
  });
  afterEach(() => {
    cleanup();
    localStorage.clear();
  });

  function fill() {
    fireEvent.click(screen.getByLabelText("Upload a file"));
    const sample = new File([new Uint8Array(64)], "me.m4a", { type: "audio/mp4" });
    fireEvent.change(screen.getByTestId("voice-file"), { target: { files: [sample] } });
    fireEvent.change(screen.getByTestId("voice-name"), { target: { value: "  Rose " } });
    return sample;
  }

  it("enables Train only with a sample, a name and the consent", () => {
    render(<MakeVoice onStarted={() => undefined} />);
    const train = screen.getByTestId("voice-train") as HTMLButtonElement;
    expect(train.disabled).toBe(true);
    fill();
    expect(train.disabled).toBe(true);
    expect(screen.getByText(/Still needed: the speaker's consent/)).toBeTruthy();
    fireEvent.click(screen.getByTestId("voice-consent"));
    expect(train.disabled).toBe(false);
    fireEvent.change(screen.getByTestId("voice-name"), { target: { value: "   " } });
    expect(train.disabled).toBe(true);
  });

  it("sends the sample, name, language and consent statement as multipart with the token", async () => {
    fake.on("POST", "/train-voice", json(202, { job_id: "j1", status: "queued", events_url: "/api/jobs/j1/events" }));
    const onStarted = vi.fn();
    render(<MakeVoice onStarted={onStarted} />);
    const sample = fill();
    fireEvent.click(screen.getByTestId("voice-consent"));
    fireEvent.click(screen.getByTestId("voice-train"));
    await waitFor(() => expect(onStarted).toHaveBeenCalled());
    expect(onStarted.mock.calls[0]).toEqual([{ job_id: "j1", status: "queued", events_url: "/api/jobs/j1/events" }, "Rose"]);
    const call = fake.calls[0];
    expect(call.headers.get("Authorization")).toBe("Bearer tok");
    expect(call.headers.has("Content-Type")).toBe(false); // the browser writes it, with the boundary
    const form = call.body as FormData;
    expect((form.get("file") as File).name).toBe(sample.name);
    expect(form.get("name")).toBe("Rose");
    expect(form.get("language")).toBe("en");
    expect(form.get("consent")).toBe(CONSENT_STATEMENT);
    // The form is empty again for the next voice.
    expect((screen.getByTestId("voice-name") as HTMLInputElement).value).toBe("");
    expect((screen.getByTestId("voice-consent") as HTMLInputElement).checked).toBe(false);
  });

  it("shows the API's refusal", async () => {
    fake.on("POST", "/train-voice", json(422, { code: "voice-sample-too-short", message: "the sample is 8 s" }));
    render(<MakeVoice onStarted={() => undefined} />);
    fill();
    fireEvent.click(screen.getByTestId("voice-consent"));
    fireEvent.click(screen.getByTestId("voice-train"));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/the sample is 8 s/);
    expect(alert.textContent).toMatch(/voice-sample-too-short/);
  });

  it("explains a refused microphone", async () => {
    Object.defineProperty(navigator, "mediaDevices", {
      configurable: true,
      value: { getUserMedia: vi.fn(async () => Promise.reject(new DOMException("denied", "NotAllowedError"))) },
    });
    vi.stubGlobal("AudioContext", class {});
    render(<MakeVoice onStarted={() => undefined} />);
    fireEvent.click(screen.getByText("Start recording"));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/allow the microphone/);
    vi.unstubAllGlobals();
  });
});
