# Production image of Lux: one image for the API, the Celery workers, beat, Flower and migrations
# (docker-compose.yml picks the process with `command:`; the default is the API).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A home directory for gunicorn's control socket ($HOME/.gunicorn) and Celery's state.
RUN groupadd --system --gid 10001 lux \
    && useradd --system --uid 10001 --gid lux --create-home --home-dir /home/lux lux

WORKDIR /app
COPY . .
# Editable on purpose: lux/migrate.py finds alembic.ini and migrations/ beside the packages,
# at the repository root, which a regular install into site-packages would leave behind.
RUN pip install --no-cache-dir -e .

USER lux
EXPOSE 8000
CMD ["gunicorn", "api:create_app()", "--bind", "0.0.0.0:8000", "--workers", "2"]
