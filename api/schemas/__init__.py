"""Request (``*Create``) and response (``*Public``) models, one module per resource; importable from here."""

from api.schemas.common import *  # noqa: F401,F403
from api.schemas.datasets import *  # noqa: F401,F403
from api.schemas.experiments import *  # noqa: F401,F403
from api.schemas.jobs import *  # noqa: F401,F403
from api.schemas.system import *  # noqa: F401,F403
from api.schemas.job_request import (JobCreate, JobKindName, JobRequest, SubmittableKind,  # noqa: F401
                                     parse_request)
