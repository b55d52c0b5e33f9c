"""Voices: list, show, delete and activate stored voices, and tell the tts worker which files speak one."""

from __future__ import annotations

from appliance.store.db import StoreError
from appliance.store.voices import APPROXIMATION_NOTE, VoiceRecord, VoiceStore
from ipc.messages import (
    ActivateVoice,
    DeleteVoice,
    ErrorReply,
    GetVoice,
    ListVoices,
    Message,
    VoiceActivated,
    VoiceDeleted,
    VoiceDetail,
    VoiceInfo,
    VoiceList,
    VoiceSpec,
)

CLONED_NOTE = "Cloned with GPT-SoVITS from the sample."


class VoiceRouter:
    def __init__(self, store: VoiceStore) -> None:
        self._store = store

    @property
    def store(self) -> VoiceStore:
        return self._store

    def answer(self, message: Message) -> Message:
        try:
            match message:
                case ListVoices():
                    active = self._store.active()
                    return VoiceList(tuple(self._info(v, active) for v in self._store.list()), active)
                case GetVoice():
                    return VoiceDetail(self._info(self._store.get(message.voice_id), self._store.active()))
                case DeleteVoice():
                    self._store.delete(message.voice_id)
                    return VoiceDeleted(message.voice_id)
                case ActivateVoice():
                    self._store.activate(message.voice_id)
                    return VoiceActivated(message.voice_id)
        except StoreError as err:
            return ErrorReply(err.code, err.message)
        return ErrorReply("unsupported-request", type(message).__name__)

    def spec(self, voice_id: str | None) -> VoiceSpec | None:
        """What the tts worker needs to speak `voice_id` (None: the active voice; no active voice: None)."""
        voice_id = voice_id or self._store.active()
        if voice_id is None:
            return None
        voice = self._store.get(voice_id)
        return VoiceSpec(voice_id=voice.voice_id, name=voice.name, kind=voice.kind, language=voice.language,
                         reference_path=voice.files["reference_path"], reference_text=voice.reference_text,
                         adaptation_path=voice.files["adaptation_path"], gpt_weights=voice.files["gpt_weights"],
                         sovits_weights=voice.files["sovits_weights"])  # fmt: skip

    @staticmethod
    def _info(voice: VoiceRecord, active: str | None) -> VoiceInfo:
        return VoiceInfo(voice_id=voice.voice_id, name=voice.name, language=voice.language, kind=voice.kind,
                         status=voice.status, consent=voice.consent, consent_at=voice.consent_at,
                         reference_text=voice.reference_text, clips=voice.clips, created_at=voice.created_at,
                         updated_at=voice.updated_at, active=voice.voice_id == active,
                         note=APPROXIMATION_NOTE if voice.kind == "approximated" else CLONED_NOTE,
                         measures=voice.measures)  # fmt: skip
