"""bench/bench_orders.py's budget of 40%: from where the machine's CPU went per call, what
gunicorn could spend on create and pay for them to reach 40% of the minimal endpoint's rate
(no benchmark run here)."""

import pytest

from bench.bench_orders import cpu_budget, render_cpu_budget


def phase(calls: int, name: str, **cpu_s: float) -> dict:
    groups = {"gunicorn": 0.0, "postgres": 0.0, "celery worker": 0.0, **cpu_s}
    groups["machine busy"] = sum(groups.values())
    groups["machine idle"] = 0.0
    return {"calls": {name: {"calls": calls}}, "machine_cpu_s": groups}


def results() -> dict:
    # Minimal endpoint: 1,000 calls, 2 ms gunicorn + 1 ms PostgreSQL each (3 ms per call).
    # Create: 100 calls, 6 ms gunicorn + 2 ms PostgreSQL + 1 ms worker each (9 ms).
    # Pay: 100 calls, 4 ms gunicorn + 3 ms PostgreSQL each (7 ms).
    return {
        "config": {"clients": 16},
        "ping": phase(1000, "ping", gunicorn=2.0, postgres=1.0),
        "create": phase(100, "create", gunicorn=0.6, postgres=0.2, **{"celery worker": 0.1}),
        "pay": phase(100, "pay", gunicorn=0.4, postgres=0.3),
    }


def test_the_budget_is_two_and_a_half_times_the_minimal_endpoints_cpu():
    create, pay = cpu_budget(results())

    assert create["clients"] == 16
    assert create["allowed_ms"] == pytest.approx(7.5)  # 3 ms / 40%
    assert create["outside_gunicorn_ms"] == pytest.approx(3.0)
    assert create["gunicorn_allowed_ms"] == pytest.approx(4.5)
    assert create["gunicorn_ms"] == pytest.approx(6.0)
    # With gunicorn at the minimal endpoint's 2 ms: 3 / (3 + 2) = 60%.
    assert create["ratio_if_gunicorn_as_minimal"] == pytest.approx(0.6)
    assert pay["gunicorn_allowed_ms"] == pytest.approx(4.5)
    assert pay["ratio_if_gunicorn_as_minimal"] == pytest.approx(0.6)


def test_each_number_of_clients_and_the_table():
    r = results()
    r["fewer"] = {"clients": 8, **{k: r[k] for k in ("ping", "create", "pay")}}

    assert [(b["call"], b["clients"]) for b in cpu_budget(r)] == [
        ("create", 16),
        ("pay", 16),
        ("create", 8),
        ("pay", 8),
    ]
    text = render_cpu_budget(r)
    assert "| `create`, 16 clients | 3.00 | 7.50 | 9.00 | 3.00 | 4.50 | 6.00 (2.00) | 60% |" in text


def test_a_run_without_cpu_readings_has_no_budget():
    r = results()
    del r["pay"]["machine_cpu_s"]
    assert cpu_budget(r) == []
    assert render_cpu_budget(r) == ""
