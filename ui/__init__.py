"""Presents answers: the Gradio chat, the REST API and the command line."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
