"""The agent pages in the browser (server-rendered Django templates)."""
