"""Stored voices: list, show, delete, and choose the one replies are spoken in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from appliance.gateway.deps import Link
from appliance.gateway.schemas import ApiErrorOut, VoiceOut, VoicesOut
from ipc.messages import (
    ActivateVoice,
    DeleteVoice,
    GetVoice,
    ListVoices,
    VoiceActivated,
    VoiceDeleted,
    VoiceDetail,
    VoiceInfo,
    VoiceList,
)

router = APIRouter(prefix="/api/voices", tags=["voices"])

BUILTIN = "builtin"  # activating it goes back to the configured engine's own voice
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ApiErrorOut, "description": "voice-not-found"}}


def voice_out(voice: VoiceInfo) -> VoiceOut:
    return VoiceOut.model_validate({name: getattr(voice, name) for name in VoiceOut.model_fields}, strict=False)


@router.get("", response_model=VoicesOut, summary="The stored voices and which one is active")
async def list_voices(link: Link) -> VoicesOut:
    reply = await link.ask_for(ListVoices(), VoiceList)
    return VoicesOut(voices=[voice_out(v) for v in reply.voices], active_voice_id=reply.active_voice_id)


@router.get("/{voice_id}", response_model=VoiceOut, responses=ERRORS, summary="One voice")
async def get_voice(voice_id: str, link: Link) -> VoiceOut:
    reply = await link.ask_for(GetVoice(voice_id), VoiceDetail)
    return voice_out(reply.voice)


@router.delete("/{voice_id}", status_code=204, responses=ERRORS, summary="Delete a voice and its files")
async def delete_voice(voice_id: str, link: Link) -> None:
    await link.ask_for(DeleteVoice(voice_id), VoiceDeleted)


@router.post(
    "/{voice_id}/activate",
    response_model=VoicesOut,
    responses=ERRORS,
    summary=f"Speak replies in this voice ('{BUILTIN}': the configured engine's own voice)",
)
async def activate_voice(voice_id: str, link: Link) -> VoicesOut:
    await link.ask_for(ActivateVoice(None if voice_id == BUILTIN else voice_id), VoiceActivated)
    return await list_voices(link)
