// The appliance at a glance, refreshed every 2 s: overall status, programs, models, resources, recent turns'
// latencies, recent errors, and the paired devices.
import { api, data } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useLoaded } from "../lib/hooks";
import { DevicesPanel } from "../status/DevicesPanel";
import { ErrorsTable } from "../status/ErrorsTable";
import { LatencyChart } from "../status/LatencyChart";
import { ProgramsTable } from "../status/ProgramsTable";
import { ModelsLoaded, ResourcesPanel } from "../status/ResourcesPanel";
import { StatusBanner } from "../status/StatusBanner";
import "../status/status.css";

const loadStatus = () => data(api.GET("/api/status"));

export function StatusPage() {
  const status = useLoaded(loadStatus, 2000);
  const value = status.value;
  return (
    <section className="page stack status-page" aria-labelledby="status-title">
      <h1 id="status-title">Status</h1>
      {status.loading && <p className="muted">Loading the appliance's status…</p>}
      {status.error && (
        <ErrorNote error={status.error} what={value ? "Could not refresh (showing the last status)" : "Could not load the status"} />
      )}
      {value && (
        <>
          <StatusBanner status={value} />

          <section className="card" aria-labelledby="status-programs">
            <h2 id="status-programs">Programs</h2>
            <ProgramsTable programs={value.programs} />
          </section>

          <div className="status-columns">
            <section className="card" aria-labelledby="status-models">
              <h2 id="status-models">Models loaded</h2>
              <ModelsLoaded programs={value.programs} />
            </section>
            <section className="card" aria-labelledby="status-resources">
              <h2 id="status-resources">Resources</h2>
              <ResourcesPanel resources={value.resources} />
            </section>
          </div>

          <section className="card" aria-labelledby="status-turns">
            <h2 id="status-turns">Recent turns</h2>
            <LatencyChart turns={value.turns} />
          </section>

          <section className="card" aria-labelledby="status-errors">
            <h2 id="status-errors">Recent errors</h2>
            <ErrorsTable errors={value.errors} />
          </section>
        </>
      )}

      <section className="card" aria-labelledby="status-devices">
        <h2 id="status-devices">Paired devices</h2>
        <DevicesPanel />
      </section>
    </section>
  );
}
