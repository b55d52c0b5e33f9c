import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { loadedModels, resourceMeters, statusBanner } from "./banner";

const summary = (over: Partial<Schemas["HealthSummary"]> = {}): Schemas["HealthSummary"] => ({
  ready: 5,
  total: 5,
  restarts_last_hour: 0,
  problem: "",
  ...over,
});

describe("statusBanner", () => {
  it("is calm when all is well", () => {
    expect(statusBanner({ status: "ok", summary: summary() })).toEqual({
      tone: "ok",
      title: "Everything is running",
      detail: "5 of 5 programs ready",
    });
  });

  it("leads a degraded banner with the problem", () => {
    const banner = statusBanner({
      status: "degraded",
      summary: summary({ ready: 4, restarts_last_hour: 2, problem: "tts is BACKOFF: no voice" }),
    });
    expect(banner.tone).toBe("warn");
    expect(banner.detail).toBe("tts is BACKOFF: no voice · 4 of 5 programs ready, 2 restarts in the last hour");
  });

  it("says one restart in the singular", () => {
    expect(statusBanner({ status: "ok", summary: summary({ restarts_last_hour: 1 }) }).detail).toContain(
      "1 restart in the last hour",
    );
  });

  it("is red when down, with a fallback line", () => {
    const down = statusBanner({ status: "down", summary: summary({ ready: 0, total: 0 }) });
    expect(down.tone).toBe("bad");
    expect(down.detail).toMatch(/coordinator/);
    expect(statusBanner({ status: "down", summary: summary({ problem: "coordinator unreachable: timeout" }) }).detail).toBe(
      "coordinator unreachable: timeout",
    );
  });
});

const GiB = 1024 ** 3;
const resources = (over: Partial<Schemas["ResourcesOut"]> = {}): Schemas["ResourcesOut"] => ({
  ram_total_bytes: 16 * GiB,
  ram_used_bytes: 4 * GiB,
  ram_budget_bytes: 12 * GiB,
  cpu_cores: 4,
  cpu_percent: 25,
  gpu_total_bytes: 0,
  gpu_used_bytes: 0,
  data_bytes: 2 * GiB,
  data_quota_bytes: 20 * GiB,
  max_sessions: 2,
  ...over,
});

describe("resourceMeters", () => {
  it("puts memory against the budget and the total", () => {
    const [ram] = resourceMeters(resources());
    expect(ram.fraction).toBeCloseTo(0.25);
    expect(ram.marker).toBeCloseTo(0.75);
    expect(ram.text).toBe("4 GiB used · budget 12 GiB · 16 GiB total");
    expect(ram.tone).toBe("ok");
    expect(resourceMeters(resources({ ram_used_bytes: 13 * GiB }))[0].tone).toBe("warn");
    expect(resourceMeters(resources({ ram_used_bytes: 15.9 * GiB }))[0].tone).toBe("bad");
  });

  it("says the cores the plan counts on", () => {
    const cpu = resourceMeters(resources({ cpu_percent: 85 }))[1];
    expect(cpu.fraction).toBeCloseTo(0.85);
    expect(cpu.text).toBe("85 % of the machine · the plan counts on 4 cores");
    expect(cpu.tone).toBe("warn");
  });

  it("says when there is no GPU, and measures one when there is", () => {
    expect(resourceMeters(resources())[2]).toMatchObject({ fraction: null, text: "no GPU" });
    const gpu = resourceMeters(resources({ gpu_total_bytes: 8 * GiB, gpu_used_bytes: 2 * GiB }))[2];
    expect(gpu.fraction).toBeCloseTo(0.25);
    expect(gpu.text).toBe("2 GiB of 8 GiB");
  });

  it("handles an unmeasured data directory and a missing quota", () => {
    expect(resourceMeters(resources({ data_bytes: -1 }))[3]).toMatchObject({ fraction: null, text: "not measured yet" });
    expect(resourceMeters(resources({ data_quota_bytes: 0 }))[3]).toMatchObject({
      fraction: null,
      text: "2 GiB (no quota)",
    });
    const full = resourceMeters(resources({ data_bytes: 25 * GiB }))[3];
    expect(full.fraction).toBe(1);
    expect(full.tone).toBe("bad");
  });
});

describe("loadedModels", () => {
  it("lists the ready programs' backend and model", () => {
    const program = (over: Partial<Schemas["ProgramStatusOut"]>): Schemas["ProgramStatusOut"] => ({
      name: "x",
      state: "RUNNING",
      ready: true,
      pid: 1,
      uptime_s: 1,
      restarts: 0,
      backend: "",
      model: "",
      drops: {},
      detail: "",
      rss_bytes: 0,
      cpu_s: 0,
      vram_bytes: 0,
      ...over,
    });
    expect(
      loadedModels([
        program({ name: "llm", backend: "embedded", model: "smollm2-135m-instruct" }),
        program({ name: "tts", backend: "piper", ready: false }),
        program({ name: "coordinator" }),
        program({ name: "stt", model: "tiny.en" }),
      ]),
    ).toEqual(["llm: embedded smollm2-135m-instruct", "stt: tiny.en"]);
  });
});
