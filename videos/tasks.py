"""Entry points for the django-q2 workers: take ids, call a service, hold no logic of their own."""

from videos import services


def submit_job(job_id: int) -> None:
    services.submit_job(job_id)


def reconcile_submit(job_id: int) -> None:
    services.reconcile_submit(job_id)


def fetch_assets(job_id: int) -> None:
    services.fetch_assets(job_id)


def refresh_job(job_id: int) -> None:
    services.refresh_job(job_id)


def poll_sweep() -> None:
    services.run_poll_sweep()


def import_jobs(run_id: int) -> None:
    services.continue_import(run_id)
