# syntax=docker/dockerfile:1
# Same steps as the Makefile: install the project into a virtualenv, then `python -m bot`
# (which prepares the dataset, trains a first model when there is none, and starts the bot).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so code edits don't reinstall TensorFlow.
COPY pyproject.toml README.md ./
COPY recommender/ recommender/
COPY bot/ bot/
RUN pip install .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BOT_DATA_DIR=/data \
    OPENBLAS_NUM_THREADS=1 \
    TF_CPP_MIN_LOG_LEVEL=2
RUN groupadd --system --gid 10001 moviebot \
    && useradd --system --uid 10001 --gid moviebot --home-dir /app --shell /usr/sbin/nologin moviebot \
    && mkdir -p /data /app \
    && chown moviebot:moviebot /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=moviebot:moviebot train.py ./
COPY --chown=moviebot:moviebot recommender/ recommender/
COPY --chown=moviebot:moviebot bot/ bot/
USER 10001:10001
# Database, dataset cache and model registry: keep them across container upgrades.
VOLUME ["/data"]
# Healthy while the bot's heartbeat file is fresh (written by the running bot, see bot/health.py).
HEALTHCHECK --interval=60s --timeout=10s --start-period=15m --retries=3 \
    CMD ["python", "-m", "bot.health"]
# SIGTERM from `docker stop` triggers the bot's graceful shutdown.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
