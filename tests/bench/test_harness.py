"""The pure parts of the peers' harness: its upload body, its table, its parsers."""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header

from bench.peers import Results, _ms, multipart, pct, summary
from bench.sqlcount import kind


def test_multipart_body_carries_the_file_and_the_processor() -> None:
    body, content_type = multipart(2048)
    _, params = parse_options_header(content_type)
    parts: list[bytearray] = []
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": lambda: parts.append(bytearray()),
            "on_part_data": lambda data, start, end: parts[-1].extend(data[start:end]),
        },
    )
    parser.write(body)
    parser.finalize()
    assert [len(p) for p in parts] == [4, 2048]
    assert parts[0] == b"noop"
    assert parts[1].startswith(b"The quick brown fox jumps over the lazy dog.\nThe quick")


def test_summary_gives_median_min_max_and_ratio_per_variant() -> None:
    results = Results()
    for ours, peer, sqlite in ((100.0, 200.0, 50.0), (120.0, 220.0, 70.0), (110.0, 210.0, 60.0)):
        results.add("drain jobs/s", "ours", ours)
        results.add("drain jobs/s", "pgqueuer", peer)
        results.add("drain jobs/s", "ours (SQLite)", sqlite)
    assert summary(results).splitlines() == [
        "| figure | ours | pgqueuer | ours / other |",
        "|---|---|---|---|",
        "| drain jobs/s | 110 (100\u2013120) | 210 (200\u2013220) | 0.52x pgqueuer |",
        "| drain jobs/s, SQLite | 60.0 (50.0\u201370.0) | 210 (200\u2013220) | 0.29x pgqueuer |",
    ]


def test_percentile_of_one_value_is_that_value() -> None:
    assert pct([7.5], 99) == 7.5
    assert pct([float(v) for v in range(1, 102)], 50) == 51.0


def test_wrk_latency_units() -> None:
    assert _ms("850.00us") == 0.85
    assert _ms("12.5ms") == 12.5
    assert _ms("1.20s") == 1200.0


def test_statement_kinds() -> None:
    assert kind("UPDATE task_queue SET worker_id=$1 WHERE ...") == "UPDATE task_queue"
    assert kind("INSERT INTO task_logs (task_id) VALUES ($1)") == "INSERT task_logs"
    assert kind("SELECT pg_notify($1, '')") == "SELECT pg_notify"
    assert kind('SELECT count(*) FROM "tasks"') == "SELECT tasks"
    assert kind("  (SELECT 1)") == "SELECT"
