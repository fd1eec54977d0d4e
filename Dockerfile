# ktsync image: every `ktsync` command (worker, beat, webhooks, flower, metrics, the CLI) and the fake
# KlickTipp for the demo profile. The compose file picks the command; the entrypoint is `ktsync`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
# Every top-level package the code imports (tests/ops/test_compose.py checks this list).
COPY ktsync ktsync
COPY config config
COPY producers producers
COPY worker worker
COPY fake_klicktipp fake_klicktipp
RUN pip install . && useradd --system --no-create-home ktsync
USER ktsync
# webhooks, Flower, metrics, fake KlickTipp
EXPOSE 8000 5555 9808 8765
ENTRYPOINT ["ktsync"]
CMD ["worker"]
