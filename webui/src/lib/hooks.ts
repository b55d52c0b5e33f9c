import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";

export interface Loaded<T> {
  value: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => Promise<void>;
}

// Load with `load`, again every `everyMs` (0: once) while the page is visible, and on reload().
export function useLoaded<T>(load: () => Promise<T>, everyMs = 0, deps: unknown[] = []): Loaded<T> {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const latest = useRef(load);
  latest.current = load;
  const reload = useCallback(async () => {
    try {
      setValue(await latest.current());
      setError(null);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError("client-error", String(err), 0));
    } finally {
      setLoading(false);
    }
  }, []);
  useEffect(() => {
    void reload();
    if (!everyMs) return;
    const timer = window.setInterval(() => {
      if (document.visibilityState === "visible") void reload();
    }, everyMs);
    return () => window.clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [reload, everyMs, ...deps]);
  return { value, error, loading, reload };
}
