import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const fake = await vi.hoisted(async () => (await import("../voices/fakeFetch")).installFakeFetch());
const { json } = await import("../voices/fakeFetch");
const { AvatarPage } = await import("../pages/Avatar");

const png = () => new Response(new Uint8Array([137, 80, 78, 71]), { headers: { "Content-Type": "image/png" } });
const item = (avatar_id: string, active = false) => ({
  avatar_id,
  width: 512,
  height: 512,
  active,
  image_url: `/api/avatars/${avatar_id}/image`,
});
const described = (avatar_id: string, adjusted = "") => ({
  avatar_id,
  width: 512,
  height: 512,
  face_box: [150, 100, 220, 260],
  mouth_width_px: 64.4,
  lips: [
    [220, 300],
    [256, 290.55],
    [292, 300],
    [256, 318],
  ],
  adjusted,
  cached: false,
});

describe("AvatarPage", () => {
  let urls = 0;
  beforeEach(() => {
    fake.reset();
    urls = 0;
    localStorage.setItem("mynah.token", "tok");
    URL.createObjectURL = vi.fn(() => `blob:u${++urls}`);
    URL.revokeObjectURL = vi.fn();
    fake.on("GET", "/api/avatars", json(200, { avatars: [item("bbbbbbbbbbbbbbbb-512"), item("dddddddddddddddd-512")], active_avatar_id: null }));
    fake.on("GET", "/api/avatars/default", json(200, described("dddddddddddddddd-512")));
    fake.on("GET", /^\/api\/avatars\/[^/]+\/image$/, () => png());
  });
  afterEach(() => {
    cleanup();
    localStorage.clear();
  });

  it("shows the default portrait and the prepared ones, with images fetched with the token", async () => {
    render(<AvatarPage />);
    const standard = await screen.findByRole("article", { name: "Default portrait" });
    expect(within(standard).getByText("In use")).toBeTruthy();
    await waitFor(() => expect(screen.getAllByRole("article")).toHaveLength(2)); // the default's copy is not repeated
    await waitFor(() => expect(standard.querySelector("img")?.getAttribute("src")).toMatch(/^blob:/));
    const image = fake.calls.find((c) => c.path === "/api/avatars/dddddddddddddddd-512/image")!;
    expect(image.headers.get("Authorization")).toBe("Bearer tok");
  });

  it("uses an avatar and marks it from the answer", async () => {
    fake.on("POST", "/api/avatars/bbbbbbbbbbbbbbbb-512/activate", json(200, {
      avatars: [item("bbbbbbbbbbbbbbbb-512", true), item("dddddddddddddddd-512")],
      active_avatar_id: "bbbbbbbbbbbbbbbb-512",
    }));
    render(<AvatarPage />);
    const card = await screen.findByRole("article", { name: "Portrait 1" });
    fireEvent.click(within(card).getByText("Use this avatar"));
    await within(card).findByText("In use");
    expect(within(screen.getByRole("article", { name: "Default portrait" })).queryByText("In use")).toBeNull();
    expect(screen.getByRole("status").textContent).toMatch(/Portrait 1 is in use now.*restarting/);
  });

  it("prepares an upload and draws its face box and lips over the image", async () => {
    fake.on("POST", "/api/avatars", json(200, described("cccccccccccccccc-512", "cropped to the face; scaled to 512x512")));
    render(<AvatarPage />);
    const portrait = new File([new Uint8Array(10)], "me.jpg", { type: "image/jpeg" });
    fireEvent.change(screen.getByTestId("avatar-file"), { target: { files: [portrait] } });
    const overlay = await screen.findByTestId("avatar-overlay");
    expect(overlay.getAttribute("viewBox")).toBe("0 0 512 512");
    const box = screen.getByTestId("avatar-face-box");
    expect([box.getAttribute("x"), box.getAttribute("y"), box.getAttribute("width"), box.getAttribute("height")]).toEqual(["150", "100", "220", "260"]);
    expect(screen.getByTestId("avatar-lips").getAttribute("points")).toBe("220,300 256,290.6 292,300 256,318");
    expect(screen.getByTestId("avatar-adjusted").textContent).toMatch(/cropped to the face/);
    const upload = fake.calls.find((c) => c.method === "POST" && c.path === "/api/avatars")!;
    expect((upload.body as FormData).get("image")).toBeInstanceOf(File);
  });

  it("explains a refused portrait", async () => {
    fake.on("POST", "/api/avatars", json(422, { code: "avatar-several-faces", message: "2 faces were found" }));
    render(<AvatarPage />);
    fireEvent.change(screen.getByTestId("avatar-file"), { target: { files: [new File(["x"], "group.png")] } });
    const refusal = await screen.findByTestId("avatar-error");
    expect(refusal.getAttribute("data-code")).toBe("avatar-several-faces");
    expect(refusal.textContent).toMatch(/Crop it to one person/);
  });

  it("shows a selected avatar's face from GET /api/avatars/{id}", async () => {
    fake.on("GET", "/api/avatars/bbbbbbbbbbbbbbbb-512", json(200, described("bbbbbbbbbbbbbbbb-512")));
    render(<AvatarPage />);
    const card = await screen.findByRole("article", { name: "Portrait 1" });
    fireEvent.click(within(card).getByText("Face and lips"));
    await screen.findByTestId("avatar-overlay");
    expect(screen.getByRole("heading", { name: "Portrait 1: face and lips" })).toBeTruthy();
  });

  it("plays and offers a video answered directly", async () => {
    fake.on("POST", "/generate-avatar", new Response(new Uint8Array(16), { headers: { "Content-Type": "video/mp4" } }));
    render(<AvatarPage />);
    await screen.findByRole("article", { name: "Portrait 1" });
    await waitFor(() => expect(screen.getAllByRole("article")).toHaveLength(2)); // the default is described
    fireEvent.click(screen.getByText("Make video"));
    const video = await screen.findByTestId("avatar-video-preview");
    expect(video.getAttribute("src")).toMatch(/^blob:/);
    const download = screen.getByText("Download MP4");
    expect(download.getAttribute("download")).toBe("mynah-avatar.mp4");
    expect(download.getAttribute("href")).toBe(video.getAttribute("src"));
    const form = fake.calls.find((c) => c.path === "/generate-avatar")!.body as FormData;
    expect(form.get("resolution")).toBe("512");
    expect(form.get("text")).toBe("Hello! I am Mynah. This is how I look when I speak.");
    expect(form.get("avatar_id")).toBe("dddddddddddddddd-512"); // none selected: the one in use, the default
  });

  it("follows a video job to its result", async () => {
    fake.on("POST", "/generate-avatar", json(202, { job_id: "v1", status: "queued", events_url: "/api/jobs/v1/events" }));
    fake.on("GET", "/api/jobs/v1", json(200, {
      job_id: "v1", kind: "generate-avatar", status: "done", step: "render", progress: 1, error_code: "",
      error_message: "", voice_id: null, created_at: 1, updated_at: 2,
      events: [{ seq: 0, at: 1, kind: "done", step: "render", progress: 1, detail: "rendered" }],
    }));
    fake.on("GET", "/api/jobs/v1/result", new Response(new Uint8Array(16), { headers: { "Content-Type": "video/mp4" } }));
    render(<AvatarPage />);
    fireEvent.click(await screen.findByText("Make video"));
    await screen.findByTestId("avatar-video-preview");
    expect(fake.calls.some((c) => c.path === "/api/jobs/v1/result")).toBe(true);
  });
});
