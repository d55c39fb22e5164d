"""Fuzzing: mutated, oversized and badly signed webhooks; the channel answers each without crashing."""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import logging
import random
import string
import time
from collections import Counter
from typing import Any

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from rasa.core.channels.channel import UserMessage

from checks.reliability.common import Outcome, captured_logs, sender_number, served_channel
from checks.whatsapp_fakes import (
    PHONE_NUMBER_ID,
    RecordingAgent,
    load_payload,
    sign,
    text_webhook,
)

_SIGNATURES = ("valid", "valid", "valid", "valid", "valid", "valid", "none", "wrong", "garbage")
_HEADER_ALPHABET = string.ascii_letters + string.digits + "=-_:; ,."
_TEMPLATES = ("text", "text_batch", "interactive_button_reply", "interactive_list_reply", "template_button",
              "audio_voice", "image", "sticker", "location", "contacts", "reaction", "document", "video",
              "unsupported", "statuses_delivered", "statuses_failed_131047")

json_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
             | st.text(max_size=30))
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _huge(char: str, size: int) -> str:
    return char * size


huge_text = st.builds(_huge, st.sampled_from(["x", "9", "\u00e9", "\U0001f4b8", "\x00", " "]),
                      st.integers(5_000, 300_000))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, outermost first."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_TEMPLATE_DATA = {name: load_payload(name) for name in _TEMPLATES}
_serial = itertools.count()


def _set(payload: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    """``payload`` with the value at ``path`` deleted or replaced."""
    if not path:
        return replacement
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return payload


@st.composite
def meta_payload(draw: Any) -> Any:
    """A recorded Meta webhook with a new sender and message id, then 0-4 fields deleted or replaced by
    anything (another type, random JSON, a huge string): the parser's every branch, valid or not."""
    name = draw(st.sampled_from(_TEMPLATES))
    payload = json.loads(json.dumps(_TEMPLATE_DATA[name]))
    sender = sender_number(3000 + draw(st.integers(0, 999)))  # some users send a lot: the rate limit joins in
    for change in payload["entry"][0]["changes"]:
        # Fresh ids from a counter (hypothesis favours small numbers, and dedup would swallow repeats).
        for message in change["value"].get("messages", []):
            message.update({"from": sender, "id": f"wamid.fz-{next(_serial)}"})
        for status in change["value"].get("statuses", []):
            status.update({"recipient_id": sender, "id": f"wamid.fz-{next(_serial)}"})
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "delete", "json", "leaf", "huge", "digits"]))
        replacement: Any = None
        if action == "json":
            replacement = copy.deepcopy(draw(json_any))  # later mutations must not edit a drawn value
        elif action == "leaf":
            replacement = draw(json_leaf)
        elif action == "huge":
            replacement = draw(huge_text)
        elif action == "digits":
            replacement = str(draw(st.integers(-(10**30), 10**30)))
        payload = _set(payload, path, action, replacement)
    return payload


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, allow_nan=True).encode()


@st.composite
def webhook_body(draw: Any) -> bytes:
    """Raw bytes to POST: mutated Meta webhooks, random JSON, random or cut bytes, huge or deep bodies."""
    shape = draw(st.sampled_from(["meta"] * 6 + ["json", "bytes", "truncated", "deep", "huge"]))
    if shape == "meta":
        return _encode(draw(meta_payload()))
    if shape == "json":
        return _encode(draw(json_any))
    if shape == "bytes":
        return draw(st.binary(max_size=512))
    if shape == "truncated":
        body = _encode(draw(meta_payload()))
        # A fraction, not a length: ids come from a counter, so the body's length is not the draw's to know.
        return body[: len(body) * draw(st.integers(0, 999)) // 1000]
    if shape == "deep":
        depth = draw(st.integers(100, 50_000))
        return ("[" * depth + "]" * draw(st.sampled_from([depth, 0, depth // 2]))).encode()
    return _encode({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "metadata": {"phone_number_id": PHONE_NUMBER_ID},
        "messages": [{"from": "2348031230000", "id": f"wamid.huge-{draw(st.integers(0, 2**32))}", "type": "text",
                      "text": {"body": "x" * draw(st.integers(100_000, 2_000_000))}}]}}]}]})


