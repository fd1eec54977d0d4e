# ktsync image: the worker, the CLI and the fake KlickTipp (for the demo profile).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ktsync ktsync
COPY config config
COPY producers producers
COPY worker worker
COPY fake_klicktipp fake_klicktipp
RUN pip install --no-cache-dir . && useradd --system ktsync
USER ktsync
ENTRYPOINT ["ktsync"]
CMD ["worker"]
