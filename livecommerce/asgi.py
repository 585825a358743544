"""The ASGI application ``livecommerce.asgi:application``, for the live feeds.

``uvicorn livecommerce.asgi:application`` serves every URL of the service, but it is deployed
for ``GET /api/v1/live-sessions/{id}/feed`` (Server-Sent Events): there an open feed is a
coroutine, not a thread or a worker, so one process holds hundreds. The rest of the API stays
on gunicorn (``livecommerce.wsgi``), whose synchronous workers suit the synchronous ORM.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings")

application = get_asgi_application()
