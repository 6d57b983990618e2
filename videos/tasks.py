"""Entry points for the django-q2 workers: take ids, call a service, hold no logic of their own."""

from videos import downloads, exports, lifecycle, services, sweep, trash


def submit_job(job_id: int) -> None:
    lifecycle.submit_job(job_id)


def reconcile_submit(job_id: int) -> None:
    lifecycle.reconcile_submit(job_id)


def fetch_assets(job_id: int) -> None:
    downloads.fetch_assets(job_id)


def make_missing_spritesheet(job_id: int) -> None:
    downloads.make_missing_spritesheet(job_id)


def refresh_job(job_id: int) -> None:
    lifecycle.refresh_job(job_id)


def poll_sweep() -> None:
    sweep.run_poll_sweep()


def import_jobs(run_id: int) -> None:
    services.continue_import(run_id)


def build_zip(export_id: int) -> None:
    exports.build_zip(export_id)


def remove_expired_exports() -> None:
    exports.remove_expired_exports()


def purge_trash() -> None:
    trash.purge_trash()


def delete_at_provider(job_ids: list[int]) -> None:
    trash.delete_trashed_at_provider(job_ids)
