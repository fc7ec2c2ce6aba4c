# mss in a container: `docker compose up` runs it against PostgreSQL 16.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MSS_LISTEN_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mss ./mss
RUN pip install --no-cache-dir ".[s3]" && useradd --system --home /data mss && mkdir /data && chown mss /data
USER mss
VOLUME ["/data"]
# MX, submission, submissions, IMAP, IMAPS, HTTPS (development ports; see mss.toml)
EXPOSE 2525 2587 2465 2143 2993 8443
# `mss init` is idempotent: the first start creates keys and the dev PKI in /data.
CMD ["sh", "-c", "mss init --data-dir /data && exec mss serve --data-dir /data"]
