import { describe, expect, it } from "vitest";
import { codeProblem, deviceNameFrom, normalizeCode, retryAfterSeconds } from "./deviceName";

const UA = {
  chromeAndroid:
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
  samsung:
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
  safariIphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  chromeIphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
  firefoxIphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
  ipadDesktopMode:
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  edgeWindows:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
  firefoxLinux: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
  chromeMac:
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  operaWindows:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
  chromebook:
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
};

describe("deviceNameFrom", () => {
  it("names the browser and the system", () => {
    expect(deviceNameFrom(UA.chromeAndroid)).toBe("Chrome on Android");
    expect(deviceNameFrom(UA.samsung)).toBe("Samsung Internet on Android");
    expect(deviceNameFrom(UA.safariIphone)).toBe("Safari on iPhone");
    expect(deviceNameFrom(UA.chromeIphone)).toBe("Chrome on iPhone");
    expect(deviceNameFrom(UA.firefoxIphone)).toBe("Firefox on iPhone");
    expect(deviceNameFrom(UA.edgeWindows)).toBe("Edge on Windows");
    expect(deviceNameFrom(UA.operaWindows)).toBe("Opera on Windows");
    expect(deviceNameFrom(UA.firefoxLinux)).toBe("Firefox on Linux");
    expect(deviceNameFrom(UA.chromeMac)).toBe("Chrome on macOS");
    expect(deviceNameFrom(UA.chromebook)).toBe("Chrome on ChromeOS");
  });

  it("tells an iPad (which says Macintosh) from a Mac by touch", () => {
    expect(deviceNameFrom(UA.ipadDesktopMode, 5)).toBe("Safari on iPad");
    expect(deviceNameFrom(UA.ipadDesktopMode, 0)).toBe("Safari on macOS");
  });

  it("falls back when it knows only part, or nothing", () => {
    expect(deviceNameFrom("curl/8.5.0")).toBe("Web browser");
    expect(deviceNameFrom("")).toBe("Web browser");
    expect(deviceNameFrom("Mozilla/5.0 (Windows NT 10.0) SomeBrowser/1.0")).toBe("Browser on Windows");
  });
});

describe("pairing code", () => {
  it("drops the spaces and dashes people type", () => {
    expect(normalizeCode(" 123 456 ")).toBe("123456");
    expect(normalizeCode("123-456")).toBe("123456");
  });

  it("asks for six digits before sending", () => {
    expect(codeProblem("")).toMatch(/enter/i);
    expect(codeProblem("12345")).toMatch(/6 digits/);
    expect(codeProblem("12345a")).toMatch(/6 digits/);
    expect(codeProblem("1234567")).toMatch(/6 digits/);
    expect(codeProblem("012345")).toBeNull();
  });
});

describe("retryAfterSeconds", () => {
  it("reads seconds and HTTP dates", () => {
    expect(retryAfterSeconds("42")).toBe(42);
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(retryAfterSeconds("Wed, 01 Jan 2025 00:00:30 GMT", now)).toBe(30);
    expect(retryAfterSeconds("Tue, 31 Dec 2024 23:59:00 GMT", now)).toBe(0);
  });

  it("is null without a usable header", () => {
    expect(retryAfterSeconds(null)).toBeNull();
    expect(retryAfterSeconds("soon")).toBeNull();
  });
});
