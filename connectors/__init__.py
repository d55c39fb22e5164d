"""Rasa plug-ins of the banking assistant: its WhatsApp channel and its tracker store.

``whatsapp`` is Meta's WhatsApp Cloud API channel, a package (``WhatsAppInput``,
``WhatsAppOutput``; its ``__init__`` maps its parts: config, signature, inbound and
outbound payloads, the Graph API client, lanes, rate limit, store, charts).
``tracker_store`` is the encrypted Mongo tracker store named in endpoints.yml.
Importing does no work.
"""
