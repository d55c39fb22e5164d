"""Custom actions of the banking assistant.

Actions are thin: read slots and entities, call one function of the banking core
(`banking.service.BankingService`), and turn the result into a response from
domain.yml plus slot events. All customer-facing text lives in domain.yml.
"""

from banking import log_redaction

# The action server imports this package after configuring logging: from here on no log
# line carries a phone or account number (rasa-sdk logs sender ids at DEBUG).
log_redaction.install()
