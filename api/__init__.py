"""FastAPI service: datasets, jobs, metrics, models and prediction around ml/."""
