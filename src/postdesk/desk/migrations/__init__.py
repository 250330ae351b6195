"""Migrations of the desk app."""
