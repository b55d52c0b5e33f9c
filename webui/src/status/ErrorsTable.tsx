import type { Schemas } from "../api/client";
import { formatClock } from "./format";

export function ErrorsTable({ errors }: { errors: Schemas["ErrorSeenOut"][] }) {
  if (!errors.length) return <p className="muted">No errors lately.</p>;
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Code</th>
            <th scope="col">HTTP</th>
          </tr>
        </thead>
        <tbody>
          {errors.map((e, i) => (
            <tr key={`${e.at}-${e.code}-${i}`}>
              <td>{formatClock(e.at)}</td>
              <td>
                <code>{e.code}</code>
              </td>
              <td>{e.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
