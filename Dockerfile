# One image for every process: web (gunicorn), worker and beat (Celery). See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=livecommerce.settings \
    DEBUG=false

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs a secret only to import settings; the real one comes from the environment.
RUN SECRET_KEY=build-only DEBUG=false python manage.py collectstatic --no-input -v 0 \
    && useradd --system --uid 10001 app
USER app

EXPOSE 8000 8001
CMD ["gunicorn", "livecommerce.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--access-logfile", "-"]
