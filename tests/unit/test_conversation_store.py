"""The conversation store on a real SQLite file: turns, context, failures, deletion, migrations."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from appliance.store.conversations import ConversationStore
from appliance.store.db import MIGRATIONS, StoreError, connect, migrate


class Ticks:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(connect(tmp_path / "mynah.db"), clock=Ticks())


def test_a_turn_stores_the_user_line_at_once_and_the_reply_when_done(store: ConversationStore) -> None:
    session = store.create_session()
    turn = store.start_turn(session, "What is the capital of France?")
    assert [(line.role, line.text) for line in store.history(session)] == [("user", "What is the capital of France?")]
    assert store.context(session) == [], "a running turn is not context yet"
    store.finish_turn(turn, "Paris.", {"total_s": 0.5})
    assert [(line.role, line.text) for line in store.context(session)] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
    ]


def test_a_failed_turn_keeps_what_the_user_said_but_leaves_the_context(store: ConversationStore) -> None:
    session = store.create_session()
    done = store.start_turn(session, "first")
    store.finish_turn(done, "reply", {})
    failed = store.start_turn(session, "second")
    store.fail_turn(failed, "llm-worker-crashed")
    assert [line.text for line in store.history(session)] == ["first", "reply", "second"]
    assert [line.text for line in store.context(session)] == ["first", "reply"]


def test_an_interrupted_turn_keeps_only_what_was_heard(store: ConversationStore) -> None:
    session = store.create_session()
    turn = store.start_turn(session, "Tell me a story.")
    store.interrupt_turn(turn, "Once upon a", {"first_audio": 1.2})
    store.finish_turn(turn, "Once upon a time there was a dragon.", {})  # the model's reply, arriving later
    assert [(line.role, line.text) for line in store.history(session)] == [
        ("user", "Tell me a story."),
        ("assistant", "Once upon a"),
    ]
    assert [line.text for line in store.context(session)] == ["Tell me a story.", "Once upon a"]
    # Interrupted after the reply was stored (the answer was still playing): the line is cut back.
    second = store.start_turn(session, "Another one.")
    store.finish_turn(second, "A knight rode out. He met a dragon.", {})
    store.interrupt_turn(second, "A knight rode out.", {})
    assert store.history(session)[-1].text == "A knight rode out."


def test_a_turn_interrupted_before_a_word_was_heard_leaves_the_context(store: ConversationStore) -> None:
    session = store.create_session()
    turn = store.start_turn(session, "What is")
    store.interrupt_turn(turn, "", {})
    assert [line.role for line in store.history(session)] == ["user"]
    assert store.context(session) == []


def test_turns_left_running_by_a_dead_coordinator_are_failed_at_start(store: ConversationStore) -> None:
    session = store.create_session()
    store.start_turn(session, "interrupted")
    assert store.fail_running_turns("coordinator-restarted") == 1
    assert store.fail_running_turns("coordinator-restarted") == 0


def test_sessions_are_listed_newest_first_and_titled_by_their_first_words(store: ConversationStore) -> None:
    older = store.create_session()
    newer = store.create_session()
    store.start_turn(older, "hello there")
    store.start_turn(newer, "good morning")
    store.start_turn(older, "again")
    listed = store.list_sessions()
    assert [s.session_id for s in listed] == [older, newer]
    assert listed[0].title == "hello there"
    assert listed[0].turns == 2


def test_deleting_a_session_removes_its_lines_and_unknown_ids_are_typed_errors(store: ConversationStore) -> None:
    session = store.create_session()
    store.start_turn(session, "bye")
    store.delete_session(session)
    with pytest.raises(StoreError) as caught:
        store.history(session)
    assert caught.value.code == "session-not-found"
    with pytest.raises(StoreError):
        store.delete_session(session)


def test_the_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "mynah.db"
    first = ConversationStore(connect(path))
    session = first.create_session()
    first.finish_turn(first.start_turn(session, "kept"), "yes", {})
    again = ConversationStore(connect(path))
    assert [line.text for line in again.history(session)] == ["kept", "yes"]


def test_migrations_run_once_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(conn) == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError) as caught:
        migrate(conn)
    assert caught.value.code == "store-too-new"


def test_a_voice_turns_stage_times_are_kept_beside_its_llm_timings(store: ConversationStore) -> None:
    session = store.create_session()
    turn = store.start_turn(session, "Hello.")
    store.finish_turn(turn, "Hi.", {"first_token_s": 0.3})
    store.add_trace(turn, {"final": 0.9, "first_audio": 1.6})
    raw = store._conn.execute("SELECT timings FROM turns WHERE id = ?", (turn,)).fetchone()[0]
    assert json.loads(raw) == {"first_token_s": 0.3, "trace": {"final": 0.9, "first_audio": 1.6}}
    with pytest.raises(StoreError):
        store.add_trace("no-such-turn", {})
