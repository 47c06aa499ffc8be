"""Incoming folder: which files to take (`accept`), when they are complete
(`tracker.StabilityTracker`, pure), the watchdog observer (`watcher`) and the
job queue (`jobs.JobQueue`)."""
