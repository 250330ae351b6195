"""Fixtures: real mail accepted and processed, two teams that must not see each other (see tests/two_teams.py)."""

from two_teams import TwoTeams, deliver, fast_passwords, token_client, two_teams

__all__ = ["TwoTeams", "deliver", "fast_passwords", "token_client", "two_teams"]
