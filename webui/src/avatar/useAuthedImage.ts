// An image that needs the device token: <img src> cannot send it, so fetch it and show an object URL.
import { useEffect, useState } from "react";
import { authFetch, type ApiError } from "../api/client";
import { asApiError, useObjectUrl } from "../voices/hooks";

export interface AuthedImage {
  url: string | null;
  error: ApiError | null;
  loading: boolean;
}

export function useAuthedImage(path: string | null): AuthedImage {
  const [blob, setBlob] = useState<Blob | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  useEffect(() => {
    setBlob(null);
    setError(null);
    if (!path) {
      setLoading(false);
      return;
    }
    const controller = new AbortController();
    setLoading(true);
    authFetch(path, { signal: controller.signal })
      .then((response) => response.blob())
      .then((image) => {
        if (!controller.signal.aborted) setBlob(image);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(asApiError(err));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, [path]);
  return { url: useObjectUrl(blob), error, loading };
}
