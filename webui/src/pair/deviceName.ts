// A name for this device from the browser's user agent, e.g. "Chrome on Android", so the paired-devices list
// says which device is which without the user typing anything.

function browserOf(ua: string): string | null {
  // Order matters: most browsers also claim to be Chrome and Safari.
  if (/\bEdg(e|A|iOS)?\//.test(ua)) return "Edge";
  if (/\bOPR\/|\bOPT\/|\bOpera\b/.test(ua)) return "Opera";
  if (/\bSamsungBrowser\//.test(ua)) return "Samsung Internet";
  if (/\bFirefox\/|\bFxiOS\//.test(ua)) return "Firefox";
  if (/\bCriOS\/|\bChrome\/|\bChromium\//.test(ua)) return "Chrome";
  if (/\bSafari\//.test(ua) && (/\bVersion\//.test(ua) || /\b(iPhone|iPad|iPod|Macintosh)\b/.test(ua))) return "Safari";
  return null;
}

// touchPoints: navigator.maxTouchPoints. iPadOS says "Macintosh" in its user agent; only touch tells it apart.
function systemOf(ua: string, touchPoints: number): string | null {
  if (/\bAndroid\b/.test(ua)) return "Android";
  if (/\biPhone\b/.test(ua)) return "iPhone";
  if (/\biPad\b/.test(ua)) return "iPad";
  if (/\biPod\b/.test(ua)) return "iPod";
  if (/\bCrOS\b/.test(ua)) return "ChromeOS";
  if (/\bWindows\b/.test(ua)) return "Windows";
  if (/\bMacintosh\b|\bMac OS X\b/.test(ua)) return touchPoints > 1 ? "iPad" : "macOS";
  if (/\bLinux\b|\bX11\b/.test(ua)) return "Linux";
  return null;
}

export function deviceNameFrom(userAgent: string, touchPoints = 0): string {
  const browser = browserOf(userAgent);
  const system = systemOf(userAgent, touchPoints);
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser;
  if (system) return `Browser on ${system}`;
  return "Web browser";
}

// What the code field holds, as the appliance expects it: people type "123 456" or paste "123-456".
export function normalizeCode(raw: string): string {
  return raw.replace(/[\s-]/g, "");
}

// Why the code cannot be sent yet, or null when it can. Checking here saves the few wrong tries a minute allows.
export function codeProblem(code: string): string | null {
  if (!code) return "Enter the pairing code.";
  if (!/^\d{6}$/.test(code)) return "The pairing code is 6 digits.";
  return null;
}

// Seconds to wait from a Retry-After header (seconds, or an HTTP date); null when absent or unreadable.
export function retryAfterSeconds(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
