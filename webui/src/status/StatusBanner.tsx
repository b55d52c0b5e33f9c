import type { Schemas } from "../api/client";
import { statusBanner } from "./banner";

export function StatusBanner({ status }: { status: Pick<Schemas["StatusOut"], "status" | "summary"> }) {
  const banner = statusBanner(status);
  return (
    <div className={`status-banner ${banner.tone}`} role="status" aria-live="polite">
      <span className="status-dot" aria-hidden="true" />
      <div>
        <strong>{banner.title}</strong>
        {banner.detail && <div className="small">{banner.detail}</div>}
      </div>
    </div>
  );
}
