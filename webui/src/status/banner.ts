// The overall status as one banner: a tone, a headline and the worst problem.
import type { Schemas } from "../api/client";
import { formatBytes, formatPercent } from "./format";

export type Tone = "ok" | "warn" | "bad";

export interface Banner {
  tone: Tone;
  title: string;
  detail: string;
}

type Overall = Pick<Schemas["StatusOut"], "status" | "summary">;

export function statusBanner({ status, summary }: Overall): Banner {
  const counts = summary.total > 0 ? `${summary.ready} of ${summary.total} programs ready` : "";
  const restarts =
    summary.restarts_last_hour > 0
      ? `${summary.restarts_last_hour} restart${summary.restarts_last_hour === 1 ? "" : "s"} in the last hour`
      : "";
  const facts = [counts, restarts].filter(Boolean).join(", ");
  switch (status) {
    case "ok":
      return { tone: "ok", title: "Everything is running", detail: [summary.problem, facts].filter(Boolean).join(" · ") };
    case "degraded":
      return { tone: "warn", title: "Degraded", detail: [summary.problem || "Some programs are not ready", facts].filter(Boolean).join(" · ") };
    default:
      return { tone: "bad", title: "Down", detail: summary.problem || "The appliance's coordinator does not answer" };
  }
}

// One resource against its limit: a bar from 0 to 1 (null: nothing to draw), an optional marker (the budget).
export interface Meter {
  key: string;
  label: string;
  fraction: number | null;
  marker: number | null;
  text: string;
  tone: Tone;
}

const clamp = (value: number) => Math.min(1, Math.max(0, value));

export function resourceMeters(r: Schemas["ResourcesOut"]): Meter[] {
  const meters: Meter[] = [];

  const ramFraction = r.ram_total_bytes > 0 ? r.ram_used_bytes / r.ram_total_bytes : null;
  const overBudget = r.ram_budget_bytes > 0 && r.ram_used_bytes > r.ram_budget_bytes;
  meters.push({
    key: "ram",
    label: "Memory",
    fraction: ramFraction === null ? null : clamp(ramFraction),
    marker: r.ram_total_bytes > 0 && r.ram_budget_bytes > 0 ? clamp(r.ram_budget_bytes / r.ram_total_bytes) : null,
    text:
      `${formatBytes(r.ram_used_bytes)} used · budget ${formatBytes(r.ram_budget_bytes)} · ` +
      `${formatBytes(r.ram_total_bytes)} total`,
    tone: ramFraction !== null && ramFraction > 0.95 ? "bad" : overBudget ? "warn" : "ok",
  });

  const cores = `${r.cpu_cores % 1 === 0 ? r.cpu_cores : r.cpu_cores.toFixed(1)} core${r.cpu_cores === 1 ? "" : "s"}`;
  meters.push({
    key: "cpu",
    label: "CPU",
    fraction: clamp(r.cpu_percent / 100),
    marker: null,
    text: `${formatPercent(r.cpu_percent)} of the machine · the plan counts on ${cores}`,
    tone: r.cpu_percent > 95 ? "bad" : r.cpu_percent > 80 ? "warn" : "ok",
  });

  if (r.gpu_total_bytes > 0) {
    const gpu = r.gpu_used_bytes / r.gpu_total_bytes;
    meters.push({
      key: "gpu",
      label: "GPU memory",
      fraction: clamp(gpu),
      marker: null,
      text: `${formatBytes(r.gpu_used_bytes)} of ${formatBytes(r.gpu_total_bytes)}`,
      tone: gpu > 0.95 ? "bad" : gpu > 0.85 ? "warn" : "ok",
    });
  } else {
    meters.push({ key: "gpu", label: "GPU memory", fraction: null, marker: null, text: "no GPU", tone: "ok" });
  }

  if (r.data_bytes < 0) {
    meters.push({ key: "data", label: "Data", fraction: null, marker: null, text: "not measured yet", tone: "ok" });
  } else if (r.data_quota_bytes <= 0) {
    meters.push({
      key: "data",
      label: "Data",
      fraction: null,
      marker: null,
      text: `${formatBytes(r.data_bytes)} (no quota)`,
      tone: "ok",
    });
  } else {
    const data = r.data_bytes / r.data_quota_bytes;
    meters.push({
      key: "data",
      label: "Data",
      fraction: clamp(data),
      marker: null,
      text: `${formatBytes(r.data_bytes)} of the ${formatBytes(r.data_quota_bytes)} quota`,
      tone: data >= 1 ? "bad" : data > 0.9 ? "warn" : "ok",
    });
  }
  return meters;
}

// "llm: embedded smollm2-135m-instruct" for each ready program that names a model or backend.
export function loadedModels(programs: Schemas["ProgramStatusOut"][]): string[] {
  return programs
    .filter((p) => p.ready && (p.backend || p.model))
    .map((p) => `${p.name}: ${[p.backend, p.model].filter(Boolean).join(" ")}`);
}
