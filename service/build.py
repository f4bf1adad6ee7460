"""The answering chain as the settings describe it: the store they name, checked, and the answerer they choose."""

from __future__ import annotations

import logging

from index.store import IndexStore, open_store
from qa.chain import CitedQA
from qa.generate import GroundedGenerator
from qa.llm import ModelUnavailable, chat_model
from qa.settings import Settings

log = logging.getLogger(f"citeqa.{__name__}")


def build(settings: Settings, store: IndexStore | None = None) -> CitedQA:
    """The chain over the stored index (by default the one the settings name); refuses an index made with other
    settings. A generative backend that cannot be loaded is logged, and every answer says it fell back.
    """
    store = store or open_store(settings.index)
    store.check()
    qa = CitedQA(store, settings.answering)
    answerer = settings.answering.answerer
    if answerer != "extractive":
        try:
            model, unavailable = chat_model(settings), ""
        except ModelUnavailable as error:
            model, unavailable = None, str(error)
            log.error("the %s answerer is unavailable, answers will be extractive: %s", answerer, error)
        qa.generator = GroundedGenerator(model, answerer, settings.llm.llm_timeout, unavailable=unavailable)
    return qa
