import { describe, expect, it } from "vitest";
import { ApiError, data } from "./client";

describe("data()", () => {
  it("keeps the API's error code and message from the already-read body", async () => {
    const response = new Response("", { status: 422, statusText: "Unprocessable Entity" });
    await response.text(); // consumed, as openapi-fetch leaves it
    const failing = data(Promise.resolve({ error: { code: "webrtc-offer-invalid", message: "no ICE candidate" }, response }));
    await expect(failing).rejects.toEqual(new ApiError("webrtc-offer-invalid", "no ICE candidate", 422));
    await expect(failing).rejects.toMatchObject({ code: "webrtc-offer-invalid", status: 422 });
  });

  it("passes data through, 204 as undefined, and a network failure as network-error", async () => {
    await expect(data(Promise.resolve({ data: { a: 1 }, response: new Response("{}") }))).resolves.toEqual({ a: 1 });
    await expect(data(Promise.resolve({ response: new Response(null, { status: 204 }) }))).resolves.toBeUndefined();
    await expect(data(Promise.reject(new TypeError("Failed to fetch")))).rejects.toMatchObject({ code: "network-error" });
  });
});
