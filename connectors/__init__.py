"""Rasa plug-ins of the banking assistant: its WhatsApp channel and its tracker store.

``whatsapp`` is Meta's WhatsApp Cloud API channel (``WhatsAppInput``, ``WhatsAppOutput``);
its parts live beside it: ``whatsapp_inbound`` (reading webhooks), ``whatsapp_outbound``
(Rasa responses as Graph API messages), ``whatsapp_graph`` (the HTTP client),
``whatsapp_store`` (MongoDB deduplication and delivery statuses) and
``whatsapp_lanes`` (per-user ordering of background work). ``tracker_store`` is the
encrypted Mongo tracker store named in endpoints.yml. Importing does no work.
"""
