"""Turns files into a stored index: load → segment → chunk → embed → store."""
