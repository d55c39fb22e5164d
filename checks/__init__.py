"""Reliability and security checks of the product, and the stand-ins they run against.

Quality-assurance code, not part of the running product: pytest runs these checks small
(tests/reliability, tests/llm) and scripts/reliability_report.py and scripts/llm_report.py
run them at full size. Nothing here imports tests/.

- ``action_runner``: the domain, trackers, and running an action as rasa-sdk does.
- ``whatsapp_fakes`` and ``payloads/``: the sandbox's Graph API served for a test (with its scripted
  faults), recorded Cloud API webhooks and the channel served in a real Sanic app.
- ``llm_support`` and ``injection`` (with ``injection_corpus.yml``): an assistant wired to the
  fake Groq, and the prompt-injection corpus run against the real actions.
- ``reliability``: concurrency, idempotency, storage faults, Graph API outage, fuzzing and
  secrets at rest.
"""
