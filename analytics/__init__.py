"""Conversation analytics: pseudonymous events from Rasa's event broker, KPIs, the report page.

No module here imports Rasa at import time except ``analytics.broker`` (Rasa loads it by
dotted path from endpoints.yml); the rest is plain Python, tested without Rasa.
"""
