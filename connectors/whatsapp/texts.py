"""What the channel itself says to a customer, in English and Nigerian Pidgin: the one place to change it.

Almost everything the assistant says is a response in ``domain/``, with a Pidgin variant the
``language`` slot picks. These few sentences are the channel's own and cannot be responses of
the model: they go out when Rasa has nothing to say (a photo, a voice note nobody made out, a
customer over the rate limit), when Rasa itself failed, when a response cannot be shown, or
around Rasa's buttons. A designer edits them here; no retraining. Every entry has both
languages (tests/connectors/test_whatsapp_texts.py checks it); ``{name}`` fields are filled
by the channel and must stay in both.

Which language: for the channel's own replies, the conversation's ``language`` slot; for words
around a response (the prompt over its buttons, the apology instead of it), the response's own
text, already in the customer's language; for what a voice note said, Whisper's language or
the words heard.
"""

from __future__ import annotations

from collections.abc import Mapping

from banking.language import detect_language

__all__ = ["ENGLISH", "LANGUAGES", "PIDGIN", "TEXTS", "heard", "language_of_text", "rate_limited", "say", "unsupported"]

ENGLISH = "english"
PIDGIN = "pidgin"
LANGUAGES = (ENGLISH, PIDGIN)  # the values of the domain's `language` slot

TEXTS: Mapping[str, Mapping[str, str]] = {
    # Voice note not understood (no transcriber, download failed, nothing heard).
    "voice_not_understood": {
        ENGLISH: "Sorry, I can't listen to voice notes yet. Please type your message and I'll help right away.",
        PIDGIN: "Sorry, I no fit hear voice note for now. Abeg type your message, I go help you sharp sharp.",
    },
    # A voice note heard with low confidence: what was heard, before it goes to Rasa.
    "heard": {
        ENGLISH: "🎤 I heard: “{text}”. If that's not what you said, please type it.",
        PIDGIN: "🎤 Wetin I hear be: “{text}”. If no be wetin you talk, abeg type am.",
    },
    # Rasa failed on a message.
    "something_went_wrong": {
        ENGLISH: "Sorry, something went wrong on our side. Please try again in a moment.",
        PIDGIN: "Sorry, something no work well for our side. Abeg try again small time.",
    },
    # A response that still had a {placeholder} is never sent; this goes instead, without buttons.
    "response_not_shown": {
        ENGLISH: "Sorry, something went wrong on my side and I couldn't show that message. "
                 "Please ask me again in a moment.",
        PIDGIN: "Sorry, something no work well for my side and I no fit show you that message. "
                "Abeg ask me again small time.",
    },
    # A message kind the assistant cannot read; {what} is one of the unsupported.* entries.
    "unsupported": {
        ENGLISH: "Sorry, I can't read {what} yet. I understand typed messages and taps on my buttons "
                 "and lists, so please type what you need.",
        PIDGIN: "Sorry, I no fit read {what} for now. Na typed message and my buttons and list I sabi, "
                "so abeg type wetin you need.",
    },
    "unsupported.image": {ENGLISH: "photos", PIDGIN: "picture"},
    "unsupported.sticker": {ENGLISH: "stickers", PIDGIN: "sticker"},
    "unsupported.location": {ENGLISH: "shared locations", PIDGIN: "location wey you share"},
    "unsupported.contacts": {ENGLISH: "contact cards", PIDGIN: "contact card"},
    "unsupported.document": {ENGLISH: "documents", PIDGIN: "document"},
    "unsupported.video": {ENGLISH: "videos", PIDGIN: "video"},
    "unsupported.reaction": {ENGLISH: "reactions", PIDGIN: "reaction"},
    "unsupported.other": {ENGLISH: "this kind of message", PIDGIN: "this kind message"},
    # A customer over the per-user rate limit, told once per window; {wait} is wait.* below.
    "rate_limited": {
        ENGLISH: "You're sending messages very fast; please wait {wait}, then send your last message again.",
        PIDGIN: "You dey send message too fast; abeg wait {wait}, then send your last message again.",
    },
    "wait.a_minute": {ENGLISH: "a minute", PIDGIN: "one minute"},
    "wait.minutes": {ENGLISH: "{minutes} minutes", PIDGIN: "{minutes} minutes"},
    # Over buttons whose response has no text, or whose text went ahead on its own (over 1024 characters).
    "choice_prompt": {ENGLISH: "Please choose an option:", PIDGIN: "Abeg pick one:"},
    # The button that opens a list of more than 3 choices (WhatsApp allows 20 characters).
    "list_button": {ENGLISH: "Choose", PIDGIN: "Pick one"},
}


def say(key: str, language: str | None = None, **fields: object) -> str:
    """The text ``key`` in ``language`` (English for any other value), its fields filled."""
    entry = TEXTS[key]
    text = entry[language] if language is not None and language in entry else entry[ENGLISH]
    return text.format(**fields) if fields else text


def language_of_text(text: str | None) -> str:
    """The language a response is written in, for the words the channel puts around it."""
    return detect_language(text or "", ENGLISH)


def unsupported(kind: str, language: str | None = None) -> str:
    """What the customer is told when they send something the assistant cannot read."""
    what = f"unsupported.{kind}" if f"unsupported.{kind}" in TEXTS else "unsupported.other"
    return say("unsupported", language, what=say(what, language))


def rate_limited(window_seconds: float, language: str | None = None) -> str:
    """What a customer over the limit is told, with the wait in words."""
    if window_seconds <= 90:
        wait = say("wait.a_minute", language)
    else:
        wait = say("wait.minutes", language, minutes=max(2, round(window_seconds / 60)))
    return say("rate_limited", language, wait=wait)


def heard(text: str, language: str | None = None) -> str:
    """What a voice note said, in Whisper's language if it is one of ours, else the words' own."""
    language = language if language in LANGUAGES else detect_language(text)
    shown = text if len(text) <= 300 else text[:297] + "..."
    return say("heard", language, text=shown)
