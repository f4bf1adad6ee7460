"""Presents answers: the Gradio chat, the REST API and the command line."""
