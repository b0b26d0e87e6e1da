"""Request (``*Create``) and response (``*Public``) models, one module per resource; importable from here."""

from api.schemas.common import *  # noqa: F401,F403
from api.schemas.datasets import *  # noqa: F401,F403
from api.schemas.experiments import *  # noqa: F401,F403
from api.schemas.jobs import *  # noqa: F401,F403
from api.schemas.system import *  # noqa: F401,F403
from api.schemas.job_request import JobCreate as JobCreate  # "X as X": re-exported (mypy's no_implicit_reexport)
from api.schemas.job_request import JobKindName as JobKindName
from api.schemas.job_request import JobRequest as JobRequest
from api.schemas.job_request import SubmittableKind as SubmittableKind
from api.schemas.job_request import parse_request as parse_request
