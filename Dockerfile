# ktsync image: every `ktsync` command (worker, beat, webhooks, flower, metrics, the CLI) and the fake
# KlickTipp for the demo profile. The compose file picks the command; the entrypoint is `ktsync`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_STATE_HOME=/var/lib/ktsync
WORKDIR /app
COPY pyproject.toml README.md ./
# Every folder the package is built from (ktsync/worker, ktsync/producers and ktsync/config link to
# worker/, producers/ and config/; tests/ops/test_compose.py checks this list).
COPY ktsync ktsync
COPY config config
COPY producers producers
COPY worker worker
COPY fake_klicktipp fake_klicktipp
# /var/lib/ktsync: ktsync's own state files (the beat schedule: beat.schedule_file's default).
RUN pip install . && useradd --system --no-create-home ktsync \
    && mkdir -p /var/lib/ktsync && chown ktsync /var/lib/ktsync
USER ktsync
# webhooks, Flower, metrics, fake KlickTipp
EXPOSE 8000 5555 9808 8765
ENTRYPOINT ["ktsync"]
CMD ["worker"]
