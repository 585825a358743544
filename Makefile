# Shortcuts; the README's two commands are ./scripts/dev.sh and ./scripts/test.sh.
.PHONY: dev test lint format migrations worker beat web bench

dev:            ## run the service with demo data on 127.0.0.1:8000
	./scripts/dev.sh

test:           ## the whole suite on PostgreSQL and Redis
	./scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

migrations:
	.venv/bin/python manage.py makemigrations

web:            ## production-style web process
	.venv/bin/gunicorn livecommerce.wsgi:application --bind 127.0.0.1:8000 --workers 3

worker:
	.venv/bin/celery -A livecommerce worker -Q default,webhooks,settlements --loglevel INFO

beat:
	.venv/bin/celery -A livecommerce beat --loglevel INFO

bench:          ## every benchmark; writes docs/benchmarks.md
	./bench/run_all.sh
