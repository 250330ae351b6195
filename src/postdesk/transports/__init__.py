"""Adapters to the outside: the SMTP listener, IMAP fetchers, SMTP sender, provider webhooks."""
