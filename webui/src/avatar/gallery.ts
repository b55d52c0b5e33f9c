// Which avatar cards the page shows.
import { DEFAULT_AVATAR, avatarImagePath, type Avatars } from "./api";

export interface GalleryCard {
  id: string; // what /activate and /api/avatars/{id} take ("default" for the configured portrait)
  image: string | null; // the path of its image (unknown for the default until it is described)
  title: string;
  active: boolean;
}

// The cards to show: the default portrait first; a prepared copy of it is not shown twice unless it is pinned.
export function galleryCards(list: Avatars, defaultImageId: string | null): GalleryCard[] {
  const cards: GalleryCard[] = [
    {
      id: DEFAULT_AVATAR,
      image: defaultImageId ? avatarImagePath(defaultImageId) : null,
      title: "Default portrait",
      active: list.active_avatar_id === null,
    },
  ];
  let number = 0;
  for (const item of list.avatars) {
    if (item.avatar_id === defaultImageId && !item.active) continue;
    number += 1;
    cards.push({ id: item.avatar_id, image: item.image_url, title: `Portrait ${number}`, active: item.active });
  }
  return cards;
}
