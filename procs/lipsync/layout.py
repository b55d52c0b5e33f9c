"""How prepared avatars lie on disk, `<data_dir>/avatars/<id>/`: read by the lipsync worker and, to list them and
show their images, by the gateway (which must not import the face models)."""

from __future__ import annotations

import re

IMAGE_FILE, FACE_FILE, INFO_FILE = "avatar.png", "face.npz", "info.json"
# sha256 prefix of the uploaded bytes, then the resolution cap it was prepared under.
AVATAR_ID = re.compile(r"^[0-9a-f]{16}-[0-9]{3,4}$")
AVATARS_DIR = "avatars"
