"""Turns a question into an `Answer`: retrieve → select spans → compose → verify."""
