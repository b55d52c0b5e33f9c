import { describe, expect, it } from "vitest";
import { galleryCards } from "./gallery";

const item = (avatar_id: string, active = false) => ({
  avatar_id,
  width: 512,
  height: 512,
  active,
  image_url: `/api/avatars/${avatar_id}/image`,
});

describe("galleryCards", () => {
  it("puts the default portrait first, active when no avatar is chosen", () => {
    const cards = galleryCards({ avatars: [item("b-512"), item("a-512")], active_avatar_id: null }, null);
    expect(cards.map((c) => [c.id, c.title, c.active])).toEqual([
      ["default", "Default portrait", true],
      ["b-512", "Portrait 1", false],
      ["a-512", "Portrait 2", false],
    ]);
  });

  it("marks the chosen avatar and not the default", () => {
    const cards = galleryCards({ avatars: [item("b-512", true)], active_avatar_id: "b-512" }, "d-512");
    expect(cards.map((c) => c.active)).toEqual([false, true]);
    expect(cards.map((c) => c.image)).toEqual(["/api/avatars/d-512/image", "/api/avatars/b-512/image"]);
  });

  it("does not show the default portrait's prepared copy twice, unless that copy is the one chosen", () => {
    const list = { avatars: [item("d-512"), item("b-512")], active_avatar_id: null };
    expect(galleryCards(list, "d-512").map((c) => c.id)).toEqual(["default", "b-512"]);
    const pinned = { avatars: [item("d-512", true)], active_avatar_id: "d-512" };
    expect(galleryCards(pinned, "d-512").map((c) => c.id)).toEqual(["default", "d-512"]);
  });
});
