"""The residency planner on the seed's budgets: a 12 GB RTX 3060, a 16 GB card, and a 2-core CPU-only box.

Footprints are the shipped defaults (appliance/models/footprints.toml). On the GPU: whisper medium 1700 MiB +
586 MiB context per STT program, llama3.1:8b 5900 MiB in Ollama, GPT-SoVITS's server 2500 + 586 MiB (external,
never evicted), SadTalker 4000 + 586 MiB; GPT-SoVITS training reserves 8192 MiB.
"""

from __future__ import annotations

import pytest

from appliance.config import LipsyncConfig, LlmConfig, MynahConfig, ResourcesConfig, SttConfig, TtsConfig
from appliance.coordinator.residency import REFUSED, Budget, Demand, Footprint, Holder, Loaded, Plan, Policy, plan
from appliance.coordinator.resources import policy_of, residents_of, training_footprint
from appliance.models.footprints import load_footprints

TABLE = load_footprints(None)
# An idle card already reports memory in use (480 MiB measured on the H100): it is not Mynah's to plan with.
IDLE_CARD_MIB = 480
RTX_3060 = Budget(gpu_mib=12 * 1024 - IDLE_CARD_MIB, ram_mib=30_000, cpu_cores=8)
CARD_16GB = Budget(gpu_mib=16 * 1024 - IDLE_CARD_MIB, ram_mib=30_000, cpu_cores=8)
CPU_ONLY = Budget(gpu_mib=None, ram_mib=8 * 1024 - 1024, cpu_cores=2)

SEED = MynahConfig(
    stt=SttConfig(profile="gpu"),
    llm=LlmConfig(backend="ollama"),
    tts=TtsConfig(backend="gpt-sovits"),
    lipsync=LipsyncConfig(backend="sadtalker"),
)
SEED_RESIDENTS = residents_of(SEED, TABLE)
EMBEDDED = MynahConfig()
EMBEDDED_RESIDENTS = residents_of(EMBEDDED, TABLE)
GPT_SOVITS_TRAINING = training_footprint(SEED.model_copy(update={"trainer": SEED.trainer.model_copy(
    update={"gpt_sovits_root": "/opt/GPT-SoVITS"})}), TABLE)  # fmt: skip
VOICE_ADAPT = training_footprint(EMBEDDED, TABLE)
LIVE = ("llm", "lipsync", "stt", "tts")


def loaded(*names: str, at: float = 0.0) -> dict[str, Loaded]:
    return {name: Loaded(at) for name in names}


def unloaded(found: Plan) -> dict[str, str]:
    return {u.name: u.reason for u in found.unload}


def test_the_seed_stack_cannot_all_fit_a_12gb_card() -> None:
    everything = sum((r.footprint.vram_mib for r in SEED_RESIDENTS), 0.0)
    assert everything > 18_000 > (RTX_3060.gpu_mib or 0)
    assert {r.name: r.holder for r in SEED_RESIDENTS}["tts"] is Holder.EXTERNAL
    assert GPT_SOVITS_TRAINING.vram_mib == 8192


def test_fallbacks_serving_are_what_is_budgeted_not_the_configured_backends() -> None:
    # GPT-SoVITS's server, Ollama and SadTalker all failed to load: Piper, the embedded LLM and the real-time
    # renderer serve instead, and hold the memory.
    fell_back = {r.name: r for r in residents_of(SEED, TABLE, {"tts": "piper", "llm": "embedded",
                                                               "lipsync": "realtime"})}  # fmt: skip
    configured = {r.name: r for r in SEED_RESIDENTS}
    assert configured["tts"].holder is Holder.EXTERNAL and configured["llm"].holder is Holder.OLLAMA
    assert "sadtalker" in configured and "sadtalker" not in fell_back
    assert fell_back["tts"].holder is Holder.PROGRAM and fell_back["tts"].model == SEED.tts.piper.model
    assert fell_back["llm"].holder is Holder.PROGRAM and fell_back["llm"].model == SEED.llm.embedded.model
    assert fell_back["llm"].footprint.vram_mib == 0 < fell_back["llm"].footprint.ram_mib
    # "auto" counts what serves: Ollama once the llm program says it runs it, the embedded model until then.
    auto = MynahConfig(llm=LlmConfig(backend="auto"))
    assert {r.name: r.holder for r in residents_of(auto, TABLE)}["llm"] is Holder.PROGRAM
    assert {r.name: r.holder for r in residents_of(auto, TABLE, {"llm": "ollama"})}["llm"] is Holder.OLLAMA


