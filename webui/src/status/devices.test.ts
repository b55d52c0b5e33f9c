import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { revokeWarning, sortDevices } from "./devices";

const device = (over: Partial<Schemas["DeviceOut"]>): Schemas["DeviceOut"] => ({
  device_id: "d",
  name: "Phone",
  created_at: 100,
  last_seen_at: null,
  revoked: false,
  revoked_at: null,
  current: false,
  ...over,
});

describe("sortDevices", () => {
  it("puts this device first, revoked ones last, the rest by last seen", () => {
    const list = [
      device({ device_id: "old", last_seen_at: 200 }),
      device({ device_id: "gone", revoked: true, last_seen_at: 900 }),
      device({ device_id: "me", current: true, last_seen_at: 150 }),
      device({ device_id: "recent", last_seen_at: 800 }),
      device({ device_id: "never", created_at: 300 }),
    ];
    expect(sortDevices(list).map((d) => d.device_id)).toEqual(["me", "recent", "never", "old", "gone"]);
  });
});

describe("revokeWarning", () => {
  it("warns that this browser must pair again when it is this device", () => {
    expect(revokeWarning(device({ current: true, name: "Chrome on Android" }))).toMatch(
      /Chrome on Android.*browser you are using.*pair again/,
    );
    expect(revokeWarning(device({ name: "Kitchen tablet" }))).not.toMatch(/browser you are using/);
  });
});
