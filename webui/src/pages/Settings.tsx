// What the web UI may change (a small overlay on mynah.toml): grouped fields, Reset for values set here, and
// Save, which restarts the programs that read the changed settings and waits for them to be back.
import { useEffect, useMemo, useState } from "react";
import { ApiError, api, data, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useLoaded } from "../lib/hooks";
import { ApplyStatus } from "../settings/ApplyStatus";
import { SaveBar } from "../settings/SaveBar";
import { SettingField } from "../settings/SettingField";
import { fetchHealth, useApplyWatch } from "../settings/apply";
import { changedValues, demoModel, draftOf, groupSettings, restartPrograms } from "../settings/form";
import "../settings/settings.css";

type SettingsOut = Schemas["SettingsOut"];

const loadSettings = () => data(api.GET("/api/settings"));

function DemoModelNotice({ model }: { model: string }) {
  return (
    <p className="note demo-notice" role="note">
      Replies now come from the tiny embedded demo model ({model}): fine to try the appliance, not for real
      conversations. Install Ollama on this box and set <strong>Language model</strong> to <code>ollama</code> (or{" "}
      <code>auto</code>).
    </p>
  );
}

export function SettingsPage() {
  const loaded = useLoaded(loadSettings);
  const health = useLoaded(fetchHealth);
  const [saved, setSaved] = useState<SettingsOut | null>(null);
  const current = saved ?? loaded.value;
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const [resets, setResets] = useState<Set<string>>(new Set());
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<ApiError | null>(null);
  const [apply, startApply] = useApplyWatch(() => void health.reload());

  // A fresh answer from the appliance is the new starting point of the form. Adjusted while rendering, not in
  // an effect: an effect runs after the form is on screen, and would wipe an edit made in between.
  const [startedFrom, setStartedFrom] = useState(current);
  if (current !== startedFrom) {
    setStartedFrom(current);
    setDrafts({});
    setResets(new Set());
  }

  // Someone saved just before this page opened: follow that restart too.
  const initialRestart = loaded.value?.restarting.join(",") ?? "";
  useEffect(() => {
    if (initialRestart) startApply(initialRestart.split(","));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [initialRestart]);

  const settings = useMemo(() => current?.settings ?? [], [current]);
  const changes = useMemo(() => changedValues(settings, drafts, resets), [settings, drafts, resets]);
  const changedKeys = Object.keys(changes.values);
  const programs = restartPrograms(settings, changedKeys);
  const model = demoModel(health.value);
  const invalid = Object.keys(changes.errors).length;
  const blocked = apply.phase === "applying" ? "Wait for the last change to finish applying." : null;

  async function save() {
    if (saving || !changedKeys.length || invalid > 0 || blocked) return;
    setSaving(true);
    setSaveError(null);
    try {
      const answer = await data(api.PUT("/api/settings", { body: { values: changes.values } }));
      setSaved(answer);
      // The appliance lists what it is restarting; if that already finished, wait for what the change restarts.
      startApply(answer.restarting.length ? answer.restarting : programs);
    } catch (err) {
      setSaveError(err instanceof ApiError ? err : new ApiError("client-error", String(err), 0));
    } finally {
      setSaving(false);
    }
  }

  function discard() {
    setDrafts({});
    setResets(new Set());
    setSaveError(null);
  }

  function setReset(key: string, reset: boolean) {
    setResets((before) => {
      const after = new Set(before);
      if (reset) after.add(key);
      else after.delete(key);
      return after;
    });
  }

  return (
    <section className="page stack settings-page" aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      {model && <DemoModelNotice model={model} />}
      <ApplyStatus state={apply} />
      {loaded.loading && <p className="muted">Loading the settings…</p>}
      <ErrorNote error={loaded.error} what="Could not load the settings" />
      {current && (
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
          noValidate
        >
          {groupSettings(settings).map((group) => (
            <section key={group.title} className="card" aria-labelledby={`settings-group-${group.title}`}>
              <h2 id={`settings-group-${group.title}`}>{group.title}</h2>
              <div className="settings-fields">
                {group.settings.map((setting) => {
                  const draft = drafts[setting.key] ?? draftOf(setting);
                  return (
                    <SettingField
                      key={setting.key}
                      setting={setting}
                      draft={draft}
                      resetting={resets.has(setting.key)}
                      changed={setting.key in changes.values || setting.key in changes.errors}
                      error={changes.errors[setting.key]}
                      disabled={saving}
                      onChange={(value) => setDrafts((before) => ({ ...before, [setting.key]: value }))}
                      onReset={(reset) => setReset(setting.key, reset)}
                    />
                  );
                })}
              </div>
            </section>
          ))}
          <p className="muted small" style={{ margin: 0 }}>
            Settings changed here are kept in <code>settings.json</code> in the data directory, over{" "}
            <code>mynah.toml</code>; Reset puts one back to the file's value.
          </p>
          <ErrorNote error={saveError} what="Could not save" />
          <SaveBar
            count={changedKeys.length}
            programs={programs}
            invalid={invalid}
            busy={saving}
            blocked={blocked}
            onSave={() => void save()}
            onDiscard={discard}
          />
        </form>
      )}
    </section>
  );
}
