"""Mynah appliance: configuration, coordinator, gateway, store and CLI."""
