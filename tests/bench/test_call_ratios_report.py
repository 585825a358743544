"""bench/bench_orders.py's call ratios: create and pay against the minimal endpoint at each
number of clients the run measured, side by side (no benchmark run here)."""

from bench.bench_orders import call_figures, render_calls


def phases(ping: float, create: float, pay: float, *, errors: int = 0) -> dict:
    def call(per_s: float) -> dict:
        return {"per_s": per_s, "p50_ms": 10.0, "p99_ms": 40.0, "errors": errors}

    return {
        "ping": {"calls": {"ping": call(ping)}, "errors": 0},
        "create": {"calls": {"create": call(create)}, "errors": 0},
        "pay": {"calls": {"pay": call(pay)}, "errors": 0},
    }


def results(*, fewer: bool = True) -> dict:
    r = {"config": {"clients": 16}, **phases(400.0, 200.0, 100.0)}
    if fewer:
        r["fewer"] = {"clients": 8, **phases(300.0, 60.0, 150.0, errors=1)}
    return r


def test_both_numbers_of_clients_fewest_first():
    figures = call_figures(results())

    assert [c["clients"] for c in figures] == [8, 16]
    assert figures[0]["create_ratio"] == 0.2
    assert figures[0]["pay_ratio"] == 0.5
    assert figures[0]["errors"] == 2
    assert figures[1]["create_ratio"] == 0.5
    assert figures[1]["pay_ratio"] == 0.25
    assert figures[1]["errors"] == 0


def test_the_table_has_a_row_per_number_of_clients():
    text = render_calls(results())

    rows = [line for line in text.splitlines() if line.startswith("| 8 ") or "| 16 " in line]
    assert len(rows) == 2
    assert "| 8 | 300.0 | 60.0 | 20% | 150.0 | 50% |" in text
    assert "| 16 | 400.0 | 200.0 | 50% | 100.0 | 25% |" in text


def test_a_run_without_fewer_clients_reports_its_own():
    assert [c["clients"] for c in call_figures(results(fewer=False))] == [16]
