"""Prompt text for the embedded LLM, in the two formats we measured (docs/llm-prompt-format.md).

Pure functions. Every turn's text is the previous turn's text plus its reply plus the new user line, with
history rendered identically each time, so llama.cpp can keep the session's KV state and prefill only the
new words (the reuse is token-prefix based; see procs/llm/backends/embedded.py).
"""

from dataclasses import dataclass
from typing import Literal

from procs.llm.backends.base import Exchange, Prompt

PromptFormat = Literal["fewshot", "chatml"]

# A 135M model follows a demonstrated pattern far better than an instruction: the examples show short
# spoken answers and a follow-up question that only makes sense with the previous answer. None of these
# topics may appear in bench/data/factual_questions.json (that would inflate the measured accuracy).
# Measured (docs/llm-prompt-format.md): an example about spider legs leaked into answers ("A spider has 18
# days in a week"); the follow-up pair works best last, right before the conversation.
FEWSHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Who wrote the Harry Potter books?", "J. K. Rowling wrote the Harry Potter books."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("And of Germany?", "The capital of Germany is Berlin."),
)
FEWSHOT_STOP = ("\nUser:", "\nAssistant:", "\n\n")

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHATML_STOP = (IM_END, IM_START, "<|endoftext|>")


@dataclass(frozen=True, slots=True)
class PromptText:
    text: str
    stop: tuple[str, ...]
    # Whether the text contains the model's special tokens in textual form (ChatML markers) that the
    # tokenizer must parse as special tokens rather than as plain characters.
    special: bool


def spoken(text: str) -> str:
    """One line of conversation as it is rendered: whitespace (newlines included) collapsed to single spaces.

    Applied identically to the history and the new text, so a line renders the same way on every turn.
    """
    return " ".join(text.split())


def fewshot_header(assistant_name: str) -> str:
    lines = [
        f"{assistant_name} is a friendly voice assistant. It answers every question in one or two short "
        "spoken sentences, and it uses the earlier lines of the conversation to understand follow-up questions.",
        "",
    ]
    for question, answer in FEWSHOT_EXAMPLES:
        lines += [f"User: {question}", f"Assistant: {answer}"]
    return "\n".join(lines) + "\n"


def _fewshot_line(exchange: Exchange) -> str:
    label = "User" if exchange.role == "user" else "Assistant"
    return f"{label}: {spoken(exchange.text)}\n"


def _chatml_clean(text: str) -> str:
    # User text must not be able to open or close a ChatML turn: the prompt is tokenized with special=True.
    return spoken(text.replace(IM_START, "").replace(IM_END, ""))


def chatml_system(assistant_name: str) -> str:
    return (
        f"You are {assistant_name}, a friendly voice assistant. Answer in one or two short spoken sentences, "
        "without lists or formatting."
    )


def _chatml_line(exchange: Exchange) -> str:
    role = "user" if exchange.role == "user" else "assistant"
    return f"{IM_START}{role}\n{_chatml_clean(exchange.text)}{IM_END}\n"


def render(prompt: Prompt, prompt_format: PromptFormat, assistant_name: str) -> PromptText:
    """The text the model continues: the frame, the session's history, then the new user text."""
    if prompt_format == "fewshot":
        history = "".join(_fewshot_line(e) for e in prompt.history)
        text = f"{fewshot_header(assistant_name)}{history}User: {spoken(prompt.user_text)}\nAssistant:"
        return PromptText(text=text, stop=FEWSHOT_STOP, special=False)
    system = f"{IM_START}system\n{chatml_system(assistant_name)}{IM_END}\n"
    history = "".join(_chatml_line(e) for e in prompt.history)
    user = f"{IM_START}user\n{_chatml_clean(prompt.user_text)}{IM_END}\n{IM_START}assistant\n"
    return PromptText(text=system + history + user, stop=CHATML_STOP, special=True)
