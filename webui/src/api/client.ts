// The API client: types generated from the gateway's OpenAPI (src/api/schema.d.ts, `npm run api`), requests
// through openapi-fetch with the device token. Every failure becomes an ApiError with the API's code.
import createClient, { type Middleware } from "openapi-fetch";
import { getToken, tokenLost } from "../lib/token";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

// Codes that mean this device must pair again.
export const LOST_TOKEN_CODES = new Set(["auth-required", "auth-invalid", "device-revoked"]);

export async function errorOf(response: Response): Promise<ApiError> {
  let code = `http-${response.status}`;
  let message = response.statusText || "the request failed";
  try {
    const body = (await response.clone().json()) as { code?: unknown; message?: unknown };
    if (typeof body.code === "string") code = body.code;
    if (typeof body.message === "string") message = body.message;
  } catch {
    // not JSON: keep the HTTP status
  }
  return new ApiError(code, message, response.status);
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  async onResponse({ response }) {
    if (response.status === 401) {
      const error = await errorOf(response);
      if (LOST_TOKEN_CODES.has(error.code)) tokenLost();
    }
    return response;
  },
};

// fetch looked up at each call (not kept when the client is made), so a test can stand a fake in for it.
export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: (request) => globalThis.fetch(request) });
api.use(auth);

// For the few calls openapi-fetch cannot shape (multipart uploads, binary answers): fetch with the token.
export async function authFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch (err) {
    throw new ApiError("network-error", `the appliance does not answer: ${String(err)}`, 0);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && LOST_TOKEN_CODES.has(error.code)) tokenLost();
    throw error;
  }
  return response;
}

// The data of an openapi-fetch result, or its error thrown as an ApiError.
export async function data<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (err) {
    throw new ApiError("network-error", `the appliance does not answer: ${String(err)}`, 0);
  }
  if (!result.response.ok || result.data === undefined) {
    if (result.response.status === 204) return undefined as T;
    // openapi-fetch has read the body already: the API's {code, message} is in result.error.
    const body = result.error as { code?: unknown; message?: unknown } | undefined;
    if (body && typeof body === "object" && typeof body.code === "string") {
      const message = typeof body.message === "string" ? body.message : result.response.statusText;
      throw new ApiError(body.code, message, result.response.status);
    }
    throw await errorOf(result.response);
  }
  return result.data;
}
