"""Celery worker: runs ml/ jobs taken from the database, one at a time per GPU."""
