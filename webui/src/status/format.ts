// Numbers as people read them on the status page.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function trimmed(value: number, decimals: number): string {
  return value.toFixed(decimals).replace(/\.0+$/, "");
}

// 1536 -> "1.5 KiB"; under 100 of a unit keeps one decimal, so "15.6 GiB" is not rounded to 16.
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${trimmed(value, value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

// An uptime: "45 s", "3 min 12 s", "2 h 5 min", "3 d 4 h".
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// A latency: "420 ms" under a second, else "1.25 s".
export function formatLatency(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return `${trimmed(seconds, seconds < 10 ? 2 : 1)} s`;
}

// CPU time: "0.8 s", "12 s", "3 min 5 s".
export function formatCpu(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 10) return `${trimmed(seconds, 1)} s`;
  return formatDuration(seconds);
}

// How long ago a wall-clock time (seconds since the epoch, as the API sends) was, from `nowMs`.
export function formatAgo(at: number | null, nowMs = Date.now()): string {
  if (at === null || !Number.isFinite(at)) return "never";
  const ago = nowMs / 1000 - at;
  if (ago < 10) return "just now";
  if (ago < 60) return `${Math.floor(ago)} s ago`;
  if (ago < 3600) return `${Math.floor(ago / 60)} min ago`;
  if (ago < 86400) return `${Math.floor(ago / 3600)} h ago`;
  if (ago < 7 * 86400) return `${Math.floor(ago / 86400)} d ago`;
  return new Date(at * 1000).toLocaleDateString();
}

// A wall-clock time of day, e.g. "14:05:09".
export function formatClock(at: number): string {
  return new Date(at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatPercent(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return `${Math.round(value)} %`;
}

// Hours and minutes only, for the chart's time axis.
export function formatHourMinute(at: number): string {
  return new Date(at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
