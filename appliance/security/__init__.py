"""LAN security: the local certificate authority, pairing codes and device tokens (docs/architecture.md)."""
