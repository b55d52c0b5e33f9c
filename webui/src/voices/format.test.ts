import { describe, expect, it } from "vitest";
import { formatBytes, formatTime, languageName } from "./format";

describe("format", () => {
  it("writes an API time as a date", () => {
    expect(formatTime(0)).toBe("unknown time");
    expect(formatTime(Number.NaN)).toBe("unknown time");
    expect(formatTime(1_700_000_000, "en-US")).toMatch(/2023/);
  });

  it("writes sizes in B, KB and MB", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(2048)).toBe("2 KB");
    expect(formatBytes(5.5 * 1024 * 1024)).toBe("5.5 MB");
  });

  it("names known languages and keeps unknown codes", () => {
    expect(languageName("en")).toBe("English (en)");
    expect(languageName("fr")).toBe("fr");
  });
});
