import { describe, expect, it } from "vitest";
import { formatAgo, formatBytes, formatCpu, formatDuration, formatLatency, formatPercent } from "./format";

describe("formatBytes", () => {
  it("picks the unit and keeps useful precision", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(512 * 1024 * 1024)).toBe("512 MiB");
    expect(formatBytes(16 * 1024 ** 3)).toBe("16 GiB");
    expect(formatBytes(15.6 * 1024 ** 3)).toBe("15.6 GiB");
    expect(formatBytes(2 * 1024 ** 4)).toBe("2 TiB");
  });

  it("says nothing useful about impossible sizes", () => {
    expect(formatBytes(-1)).toBe("–");
    expect(formatBytes(Number.NaN)).toBe("–");
  });
});

describe("formatDuration", () => {
  it("reads like an uptime", () => {
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(45.9)).toBe("45 s");
    expect(formatDuration(192)).toBe("3 min 12 s");
    expect(formatDuration(2 * 3600 + 5 * 60 + 7)).toBe("2 h 5 min");
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe("3 d 4 h");
    expect(formatDuration(-3)).toBe("–");
  });
});

describe("formatLatency and formatCpu", () => {
  it("uses milliseconds under a second", () => {
    expect(formatLatency(0.4204)).toBe("420 ms");
    expect(formatLatency(1.25)).toBe("1.25 s");
    expect(formatLatency(2)).toBe("2 s");
    expect(formatLatency(12.34)).toBe("12.3 s");
  });

  it("gives CPU seconds one decimal, then a duration", () => {
    expect(formatCpu(0.84)).toBe("0.8 s");
    expect(formatCpu(185)).toBe("3 min 5 s");
  });
});

describe("formatAgo", () => {
  const now = 1_700_000_000_000;
  const at = now / 1000;
  it("counts back from now", () => {
    expect(formatAgo(null, now)).toBe("never");
    expect(formatAgo(at - 3, now)).toBe("just now");
    expect(formatAgo(at - 42, now)).toBe("42 s ago");
    expect(formatAgo(at - 300, now)).toBe("5 min ago");
    expect(formatAgo(at - 3 * 3600, now)).toBe("3 h ago");
    expect(formatAgo(at - 2 * 86400, now)).toBe("2 d ago");
    expect(formatAgo(at - 30 * 86400, now)).toBe(new Date((at - 30 * 86400) * 1000).toLocaleDateString());
  });
});

describe("formatPercent", () => {
  it("rounds", () => {
    expect(formatPercent(34.6)).toBe("35 %");
  });
});