def fuzz_inputs(count: int, seed: int = 5, batch: int = 5) -> list[tuple[bytes, str]]:
    """``count`` (body, signature mode) pairs drawn by hypothesis: generation only (no shrinking, no
    example database), ``batch`` inputs per example, which keeps hypothesis's per-example cost down."""
    drawn: list[tuple[bytes, str]] = []
    round_seed = seed
    while len(drawn) < count:
        before = len(drawn)

        @settings(max_examples=-(-(count - len(drawn)) // batch), database=None, phases=[Phase.generate],
                  deadline=None, suppress_health_check=list(HealthCheck))
        @hypothesis_seed(round_seed)
        @given(st.lists(st.tuples(webhook_body(), st.sampled_from(_SIGNATURES)), min_size=batch, max_size=batch))
        def collect(inputs: list[tuple[bytes, str]]) -> None:
            drawn.extend(inputs)

        collect()
        round_seed += 1
        if len(drawn) == before:
            break
    return drawn[:count]


def _signature(body: bytes, mode: str, rng: random.Random) -> str | None:
    if mode == "valid":
        return sign(body)
    if mode == "wrong":
        return sign(body, "not-the-app-secret")
    if mode == "garbage":
        return "".join(rng.choice(_HEADER_ALPHABET) for _ in range(rng.randint(0, 80)))
    return None


async def fuzz(count: int = 1000, seed: int = 5, in_flight: int = 32) -> Outcome:
    """POST ``count`` generated bodies, signed and not; no 5xx, and the server still answers afterwards."""
    outcome = Outcome(f"webhook fuzzing: {count} generated inputs")
    started = time.perf_counter()
    inputs = fuzz_inputs(count, seed)
    generated = time.perf_counter() - started
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    agent = RecordingAgent()

    async def quiet(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "ok")

    agent.responder = quiet
    with captured_logs("connectors", level=logging.ERROR) as errors:
        async with served_channel(agent=agent) as (graph, channel, server), \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            gate = asyncio.Semaphore(in_flight)

            async def post(body: bytes, mode: str) -> None:
                signature = _signature(body, mode, rng)
                headers = {"Content-Type": "application/json"}
                if signature is not None:
                    headers["X-Hub-Signature-256"] = signature
                # aiohttp wants big bodies as a stream (it warns about raw bytes over 1 MB).
                data: Any = io.BytesIO(body) if len(body) > 512 * 1024 else body
                async with gate:
                    try:
                        async with http.post(server.webhook_url, data=data, headers=headers) as response:
                            await response.read()
                            status = response.status
                    except Exception as error:  # the server must never hang up or time out
                        outcome.problems.append(f"POST failed: {type(error).__name__}: {error}")
                        return
                statuses[status] += 1

            await asyncio.gather(*(post(body, mode) for body, mode in inputs))
            await server.settle(timeout=120)
            handled_by_fuzz = len(agent.messages)
            final = text_webhook("2348031239999", "wamid.after-the-fuzz", "still there?")
            final_status, _ = await server.post(final)
            await server.settle(timeout=10)
            alive = final_status == 200 and agent.texts[-1:] == ["still there?"]
            alive = alive and graph.delivered()[-1]["to"] == "2348031239999"
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    crashes = [record for record in errors if record.exc_info]  # an exception escaped the channel's code
    outcome.figures.update({
        "fuzz inputs": len(inputs),
        "  signed with the app secret": sum(1 for _, mode in inputs if mode == "valid"),
        "  unsigned / wrongly signed / garbage header": "{} / {} / {}".format(
            *(sum(1 for _, m in inputs if m == mode) for mode in ("none", "wrong", "garbage"))),
        "  bytes posted": sum(len(body) for body, _ in inputs),
        "  largest body (bytes)": max((len(body) for body, _ in inputs), default=0),
        "answers by status": dict(sorted(statuses.items())),
        "5xx responses": server_errors,
        "messages that reached the bot": handled_by_fuzz,
        "errors logged by the channel (e.g. Meta refusing a media id)": len(errors),
        "crashes in background work": len(crashes),
        "valid message afterwards handled": int(alive),
        "generation time (s)": round(generated, 1),
    })
    outcome.check(len(inputs) == count, f"only {len(inputs)} inputs could be generated")
    outcome.check(server_errors == 0, f"{server_errors} answers were 5xx")
    outcome.check(sum(statuses.values()) == len(inputs), "some posts got no answer")
    outcome.check(not crashes, f"background work crashed: {Counter(r.getMessage()[:60] for r in crashes)}")
    outcome.check(alive, "a valid message after the fuzzing was not handled")
    outcome.seconds = time.perf_counter() - started
    return outcome
