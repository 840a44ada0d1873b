# walletd container image: `docker build -t walletd .` (see README "Run with containers").
# Not built on the machine where walletd is developed (it has no container engine); the install
# steps are the ones tests/e2e/test_wheel_install.py runs there: build the wheel, install it with
# requirements.txt as constraints into a fresh virtualenv.

# Stage 1: the wheel, built from pyproject.toml and the walletd package only.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY walletd ./walletd
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# Stage 2: the wheel and its pinned dependencies in a virtualenv, run by an unprivileged user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/walletd/bin:$PATH \
    PORT=8000 \
    WALLETD_INSTANCE_PATH=/var/lib/walletd/instance
COPY requirements.txt /tmp/requirements.txt
COPY --from=build /dist/ /tmp/dist/
RUN python -m venv /opt/walletd \
    && /opt/walletd/bin/pip install --no-cache-dir --constraint /tmp/requirements.txt /tmp/dist/walletd-*.whl \
    && rm -rf /tmp/dist /tmp/requirements.txt \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/walletd --create-home walletd
USER walletd
WORKDIR /var/lib/walletd
EXPOSE 8000
# /livez answers while the process does; /readyz also needs the database and a live worker.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/livez\", timeout=4)"]
# The web server (granian, see BENCHMARKS.md "The server"; gunicorn -c python:walletd.gunicorn_conf
# walletd.wsgi:app also works); `walletd worker`, `walletd init-db` and every other `walletd`
# command run in the same image with another command (compose.yaml does).
CMD ["walletd", "serve"]
