# The serving image: the service, the model repository, and what serving needs (no training code).
#
# GPU (default; run with `docker run --gpus all ...`):
#   docker build -t gan-serving .
# CPU:
#   docker build -t gan-serving:cpu --build-arg BASE_IMAGE=python:3.11-slim --build-arg TF_EXTRA=cpu .
#
# The GPU base already carries TensorFlow built against its CUDA and cuDNN, so TF_EXTRA stays empty
# there; on a plain Python base, TF_EXTRA=cpu installs the tensorflow-cpu wheel.
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu
FROM ${BASE_IMAGE}

ARG TF_EXTRA=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    GAN_MODEL_DIR=/srv/models

WORKDIR /srv
COPY pyproject.toml README.md ./
COPY service/ service/
# The conventions the service shares with training (numpy and Pillow only).
COPY gan_contract/ gan_contract/
RUN python3 -m pip install --no-cache-dir ".[serve${TF_EXTRA:+,${TF_EXTRA}}]"
COPY models/ models/

RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin gan \
    && chown -R gan /srv
USER gan

EXPOSE 8000
# gan-serve listens once every model is warmed up (about 30 s for a 128x128 SN-ResNet on 2 CPU
# cores): failures in the start period do not count, and the first success ends it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
    CMD python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# gan-serve reads the GAN_* settings, loads the models before listening, logs JSON lines, and on
# SIGTERM drains: /readyz turns 503 while requests are still served for GAN_DRAIN_SECONDS (20),
# then accepted requests finish and it exits 0. Stop the container with a longer grace period
# than that plus the request deadline (`docker stop -t 40`; compose.yaml sets stop_grace_period).
CMD ["gan-serve", "--host", "0.0.0.0", "--port", "8000"]
