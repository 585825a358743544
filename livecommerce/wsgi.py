"""WSGI entry point: ``livecommerce.wsgi:application`` (gunicorn)."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings")

application = get_wsgi_application()

# Never serve with the development key unless DEBUG=true was said (livecommerce/settings.py).
if not settings.DEBUG and settings.USES_DEVELOPMENT_KEY:
    raise ImproperlyConfigured(settings.DEVELOPMENT_KEY_REFUSED)
