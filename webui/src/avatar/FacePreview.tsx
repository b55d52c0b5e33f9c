// A prepared portrait with what the renderer found in it: the face box and the outer lip contour, drawn in an
// SVG over the image in the image's own pixels, so the drawing scales with the picture.
import { ErrorNote } from "../components/ErrorNote";
import { avatarImagePath, type Avatar } from "./api";
import { faceRect, lipsPoints, viewBox } from "./overlay";
import { useAuthedImage } from "./useAuthedImage";

export function FaceOverlay({ avatar }: { avatar: Avatar }) {
  const image = useAuthedImage(avatarImagePath(avatar.avatar_id));
  const box = faceRect(avatar.face_box, avatar.width, avatar.height);
  const lips = lipsPoints(avatar.lips);
  return (
    <div className="face-figure">
    <div className="face-frame" style={{ aspectRatio: `${avatar.width} / ${avatar.height}` }}>
      {image.url ? (
        <img src={image.url} alt="The portrait as the renderer draws it" width={avatar.width} height={avatar.height} />
      ) : (
        <div className="face-placeholder muted small">{image.error ? "The image did not load." : "Loading…"}</div>
      )}
      <svg
        className="face-overlay"
        viewBox={viewBox(avatar)}
        preserveAspectRatio="xMidYMid meet"
        data-testid="avatar-overlay"
        role="img"
        aria-label="The face box and lip outline found in the portrait"
      >
        {box && (
          <rect
            data-testid="avatar-face-box"
            className="face-box"
            x={box.x}
            y={box.y}
            width={box.width}
            height={box.height}
            vectorEffect="non-scaling-stroke"
          />
        )}
        {lips && (
          <polygon data-testid="avatar-lips" className="face-lips" points={lips} vectorEffect="non-scaling-stroke" />
        )}
      </svg>
    </div>
      <ErrorNote error={image.error} what="Could not load the image" />
    </div>
  );
}

export function FaceFacts({ avatar }: { avatar: Avatar }) {
  const [x, y, w, h] = avatar.face_box;
  return (
    <div className="stack face-facts">
      <p className="small legend">
        <span>
          <span className="swatch box" aria-hidden="true" /> the face found
        </span>
        <span>
          <span className="swatch lips" aria-hidden="true" /> the lips the renderer moves
        </span>
      </p>
      <dl className="small">
        <div>
          <dt>Image</dt>
          <dd>
            {avatar.width} × {avatar.height} px
          </dd>
        </div>
        <div>
          <dt>Face</dt>
          <dd>
            {w} × {h} px at {x}, {y}
          </dd>
        </div>
        <div>
          <dt>Mouth width</dt>
          <dd>{Math.round(avatar.mouth_width_px)} px</dd>
        </div>
        {avatar.cached && (
          <div>
            <dt>Prepared</dt>
            <dd>before (the same image was reused)</dd>
          </div>
        )}
      </dl>
      {avatar.adjusted && (
        <p className="note small" data-testid="avatar-adjusted">
          Adjusted: {avatar.adjusted}
        </p>
      )}
      {avatar.lips.length < 3 && <p className="note small">No lip outline was reported for this portrait.</p>}
    </div>
  );
}
