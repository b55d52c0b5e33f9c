// The avatars as cards: the default portrait first, then the prepared ones, newest first.
import { useState } from "react";
import type { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { asApiError } from "../voices/hooks";
import type { GalleryCard } from "./gallery";
import { useAuthedImage } from "./useAuthedImage";

interface CardProps {
  card: GalleryCard;
  selected: boolean;
  onSelect: (id: string) => void;
  onActivate: (id: string) => Promise<void>;
}

function AvatarCard({ card, selected, onSelect, onActivate }: CardProps) {
  const image = useAuthedImage(card.image);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function activate() {
    setBusy(true);
    setError(null);
    try {
      await onActivate(card.id);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <article
      className={`card avatar-card stack${selected ? " selected" : ""}${card.active ? " active" : ""}`}
      aria-label={card.title}
      data-avatar-id={card.id}
    >
      <button
        type="button"
        className="avatar-thumb"
        aria-pressed={selected}
        aria-label={`Show the face and lips of ${card.title}`}
        onClick={() => onSelect(card.id)}
      >
        {image.url ? (
          <img src={image.url} alt="" />
        ) : (
          <span className="muted small">{image.error ? "No image" : image.loading ? "Loading…" : card.title}</span>
        )}
      </button>
      <div className="row avatar-title">
        <h3>{card.title}</h3>
        {card.active && <span className="badge ok">In use</span>}
      </div>
      <div className="row avatar-actions">
        {!card.active && (
          <button type="button" className="primary" disabled={busy} onClick={() => void activate()}>
            {busy ? "Switching…" : "Use this avatar"}
          </button>
        )}
        <button type="button" aria-pressed={selected} onClick={() => onSelect(card.id)}>
          Face and lips
        </button>
      </div>
      <ErrorNote error={error} what="Could not switch avatars" />
    </article>
  );
}

export function AvatarGallery({
  cards,
  selected,
  onSelect,
  onActivate,
}: {
  cards: GalleryCard[];
  selected: string | null;
  onSelect: (id: string) => void;
  onActivate: (id: string) => Promise<void>;
}) {
  return (
    <div className="grid avatar-grid">
      {cards.map((card) => (
        <AvatarCard
          key={card.id}
          card={card}
          selected={card.id === selected}
          onSelect={onSelect}
          onActivate={onActivate}
        />
      ))}
    </div>
  );
}
