"""Erlang B/C against published table values; Erlang A against its Erlang C limit and by hand."""

import math

import pytest

from reports.staffing import (
    agents_needed_a, agents_needed_c, erlang_a, erlang_b, erlang_c, erlang_c_asa, erlang_c_service_level,
    estimate_patience, staffing_for_interval,
)


@pytest.mark.parametrize("n,a,b", [
    # Erlang B table (e.g. Iversen, "Teletraffic Engineering", Table 7.1): blocking for N servers, A erlangs
    (1, 1.0, 0.5), (2, 1.0, 0.2), (5, 2.0, 0.0367), (10, 5.0, 0.0184), (10, 10.0, 0.2146), (20, 15.0, 0.0456),
])
def test_erlang_b_table(n, a, b):
    assert erlang_b(n, a) == pytest.approx(b, abs=5e-5)


def test_erlang_c_worked_example():
    # the classic worked example: 10 erlangs (100 calls / 30 min, AHT 180 s), 11 agents, T = 20 s
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=1e-4)
    assert erlang_c_service_level(11, 10.0, 180, 20) == pytest.approx(0.3896, abs=1e-4)
    assert erlang_c_asa(11, 10.0, 180) == pytest.approx(122.78, abs=0.01)
    # 14 agents reach 80/20: the example's answer
    assert agents_needed_c(10.0, 180, 0.80, 20) == 14
    assert erlang_c_service_level(13, 10.0, 180, 20) < 0.80 <= erlang_c_service_level(14, 10.0, 180, 20)


def test_erlang_c_single_server_is_mm1():
    # M/M/1: P(wait) = rho
    assert erlang_c(1, 0.6) == pytest.approx(0.6)
    assert erlang_c(3, 3.0) == 1.0 and erlang_c_service_level(3, 3.0, 180, 20) == 0.0  # overloaded


def test_erlang_a_tends_to_erlang_c_without_abandons():
    a = erlang_a(11, 10 / 180, 180, patience=1e9, target_seconds=20)
    assert a.wait_probability == pytest.approx(erlang_c(11, 10.0), abs=1e-5)
    assert a.service_level == pytest.approx(erlang_c_service_level(11, 10.0, 180, 20), abs=1e-5)
    assert a.abandon_probability == pytest.approx(0.0, abs=1e-5)


def test_erlang_a_single_agent_by_hand():
    # n = 1, lambda = mu = theta = 1: pi_j ∝ 1 / j! (death rate j in every state) → Poisson(1)
    a = erlang_a(1, 1.0, 1.0, 1.0, 0.0)
    assert a.wait_probability == pytest.approx(1 - math.exp(-1))
    # abandons: theta * E[queue] / lambda, E[queue] = E[(N-1)+] = E[N] - 1 + P(N=0) = e^-1
    assert a.abandon_probability == pytest.approx(math.exp(-1))
    assert a.service_level == pytest.approx(math.exp(-1))  # T = 0: only those who need not wait


def test_erlang_a_needs_fewer_agents_than_erlang_c():
    lam, aht = 200 / 900, 180.0
    c = agents_needed_c(lam * aht, aht, 0.8, 20)
    a = agents_needed_a(lam, aht, 60.0, 0.8, 20)
    assert a is not None and c is not None and a <= c
    assert erlang_a(a, lam, aht, 60.0, 20).service_level >= 0.8 > erlang_a(a - 1, lam, aht, 60.0, 20).service_level


def test_staffing_for_an_interval():
    need = staffing_for_interval(interval_seconds=1800, offered=100, aht=180, target_sl_pct=80, target_seconds=20,
                                 total_wait_seconds=3000, abandons=10)
    assert need.traffic_erlangs == pytest.approx(10.0)
    assert need.agents_erlang_c == 14
    assert need.patience == 300 and need.agents_erlang_a is not None and need.agents_erlang_a <= 14
    assert estimate_patience(100, 0) is None
    empty = staffing_for_interval(interval_seconds=900, offered=0, aht=None, target_sl_pct=80, target_seconds=20)
    assert (empty.agents_erlang_c, empty.agents_erlang_a) == (0, 0)
