"""Downloads: If-None-Match (weak comparison, ``*``) and Range exactly as RFC 9110 says."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from app.api.downloads import byte_ranges, not_modified
from tests.api.conftest import Upload

API = "/api/v1/tasks"
CONTENT = b"0123456789abcdefghij" * 5  # 100 bytes
ETAG = f'"{hashlib.sha256(CONTENT).hexdigest()}"'


@pytest.fixture
async def url(upload: Upload) -> str:
    response = await upload(CONTENT, "book.txt")
    assert response.status_code == 202
    return f"{API}/{response.json()['id']}/files/original.txt"


@pytest.mark.parametrize(
    "value", ["bytes=5-1", "bytes=abc", "items=0-5", "bytes=", "bytes=-", "bytes 0-5", "0-5",
              "bytes=1-2,x", "bytes=--1", "bytes=1-2-3", "bytes=٣-٤".encode(), "bytes=,"],
)  # fmt: skip
async def test_malformed_ranges_are_ignored(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, value: str | bytes
) -> None:
    response = await client.get(url, headers={**headers, "Range": value})
    assert response.status_code == 200, response.text
    assert response.content == CONTENT
    assert "content-range" not in response.headers
    assert response.headers["etag"] == ETAG


@pytest.mark.parametrize(
    ("value", "expected", "content_range"),
    [
        ("bytes=0-4", CONTENT[:5], "bytes 0-4/100"),
        ("bytes=95-", CONTENT[95:], "bytes 95-99/100"),
        ("bytes=-3", CONTENT[-3:], "bytes 97-99/100"),
        ("bytes=90-500", CONTENT[90:], "bytes 90-99/100"),
        ("BYTES = 10-11", CONTENT[10:12], "bytes 10-11/100"),
        ("bytes=-1000", CONTENT, "bytes 0-99/100"),
        ("bytes=0-1,1-3", CONTENT[:4], "bytes 0-3/100"),  # overlapping ranges are merged
        ("bytes=200-300, 5-6", CONTENT[5:7], "bytes 5-6/100"),  # the satisfiable one
        ("bytes=0-99999999999999999999999", CONTENT, "bytes 0-99/100"),
    ],
)
async def test_satisfiable_ranges_are_206(
    client: httpx.AsyncClient, headers: dict[str, str], url: str,
    value: str, expected: bytes, content_range: str,
) -> None:  # fmt: skip
    response = await client.get(url, headers={**headers, "Range": value})
    assert response.status_code == 206, response.text
    assert response.content == expected
    assert response.headers["content-range"] == content_range


async def test_several_ranges_are_one_multipart_206(
    client: httpx.AsyncClient, headers: dict[str, str], url: str
) -> None:
    response = await client.get(url, headers={**headers, "Range": "bytes=0-1, 10-11"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-1/100" in response.content
    assert b"Content-Range: bytes 10-11/100" in response.content


@pytest.mark.parametrize(
    "value",
    ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=500-600,700-", "bytes=" + "9" * 30 + "-"],
)
async def test_unsatisfiable_ranges_are_416_problems(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, value: str
) -> None:
    response = await client.get(url, headers={**headers, "Range": value})
    assert response.status_code == 416
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["content-range"] == "bytes */100"
    assert response.json()["code"] == "range_not_satisfiable"


async def test_if_range_decides_between_part_and_whole(
    client: httpx.AsyncClient, headers: dict[str, str], url: str
) -> None:
    last_modified = (await client.get(url, headers=headers)).headers["last-modified"]
    for if_range, status in [
        (ETAG, 206),
        (last_modified, 206),
        ('"stale"', 200),
        (f"W/{ETAG}", 200),  # If-Range needs a strong match
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
    ]:
        response = await client.get(
            url, headers={**headers, "Range": "bytes=0-1", "If-Range": if_range}
        )
        assert response.status_code == status, if_range
    # an If-Range that does not hold makes even an unsatisfiable range the whole file
    response = await client.get(
        url, headers={**headers, "Range": "bytes=500-", "If-Range": '"stale"'}
    )
    assert (response.status_code, response.content) == (200, CONTENT)


@pytest.mark.parametrize(
    "value", ["*", ETAG, f"W/{ETAG}", f'"other", W/{ETAG}', f' "a" ,{ETAG} ', f"W/{ETAG},"]
)
async def test_if_none_match_answers_304(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, value: str
) -> None:
    response = await client.get(url, headers={**headers, "If-None-Match": value})
    assert response.status_code == 304, value
    assert response.headers["etag"] == ETAG
    assert response.content == b""


@pytest.mark.parametrize("value", ['"other"', 'W/"other"', "", "garbage", ETAG[:-2] + '"'])
async def test_if_none_match_without_a_match_sends_the_file(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, value: str
) -> None:
    response = await client.get(url, headers={**headers, "If-None-Match": value})
    assert response.status_code == 200
    assert response.content == CONTENT


def test_byte_ranges_unit() -> None:
    assert byte_ranges("bytes=0-0", 10) == [(0, 1)]
    assert byte_ranges("bytes=0-0", 0) == []
    assert byte_ranges("bytes=-5", 0) == []
    assert byte_ranges("bytes=3-4,0-1,2-2", 10) == [(0, 5)]  # adjacent ranges merged too
    assert byte_ranges("bytes=5-1", 10) is None
    assert byte_ranges("lines=1-2", 10) is None
    assert byte_ranges("bytes=1-" + "9" * 5000, 10) == [(1, 10)]  # no int() on 5,000 digits


def test_not_modified_unit() -> None:
    assert not_modified(None, ETAG) is False
    assert not_modified(" * ", ETAG) is True
    assert not_modified('"a", "b"', '"b"') is True
    assert not_modified('W/"b"', '"b"') is True
    assert not_modified('"a" "b"', '"b"') is False  # not a list: no match
