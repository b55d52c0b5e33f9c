import type { ApiError } from "../api/client";

// An API error as a user reads it: what happened, and the code to look up in docs/errors.md.
export function ErrorNote({ error, what }: { error: ApiError | null; what?: string }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {what ? `${what}: ` : ""}
      {error.message} <code>{error.code}</code>
    </p>
  );
}
