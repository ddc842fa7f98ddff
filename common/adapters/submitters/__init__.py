"""Where executor children run: the `JobSubmitter` port and its adapters.

BatchSubmitter   one AWS Batch array job (a plain job for one chunk) plus a finalizer
LocalSubmitter   OS processes on this machine, then finalize
NoneSubmitter    nothing; prints the commands that would run each chunk
revisions        what a job definition name, revision or ARN means now (a run's release)
"""

from common.adapters.submitters.base import JobRecorder, JobSubmitter, Release, RunToSubmit

__all__ = ["JobRecorder", "JobSubmitter", "Release", "RunToSubmit"]
