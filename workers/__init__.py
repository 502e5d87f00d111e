"""Background processes: the arq worker (exports, batches, rollups, clean-up) and the flusher."""
