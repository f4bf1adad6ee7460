"""The connection's part of the store: pages of ids, an unreachable server named in one clear refusal."""

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import index.chroma
from index.chroma import Collections, StoreUnavailable, in_pages
from index.settings import IndexSettings
from tests.conftest import free_port


@given(st.lists(st.text(max_size=3), max_size=40), st.integers(1, 7))
def test_ids_come_in_pages_of_at_most_page_that_join_back(ids, page):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index.chroma, "PAGE", page)
        pages = list(in_pages(ids))
    assert [i for p in pages for i in p] == ids and all(0 < len(p) <= page for p in pages)


def test_a_server_that_is_not_there_is_refused_by_name(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable, match=f"document store unavailable: the Chroma server at {url} is "
                                               "unreachable"):
        Collections(IndexSettings(data_dir=tmp_path, chroma_url=url))


def test_a_transport_error_inside_reachable_is_a_store_outage(tmp_path):
    collections = Collections(IndexSettings(data_dir=tmp_path))
    assert collections.problem() is None  # embedded: nothing to probe
    with pytest.raises(StoreUnavailable) as refused, collections.reachable():
        raise httpx.ConnectError("connection refused")
    assert refused.value.http_status == 503 and refused.value.exit_code == 3 and "connection refused" in str(
        refused.value)
