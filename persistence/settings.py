"""The one Settings object (environment variables), shared by the API, the worker and the CLIs.

Read once (``get_settings()``) and passed down; handlers receive it through ``api.deps.SettingsDep``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _var() -> Path:
    return Path("var").resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    var_dir: Path = Field(default_factory=_var, description="embedded-mode state: database, broker, artifacts, data")
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite under VAR_DIR")
    broker_url: str = Field("", description="Celery broker; default kombu's SQLAlchemy transport on sqlite under VAR_DIR")
    artifact_root: Path | None = Field(None, description="checkpoints, logs, results; default VAR_DIR/artifacts")
    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="folders datasets may live under (comma-separated); default VAR_DIR/data"
    )
    queue: str = Field("gpu", description="Celery queue the training tasks go to")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    auth: Literal["auto", "on", "off"] = Field("auto", description="auto: tokens required unless HOST is loopback")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host header values the API answers (comma-separated; '*.example.com' "
        "matches subdomains, '*' any); default the loopback names when HOST is loopback, else '*'")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins besides the server's own that may send POST/PUT/PATCH/DELETE "
        "from a browser (comma-separated, e.g. https://dash.example.com)")
    db_connect_timeout_s: float = Field(5.0, gt=0, description="PostgreSQL connect timeout: during an outage a "
                                        "request fails (503) after this instead of hanging")
    max_upload_mb: float = Field(200.0, gt=0)
    max_import_mb: float = Field(600.0, gt=0, description="POST /models/import: largest checkpoint file accepted")
    predict_timeout_s: float = Field(60.0, gt=0)
    predict_concurrency: int = Field(2, ge=1, description="predictions decoding/running at once")
    predict_queue: int = Field(16, ge=0, description="predictions that may wait for a slot; beyond that /predict answers 503")
    predictor_cache_size: int = Field(2, ge=1)
    request_header_timeout_s: float = Field(10.0, gt=0, description="a connection must deliver a complete request "
                                            "head this soon after connecting (or starting its next request)")
    request_body_timeout_s: float = Field(30.0, gt=0, description="longest pause while a request body arrives; "
                                          "beyond it 408 and the connection is closed")
    max_concurrent_uploads: int = Field(8, ge=1, description="uploads received at once; beyond it /predict "
                                        "answers 503 with Retry-After before reading the body")
    synthetic_max_megapixels: float = Field(1000.0, gt=0, description="POST /datasets/synthetic: largest "
                                            "classes x videos_per_class x frames x width x height, in megapixels")
    synthetic_disk_budget_mb: float = Field(2048.0, gt=0, description="disk all synthetic datasets may take under "
                                            "the first data root (estimated before a request is accepted)")
    heartbeat_s: float = Field(10.0, gt=0, description="worker and job heartbeat period")
    stale_after_s: float = Field(60.0, gt=0, description="a running job whose heartbeat is older is reclaimed")
    dispatch_grace_s: float = Field(60.0, gt=0, description="a queued job whose message is older than this while a "
                                    "worker sits idle is re-sent (the broker lost it)")
    max_attempts: int = Field(3, ge=1, description="starts of a job before a lost worker or transient error fails it")
    retry_backoff_s: float = Field(10.0, ge=0)
    visibility_timeout_s: int = Field(7 * 24 * 3600, ge=60, description="Redis redelivery delay; longer than any job")
    metrics_flush_rows: int = Field(200, ge=1)
    metrics_flush_s: float = Field(2.0, gt=0)
    cancel_poll_s: float = Field(1.0, gt=0, description="how often should_stop() reads the cancel flag")
    metrics_db_timeout_s: float = Field(2.0, gt=0, le=30, description="GET /metrics: longest wait for the "
                                        "database; beyond it the scrape answers without the job/worker figures")
    mlflow_tracking_uri: str = Field("", description="when set, each job is logged as an MLflow run (params, "
                                     "per-epoch metrics, final weights) to this tracking server or store")
    mlflow_experiment: str = Field("kdvideo", min_length=1, max_length=200,
                                   description="the MLflow experiment the job runs go to")
    device: str = Field("auto", description="device the worker trains on (auto, cpu, cuda, cuda:N)")
    frontend_dir: Path = PROJECT_ROOT / "frontend"

    @field_validator("data_roots", "allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @model_validator(mode="after")
    def _defaults_under_var(self) -> "Settings":
        var = self.var_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{var / 'app.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{var / 'broker.db'}"
        if self.artifact_root is None:
            self.artifact_root = var / "artifacts"
        if not self.data_roots:
            self.data_roots = [var / "data"]
        self.artifact_root = self.artifact_root.resolve()
        self.data_roots = [p.resolve() for p in self.data_roots]
        return self

    @property
    def artifacts(self) -> Path:
        assert self.artifact_root is not None
        return self.artifact_root

    @property
    def auth_required(self) -> bool:
        if self.auth != "auto":
            return self.auth == "on"
        return not is_loopback(self.host)

    @property
    def trusted_hosts(self) -> list[str]:
        """ALLOWED_HOSTS, or by default the loopback names on a loopback HOST (so a DNS-rebinding page cannot
        reach it under its own name) and any host otherwise (where tokens guard the API)."""
        if self.allowed_hosts:
            return [h.lower() for h in self.allowed_hosts]
        return list(LOOPBACK_NAMES) if is_loopback(self.host) else ["*"]

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_import_bytes(self) -> int:
        return int(self.max_import_mb * 1024 * 1024)

    def job_dir(self, job_id: int) -> Path:
        return self.artifacts / "jobs" / str(job_id)

    def ensure_dirs(self) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        for root in self.data_roots:
            root.mkdir(parents=True, exist_ok=True)
        for url in (self.database_url, self.broker_url):
            if "sqlite:///" in url:
                Path(url.split("sqlite:///", 1)[1].split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
