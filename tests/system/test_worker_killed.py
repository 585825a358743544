"""A Celery pool process SIGKILLed in the middle of a settlement run started over the API.

The webhook and settlement tests already kill a whole ``--pool=solo`` worker and start another
(``tests/webhooks/test_worker.py``: mid-send; ``tests/settlements/test_worker.py``: mid-run,
finished when beat starts the period again). Here the worker runs production's prefork pool and
only the pool process running the task dies, as when the kernel's OOM killer picks it: the
worker's main process stays, the task goes back to the broker (``acks_late`` with
``reject_on_worker_lost``) and a new pool process finishes the run, with no beat and no
operator. Everyone is settled exactly once.

The kill lands in the middle of a long statement, so the dead process's PostgreSQL session
outlives it by a few seconds, still holding the run's lock when the task comes back. Found
here: the task then walked away ("executed elsewhere") and the run stayed ``running`` until the
next day's schedule; now it tries again shortly (``commissions/tasks.py``).
"""

import pytest

from tests.system import scenarios

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def test_a_pool_process_killed_mid_run_is_replaced_and_the_run_finishes_once(
    live_stack, finance_key
):
    # given six brands, their fulfillment partner and a creator owed money
    # when finance starts the run and the pool process running it is killed midway
    outcome = scenarios.pool_process_killed_mid_settlement(
        live_stack, finance_key=finance_key, brands=6, kills=1
    )

    # then the run was under way and cut off ...
    print(outcome.report())
    [kill] = outcome.observed["kills"]
    assert kill["run status"] == "running" and kill["pids"] >= 1
    assert 1 <= kill["entries posted"] < outcome.observed["payees"]
    # ... while the dead process's session still held the run's lock when its task came back
    assert kill["run lock still held by the dead session"]
    # ... and finished on its own by a new pool process, paying every payee exactly once
    assert outcome.observed["run attempts"] == 2
    assert outcome.observed["settlements"] == outcome.observed["payees"] == 8
    assert outcome.observed["worker main process still running"]
    assert outcome.lost == []
