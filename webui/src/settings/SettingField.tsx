// One setting: its label, the right control for its kind, help, and Reset for a value set from the UI.
import type { Setting } from "./form";

export interface FieldProps {
  setting: Setting;
  draft: string;
  resetting: boolean;
  changed: boolean;
  error: string | undefined;
  disabled: boolean;
  onChange: (value: string) => void;
  onReset: (reset: boolean) => void;
}

export function fieldId(key: string): string {
  return `setting-${key.replace(/[^a-zA-Z0-9]+/g, "-")}`;
}

function Control({ setting, draft, resetting, error, disabled, onChange, describedBy }: FieldProps & { describedBy: string }) {
  const common = {
    id: fieldId(setting.key),
    disabled: disabled || resetting,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": describedBy || undefined,
  };
  if (setting.kind === "choice") {
    const choices = setting.choices.includes(draft) || !draft ? setting.choices : [draft, ...setting.choices];
    return (
      <select {...common} value={draft} onChange={(e) => onChange(e.target.value)}>
        {choices.map((choice) => {
          const why = setting.unavailable[choice];
          // The value in use stays selectable even when the box cannot run it now.
          return (
            <option key={choice} value={choice} disabled={Boolean(why) && choice !== setting.value}>
              {why ? `${choice} (not available)` : choice}
            </option>
          );
        })}
      </select>
    );
  }
  if (setting.kind === "int" || setting.kind === "float") {
    return (
      <input
        {...common}
        type="number"
        inputMode={setting.kind === "int" ? "numeric" : "decimal"}
        min={setting.minimum ?? undefined}
        max={setting.maximum ?? undefined}
        step={setting.kind === "int" ? 1 : "any"}
        value={draft}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }
  return <input {...common} type="text" maxLength={500} value={draft} onChange={(e) => onChange(e.target.value)} />;
}

export function SettingField(props: FieldProps) {
  const { setting, resetting, changed, error, disabled, onReset } = props;
  const id = fieldId(setting.key);
  const unavailable = Object.entries(setting.unavailable);
  const range =
    (setting.kind === "int" || setting.kind === "float") && setting.minimum !== null && setting.maximum !== null
      ? `${setting.minimum} to ${setting.maximum}`
      : "";
  const describedBy = [
    setting.help || range ? `${id}-help` : "",
    unavailable.length ? `${id}-unavailable` : "",
    error ? `${id}-error` : "",
    resetting ? `${id}-reset` : "",
  ]
    .filter(Boolean)
    .join(" ");
  return (
    <div className="setting-field stack">
      <div className="setting-head">
        <label htmlFor={id}>{setting.label}</label>
        <span className="setting-badges">
          {changed && !resetting && <span className="badge warn">changed</span>}
          {setting.overridden && !resetting && <span className="badge">set here</span>}
        </span>
      </div>
      <Control {...props} describedBy={describedBy} />
      {(setting.help || range) && (
        <p id={`${id}-help`} className="muted small setting-note">
          {[setting.help, range && `Range: ${range}.`].filter(Boolean).join(" ")}
        </p>
      )}
      {unavailable.length > 0 && (
        <ul id={`${id}-unavailable`} className="small setting-note unavailable-list">
          {unavailable.map(([choice, why]) => (
            <li key={choice}>
              <strong>{choice}</strong> is not available: {why}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p id={`${id}-error`} className="error small setting-note">
          {error}
        </p>
      )}
      {resetting ? (
        <div className="row setting-reset">
          <span id={`${id}-reset`} className="small">
            Goes back to mynah.toml's value when you save.
          </span>
          <button type="button" onClick={() => onReset(false)} disabled={disabled} aria-label={`Keep ${setting.label}`}>
            Keep
          </button>
        </div>
      ) : (
        setting.overridden && (
          <div className="row setting-reset">
            <button type="button" onClick={() => onReset(true)} disabled={disabled} aria-label={`Reset ${setting.label}`}>
              Reset
            </button>
            <span className="muted small">to mynah.toml's value</span>
          </div>
        )
      )}
    </div>
  );
}
