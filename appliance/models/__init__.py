"""The model store: a catalog of pinned model files, fetched at install time and verified by sha256."""

from appliance.models.store import (
    CatalogEntry,
    ModelError,
    ModelFile,
    ModelState,
    ModelStore,
    PackagePart,
)

__all__ = ["CatalogEntry", "ModelError", "ModelFile", "ModelState", "ModelStore", "PackagePart"]
