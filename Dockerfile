# reconciler in a small image that runs as a non-root user (uid 10001), for the Kubernetes
# CronJob in examples/kubernetes/ and other schedulers:
#
#   docker build -t reconciler .
#   docker run --rm -v "$PWD:/work" -w /work -e VCITA_STAFF_TOKEN reconciler plan
#
# The wheel is built in a throwaway stage; the final image holds Python, reconciler and its
# dependencies only (no compiler, no pip cache, no sandbox server: the serve extra is left out).
FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY reconciler ./reconciler
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 reconciler \
    && useradd --system --uid 10001 --gid reconciler --home-dir /work --no-create-home reconciler
WORKDIR /work
USER 10001:10001
ENTRYPOINT ["reconciler"]
CMD ["--help"]
