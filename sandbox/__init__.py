"""A local WhatsApp sandbox: a fake Meta Cloud API plus a chat page in the browser.

It lets anyone try the whole bot stack without Meta credentials. The fake Graph API
receives what the bot sends (``POST /v25.0/{phone_number_id}/messages``), the chat page
shows it as a WhatsApp chat, and what a simulated user types goes back to the bot as a
real, signed Meta webhook. Start it with ``python -m sandbox`` (see ``sandbox/cli.py``).

Modules:

- ``config``: ``SandboxConfig`` (throwaway secrets, ports) and the production guard.
- ``payloads``: pure builders and checks of Meta's payload shapes (webhooks, signatures,
  Graph API bodies and errors).
- ``fake_meta``: the fake Meta (``state``, ``graph_api``, ``page_api``, ``webhooks``, ``app``).
- ``media``: the bundled voice note (a tiny WAV made in code).
- ``fake_mono``, ``fake_plaid``, ``fake_groq``: the bank providers' and Groq's APIs on 127.0.0.1,
  for tests and scripts (``providers`` runs the bank ones beside the chat page).
- ``cli``: ``python -m sandbox``, ``--print-env`` and ``run -- <command...>``.
"""

from sandbox.config import SandboxConfig, SandboxForbidden, check_allowed

__all__ = ["SandboxConfig", "SandboxForbidden", "check_allowed"]
