// Avatar: the portraits the appliance can speak with (choose one, see the face and lips found in it), adding a
// portrait, and a short video of it speaking.
import { useCallback, useEffect, useState } from "react";
import { AvatarGallery } from "../avatar/AvatarGallery";
import { AvatarUpload } from "../avatar/AvatarUpload";
import { AvatarVideo } from "../avatar/AvatarVideo";
import { DEFAULT_AVATAR, activateAvatar, describeAvatar, listAvatars, type Avatar, type Avatars } from "../avatar/api";
import { galleryCards } from "../avatar/gallery";
import { SelectedAvatar } from "../avatar/SelectedAvatar";
import { ErrorNote } from "../components/ErrorNote";
import { useLoaded } from "../lib/hooks";
import "../avatar/avatar.css";

const RESTART_NOTE =
  "Choosing an avatar restarts the face renderer: live talk pauses for a few seconds while it loads the new face.";

export function AvatarPage() {
  const loaded = useLoaded(listAvatars);
  const defaultInfo = useLoaded(() => describeAvatar(DEFAULT_AVATAR));
  const [list, setList] = useState<Avatars | null>(null);
  const [known, setKnown] = useState<Record<string, Avatar>>({});
  const [selected, setSelected] = useState<string | null>(null);
  const [switched, setSwitched] = useState<string | null>(null);

  useEffect(() => {
    if (loaded.value) setList(loaded.value);
  }, [loaded.value]);

  const defaultAvatar = defaultInfo.value ?? known[DEFAULT_AVATAR];
  const cards = list ? galleryCards(list, defaultAvatar?.avatar_id ?? null) : [];
  // How the page names an avatar: its card's title, or (just uploaded, not listed yet) "the new portrait".
  const nameOf = (id: string) =>
    id === DEFAULT_AVATAR ? "the default portrait" : (cards.find((card) => card.id === id)?.title ?? "the new portrait");
  const titleOf = (id: string) => {
    const name = nameOf(id);
    return name[0].toUpperCase() + name.slice(1);
  };

  async function activate(id: string) {
    const next = await activateAvatar(id);
    setList(next);
    setSwitched(`${titleOf(id)} is in use now.`);
  }

  const remember = useCallback((id: string, avatar: Avatar) => setKnown((all) => ({ ...all, [id]: avatar })), []);

  const prepared = useCallback(
    (avatar: Avatar) => {
      remember(avatar.avatar_id, avatar);
      setSelected(avatar.avatar_id);
      void loaded.reload();
    },
    [remember, loaded],
  );

  const selectedAvatar = selected ? (selected === DEFAULT_AVATAR ? defaultAvatar : known[selected]) : undefined;
  const selectedActive = selected
    ? selected === DEFAULT_AVATAR
      ? list?.active_avatar_id === null
      : list?.active_avatar_id === selected
    : false;

  return (
    <section className="page avatar-page stack" aria-labelledby="avatar-title">
      <h1 id="avatar-title">Avatar</h1>
      <p className="muted">The face that speaks the replies. {RESTART_NOTE}</p>
      {switched && (
        <p className="note small" role="status">
          {switched} The face renderer is restarting: it is back in a few seconds.
        </p>
      )}

      <h2>Your avatars</h2>
      {loaded.loading && !list && <p className="muted">Loading avatars…</p>}
      {!list && loaded.error && (
        <div className="stack">
          <ErrorNote error={loaded.error} what="Could not load the avatars" />
          <div>
            <button type="button" onClick={() => void loaded.reload()}>
              Try again
            </button>
          </div>
        </div>
      )}
      {list && (
        <>
          <ErrorNote error={loaded.error} what="Could not refresh the avatars" />
          <AvatarGallery cards={cards} selected={selected} onSelect={setSelected} onActivate={activate} />
          {list.avatars.length === 0 && (
            <p className="muted small">Only the default portrait so far: add one of your own below.</p>
          )}
        </>
      )}

      <h2>Add a portrait</h2>
      <AvatarUpload onPrepared={prepared} />

      {selected && (
        <SelectedAvatar
          cardId={selected}
          title={titleOf(selected)}
          active={selectedActive}
          known={selectedAvatar}
          onLoaded={remember}
          onActivate={activate}
        />
      )}

      <h2>See it speak</h2>
      <AvatarVideo
        avatarId={selectedAvatar?.avatar_id ?? list?.active_avatar_id ?? defaultAvatar?.avatar_id ?? null}
        avatarName={selectedAvatar && selected ? nameOf(selected) : "the avatar in use"}
      />
    </section>
  );
}
