"""Pure business-time arithmetic for SLA clocks (no Django, no network)."""
