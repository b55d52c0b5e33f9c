import type { Schemas } from "../api/client";

type Device = Schemas["DeviceOut"];

// This device first, then the other active ones by when they were last seen, then the revoked ones.
export function sortDevices(devices: Device[]): Device[] {
  const seen = (d: Device) => d.last_seen_at ?? d.created_at;
  return [...devices].sort(
    (a, b) =>
      Number(a.revoked) - Number(b.revoked) || Number(b.current) - Number(a.current) || seen(b) - seen(a),
  );
}

// What revoking a device means, said before it is done.
export function revokeWarning(device: Device): string {
  if (device.current)
    return `Revoke ${device.name}? This is the browser you are using: it stops working at once and will need to pair again with a fresh code.`;
  return `Revoke ${device.name}? Its token stops working at once; to use Mynah again it must pair with a fresh code.`;
}
