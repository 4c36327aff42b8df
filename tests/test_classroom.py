"""benchmarks/classroom.py works end to end: a real server with the agent API, two students, ten seconds."""

from __future__ import annotations

import math
import re

import pytest
from streamlit import config

from benchmarks import classroom


def _has_agent_api() -> bool:
    try:
        config.get_option("server.enableAgentApi")
    except RuntimeError:  # the option does not exist before Streamlit 1.67
        return False
    return True


@pytest.mark.skipif(not _has_agent_api(), reason="this Streamlit has no agent API (server.enableAgentApi)")
def test_two_students_for_ten_seconds(capsys):
    status = classroom.main(["--students", "2", "--duration", "10", "--think", "0.5,1.5", "--ramp", "1"])
    out = capsys.readouterr().out
    summary = re.search(r"SUMMARY students=2 interactions=(\d+) p50=([\d.]+)s p95=([\d.]+)s .*errors=(\d+) "
                        r"rss_idle=(\d+) MB rss_peak=(\d+) MB", out)
    assert summary, out
    interactions, p50, p95, errors, idle, peak = summary.groups()
    assert status == 0 and errors == "0", out
    assert int(interactions) >= 6, out  # both students opened a session and moved on (no speed target here)
    assert 0 < float(p50) <= float(p95) < classroom.REQUEST_TIMEOUT
    assert 0 < int(idle) <= int(peak)
    assert re.search(r"\n\s+next\s+\d+", out), "nobody pressed Next:\n" + out


def test_percentiles_and_target():
    records = [classroom.Record("next", t / 10) for t in range(1, 21)]  # 0.1 .. 2.0 s
    res = classroom.Result(20, records, 100, 200, 150, 10.0, 1.0, 0.1, 0.0, [])
    assert res.percentile(50) == pytest.approx(1.1)
    assert res.p95 == pytest.approx(1.9)
    assert not res.ok  # p95 over 1 s
    res.records = [classroom.Record("next", 0.2), classroom.Record("apply", math.nan, "HTTP 500: boom")]
    assert res.p95 == pytest.approx(0.2) and len(res.errors) == 1 and not res.ok  # an error misses it too


def test_only_loopback_urls():
    assert classroom.check_loopback("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(SystemExit):
        classroom.check_loopback("http://example.org:8080")
