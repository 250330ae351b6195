"""Pure triage logic: rules, language, classification, duplicates and assignment (no Django, no network)."""
