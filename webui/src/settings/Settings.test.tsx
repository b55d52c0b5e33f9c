import { json, requests, resetFake, routes } from "../status/fakeFetch"; // first: it replaces fetch
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { SettingsPage } from "../pages/Settings";

type Setting = Schemas["SettingOut"];
const base = { overridden: false, choices: [], unavailable: {}, minimum: null, maximum: null, help: "" };
const SETTINGS: Setting[] = [
  { ...base, key: "llm.backend", label: "Language model", kind: "choice", value: "auto",
    choices: ["auto", "embedded", "ollama"], unavailable: { ollama: "Ollama does not answer at http://127.0.0.1:11434" },
    help: "auto: Ollama when it answers", programs: ["coordinator", "llm"] },
  { ...base, key: "llm.reply.max_sentences", label: "Reply length (sentences)", kind: "int", value: 3, minimum: 1,
    maximum: 10, programs: ["coordinator", "llm"] },
  { ...base, key: "tts.speed", label: "Speaking rate", kind: "float", value: 1.2, minimum: 0.5, maximum: 2,
    overridden: true, programs: ["tts"] },
  { ...base, key: "gateway.video_quality", label: "Video quality", kind: "choice", value: "standard",
    choices: ["low", "standard", "high"], programs: [] },
  { ...base, key: "lipsync.avatar", label: "Active avatar", kind: "text", value: "default", programs: ["lipsync"] },
];

type Program = Schemas["ProgramOut"];
const program = (name: string, over: Partial<Program> = {}): Program => ({
  name, state: "RUNNING", ready: true, pid: 1, uptime_s: 9999, restarts: 0, backend: "", model: "", drops: {},
  detail: "", ...over,
});
const health = (programs: Program[]): Schemas["HealthOut"] => ({
  status: "ok", programs, summary: { ready: programs.length, total: programs.length, restarts_last_hour: 0, problem: "" },
});

beforeEach(() => {
  resetFake();
  routes.set("GET /api/settings", () => json({ settings: SETTINGS, restarting: [] }));
  routes.set("GET /health", () =>
    json(health([program("coordinator"), program("llm", { backend: "embedded", model: "smollm2-135m-instruct" })])),
  );
});
afterEach(cleanup);

describe("SettingsPage", () => {
  it("warns that the embedded demo model answers, naming it", async () => {
    render(<SettingsPage />);
    const notice = await screen.findByText(/Replies now come from the tiny embedded demo model/);
    expect(notice.textContent).toMatch(/smollm2-135m-instruct/);
    expect(notice.textContent).toMatch(/Install Ollama on this box/);
  });

  it("builds the form from the settings, without the avatar", async () => {
    render(<SettingsPage />);
    const backend = (await screen.findByLabelText("Language model")) as HTMLSelectElement;
    expect(backend.value).toBe("auto");
    const ollama = [...backend.options].find((o) => o.value === "ollama")!;
    expect(ollama.disabled).toBe(true);
    expect(screen.getByText(/is not available: Ollama does not answer/)).toBeTruthy();
    expect((screen.getByLabelText("Reply length (sentences)") as HTMLInputElement).max).toBe("10");
    expect(screen.queryByLabelText("Active avatar")).toBeNull();
    expect(screen.getByRole("button", { name: "Reset Speaking rate" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Reset Language model" })).toBeNull();
  });

  it("says what a change restarts, sends only it, and follows the restart until applied", async () => {
    let restartedAt = 0;
    routes.set("PUT /api/settings", () => {
      restartedAt = performance.now();
      return json({ settings: SETTINGS.map((s) => (s.key === "llm.reply.max_sentences" ? { ...s, value: 5, overridden: true } : s)),
        restarting: ["coordinator", "llm"] });
    });
    routes.set("GET /health", () => {
      const uptime = restartedAt ? (performance.now() - restartedAt) / 1000 : 9999;
      return json(health([program("coordinator", { uptime_s: uptime }), program("llm", { uptime_s: uptime, backend: "ollama" })]));
    });
    render(<SettingsPage />);
    fireEvent.change(await screen.findByLabelText("Reply length (sentences)"), { target: { value: "5" } });
    await screen.findByText(/1 change not saved yet/);
    await screen.findByText(/Saving restarts coordinator, llm; a conversation in progress will reconnect/);

    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Applying: restarting coordinator, llm…");
    expect(requests.find((r) => r.method === "PUT")!.body).toEqual({ values: { "llm.reply.max_sentences": 5 } });
    await screen.findByText("Applied.", undefined, { timeout: 4000 });
    expect((screen.getByLabelText("Reply length (sentences)") as HTMLInputElement).value).toBe("5");
    // The health answer after applying has Ollama: the demo notice is gone.
    await waitFor(() => expect(screen.queryByText(/tiny embedded demo model/)).toBeNull());
  });

  it("says when nothing restarts", async () => {
    routes.set("PUT /api/settings", () => json({ settings: SETTINGS, restarting: [] }));
    render(<SettingsPage />);
    fireEvent.change(await screen.findByLabelText("Video quality"), { target: { value: "high" } });
    expect(screen.getByText(/Nothing restarts: it applies to the next conversation/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved: it applies to the next conversation.");
    expect(requests.find((r) => r.method === "PUT")!.body).toEqual({ values: { "gateway.video_quality": "high" } });
  });

  it("refuses a number out of bounds before sending", async () => {
    render(<SettingsPage />);
    const field = await screen.findByLabelText("Reply length (sentences)");
    fireEvent.change(field, { target: { value: "42" } });
    expect(screen.getByText("Enter a whole number between 1 and 10.")).toBeTruthy();
    expect(field.getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByRole("button", { name: "Save" })).toHaveProperty("disabled", true);
  });

  it("resets a value set here by sending null", async () => {
    routes.set("PUT /api/settings", () => json({ settings: SETTINGS, restarting: [] }));
    render(<SettingsPage />);
    fireEvent.click(await screen.findByRole("button", { name: "Reset Speaking rate" }));
    expect(screen.getByText(/Saving restarts tts/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(requests.find((r) => r.method === "PUT")?.body).toEqual({ values: { "tts.speed": null } }));
  });

  it("shows the appliance's refusal", async () => {
    routes.set("PUT /api/settings", () => json({ code: "settings-invalid", message: "llm.backend is one of auto" }, 422));
    render(<SettingsPage />);
    fireEvent.change(await screen.findByLabelText("Language model"), { target: { value: "embedded" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    const error = await screen.findByText(/Could not save/);
    expect(error.textContent).toMatch(/llm.backend is one of auto/);
    expect(error.textContent).toMatch(/settings-invalid/);
  });
});
