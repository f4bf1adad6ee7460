"""Turns files into a stored index: load → segment → chunk → embed → store."""

import os

# Models load from local folders only; these must be set before transformers is first imported.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
