// Trading the pairing code for this device's token.
import { ApiError, api, data } from "../api/client";
import { setToken } from "../lib/token";
import { retryAfterSeconds } from "./deviceName";

export class PairError extends ApiError {
  constructor(
    error: ApiError,
    readonly retryAfterS: number | null,
  ) {
    super(error.code, error.message, error.status);
  }
}

// Pairs and keeps the token; throws a PairError (with Retry-After's seconds when rate-limited).
export async function pairDevice(code: string, deviceName: string): Promise<void> {
  const call = api.POST("/api/pair", { body: { code, device_name: deviceName } });
  try {
    const paired = await data(call);
    setToken(paired.token, { deviceId: paired.device_id, name: deviceName });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    let wait: number | null = null;
    if (err.code === "pairing-rate-limited") {
      const result = await call.catch(() => null);
      wait = retryAfterSeconds(result?.response.headers.get("Retry-After") ?? null);
    }
    throw new PairError(err, wait);
  }
}

// What to tell the user about a failed pairing.
export function pairErrorText(error: ApiError): string {
  switch (error.code) {
    case "pairing-code-invalid":
      return "That code is wrong, used or expired: get a fresh code (on the box: mynah devices pair-code) and try again.";
    case "pairing-rate-limited":
      return "Too many wrong codes: wait a moment before trying again.";
    case "network-error":
      return "The appliance does not answer. Is it running, and is this the right address?";
    default:
      return error.message;
  }
}
