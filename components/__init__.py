"""Custom Rasa NLU components of the banking assistant."""
