"""Postdesk: a self-hosted shared inbox and helpdesk for customer email."""

__version__ = "0.1.0"
