"""Spoken menus: grammars per language and offline Vosk recognition."""

from ivr.speech.grammar import INTENTS, Grammar, GrammarError, load_grammars
from ivr.speech.recognizer import (
    Recognition,
    Recognizer,
    SpeechEngine,
    SpeechError,
    model_rate,
    shared_model,
)

__all__ = [
    "INTENTS",
    "Grammar",
    "GrammarError",
    "Recognition",
    "Recognizer",
    "SpeechEngine",
    "SpeechError",
    "load_grammars",
    "model_rate",
    "shared_model",
]
