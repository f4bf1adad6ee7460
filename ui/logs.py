"""Logging, configured in one place: every logger is under `citeqa`; a server logs them at INFO (why each answer
fell back), other commands at WARNING unless asked for more."""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(verbose: bool = False, serving: bool = False) -> None:
    """Other libraries log warnings; citeqa's own loggers log INFO when serving or verbose."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT)
    if serving:
        logging.getLogger("citeqa").setLevel(logging.INFO)
