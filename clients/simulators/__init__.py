"""Partner apps simulated over the API: a host app, a fulfillment partner and finance staff.

``run_scenario`` plays them together against a running service; ``python -m clients.simulators``
does it from the command line.
"""

from clients.simulators.finance import Finance
from clients.simulators.fulfillment import FulfillmentPartner
from clients.simulators.host_app import HostApp
from clients.simulators.scenario import ScenarioResult, run_scenario

__all__ = ["Finance", "FulfillmentPartner", "HostApp", "ScenarioResult", "run_scenario"]
