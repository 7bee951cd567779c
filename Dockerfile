# The fraudstream app image: one image, every command (`fraudstream train | replay | score | serve | ...`).
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 fraud && mkdir -p /state /app/data && chown -R fraud /state /app
WORKDIR /app

COPY pyproject.toml README.md ./
COPY fraudstream ./fraudstream
COPY trainer ./trainer
COPY producer ./producer
COPY scorer ./scorer
COPY api ./api
RUN pip install ".[postgres]"

USER fraud
ENV FRAUD_STATE_DIR=/state
EXPOSE 8000 9464
ENTRYPOINT ["fraudstream"]
CMD ["--help"]
