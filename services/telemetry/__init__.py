"""Operating it: metrics, traces and logs shared by every process."""
