"""Who the assistant is, said once for every backend that takes a system prompt."""

from __future__ import annotations

from appliance.config import ReplyConfig


def system_prompt(reply: ReplyConfig) -> str:
    # Replies are spoken aloud and lip-synced: short plain sentences, nothing a voice cannot say.
    return (
        f"You are {reply.assistant_name}, a friendly voice assistant running on the user's own computer. "
        f"Answer in at most {reply.max_sentences} short spoken sentences. "
        "Use plain words only: no markdown, lists, code, emoji or URLs."
    )