def test_a_live_session_on_a_12gb_card_keeps_stt_llm_and_tts_and_evicts_batch_stt() -> None:
    found = plan(SEED_RESIDENTS, loaded("stt", "stt-batch", "llm", "tts", "lipsync"), Demand(admit=True),
                 RTX_3060, Policy(), now=10.0)  # fmt: skip
    assert found.admitted and found.fits and found.code == ""
    assert unloaded(found) == {"stt-batch": "room"}
    assert found.stop == ("stt-batch",) and found.unload[0].restart  # a CUDA context: only its exit frees it
    assert found.resident == ("lipsync", "llm", "stt", "tts")
    assert 11_000 < found.usage.vram_mib <= (RTX_3060.gpu_mib or 0)


def test_a_cold_12gb_box_loads_the_live_models_for_a_session_but_not_sadtalker() -> None:
    found = plan(SEED_RESIDENTS, loaded("tts"), Demand(admit=True, video=True), RTX_3060, Policy(), now=0.0)
    assert found.admitted
    assert found.load == ("lipsync", "llm", "stt")  # the external GPT-SoVITS server is already there
    assert "sadtalker" not in found.resident  # 4586 MiB does not fit beside a live session


def test_sadtalker_waits_for_room_and_never_evicts_for_a_batch_video() -> None:
    busy = plan(SEED_RESIDENTS, loaded("stt", "llm", "tts", "lipsync"), Demand(video=True), RTX_3060, Policy(),
                now=100.0)  # fmt: skip
    assert busy.load == () and busy.unload == ()
    # Once the live models have idled past idle_unload_s they go, and SadTalker fits.
    idle = Policy(idle_unload_s=600.0)
    found = plan(SEED_RESIDENTS, loaded("stt", "llm", "tts", "lipsync"), Demand(video=True), RTX_3060, idle,
                 now=700.0)  # fmt: skip
    assert found.load == ("sadtalker",)
    assert unloaded(found) == {"stt": "idle", "llm": "idle", "lipsync": "idle"}
    assert found.fits


def test_training_on_a_12gb_card_evicts_everything_but_the_external_tts() -> None:
    found = plan(SEED_RESIDENTS, loaded("stt", "stt-batch", "llm", "tts", "lipsync"),
                 Demand(training=GPT_SOVITS_TRAINING), RTX_3060, Policy(), now=10.0)  # fmt: skip
    assert found.fits
    assert unloaded(found) == {"stt-batch": "room", "llm": "room", "stt": "room"}
    assert {u.name: u.holder for u in found.unload}["llm"] is Holder.OLLAMA  # keep_alive 0, not a restart
    assert set(found.stop) == {"stt", "stt-batch"}
    assert "lipsync" in found.resident  # the CPU renderer is not in the GPU's way
    assert found.usage.vram_mib == pytest.approx(3086 + 8192)


def test_training_never_evicts_a_live_sessions_models() -> None:
    found = plan(SEED_RESIDENTS, loaded("stt", "stt-batch", "llm", "tts", "lipsync"),
                 Demand(sessions=1, training=GPT_SOVITS_TRAINING), RTX_3060, Policy(), now=10.0)  # fmt: skip
    assert unloaded(found) == {"stt-batch": "room"}
    assert not found.fits and found.over == ("gpu",)


def test_a_16gb_card_holds_a_live_session_and_sadtalker_together() -> None:
    found = plan(SEED_RESIDENTS, loaded("stt", "llm", "tts", "lipsync"), Demand(sessions=1, video=True), CARD_16GB,
                 Policy(), now=10.0)  # fmt: skip
    assert found.load == ("sadtalker",) and found.fits
    training = plan(SEED_RESIDENTS, loaded("stt", "llm", "tts", "lipsync"), Demand(training=GPT_SOVITS_TRAINING),
                    CARD_16GB, Policy(), now=10.0)  # fmt: skip
    assert unloaded(training) == {"llm": "room"}  # 16 GB keeps speech recognition through training


