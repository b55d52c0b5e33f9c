// Resources against the plan's budget: a bar each, with the budget marked on the memory bar.
import type { Schemas } from "../api/client";
import { type Meter, loadedModels, resourceMeters } from "./banner";

function MeterRow({ meter }: { meter: Meter }) {
  return (
    <div className="meter-row">
      <div className="row meter-head">
        <strong>{meter.label}</strong>
        <span className={`small ${meter.tone === "ok" ? "muted" : meter.tone === "warn" ? "tone-warn" : "tone-bad"}`}>
          {meter.text}
        </span>
      </div>
      {meter.fraction !== null && (
        <div
          className={`meter ${meter.tone}`}
          role="meter"
          aria-label={meter.label}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={Math.round(meter.fraction * 100)}
          aria-valuetext={meter.text}
        >
          <div className="meter-fill" style={{ width: `${meter.fraction * 100}%` }} />
          {meter.marker !== null && (
            <div className="meter-marker" style={{ left: `${meter.marker * 100}%` }} title="budget" />
          )}
        </div>
      )}
    </div>
  );
}

export function ResourcesPanel({ resources }: { resources: Schemas["ResourcesOut"] }) {
  return (
    <div className="stack">
      {resourceMeters(resources).map((meter) => (
        <MeterRow key={meter.key} meter={meter} />
      ))}
      <div className="row meter-head">
        <strong>Conversations</strong>
        <span className="small muted">up to {resources.max_sessions} at once</span>
      </div>
      <p className="muted small" style={{ margin: 0 }}>
        The line on the memory bar is the budget the models are planned to fit in.
      </p>
    </div>
  );
}

export function ModelsLoaded({ programs }: { programs: Schemas["ProgramStatusOut"][] }) {
  const models = loadedModels(programs);
  if (!models.length) return <p className="muted">No model is loaded yet.</p>;
  return (
    <ul className="models-list">
      {models.map((line) => (
        <li key={line}>{line}</li>
      ))}
    </ul>
  );
}
