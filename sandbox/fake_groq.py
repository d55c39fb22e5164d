"""A stand-in for Groq's OpenAI-compatible API on 127.0.0.1, for tests and scripts/llm_report.py.

It answers ``POST /openai/v1/chat/completions`` and ``POST /openai/v1/audio/transcriptions``
with the documented payload shapes, from a script of replies: tool calls, final
answers, JSON, malformed bodies, 429s, 500s and slow answers. Replies can be
queued for one model or for any, or computed from the request by a responder.

    fake = await FakeGroq().start()
    fake.queue(tool_calls(("spending_by_category", {"period": "last month"})), answer("You spent ..."))
    config = LLMConfig(api_key=API_KEY, base_url=fake.base_url, ...)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "gsk_fake_key_for_tests_only"
_ids = itertools.count(1)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> sent as is (malformed on purpose)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def completion(message: dict[str, Any], finish_reason: str, model: str = "fake") -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366,
                  "queue_time": 0.01, "prompt_time": 0.02, "completion_time": 0.03, "total_time": 0.05},
        "system_fingerprint": "fp_fake",
        "x_groq": {"id": "req_fake"},
    }


def answer(text: str, delay: float = 0.0) -> Reply:
    return Reply(body=completion({"role": "assistant", "content": text}, "stop"), delay=delay)


def json_answer(value: Any) -> Reply:
    return answer(json.dumps(value))


def tool_calls(*calls: tuple[str, dict[str, Any] | str]) -> Reply:
    """The model asks for tools; arguments may be a dict, or a string (e.g. malformed JSON)."""
    made = [
        {"id": f"call_{next(_ids)}", "type": "function",
         "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
        for name, args in calls
    ]
    return Reply(body=completion({"role": "assistant", "content": None, "tool_calls": made}, "tool_calls"))


def error(status: int, message: str = "fake error", headers: dict[str, str] | None = None) -> Reply:
    kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status, "server_error")
    return Reply(status=status, body={"error": {"message": message, "type": kind, "code": kind}},
                 headers=headers or {})


def rate_limited() -> Reply:
    return error(429, "Rate limit reached", {"retry-after": "0", "x-should-retry": "false"})


def malformed() -> Reply:
    return Reply(body="{this is not json")


def transcription(text: str, segments: list[dict[str, Any]] | None = None, language: str = "English") -> Reply:
    segments = segments if segments is not None else [segment(text)]
    return Reply(body={"task": "transcribe", "language": language, "duration": 3.2, "text": text,
                       "segments": segments, "x_groq": {"id": "req_fake"}})


def segment(text: str, avg_logprob: float = -0.15, no_speech_prob: float = 0.01, start: float = 0.0,
            end: float = 3.0) -> dict[str, Any]:
    return {"id": 0, "seek": 0, "start": start, "end": end, "text": f" {text}", "tokens": [50365, 400],
            "temperature": 0.0, "avg_logprob": avg_logprob, "compression_ratio": 1.1,
            "no_speech_prob": no_speech_prob}


Responder = Callable[[dict[str, Any]], Reply]


class FakeGroq:
    """A scripted Groq; ``requests`` keeps every chat request body, ``uploads`` every transcription form."""

    def __init__(self) -> None:
        self._queues: dict[str | None, deque[Reply]] = {None: deque()}
        self.responder: Responder | None = None
        self.requests: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.unauthorised = 0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *replies: Reply, model: str | None = None) -> FakeGroq:
        self._queues.setdefault(model, deque()).extend(replies)
        return self

    def models_asked(self) -> list[str]:
        return [request.get("model", "") for request in self.requests]

    async def start(self) -> FakeGroq:
        app = web.Application()
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        app.router.add_post("/openai/v1/audio/transcriptions", self._transcribe)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            self._closing.set()  # slow replies stop waiting
            await asyncio.sleep(0.01)
            await self._runner.cleanup()
            self._runner = None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.unauthorised += 1
            return _send(error(401, "Invalid API Key"))
        body = await request.json()
        self.requests.append(body)
        reply = self._next(body.get("model"))
        if reply is None and self.responder is not None:
            reply = self.responder(body)
        if reply is None:
            reply = answer("I can help with your spending.")
        await self._wait(reply.delay)
        return _send(reply)

    async def _wait(self, delay: float) -> None:
        if delay:
            try:
                await asyncio.wait_for(self._closing.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _transcribe(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.unauthorised += 1
            return _send(error(401, "Invalid API Key"))
        form = await request.post()
        upload = form.get("file")
        size = 0
        if isinstance(upload, web.FileField):
            with upload.file:  # aiohttp spools uploads to a temporary file
                size = len(upload.file.read())
        self.uploads.append({
            "model": form.get("model"),
            "response_format": form.get("response_format"),
            "filename": getattr(upload, "filename", None),
            "content_type": getattr(upload, "content_type", None),
            "size": size,
        })
        reply = self._next(str(form.get("model"))) or transcription("check my balance")
        await self._wait(reply.delay)
        return _send(reply)

    def _next(self, model: str | None) -> Reply | None:
        for key in (model, None):
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
        return None


def _send(reply: Reply) -> web.Response:
    if isinstance(reply.body, str):
        return web.Response(status=reply.status, text=reply.body, content_type="application/json",
                            headers=reply.headers)
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
