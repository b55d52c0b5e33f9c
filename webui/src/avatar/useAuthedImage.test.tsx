import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { useAuthedImage } from "./useAuthedImage";

describe("useAuthedImage", () => {
  let made = 0;
  const revoked: string[] = [];

  beforeEach(() => {
    made = 0;
    revoked.length = 0;
    localStorage.setItem("mynah.token", "tok");
    URL.createObjectURL = vi.fn(() => `blob:test/${++made}`);
    URL.revokeObjectURL = vi.fn((url: string) => void revoked.push(url));
  });

  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  it("fetches with the token, shows an object URL, and revokes it when the image changes or goes", async () => {
    const fetch = vi.fn(async () => new Response(new Uint8Array([137, 80, 78, 71]), { status: 200 }));
    vi.stubGlobal("fetch", fetch);
    const { result, rerender, unmount } = renderHook(({ path }) => useAuthedImage(path), {
      initialProps: { path: "/api/avatars/a/image" as string | null },
    });
    await waitFor(() => expect(result.current.url).toBe("blob:test/1"));
    const [path, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(path).toBe("/api/avatars/a/image");
    expect(new Headers(init.headers).get("Authorization")).toBe("Bearer tok");

    rerender({ path: "/api/avatars/b/image" });
    await waitFor(() => expect(result.current.url).toBe("blob:test/2"));
    expect(revoked).toEqual(["blob:test/1"]);
    act(() => unmount());
    expect(revoked).toEqual(["blob:test/1", "blob:test/2"]);
  });

  it("reports the API's error", async () => {
    const body = JSON.stringify({ code: "avatar-not-found", message: "no prepared avatar" });
    vi.stubGlobal("fetch", vi.fn(async () => new Response(body, { status: 404 })));
    const { result } = renderHook(() => useAuthedImage("/api/avatars/x/image"));
    await waitFor(() => expect(result.current.error?.code).toBe("avatar-not-found"));
    expect(result.current.url).toBeNull();
    expect(result.current.loading).toBe(false);
  });
});
