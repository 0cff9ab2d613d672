"""personsearch: person re-identification and person search toolkit."""

__version__ = "0.1.0"
