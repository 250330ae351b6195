"""Pure email logic: parsing, bodies, automated-mail verdicts and thread keys (no Django, no network)."""
