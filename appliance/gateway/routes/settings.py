"""GET/PUT /api/settings: what the web UI may change, applied by restarting the programs that read it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request

from appliance.cli.doctor import default_probes
from appliance.config import ConfigError, MynahConfig, load_config
from appliance.gateway.deps import Config
from appliance.gateway.errors import ApiError
from appliance.gateway.schemas import ApiErrorOut, SettingOut, SettingsIn, SettingsOut
from appliance.settings import (
    SETTINGS,
    SettingsError,
    checked,
    lookup,
    merged,
    programs_to_restart,
    read_settings,
    write_settings,
)
from appliance.supervision.rpc import SupervisorClient, SupervisorUnavailable

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/settings", tags=["settings"])
ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ApiErrorOut, "description": "settings-invalid, setting-unknown"},
    503: {"model": ApiErrorOut, "description": "supervisor-unavailable"},
}
# Only these states are restarted; a program the residency plan stopped reads the new values when it starts.
RUNNING = frozenset({"RUNNING", "STARTING", "BACKOFF"})
NEEDS_GPU = "needs an NVIDIA GPU with CUDA, and none was found"


@router.get("", response_model=SettingsOut, summary="Every setting, its value now, and the choices this box supports")
async def get_settings(request: Request, config: Config) -> SettingsOut:
    return await _settings_out(request, config)


@router.put(
    "", response_model=SettingsOut, responses=ERRORS,
    summary="Change settings; the programs that read them are restarted (listed in `restarting`)",
)  # fmt: skip
async def put_settings(request: Request, body: SettingsIn, config: Config) -> SettingsOut:
    data_dir = config.paths.data_dir
    try:
        changes = checked(body.values)
        stored = read_settings(data_dir)
    except SettingsError as err:
        raise ApiError(err.code, err.message) from err
    apply_settings(request, config, stored, changes)
    return await _settings_out(request, config)


def apply_settings(request: Request, config: MynahConfig, stored: dict[str, Any], changes: dict[str, Any]) -> None:
    """Store the changes (checked already) and restart, in the background, the programs that read them."""
    values = merged(stored, changes)
    changed = {key: value for key, value in changes.items() if stored.get(key) != value}
    if not changed:
        return
    _check_whole(config, values)
    write_settings(config.paths.data_dir, values)
    programs = programs_to_restart(changed)
    log.info("settings changed %s: restarting %s", sorted(changed), programs or "nothing")
    request.app.state.settings_restart = asyncio.create_task(
        asyncio.to_thread(_restart, SupervisorClient(config.paths.runtime_dir), programs)
    )
    request.app.state.settings_restarting = programs


def _check_whole(config: MynahConfig, values: dict[str, Any]) -> None:
    """The configuration with these values still validates, so no program fails to start on it."""
    if config.source is not None:
        try:
            load_config(config.source, settings=values)
        except ConfigError as err:
            raise ApiError("settings-invalid", err.message) from err


def _restart(supervisor: SupervisorClient, programs: list[str]) -> None:
    try:
        states = {p.name: p.state for p in supervisor.processes()}
        for name in programs:
            if states.get(name) in RUNNING:
                supervisor.stop(name)
                supervisor.start(name)
    except SupervisorUnavailable as err:
        log.warning("cannot restart %s to apply settings: %s", programs, err)
    except Exception as err:  # an XML-RPC fault (a program in a state that refuses): say it, the rest stands
        log.warning("restarting %s to apply settings failed: %s", programs, err)


async def _settings_out(request: Request, config: Config) -> SettingsOut:
    try:
        stored = read_settings(config.paths.data_dir)
        current = (
            load_config(config.source).model_dump(mode="json") if config.source else config.model_dump(mode="json")
        )
    except (SettingsError, ConfigError) as err:
        raise ApiError("settings-invalid", err.message) from err
    unavailable = await asyncio.to_thread(_unavailable, config)
    task = getattr(request.app.state, "settings_restart", None)
    restarting = list(getattr(request.app.state, "settings_restarting", [])) if task and not task.done() else []
    return SettingsOut(
        settings=[
            SettingOut(
                key=s.key, label=s.label, kind=s.kind, value=lookup(current, s.key), overridden=s.key in stored,
                choices=list(s.choices), unavailable=unavailable.get(s.key, {}), minimum=s.minimum,
                maximum=s.maximum, help=s.help, programs=list(s.programs),
            )
            for s in SETTINGS
        ],
        restarting=restarting,
    )  # fmt: skip


def _unavailable(config: MynahConfig) -> dict[str, dict[str, str]]:
    """Choices this box cannot run now, by setting, with why."""
    out: dict[str, dict[str, str]] = {}
    probes = default_probes(config)
    if not probes.http_ok(f"{config.llm.ollama.host.rstrip('/')}/api/version"):
        out["llm.backend"] = {"ollama": f"Ollama does not answer at {config.llm.ollama.host}"}
    if not probes.gpus():
        out["stt.live_profile"] = {"gpu": NEEDS_GPU}
        out["tts.backend"] = {"gpt-sovits": NEEDS_GPU}
        out["lipsync.backend"] = {"sadtalker": NEEDS_GPU}
    return out
