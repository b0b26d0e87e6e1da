# One image for the API and the GPU workers.
#   docker build --build-arg CODE_VERSION=$(git describe --always --dirty) -t kdvideo .
FROM python:3.11.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG CODE_VERSION=unknown
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 CODE_VERSION=${CODE_VERSION} \
    VAR_DIR=/var/lib/kdvideo ARTIFACT_ROOT=/artifacts DATA_ROOTS=/data \
    PYTHONPATH=/app FRONTEND_DIR=/app/frontend

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml requirements.lock ./
# torch with CUDA from the PyTorch index, at pyproject's pin; then every other dependency at the lock's version
RUN pip install --index-url ${TORCH_INDEX} "$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')" \
 && pip install -r requirements.lock
COPY ml ./ml
COPY api ./api
COPY worker ./worker
COPY persistence ./persistence
COPY configs ./configs
COPY alembic.ini ./
COPY frontend ./frontend
# the code runs from /app (PYTHONPATH) with its migrations and alembic.ini; nothing of it is pip-installed

RUN useradd --create-home --uid 1000 kdv && mkdir -p /artifacts /data /var/lib/kdvideo \
 && chown -R kdv /artifacts /data /var/lib/kdvideo
USER kdv
EXPOSE 8000
# the API by default (docker-compose runs the migrations once, in its migrate service); workers override it
CMD ["uvicorn", "--factory", "api.main:create_app", "--http", "api.slow_clients:GuardedH11Protocol", "--host", "0.0.0.0", "--port", "8000"]
