"""The benchmarks' settings: production's, plus the order rush's baseline endpoint.

``bench/bench_orders.py`` runs gunicorn and its own process with
``DJANGO_SETTINGS_MODULE=bench.settings``; nothing in ``livecommerce/`` imports ``bench/``.
"""

from livecommerce.settings import *  # noqa: F403

# Production's URLs plus ``POST /api/v1/_bench/ping-insert`` (bench/endpoints.py).
ROOT_URLCONF = "bench.urls"
