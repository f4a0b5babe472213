"""Staffing per interval: Erlang C (M/M/N, callers wait forever) and Erlang A
(M/M/N+M, callers abandon after an exponential patience). Pure math.

Own implementation (small, tested against published Erlang B/C tables and
against the Erlang C limit of Erlang A): ``erlangccmath`` on the registry has
Erlang C but no Erlang A, and pyworkforce is not in the offline package lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of N servers offered A erlangs (recursive, numerically stable)."""
    if agents < 0 or traffic < 0:
        raise ValueError("agents and traffic must be >= 0")
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a caller waits (Erlang C); 1.0 when the agents cannot carry the load."""
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


def erlang_c_service_level(agents: int, traffic: float, aht: float, target_seconds: float) -> float:
    """Share of callers answered within ``target_seconds``."""
    if agents <= traffic:
        return 0.0
    return 1.0 - erlang_c(agents, traffic) * math.exp(-(agents - traffic) * target_seconds / aht)


def erlang_c_asa(agents: int, traffic: float, aht: float) -> float:
    if agents <= traffic:
        return math.inf
    return erlang_c(agents, traffic) * aht / (agents - traffic)


# ------------------------------------------------------------------ Erlang A
@dataclass(frozen=True)
class ErlangA:
    wait_probability: float
    abandon_probability: float  # of all callers
    service_level: float  # answered within T ÷ offered (abandons count against it)
    mean_wait: float  # mean time in queue of every caller, served or abandoning


def _erlang_a_distribution(agents: int, lam: float, mu: float, theta: float) -> list[float]:
    """Stationary distribution of the number in system (birth-death chain), truncated where
    the tail is negligible."""
    probs = [1.0]
    j = 0
    total = 1.0
    while True:
        j += 1
        death = min(j, agents) * mu + max(0, j - agents) * theta
        if death <= 0:
            raise ValueError("Erlang A needs a positive service rate and patience")
        p = probs[-1] * lam / death
        probs.append(p)
        total += p
        if j > agents and p / total < 1e-13:
            break
        if j > agents + 100000:  # pragma: no cover - guarded by the tail test above
            break
    return [p / total for p in probs]


def _served_within(ahead: int, agents: int, mu: float, theta: float, t: float) -> float:
    """P(a caller with ``ahead`` callers before it reaches an agent within ``t``, before its own
    patience runs out): a pure-death chain ahead→…→0→served, killed at rate θ (uniformization)."""
    if t <= 0:
        return 0.0
    n = ahead + 1  # transient states ahead, ahead-1, …, 0
    rates = [agents * mu + (ahead - i) * theta for i in range(n)]  # rate of moving on from state i
    kill = theta
    big = max(rates) + kill
    vec = [0.0] * n
    vec[0] = 1.0
    return _uniformize(vec, rates, kill, big, big * t, n)


def _uniformize(vec: list[float], rates: list[float], kill: float, big: float, lt: float, n: int) -> float:
    # P(absorbed in "served" by time t) = Σ_k Poisson(k; λt) · P(served within k jumps)
    served_by = 0.0  # P(served within k jumps), grows with k
    result = 0.0
    log_p = -lt
    k = 0
    cum_poisson = 0.0
    limit = int(lt + 12 * math.sqrt(lt) + 30)
    while k <= limit:
        pk = math.exp(log_p)
        result += pk * served_by
        cum_poisson += pk
        # one jump
        new = [0.0] * n
        for i, mass in enumerate(vec):
            if mass == 0.0:
                continue
            stay = 1.0 - (rates[i] + kill) / big
            new[i] += mass * stay
            move = mass * rates[i] / big
            if i + 1 < n:
                new[i + 1] += move
            else:
                served_by += move
        vec = new
        k += 1
        log_p += math.log(lt) - math.log(k)
    return min(1.0, result + (1.0 - cum_poisson) * served_by)


def erlang_a(agents: int, arrivals_per_second: float, aht: float, patience: float, target_seconds: float) -> ErlangA:
    """Erlang A for N agents, Poisson arrivals, exponential handle time ``aht`` and patience."""
    if agents < 1 or aht <= 0 or patience <= 0 or arrivals_per_second < 0:
        raise ValueError("Erlang A needs agents >= 1, aht > 0, patience > 0, arrivals >= 0")
    lam, mu, theta = arrivals_per_second, 1.0 / aht, 1.0 / patience
    if lam == 0:
        return ErlangA(0.0, 0.0, 1.0, 0.0)
    pi = _erlang_a_distribution(agents, lam, mu, theta)
    p_wait = sum(pi[agents:])
    queue_mean = sum((j - agents) * p for j, p in enumerate(pi) if j > agents)
    p_abandon = theta * queue_mean / lam
    sl = sum(pi[:agents])
    for j in range(agents, len(pi)):
        if pi[j] < 1e-12:
            continue
        sl += pi[j] * _served_within(j - agents, agents, mu, theta, target_seconds)
    # Little's law: mean wait of every caller (served or not) = E[queue length] / λ
    return ErlangA(p_wait, p_abandon, min(1.0, sl), queue_mean / lam)


# ---------------------------------------------------------------- per interval
@dataclass(frozen=True)
class StaffingNeed:
    interval_seconds: float
    offered: int
    aht: float
    traffic_erlangs: float
    target_sl_pct: float
    target_seconds: float
    agents_erlang_c: int | None
    agents_erlang_a: int | None
    patience: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "offered": self.offered,
            "aht_seconds": round(self.aht, 2),
            "traffic_erlangs": round(self.traffic_erlangs, 3),
            "target_service_level_pct": self.target_sl_pct,
            "target_seconds": self.target_seconds,
            "agents_needed_erlang_c": self.agents_erlang_c,
            "agents_needed_erlang_a": self.agents_erlang_a,
            "patience_seconds": None if self.patience is None else round(self.patience, 2),
        }


def agents_needed_c(traffic: float, aht: float, target_sl: float, target_seconds: float, max_agents: int = 5000) -> int | None:
    if traffic <= 0:
        return 0
    n = max(1, math.floor(traffic) + 1)
    while n <= max_agents:
        if erlang_c_service_level(n, traffic, aht, target_seconds) >= target_sl:
            return n
        n += 1
    return None


def agents_needed_a(
    arrivals_per_second: float, aht: float, patience: float, target_sl: float, target_seconds: float, max_agents: int = 5000
) -> int | None:
    """Fewest agents whose Erlang A service level reaches the target (bisection: it grows with N)."""
    if arrivals_per_second <= 0:
        return 0

    def ok(n: int) -> bool:
        return erlang_a(n, arrivals_per_second, aht, patience, target_seconds).service_level >= target_sl

    if not ok(max_agents):
        return None
    lo, hi = 0, max_agents  # ok(hi) holds; ok(lo) does not (0 agents serve nobody)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def estimate_patience(total_wait_seconds: float, abandons: int) -> float | None:
    """Mean patience, estimated as total time waited by every caller ÷ abandons (the
    maximum-likelihood estimate for exponential patience); None without abandons."""
    if abandons <= 0 or total_wait_seconds <= 0:
        return None
    return total_wait_seconds / abandons


def staffing_for_interval(
    *, interval_seconds: float, offered: int, aht: float | None, target_sl_pct: float, target_seconds: float,
    total_wait_seconds: float = 0.0, abandons: int = 0,
) -> StaffingNeed:
    """Agents needed in one interval for the queue's service-level target, from the recorded
    arrivals (``offered`` in ``interval_seconds``) and AHT; Erlang A only with abandons to
    estimate patience from."""
    aht_v = aht or 0.0
    lam = offered / interval_seconds if interval_seconds > 0 else 0.0
    traffic = lam * aht_v
    target = target_sl_pct / 100.0
    if offered == 0 or aht_v <= 0:
        return StaffingNeed(interval_seconds, offered, aht_v, traffic, target_sl_pct, target_seconds, 0, 0 if offered == 0 else None, None)
    patience = estimate_patience(total_wait_seconds, abandons)
    n_c = agents_needed_c(traffic, aht_v, target, target_seconds)
    n_a = agents_needed_a(lam, aht_v, patience, target, target_seconds, max_agents=(n_c or 5000)) if patience else None
    return StaffingNeed(interval_seconds, offered, aht_v, traffic, target_sl_pct, target_seconds, n_c, n_a, patience)
