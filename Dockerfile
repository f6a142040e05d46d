# Aiguilleur: the API (and, on SQLite, everything else) in one image.
# Build: docker build -t aiguilleur .   Run: docker run -p 8000:8000 aiguilleur

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
COPY ml ./ml
COPY migrations ./migrations
# Wheels for the project and every pinned dependency; the runtime stage installs only these.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIGUILLEUR_DATABASE_URL=sqlite:////var/lib/aiguilleur/aiguilleur.db
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/aiguilleur aiguilleur
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY config/aiguilleur.example.yaml /etc/aiguilleur/config.yaml
USER aiguilleur
WORKDIR /var/lib/aiguilleur
VOLUME ["/var/lib/aiguilleur"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["aiguilleur", "serve", "--host", "0.0.0.0", "--port", "8000", "--config", "/etc/aiguilleur/config.yaml"]
