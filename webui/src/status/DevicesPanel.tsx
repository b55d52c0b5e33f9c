// The paired devices, with Revoke (confirmed inline; revoking this browser sends it back to pairing).
import { useState } from "react";
import { ApiError, api, data, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useLoaded } from "../lib/hooks";
import { tokenLost } from "../lib/token";
import { revokeWarning, sortDevices } from "./devices";
import { formatAgo } from "./format";

type Device = Schemas["DeviceOut"];

const loadDevices = () => data(api.GET("/api/devices"));

function RevokeConfirm({ device, onDone, onCancel }: { device: Device; onDone: () => void; onCancel: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  async function revoke() {
    setBusy(true);
    setError(null);
    try {
      await data(api.DELETE("/api/devices/{device_id}", { params: { path: { device_id: device.device_id } } }));
      if (device.current) {
        tokenLost();
        return;
      }
      onDone();
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError("client-error", String(err), 0));
      setBusy(false);
    }
  }
  return (
    <div className="revoke-confirm stack" role="group" aria-label={`Revoke ${device.name}`}>
      <p className={device.current ? "note small" : "small"} style={{ margin: 0 }}>
        {revokeWarning(device)}
      </p>
      <div className="row">
        <button type="button" className="danger" onClick={revoke} disabled={busy} autoFocus>
          {busy ? "Revoking…" : "Revoke"}
        </button>
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
      <ErrorNote error={error} what="Could not revoke" />
    </div>
  );
}

export function DevicesPanel() {
  const devices = useLoaded(loadDevices, 15000);
  const [confirming, setConfirming] = useState<string | null>(null);
  if (devices.loading) return <p className="muted">Loading devices…</p>;
  const list = sortDevices(devices.value?.devices ?? []);
  return (
    <div className="stack">
      <ErrorNote error={devices.error} what="Could not load the devices" />
      {devices.value && !list.length && <p className="muted">No devices are paired.</p>}
      {list.length > 0 && (
        <div className="table-wrap">
          <table className="responsive-table devices-table">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Paired</th>
                <th scope="col">Last seen</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.device_id} className={d.revoked ? "revoked" : undefined}>
                  <th scope="row" data-label="Device">
                    {d.name || <span className="muted">(no name)</span>}{" "}
                    {d.current && <span className="badge ok">this device</span>}{" "}
                    {d.revoked && <span className="badge bad">revoked {d.revoked_at ? formatAgo(d.revoked_at) : ""}</span>}
                  </th>
                  <td data-label="Paired">{formatAgo(d.created_at)}</td>
                  <td data-label="Last seen">{formatAgo(d.last_seen_at)}</td>
                  <td data-label="">
                    {!d.revoked &&
                      (confirming === d.device_id ? (
                        <RevokeConfirm
                          device={d}
                          onCancel={() => setConfirming(null)}
                          onDone={() => {
                            setConfirming(null);
                            void devices.reload();
                          }}
                        />
                      ) : (
                        <button
                          type="button"
                          className="danger"
                          aria-label={`Revoke ${d.name}`}
                          onClick={() => setConfirming(d.device_id)}
                        >
                          Revoke
                        </button>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted small" style={{ margin: 0 }}>
        To add a device, open this page on it and enter a fresh code from <code>mynah devices pair-code</code>.
      </p>
    </div>
  );
}
