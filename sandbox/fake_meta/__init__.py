"""The fake Meta: an aiohttp app standing in for WhatsApp's Cloud API, plus a chat page.

Two sides meet here:

- **The bot's side, Meta's Graph API** (``graph_api``): messages, read receipts, typing
  indicators, media uploads and downloads, with Meta's answers and errors.
- **The user's side, the chat page** (``page_api``) at ``/``: its backend (``/api/...``)
  turns what a simulated user does into real, signed webhooks to the bot, and pushes what
  the bot sends to the page over Server-Sent Events (``GET /api/events``).

``state`` holds the chats, messages, statuses and media both sides change; ``webhooks``
is the running ``Sandbox`` that delivers them to the bot: like Meta, it answers the bot's
messages with ``sent``/``delivered`` status webhooks, and ``read`` once the page has
shown the message. ``app`` wires them into one server. Logs never carry phone numbers or
tokens: users appear as "user 1", "user 2".
"""
