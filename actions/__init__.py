"""Custom actions of the banking assistant.

Actions are thin: read slots and entities, call one function of the banking core
(`banking.service.BankingService`), and turn the result into a response from
domain.yml plus slot events. All customer-facing text lives in domain.yml.
"""
