"""Core: errors, settings and shared contracts used by every stage."""
