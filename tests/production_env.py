"""Real-looking production settings (no secret a default or placeholder, real support contacts),
for the tests that check what a process refuses to start with."""

from __future__ import annotations

KEY_HEX = "4be0c7a21f9d83e65a0b7c4d92e18f3a6c5d07b9e2f41a8c3b6d90e7f25a1c48"
SALT = "k7Qp2vN9xR4mT8wZ1cF6"
WHATSAPP = {
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_API_TOKEN": "EAAGm0PBA1bcD2efG3hiJ4klM5",
    "WHATSAPP_VERIFY_TOKEN": "b1f7c0e9a2d84f36",
    "WHATSAPP_APP_SECRET": "e3a91f0c7b5d28e46f1a9c3b7d0e5f82",
}
SECRETS = {
    "ENVIRONMENT": "production",
    "ENCRYPTION_KEY": KEY_HEX,
    "USER_ID_SALT": SALT,
    **WHATSAPP,
    "MONGODB_URI": "mongodb://db.internal:27017",
}
SUPPORT_CONTACTS = {"SUPPORT_PHONE": "+234 201 888 8888", "SUPPORT_EMAIL": "help@gtbank.com"}
PRODUCTION = {**SECRETS, **SUPPORT_CONTACTS}
# What a test that sets the environment unsets first, so the developer's own settings never leak in.
VARIABLES = ("ENVIRONMENT", "ENCRYPTION_KEY", "ENCRYPTION_OLD_KEYS", "USER_ID_SALT", "MONGODB_URI",
             *SUPPORT_CONTACTS, *WHATSAPP, "WHATSAPP_API_URL", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_SECONDS")
