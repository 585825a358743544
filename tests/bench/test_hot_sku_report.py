"""bench/bench_orders.py's hot-SKU report: the figures the Order rush section and the summary
show, from a run's results (no benchmark run here)."""

from bench.bench_orders import hot_figures, render_hot


def phase(orders_per_s: float, *, created: int = 100, errors: int = 0) -> dict:
    call = {"per_s": orders_per_s, "p50_ms": 10.0, "p99_ms": 40.0, "errors": 0}
    return {
        "calls": {
            "create": {**call, "statuses": {"201": created}},
            "pay": {**call, "calls": created, "statuses": {"200": created}},
        },
        "errors": errors,
        "seconds": 10.0,
        "activity": {"waiting for a row lock": 1.5},
    }


def results(*, sold: int = 2000, left: int = 0, refusals=None) -> dict:
    drop = phase(0.0, created=sold)
    drop.update(
        units=2000,
        refusals=refusals or {"409 insufficient_inventory": 64},
        clients_told=64,
        database={
            "units_on_orders": sold,
            "orders": sold,
            "paid_orders": sold,
            "inventory_left": left,
        },
    )
    return {
        "config": {"hot_clients": 64, "duration": 5.0},
        "hot": {"hot": phase(30.0), "spread": phase(40.0)},
        "drop": drop,
    }


def test_an_exact_drop_and_the_hot_ratio():
    figures = hot_figures(results())

    assert figures["ratio"] == 0.75
    assert figures["exact"]
    text = render_hot(results())
    assert "75% of the spread rush" in text
    assert "Exactly 2,000 sold: met" in text
    assert "2,000 units on order lines" in text


def test_a_drop_is_exact_only_if_the_database_counts_it_so():
    assert not hot_figures(results(sold=2000, left=1))["exact"]
    assert not hot_figures(results(refusals={"409 insufficient_inventory": 60, "500 ": 4}))["exact"]
    assert "**not met**" in render_hot(results(sold=2000, left=1))


def test_no_hot_phases_no_figures():
    assert hot_figures({"config": {}}) is None
