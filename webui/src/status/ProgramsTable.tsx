// Each program the supervisor runs. A table on a desktop; on a phone each row becomes a card (status.css).
import type { Schemas } from "../api/client";
import { formatBytes, formatCpu, formatDuration } from "./format";

type Program = Schemas["ProgramStatusOut"];

function stateTone(p: Program): string {
  if (p.ready) return "ok";
  if (p.state === "RUNNING" || p.state === "STARTING") return "warn";
  return "bad";
}

export function ProgramsTable({ programs }: { programs: Program[] }) {
  if (!programs.length) return <p className="muted">No programs reported: the coordinator does not answer.</p>;
  return (
    <div className="table-wrap">
      <table className="responsive-table programs-table">
        <thead>
          <tr>
            <th scope="col">Program</th>
            <th scope="col">State</th>
            <th scope="col">Model</th>
            <th scope="col">Uptime</th>
            <th scope="col">Restarts</th>
            <th scope="col">Memory</th>
            <th scope="col">CPU time</th>
            <th scope="col">GPU memory</th>
          </tr>
        </thead>
        <tbody>
          {programs.map((p) => (
            <tr key={p.name}>
              <th scope="row" data-label="Program">
                {p.name}
              </th>
              <td data-label="State">
                <div>
                  <span className={`badge ${stateTone(p)}`}>{p.ready ? "ready" : "not ready"}</span>{" "}
                  <span className="muted small">{p.state}</span>
                  {!p.ready && p.detail && <div className="small program-detail">{p.detail}</div>}
                </div>
              </td>
              <td data-label="Model">{[p.backend, p.model].filter(Boolean).join(" ") || <span className="muted">–</span>}</td>
              <td data-label="Uptime">{p.uptime_s > 0 ? formatDuration(p.uptime_s) : "–"}</td>
              <td data-label="Restarts">{p.restarts}</td>
              <td data-label="Memory">{p.rss_bytes > 0 ? formatBytes(p.rss_bytes) : "–"}</td>
              <td data-label="CPU time">{formatCpu(p.cpu_s)}</td>
              <td data-label="GPU memory">{p.vram_bytes > 0 ? formatBytes(p.vram_bytes) : <span className="muted">–</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