def test_a_2_core_box_admits_three_live_sessions_and_refuses_the_fourth_on_cpu() -> None:
    policy = policy_of(EMBEDDED)
    assert policy.max_sessions == 3
    present = loaded("stt", "stt-batch", "llm", "tts", "lipsync")
    for sessions in range(3):
        found = plan(EMBEDDED_RESIDENTS, present, Demand(sessions=sessions, admit=True), CPU_ONLY, policy, now=1.0)
        assert found.admitted, found.refusal
        assert found.unload == ()
    fourth = plan(EMBEDDED_RESIDENTS, present, Demand(sessions=3, admit=True), CPU_ONLY, policy, now=1.0)
    assert fourth.admitted is False and fourth.code == REFUSED
    assert "CPU: 4 sessions need 2.4" in fourth.refusal and "of 2 cores" in fourth.refusal
    assert fourth.unload == ()  # a refused session changes nothing
    # The CPU alone refuses it, not only the session cap.
    roomy = Policy(max_sessions=8, per_session=policy.per_session)
    alone = plan(EMBEDDED_RESIDENTS, present, Demand(sessions=3, admit=True), CPU_ONLY, roomy, now=1.0)
    assert alone.code == REFUSED and alone.refusal.startswith("CPU")


def test_embedded_training_fits_a_2_core_box_beside_a_live_session() -> None:
    found = plan(EMBEDDED_RESIDENTS, loaded("stt", "stt-batch", "llm", "tts", "lipsync"),
                 Demand(sessions=1, training=VOICE_ADAPT), CPU_ONLY, policy_of(EMBEDDED), now=1.0)  # fmt: skip
    assert found.fits and found.unload == ()


def test_embedded_training_on_a_tight_ram_budget_evicts_lowest_priority_first() -> None:
    present = loaded("stt", "stt-batch", "llm", "tts", "lipsync")
    total = sum(r.footprint.ram_mib for r in EMBEDDED_RESIDENTS)
    ram = {r.name: r.footprint.ram_mib for r in EMBEDDED_RESIDENTS}
    budget = Budget(None, total + VOICE_ADAPT.ram_mib - ram["stt-batch"] - ram["lipsync"] - ram["llm"], 2)
    found = plan(EMBEDDED_RESIDENTS, present, Demand(training=VOICE_ADAPT), budget, policy_of(EMBEDDED), now=1.0)
    assert [u.name for u in found.unload] == ["stt-batch", "lipsync", "llm"]  # priorities 30, 60, 70
    assert found.fits and found.stop == ("stt-batch", "lipsync", "llm")


def test_idle_unload_follows_the_injected_clock_and_spares_what_is_in_use() -> None:
    policy = Policy(idle_unload_s=600.0)
    state = {"llm": Loaded(0.0), "stt": Loaded(0.0, in_use=True), "tts": Loaded(300.0)}
    assert plan(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, policy, now=599.0).unload == ()
    found = plan(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, policy, now=600.0)
    assert unloaded(found) == {"llm": "idle"}
    later = plan(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, policy, now=900.0)
    assert unloaded(later) == {"llm": "idle", "tts": "idle"}


def test_idle_ones_go_before_busier_lower_priority_ones() -> None:
    policy = Policy(idle_unload_s=600.0)
    state = {"stt": Loaded(0.0), "stt-batch": Loaded(500.0), "llm": Loaded(500.0)}
    ram = {r.name: r.footprint.ram_mib for r in EMBEDDED_RESIDENTS}
    budget = Budget(None, ram["stt-batch"] + ram["llm"] + VOICE_ADAPT.ram_mib, 2)
    found = plan(EMBEDDED_RESIDENTS, state, Demand(training=VOICE_ADAPT), budget, policy, now=700.0)
    assert unloaded(found) == {"stt": "idle"}


def test_a_sadtalker_eviction_restarts_the_face_program_it_shares() -> None:
    found = plan(SEED_RESIDENTS, loaded("lipsync", "sadtalker", "tts"), Demand(admit=True), RTX_3060, Policy(),
                 now=1.0)  # fmt: skip
    assert unloaded(found) == {"sadtalker": "room"}
    assert found.restart == ("lipsync",) and found.stop == ()


def test_configured_budgets_and_session_costs_reach_the_policy() -> None:
    config = MynahConfig(resources=ResourcesConfig(max_sessions=2, session_cpu_cores=0.5, idle_unload_s=60))
    assert policy_of(config) == Policy(2, Footprint(0.0, 100.0, 0.5), 60.0)
