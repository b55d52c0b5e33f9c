import { json, requests, resetFake, routes } from "./fakeFetch"; // first: it replaces fetch
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../api/client";
import { onTokenLost, setToken } from "../lib/token";
import { StatusPage } from "../pages/Status";

const GiB = 1024 ** 3;
const now = Date.now() / 1000;

const STATUS: Schemas["StatusOut"] = {
  status: "degraded",
  summary: { ready: 1, total: 2, restarts_last_hour: 1, problem: "tts is BACKOFF: no voice model" },
  programs: [
    { name: "llm", state: "RUNNING", ready: true, pid: 10, uptime_s: 3700, restarts: 0, backend: "embedded",
      model: "smollm2-135m-instruct", drops: {}, detail: "", rss_bytes: 512 * 1024 ** 2, cpu_s: 12.5, vram_bytes: 0 },
    { name: "tts", state: "BACKOFF", ready: false, pid: 0, uptime_s: 0, restarts: 3, backend: "piper", model: "",
      drops: {}, detail: "no voice model", rss_bytes: 0, cpu_s: 0, vram_bytes: 0 },
  ],
  resources: { ram_total_bytes: 16 * GiB, ram_used_bytes: 6 * GiB, ram_budget_bytes: 12 * GiB, cpu_cores: 4,
    cpu_percent: 30, gpu_total_bytes: 0, gpu_used_bytes: 0, data_bytes: GiB, data_quota_bytes: 0, max_sessions: 2 },
  turns: [
    { turn_id: "t2", session_id: "s", started_at: now - 10, status: "failed", error_code: "llm-unreachable", stages: {} },
    { turn_id: "t1", session_id: "s", started_at: now - 60, status: "done", error_code: "",
      stages: { final: 0.2, first_token: 0.6, first_audio: 0.9, first_frame: 1.0, end: 3.1 } },
  ],
  errors: [{ at: now - 10, code: "llm-unreachable", status: 503 }],
};

const DEVICES: Schemas["DevicesOut"] = {
  devices: [
    { device_id: "d-other", name: "Kitchen tablet", created_at: now - 86400, last_seen_at: now - 120, revoked: false,
      revoked_at: null, current: false },
    { device_id: "d-me", name: "Chrome on Android", created_at: now - 3600, last_seen_at: now, revoked: false,
      revoked_at: null, current: true },
  ],
};

beforeEach(() => {
  resetFake();
  setToken("tok", { deviceId: "d-me", name: "Chrome on Android" });
  routes.set("GET /api/status", () => json(STATUS));
  routes.set("GET /api/devices", () => json(DEVICES));
});
afterEach(cleanup);

describe("StatusPage", () => {
  it("shows the overall status, programs, models, resources, turns and errors", async () => {
    render(<StatusPage />);
    const banner = await screen.findByRole("status");
    expect(banner.textContent).toMatch(/Degraded/);
    expect(banner.textContent).toMatch(/tts is BACKOFF: no voice model/);

    expect(screen.getByText("llm: embedded smollm2-135m-instruct")).toBeTruthy();
    expect(screen.getAllByText("no voice model").length).toBeGreaterThan(0); // the not-ready program's detail
    expect(screen.getByText("no GPU")).toBeTruthy();
    expect(screen.getByText(/6 GiB used · budget 12 GiB · 16 GiB total/)).toBeTruthy();

    const chart = screen.getByRole("img", { name: /Stage latencies of recent turns/ });
    expect(chart.querySelector("desc")!.textContent).toMatch(/2 recent turns.*1 failed/);
    expect(chart.querySelectorAll("rect[fill^='#']")).toHaveLength(5); // the done turn's five stages
    expect(screen.getByText(/Failed:/).textContent).toMatch(/llm-unreachable/);

    const errors = screen.getByRole("heading", { name: "Recent errors" }).parentElement!;
    expect(within(errors).getByText("503")).toBeTruthy();
  });

  it("marks this device and revokes another after a confirmation", async () => {
    routes.set("DELETE /api/devices/d-other", () => new Response(null, { status: 204 }));
    render(<StatusPage />);
    const mine = (await screen.findByText("this device")).closest("tr")!;
    expect(mine.textContent).toMatch(/Chrome on Android/);

    fireEvent.click(screen.getByRole("button", { name: "Revoke Kitchen tablet" }));
    expect(screen.getByText(/Revoke Kitchen tablet\? Its token stops working at once/)).toBeTruthy();
    expect(requests.some((r) => r.method === "DELETE")).toBe(false);
    fireEvent.click(screen.getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(requests.some((r) => r.method === "DELETE" && r.path === "/api/devices/d-other")).toBe(true));
  });

  it("warns before revoking this browser, then sends it back to pairing", async () => {
    routes.set("DELETE /api/devices/d-me", () => new Response(null, { status: 204 }));
    const lost = vi.fn();
    const stop = onTokenLost(lost);
    render(<StatusPage />);
    fireEvent.click(await screen.findByRole("button", { name: "Revoke Chrome on Android" }));
    expect(screen.getByText(/browser you are using.*pair again/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(lost).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole("button", { name: "Revoke Chrome on Android" }));
    fireEvent.click(screen.getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(lost).toHaveBeenCalledOnce());
    expect(localStorage.getItem("mynah.token")).toBeNull();
    stop();
  });

  it("says when the status cannot be loaded", async () => {
    routes.set("GET /api/status", () => json({ code: "coordinator-unavailable", message: "the coordinator did not answer" }, 503));
    render(<StatusPage />);
    expect((await screen.findByText(/Could not load the status/)).textContent).toMatch(/coordinator-unavailable/);
  });
});
